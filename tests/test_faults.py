"""Bad input and faults through the command line (#16, #17).

Each case: a one-line ``error: ...`` on stderr, a non-zero exit, and nothing
half-written (no scan row, no object, no temporary file, no output folder).
Images are tiny so that the whole file runs in well under a minute and a half.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

from monitor import synth
from monitor.cli import app
from monitor.config import Settings, load_settings, validate_light
from monitor.errors import MonitorError

runner = CliRunner()


# --------------------------------------------------------------------------- helpers


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``monitor ARGS`` in this process: (exit code, stdout, stderr)."""
    result = runner.invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def cli_process(*args: str, env: dict[str, str] | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``monitor ARGS`` as a child process (so C libraries' stderr is seen too)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", "from monitor.cli import app; app()", *args],
        capture_output=True, text=True, timeout=timeout, env=full_env,
    )


def refused(code: int, err: str, needle: str = "") -> str:
    """Assert a refusal: non-zero exit, exactly one ``error:`` line on stderr; return it."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0, err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in err
    assert needle.lower() in lines[0].lower(), lines[0]
    return lines[0]


def leftovers(home: Path) -> list[str]:
    """Temporary files left in a home (its tmp/ folder)."""
    tmp = home / "tmp"
    return sorted(p.name for p in tmp.rglob("*")) if tmp.is_dir() else []


def objects(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "objects").rglob("*") if p.is_file())


def n_scans(home: Path) -> int:
    with sqlite3.connect(home / "monitor.db") as con:
        return con.execute("select count(*) from scan").fetchone()[0]


def noise_png(path: Path, seed: int = 0, size: tuple[int, int] = (64, 48)) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(path: Path, width: int, height: int) -> Path:
    """A PNG of a few hundred bytes that declares ``width`` x ``height`` pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\x00" + b"\x00" * 3 * width
    data = zlib.compress(row * 4, 9)  # only a few rows: a decoder that trusts it allocates all
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", data)
                     + png_chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small good synthetic pair (a.png, b.png) that registers."""
    d = tmp_path_factory.mktemp("pair")
    p = synth.render_pair(synth.sample_spec(3, size=(320, 240)))
    Image.fromarray(p.baseline).save(d / "a.png")
    Image.fromarray(p.current).save(d / "b.png")
    return d / "a.png", d / "b.png"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An initialised home with one artwork, ``w``."""
    h = tmp_path / "home"
    assert cli("init", "--home", str(h))[0] == 0
    assert cli("artwork", "add", "w", "--title", "Work", "--home", str(h))[0] == 0
    return h


# --------------------------------------------------------------------------- bad images


def _zero(p: Path) -> Path:
    p = p / "zero.png"
    p.write_bytes(b"")
    return p


def _text(p: Path) -> Path:
    p = p / "text.png"
    p.write_text("this is a note, not an image\n")
    return p


def _truncated(fmt: str) -> Callable[[Path], Path]:
    def make(p: Path) -> Path:
        src = p / f"full.{fmt}"
        arr = np.random.default_rng(1).integers(0, 255, (96, 128, 3), dtype=np.uint8)
        if fmt == "tif":
            tifffile.imwrite(src, arr, compression="zlib")
        else:
            Image.fromarray(arr).save(src)
        data = src.read_bytes()
        out = p / f"cut.{fmt}"
        out.write_bytes(data[: len(data) // 2])
        return out
    return make


def _one_by_one(p: Path) -> Path:
    out = p / "dot.png"
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(out)
    return out


def _bomb(p: Path) -> Path:
    return bomb_png(p / "bomb.png", 30_000, 30_000)  # 900 MP declared, default limit 250 MP


def _float_nan(p: Path) -> Path:
    arr = np.random.default_rng(2).random((48, 64, 3)).astype(np.float32)
    arr[3, 4] = np.nan
    arr[5, 6] = np.inf
    out = p / "float.tif"
    tifffile.imwrite(out, arr, photometric="rgb")
    return out


def _directory(p: Path) -> Path:
    out = p / "folder.png"
    out.mkdir()
    return out


def _one_bit(p: Path) -> Path:
    rng = np.random.default_rng(3)
    out = p / "bilevel.png"
    Image.fromarray(rng.random((96, 128)) > 0.5).convert("1").save(out)
    return out


BAD_IMAGES = {
    "zero-byte": (_zero, "empty"),
    "text-as-png": (_text, "text.png"),
    "truncated-png": (_truncated("png"), "cut.png"),
    "truncated-jpeg": (_truncated("jpg"), "cut.jpg"),
    "truncated-tiff": (_truncated("tif"), "cut.tif"),
    "1x1": (_one_by_one, "1x1"),
    "decompression-bomb": (_bomb, "limit"),
    "float-tiff-nan-inf": (_float_nan, "float"),
    "directory": (_directory, "folder.png"),
    "1-bit": (_one_bit, "too few to carry shading"),
}


def _bad_params() -> list[str]:
    return list(BAD_IMAGES)


@pytest.mark.parametrize("case", _bad_params())
def test_ingest_refuses_bad_image_and_stores_nothing(case: str, home: Path, tmp_path: Path) -> None:
    make, needle = BAD_IMAGES[case]
    bad = make(tmp_path)
    code, _out, err = cli("ingest", "w", str(bad), "--home", str(home))
    refused(code, err, needle)
    assert n_scans(home) == 0 and objects(home) == [] and leftovers(home) == []


@pytest.mark.parametrize("case", _bad_params())
def test_stateless_compare_refuses_bad_image_and_writes_nothing(
    case: str, pair: tuple[Path, Path], tmp_path: Path
) -> None:
    make, needle = BAD_IMAGES[case]
    bad = make(tmp_path)
    out = tmp_path / "out"
    code, _out, err = cli("compare", str(pair[0]), str(bad), "--out", str(out))
    refused(code, err, needle)
    assert not out.exists()
    assert not list(tmp_path.glob(".out.*"))


def _cmyk(p: Path) -> Path:
    out = p / "cmyk.jpg"
    Image.fromarray(np.random.default_rng(4).integers(0, 255, (48, 64, 3), np.uint8)).convert(
        "CMYK").save(out)
    return out


def _multipage(p: Path) -> Path:
    out = p / "pages.tif"
    rng = np.random.default_rng(5)
    with tifffile.TiffWriter(out) as tw:
        for _ in range(3):
            tw.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    return out


def _rgba(p: Path) -> Path:
    out = p / "rgba.png"
    Image.fromarray(np.random.default_rng(6).integers(0, 255, (48, 64, 4), np.uint8), "RGBA").save(
        out)
    return out


def _unicode(p: Path) -> Path:
    folder = p / "scans – été 2024"
    folder.mkdir()
    return noise_png(folder / "Nachtwacht ñ 東京 .png", 7)


@pytest.mark.parametrize("make", [_cmyk, _multipage, _rgba, _unicode],
                         ids=["cmyk-jpeg", "multipage-tiff", "rgba-png", "unicode-spaces"])
def test_ingest_accepts_what_it_can_read(make: Callable[[Path], Path], home: Path,
                                         tmp_path: Path) -> None:
    image = make(tmp_path)
    code, out, err = cli("ingest", "w", str(image), "--home", str(home), "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["created"] and info["scan"]["original_name"] == image.name
    assert (info["scan"]["width"], info["scan"]["height"]) == (64, 48)
    assert n_scans(home) == 1 and leftovers(home) == []


def test_the_same_file_twice_is_stored_once(home: Path, tmp_path: Path) -> None:
    image = noise_png(tmp_path / "s.png")
    assert cli("ingest", "w", str(image), "--home", str(home))[0] == 0
    code, out, err = cli("ingest", "w", str(image), "--home", str(home))
    assert code == 0, err and "already stored" in out
    assert n_scans(home) == 1 and len(objects(home)) == 1


# --------------------------------------------------------------------------- bad parameters


LIGHT_FLAGS = [
    ("--light-azimuth", "nan"), ("--light-azimuth", "360"), ("--light-azimuth", "-1"),
    ("--light-azimuth", "inf"), ("--light-elevation", "0"), ("--light-elevation", "-30"),
    ("--light-elevation", "90"), ("--light-elevation", "nan"),
]


@pytest.mark.parametrize(("flag", "value"), LIGHT_FLAGS)
def test_stateless_compare_refuses_bad_light(flag: str, value: str, pair: tuple[Path, Path],
                                             tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, _o, err = cli("compare", str(pair[0]), str(pair[1]), "--out", str(out), flag, value)
    refused(code, err, flag)
    assert not out.exists()


@pytest.mark.parametrize(("flag", "value"), LIGHT_FLAGS)
def test_ingest_refuses_bad_light(flag: str, value: str, home: Path, tmp_path: Path) -> None:
    image = noise_png(tmp_path / "s.png")
    code, _o, err = cli("ingest", "w", str(image), flag, value, "--home", str(home))
    refused(code, err, "light")
    assert n_scans(home) == 0 and objects(home) == []


@pytest.mark.parametrize(("key", "value"), [
    ("LIGHT_ELEVATION", "-25"), ("LIGHT_ELEVATION", "0"), ("LIGHT_AZIMUTH", "nan"),
    ("LIGHT_AZIMUTH", "400"), ("RESIDUAL_GRID", "2"), ("MAX_PIXELS", "0"),
    ("SIGNIFICANCE_Z", "-1"), ("BUSY_TIMEOUT_S", "inf"), ("MAX_PIXELS", "lots"),
])
def test_environment_is_checked_at_load(key: str, value: str, pair: tuple[Path, Path],
                                        tmp_path: Path) -> None:
    with pytest.raises(MonitorError, match=f"MONITOR_{key}.*environment"):
        load_settings({f"MONITOR_{key}": value})
    out = tmp_path / "out"
    code, _o, err = cli("compare", str(pair[0]), str(pair[1]), "--out", str(out),
                        env={f"MONITOR_{key}": value})
    refused(code, err, f"MONITOR_{key}")
    assert not out.exists()


def test_config_file_values_are_checked_and_named_with_their_file(tmp_path: Path) -> None:
    toml = tmp_path / "monitor.toml"
    toml.write_text("light_elevation = -25.0\n")
    with pytest.raises(MonitorError, match=r"light_elevation = -25.0 \(config file .*monitor.toml"):
        load_settings({}, config_file=toml)
    toml.write_text("residual_grid = 6.5\n")
    with pytest.raises(MonitorError, match="residual_grid.*not an integer"):
        load_settings({}, config_file=toml)
    toml.write_text("busy_timeout_s = true\n")
    with pytest.raises(MonitorError, match="busy_timeout_s.*not a number"):
        load_settings({}, config_file=toml)
    with pytest.raises(MonitorError, match="--light-elevation = -30.0 .flag."):
        Settings().replace(light_elevation=-30.0)


def test_validate_light_is_the_one_range() -> None:
    assert validate_light(0, 89.9) == (0.0, 89.9)
    assert validate_light(359.99, None) == (359.99, None)
    for az, el in ((360.0, None), (None, 0.0), (None, 90.0), (float("nan"), None), ("x", None)):
        with pytest.raises(MonitorError, match="must be"):
            validate_light(az, el)


@pytest.mark.parametrize("when", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00"])
def test_capture_times_that_overflow_utc_are_refused(when: str, home: Path, tmp_path: Path
                                                     ) -> None:
    image = noise_png(tmp_path / "s.png")
    code, _o, err = cli("ingest", "w", str(image), "--captured-at", when, "--home", str(home))
    refused(code, err, when)
    assert n_scans(home) == 0


@pytest.mark.parametrize("value", ["inf", "1e400", "-2", "0", "nan"])
def test_ingest_refuses_bad_scale(value: str, home: Path, tmp_path: Path) -> None:
    image = noise_png(tmp_path / "s.png")
    code, _o, err = cli("ingest", "w", str(image), "--px-per-mm", value, "--home", str(home))
    refused(code, err, "px_per_mm")
    assert n_scans(home) == 0


# --------------------------------------------------------------------------- stored data


@pytest.fixture(scope="module")
def stored_master(tmp_path_factory: pytest.TempPathFactory, pair: tuple[Path, Path]) -> Path:
    """A home with two scans of ``w`` and one real stored comparison (copied per test)."""
    h = tmp_path_factory.mktemp("stored") / "home"
    assert cli("init", "--home", str(h))[0] == 0
    assert cli("artwork", "add", "w", "--title", "Work", "--home", str(h))[0] == 0
    for image, when in zip(pair, ("2024-01-01", "2024-06-01"), strict=True):
        code, _o, err = cli("ingest", "w", str(image), "--captured-at", when,
                            "--light-elevation", "25", "--home", str(h))
        assert code == 0, err
    code, _o, err = cli("compare", "w", "--home", str(h))
    assert code == 0, err
    return h


@pytest.fixture
def stored(stored_master: Path, tmp_path: Path) -> Path:
    import shutil

    h = tmp_path / "home"
    shutil.copytree(stored_master, h)
    return h


def sql(home: Path, statement: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(home / "monitor.db") as con:
        rows = con.execute(statement, args).fetchall()
        con.commit()
    return rows


def test_a_stored_path_outside_the_store_is_refused_everywhere(
    stored: Path, tmp_path: Path, pair: tuple[Path, Path]
) -> None:
    import shutil

    secret = tmp_path / "elsewhere" / "c0.png"
    secret.parent.mkdir()
    shutil.copy(pair[0], secret)  # a file that would compare fine: only the path is wrong
    rel = os.path.relpath(secret, stored)  # ../elsewhere/c0.png
    sql(stored, "update scan set stored_path = ? where id = 1", rel)
    out = tmp_path / "r.pdf"
    refused(*cli("report", "1", "-o", str(out), "--home", str(stored))[::2], "outside")
    assert not out.exists() and not list(tmp_path.glob(".r.pdf*"))
    refused(*cli("compare", "w", "--force", "--home", str(stored))[::2], "outside")
    code, out_text, _e = cli("verify", "--home", str(stored))
    assert code == 1 and "outside" in out_text


def test_a_symlink_out_of_the_store_is_refused(stored: Path, tmp_path: Path) -> None:
    secret = noise_png(tmp_path / "secret.png", 9)
    (rel,) = sql(stored, "select stored_path from scan where id = 1")[0]
    target = stored / str(rel)
    target.unlink()
    target.symlink_to(secret)
    refused(*cli("report", "1", "-o", str(tmp_path / "r.pdf"), "--home", str(stored))[::2],
            "outside")


@pytest.mark.parametrize("command", [
    "report",
    "compare",
])
def test_a_silently_corrupted_scan_is_refused_on_read(command: str, stored: Path,
                                                      tmp_path: Path) -> None:
    (rel,) = sql(stored, "select stored_path from scan where id = 2")[0]
    path = stored / str(rel)
    pixels = np.asarray(Image.open(path)).copy()
    pixels[10:20, 10:20] ^= 0x40  # bit rot that still decodes: only the hash can tell
    Image.fromarray(pixels).save(path)
    argv = (["compare", "w", "--force"] if command == "compare"
            else ["report", "1", "-o", str(tmp_path / "r.pdf")])
    line = refused(*cli(*argv, "--home", str(stored))[::2], "monitor verify")
    assert "scan 2" in line
    assert sql(stored, "select count(*) from comparison") == [(1,)]
    assert not (tmp_path / "r.pdf").exists()


# --------------------------------------------------------------------------- hostile metadata


HOSTILE = {
    "html": "<script>alert(1)</script><img src='file:///etc/passwd'><b>bold</b>",
    "file-url": "file:///etc/shadow",
    "css-url": "</style><style>body{background:url(file:///etc/passwd)}</style>",
    "unbroken-at-limit": "x" * 100_000,
}


@pytest.mark.parametrize("kind", HOSTILE)
def test_report_with_hostile_metadata_is_bounded_and_inert(kind: str, stored: Path,
                                                           tmp_path: Path) -> None:
    from monitor.report import render
    from monitor.store import db

    text = HOSTILE[kind]
    notes = text if len(text) > 500 else text * 3
    short = text[:500]
    sql(stored, "update artwork set title = ?, artist = ?, medium = ?, location = ?, notes = ?",
        short, short, short, short, notes)
    sql(stored, "update scan set camera = ?, operator = ?, notes = ?, original_name = ?",
        short[:200], short[:200], notes, short)
    store = db.open_store(stored)
    started = time.monotonic()
    rendered = render.write_report(store, 1, tmp_path / "r.pdf")
    assert time.monotonic() - started < 30
    assert rendered.refused == ()  # nothing in the text was taken for a resource
    assert all(u.startswith("file://") and ("/objects/" in u or "templates" in u or ".figures" in u)
               for u in rendered.requested)
    assert "<script>" not in rendered.html and "<img src='file" not in rendered.html


def test_nul_bytes_and_one_megabyte_strings(home: Path, tmp_path: Path) -> None:
    refused(*cli("artwork", "add", "v", "--title", "T", "--notes", "n" * 1_000_000,
                 "--home", str(home))[::2], "longer than")
    image = noise_png(tmp_path / "s.png")
    refused(*cli("ingest", "w", str(image), "--operator", "o" * 1_000_000,
                 "--home", str(home))[::2], "longer than")
    assert n_scans(home) == 0
    from monitor.store import db, repository

    store = db.open_store(home)
    with pytest.raises(MonitorError, match="NUL|control"):
        repository.add_artwork(store, "z", "Ti\x00tle")


# --------------------------------------------------------------------------- sidecars

SIDECARS = {
    "huge-scale": '{"px_per_mm": 1' + "0" * 400 + "}",
    "infinite-scale": '{"px_per_mm": 1e999}',
    "negative-elevation": '{"light_elevation": -30}',
    "zero-elevation": '{"light_elevation": 0}',
    "azimuth-360": '{"light_azimuth": 360}',
    "time-overflow-late": '{"captured_at": "9999-12-31T23:00:00-05:00"}',
    "time-overflow-early": '{"captured_at": "0001-01-01T00:00:00+05:00"}',
    "nul-in-text": '{"operator": "J\\u0000V"}',
}


@pytest.mark.parametrize("case", list(SIDECARS))
def test_inbox_quarantines_a_scan_whose_sidecar_is_out_of_range(case: str, tmp_path: Path
                                                                  ) -> None:
    from monitor import inbox
    from monitor.store import db, repository

    store = db.init_home(tmp_path / "home")
    repository.add_artwork(store, "w", "Work")
    box = tmp_path / "inbox"
    (box / "w").mkdir(parents=True)
    noise_png(box / "w" / "s1.png")
    (box / "w" / "s1.json").write_text(SIDECARS[case])

    def never(*_a: object) -> object:
        raise AssertionError("a refused scan must not be compared")

    summary = inbox.process_inbox(store, box, tmp_path / "rep", Settings(inbox_settle_s=0.0),
                                  run=never)
    (item,) = summary.items
    assert item.outcome == "quarantined", item
    assert "s1.json" in (item.reason or "") and "\n" not in (item.reason or "")
    assert repository.list_scans(store, "w") == []
    assert sorted(p.name for p in (box / "_quarantine" / "w").iterdir()) == sorted(
        [f"s1.{item.sha256[:8]}.png", f"s1.{item.sha256[:8]}.png.reason.txt",
         f"s1.{item.sha256[:8]}.json"])


def test_a_crash_between_the_moves_into_quarantine_never_lets_the_image_be_compared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies after the first of the two renames of a refused scan (kill -9)."""
    from monitor import inbox
    from monitor.store import db, repository

    store = db.init_home(tmp_path / "home")
    repository.add_artwork(store, "w", "Work")
    box = tmp_path / "inbox"
    (box / "w").mkdir(parents=True)
    noise_png(box / "w" / "s1.png")
    (box / "w" / "s1.json").write_text('{"light_elevation": -30}')  # refused for its sidecar

    class Killed(BaseException):
        pass

    from monitor.inbox import filing

    real_rename = filing._rename
    calls: list[Path] = []

    def dying_rename(source: Path, target: Path) -> None:
        calls.append(source)
        real_rename(source, target)
        raise Killed

    monkeypatch.setattr(filing, "_rename", dying_rename)
    with pytest.raises(Killed):
        inbox.process_inbox(store, box, tmp_path / "rep", Settings(inbox_settle_s=0.0))
    monkeypatch.setattr(filing, "_rename", real_rename)
    compared: list[object] = []

    def record(*args: object) -> object:
        compared.append(args)
        raise MonitorError("stop")

    summary = inbox.process_inbox(store, box, tmp_path / "rep", Settings(inbox_settle_s=0.0),
                                  run=record)
    assert compared == []
    assert repository.list_scans(store, "w") == []
    assert all(item.outcome != "baseline" for item in summary.items), summary.items


# --------------------------------------------------------------------------- file systems


def _mount(*args: str) -> bool:
    if os.geteuid() != 0:
        return False
    try:
        return subprocess.run(["mount", *args], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=20)


@pytest.fixture
def read_only_home(stored: Path) -> Iterator[Path]:
    """The stored home, bind-mounted read-only over itself (root only)."""
    if not _mount("--bind", str(stored), str(stored)):
        pytest.skip("cannot bind-mount here (needs root)")
    try:
        if not _mount("-o", "remount,ro,bind", str(stored)):
            pytest.skip("cannot remount read-only here")
        yield stored
    finally:
        _umount(stored)


def test_report_from_a_read_only_home_to_a_writable_place(read_only_home: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "r.pdf"
    out.parent.mkdir()
    code, _o, err = cli("report", "1", "-o", str(out), "--home", str(read_only_home))
    assert code == 0, err
    assert out.read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in out.parent.iterdir()) == ["r.pdf"]


def test_ingest_into_a_read_only_home_is_one_line(read_only_home: Path, tmp_path: Path) -> None:
    image = noise_png(tmp_path / "s.png", 11)
    refused(*cli("ingest", "w", str(image), "--home", str(read_only_home))[::2])


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs (root only)."""
    mount_point = tmp_path / "fs"
    mount_point.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount_point)):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount_point
    finally:
        _umount(mount_point)


@pytest.mark.parametrize("fills", ["while copying", "at the database write"])
def test_ingest_on_a_full_disk_leaves_nothing(fills: str, tiny_fs: Path, tmp_path: Path) -> None:
    h = tiny_fs / "home"
    assert cli("init", "--home", str(h))[0] == 0
    assert cli("artwork", "add", "w", "--title", "Work", "--home", str(h))[0] == 0
    if fills == "while copying":
        image = noise_png(tmp_path / "big.png", 12, size=(640, 480))  # ~900 KB of noise
        needle = "space"
    else:  # the image fits, the database's journal does not
        image = noise_png(tmp_path / "s.png", 12, size=(160, 120))
        st = os.statvfs(tiny_fs)
        (tiny_fs / "filler").write_bytes(
            b"\0" * (st.f_bavail * st.f_frsize - image.stat().st_size - 4096))
        needle = "full"
    refused(*cli("ingest", "w", str(image), "--home", str(h))[::2], needle)
    assert n_scans(h) == 0 and objects(h) == [] and leftovers(h) == []


def test_ingest_with_a_simulated_enospc_leaves_nothing(home: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    def full(src: object, dst: object, *_a: object, **_k: object) -> None:
        dst.write(b"partial")  # type: ignore[attr-defined]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", full)
    image = noise_png(tmp_path / "s.png")
    refused(*cli("ingest", "w", str(image), "--home", str(home))[::2], "space")
    assert n_scans(home) == 0 and objects(home) == [] and leftovers(home) == []


# --------------------------------------------------------------------------- crashes


def _wait_for(predicate: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 90
              ) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return predicate()
        time.sleep(0.002)
    return False


def test_kill_9_during_a_stateless_compare_then_the_next_run_cleans_up(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    argv = [sys.executable, "-c", "from monitor.cli import app; app()",
            "compare", str(pair[0]), str(pair[1]), "--out", str(out)]
    for _attempt in range(3):  # the temporary folder lives well under a second
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                text=True)
        caught = _wait_for(lambda: bool(list(tmp_path.glob(".out.*"))), proc)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        if caught and not out.exists():
            break
        import shutil

        shutil.rmtree(out, ignore_errors=True)
    else:
        pytest.skip("the run was never caught with its temporary folder")
    assert list(tmp_path.glob(".out.*")), "the killed run left its temporary folder"
    # a live run's temporary folder (this test process stands for it) is never touched
    live = tmp_path / f".out.tmp-{os.getpid()}-live"
    live.mkdir()
    code, _o, err = cli("compare", str(pair[0]), str(pair[1]), "--out", str(out))
    assert code == 0, err
    assert (out / "regions.json").is_file()
    assert [p.name for p in tmp_path.glob(".out.*")] == [live.name]


def test_kill_9_during_a_stored_comparison_then_a_rerun_completes(stored: Path) -> None:
    argv = [sys.executable, "-c", "from monitor.cli import app; app()",
            "compare", "w", "--force", "--home", str(stored)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    staged = _wait_for(lambda: any((stored / "tmp").glob("cmp-*")), proc)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not staged:
        pytest.skip("the comparison was never caught while staging")
    assert sql(stored, "select count(*) from comparison") == [(1,)]  # the old one, intact
    code, out_text, err = cli("verify", "--home", str(stored))
    assert code == 0, out_text + err
    code, _o, err = cli("compare", "w", "--force", "--home", str(stored))
    assert code == 0, err
    assert sql(stored, "select count(*) from comparison") == [(1,)]
    assert cli("verify", "--home", str(stored))[0] == 0


# --------------------------------------------------------------------------- noisy libraries


def _huge_tiff(p: Path) -> Path:
    import sys as _sys

    _sys.path.insert(0, str(Path(__file__).parent))
    from test_io import _patch_tiff_size

    out = p / "huge.tif"
    tifffile.imwrite(out, np.random.default_rng(0).integers(0, 255, (96, 128, 3), np.uint8))
    _patch_tiff_size(out, 100_000, 100_000)
    return out


def _corrupt_exif_jpeg(p: Path) -> Path:
    import io as _io

    buf = _io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)).save(
        buf, "JPEG")
    jpeg = buf.getvalue()
    exif = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x05" + bytes(range(7, 67))
    out = p / "exif.jpg"
    out.write_bytes(jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + jpeg[2:])
    return out


def _bit_rotted_tiff(p: Path) -> Path:
    out = p / "rot.tif"
    tifffile.imwrite(out, np.random.default_rng(0).integers(0, 255, (96, 128, 3), np.uint8),
                     rowsperstrip=1)
    data = bytearray(out.read_bytes())
    with tifffile.TiffFile(out) as tif:
        ifd = tif.pages[0].offset
    for i in np.random.default_rng(1).integers(ifd, ifd + 400, 30):
        data[i] ^= 0x55
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("make", [_huge_tiff, _corrupt_exif_jpeg, _bit_rotted_tiff],
                         ids=["huge-tiff-header", "corrupt-exif-jpeg", "bit-rotted-tiff"])
def test_noisy_files_give_one_line_and_details_only_when_debugging(
    make: Callable[[Path], Path], home: Path, tmp_path: Path
) -> None:
    image = make(tmp_path)
    quiet = cli_process("ingest", "w", str(image), "--home", str(home),
                        env={"MONITOR_DEBUG": ""})
    lines = [line for line in quiet.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, quiet.stderr
    assert lines[0].startswith(("error: ", "warning: ")), lines[0]
    if lines[0].startswith("warning: "):
        assert quiet.returncode == 0
        assert "MONITOR_DEBUG" in lines[0] or "--debug" in lines[0]
    else:
        assert quiet.returncode != 0 and n_scans(home) == 0
    loud = cli_process("ingest", "w", str(image), "--home", str(home),
                       env={"MONITOR_DEBUG": "1"})
    assert len(loud.stderr.splitlines()) > 1


def test_a_decompression_bomb_under_the_pixel_limit_is_refused_at_ingest(
    home: Path, tmp_path: Path
) -> None:
    bomb = tmp_path / "bomb.png"
    ihdr = struct.pack(">IIBBBBB", 8000, 8000, 8, 2, 0, 0, 0)  # 64 MP, under the 250 MP limit
    data = zlib.compress(b"\x00" * (3 * 8000 + 1) * 8000, 9)
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", data)
                     + png_chunk(b"IEND", b""))
    assert bomb.stat().st_size < 300_000  # 192 MB of pixels in a file of ~190 KB
    refused(*cli("ingest", "w", str(bomb), "--home", str(home))[::2], "decompression bomb")
    assert n_scans(home) == 0 and objects(home) == []


def test_a_stored_path_inside_the_home_but_outside_objects_is_refused(
    stored: Path, tmp_path: Path, pair: tuple[Path, Path]
) -> None:
    """A row pointing at tmp/ (or monitor.db) is refused by the report and by the viewer."""
    import shutil

    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from monitor.web import create_app

    (stored / "tmp").mkdir(exist_ok=True)
    shutil.copy(pair[0], stored / "tmp" / "planted.png")
    sql(stored, "update scan set stored_path = 'tmp/planted.png' where id = 1")
    refused(*cli("report", "1", "-o", str(tmp_path / "r.pdf"), "--home", str(stored))[::2],
            "outside")
    response = TestClient(create_app(stored)).get("/comparisons/1")
    assert response.status_code == 403 and "outside" in response.text


# --------------------------------------------------------------------------- concurrent writers


def _paused_ingest(home: Path, image: Path, barrier: Path) -> subprocess.Popen[str]:
    """An ingest in a child process that stops holding the write lock (the "placed" point)."""
    from monitor.store import repository

    barrier.mkdir(exist_ok=True)
    env = {**os.environ, repository.PAUSE_ENV: f"placed:{barrier}"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from monitor.cli import app; app()", "ingest", "w", str(image),
         "--home", str(home)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    assert _wait_for(lambda: (barrier / "placed.reached").exists(), proc, 30), proc.stderr
    return proc


def _release_later(barrier: Path, after_s: float) -> None:
    import threading

    threading.Timer(after_s, lambda: (barrier / "placed.go").write_text("")).start()


def test_two_ingests_of_different_files_both_succeed(home: Path, tmp_path: Path) -> None:
    barrier = tmp_path / "barrier"
    first = _paused_ingest(home, noise_png(tmp_path / "a.png", 1), barrier)
    _release_later(barrier, 1.5)  # the other one has to wait for the lock that long
    started = time.monotonic()
    code, _o, err = cli("ingest", "w", str(noise_png(tmp_path / "b.png", 2)), "--home", str(home))
    waited = time.monotonic() - started
    assert code == 0, err
    assert first.wait(30) == 0, first.stderr.read() if first.stderr else ""
    assert waited >= 1.0  # it waited instead of failing with "database is locked"
    assert n_scans(home) == 2 and len(objects(home)) == 2 and leftovers(home) == []


def test_db_downgrade_waits_for_a_concurrent_writer(home: Path, tmp_path: Path) -> None:
    barrier = tmp_path / "barrier"
    first = _paused_ingest(home, noise_png(tmp_path / "a.png", 1), barrier)
    _release_later(barrier, 1.5)
    code, _o, err = cli("db", "downgrade", "-1", "--home", str(home))
    assert first.wait(30) == 0
    assert code == 0, err
    code, _o, err = cli("db", "upgrade", "--home", str(home))
    assert code == 0, err
    assert n_scans(home) == 1
