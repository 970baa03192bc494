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
XFAIL = pytest.mark.xfail


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
    tifffile.imwrite(out, arr)
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
    "1-bit": (_one_bit, "grey levels"),
}
_XFAIL_1BIT = pytest.mark.xfail(strict=True, reason="#17: a 1-bit PNG is accepted (0 regions)")


def _bad_params() -> list[object]:
    return [
        pytest.param(name, marks=_XFAIL_1BIT) if name == "1-bit" else name for name in BAD_IMAGES
    ]


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


_INGEST_LIGHT_XFAIL = {"360", "-1", "0", "90"}


@pytest.mark.parametrize(("flag", "value"), [
    pytest.param(f, v, marks=XFAIL(strict=True, reason="#17: ingest range differs"))
    if v in _INGEST_LIGHT_XFAIL else (f, v) for f, v in LIGHT_FLAGS
])
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


@XFAIL(strict=True, reason="#17: OverflowError traceback")
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


@XFAIL(strict=True, reason="#17: compare SLUG and verify follow a stored path out of the store")
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


@XFAIL(strict=True, reason="#16: the store never checks a hash on read")
def test_a_silently_corrupted_scan_is_refused_on_read(stored: Path, tmp_path: Path) -> None:
    (rel,) = sql(stored, "select stored_path from scan where id = 2")[0]
    path = stored / str(rel)
    pixels = np.asarray(Image.open(path)).copy()
    pixels[10:20, 10:20] ^= 0x40  # bit rot that still decodes: only the hash can tell
    Image.fromarray(pixels).save(path)
    line = refused(*cli("compare", "w", "--force", "--home", str(stored))[::2], "monitor verify")
    assert "scan 2" in line
    refused(*cli("report", "1", "-o", str(tmp_path / "r.pdf"), "--home", str(stored))[::2],
            "monitor verify")
    assert sql(stored, "select count(*) from comparison") == [(1,)]


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


@XFAIL(strict=True, reason="#16: NUL bytes in metadata are stored")
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
