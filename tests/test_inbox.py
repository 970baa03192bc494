"""Scheduled inbox passes (monitor.inbox): filing, comparing, quarantine, idempotency, lock."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from test_store import fake_write, make_comparison, write_image

from monitor import inbox, synth
from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.results import Comparison, Light, Region
from monitor.store import db, repository
from monitor.store.models import ComparisonRecord, RegionRecord, Scan

SETTINGS = Settings(inbox_settle_s=0.0)


@pytest.fixture(autouse=True)
def _backend(db_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test of this module on SQLite (the home's monitor.db) and on PostgreSQL."""
    monkeypatch.setattr(sys.modules[__name__], "SETTINGS",
                        SETTINGS.replace(database_url=db_settings.database_url))


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def pairs() -> dict[str, synth.SynthPair]:
    """Two small synthetic paintings (procedural albedo differs by seed)."""
    return {
        "a": synth.render_pair(synth.demo_spec(seed=1, size=(480, 360))),
        "b": synth.render_pair(synth.demo_spec(seed=2, size=(480, 360))),
    }


def drop(folder: Path, name: str, rgb_or_seed: np.ndarray | int, **sidecar: object) -> Path:
    """Put an image (and a JSON sidecar when given keys) into an inbox folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(rgb_or_seed, int):
        write_image(path, rgb_or_seed)
    else:
        assert cv2.imwrite(str(path), cv2.cvtColor(rgb_or_seed, cv2.COLOR_RGB2BGR))
    if sidecar:
        path.with_suffix(".json").write_text(json.dumps(sidecar))
    return path


def new_home(tmp_path: Path, *slugs: str) -> db.Store:
    store = db.init_home(tmp_path / "home", SETTINGS)
    for slug in slugs:
        repository.add_artwork(store, slug, f"Work {slug}")
    return store


def row_counts(store: db.Store) -> dict[str, int]:
    with Session(store.engine) as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Scan, ComparisonRecord, RegionRecord)
        }


def by_file(summary: inbox.RunSummary) -> dict[str, inbox.ItemResult]:
    return {item.file: item for item in summary.items}


def fake_run(bad: set[str], calls: list[tuple[str, str]], significance: float = 9.5
             ) -> Callable[[Path, Path, Light, float | None], Comparison]:
    """A comparison stand-in: refuses images whose sha256 is in ``bad`` like registration does."""

    def run(base: Path, cur: Path, light: Light, px_per_mm: float | None) -> Comparison:
        calls.append((base.stem, cur.stem))  # stored files are named by their sha256
        if cur.stem in bad:
            raise MonitorError("the two images do not appear to show the same artwork")
        region = Region(1, "bulge", (20.5, 12.5), (14.0, 8.0, 27.0, 17.0), 96.0, 0.8, 0.4,
                        significance)
        return make_comparison((region,))

    return run


def fake_pass(store: db.Store, box: Path, tmp_path: Path,
              run: Callable[..., Comparison], settings: Settings | None = None
              ) -> inbox.RunSummary:
    """A pass with a stand-in comparison and output writer (reports are real)."""
    return inbox.process_inbox(store, box, tmp_path / "rep", settings or SETTINGS, run=run,
                               write=fake_write)


def sha(path: Path) -> str:
    return repository.sha256_file(path)


# --------------------------------------------------------------------------- the scenario


def test_pass_files_good_scans_quarantines_bad_ones_and_repeats_nothing(
    tmp_path: Path, pairs: dict[str, synth.SynthPair]
) -> None:
    store = new_home(tmp_path, "a", "b")
    box, reports = tmp_path / "inbox", tmp_path / "reports"
    light = {"light_azimuth": 180.0, "light_elevation": 25.0}
    drop(box / "a", "s1.png", pairs["a"].baseline, captured_at="2024-01-10", **light)
    drop(box / "a", "s2.png", pairs["a"].current, captured_at="2024-06-10", **light)
    # a scan of painting b filed under a, later than both: the registration refuses it
    wrong = drop(box / "a", "s3.png", pairs["b"].current, captured_at="2024-09-10", **light)
    drop(box / "b", "s1.png", pairs["b"].baseline, captured_at="2024-01-10", **light)
    drop(box / "b", "s2.png", pairs["b"].current, captured_at="2024-06-10", **light)
    corrupt = box / "b" / "broken.tif"
    corrupt.write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    log = tmp_path / "alerts.jsonl"
    hook = (f"{sys.executable} -c \"import sys, os; open(sys.argv[1], 'a').write("
            f"sys.stdin.read().replace(chr(10), ' ') + chr(10))\" {log}")
    settings = SETTINGS.replace(alert_command=hook, alert_min_significance=0.0)

    with inbox.inbox_lock(store.home) as held:
        assert held
        summary = inbox.process_inbox(store, box, reports, settings)
    got = by_file(summary)
    assert {k: v.outcome for k, v in got.items()} == {
        "a/s1.png": "baseline", "a/s2.png": "compared", "a/s3.png": "quarantined",
        "b/broken.tif": "quarantined", "b/s1.png": "baseline", "b/s2.png": "compared",
    }
    assert summary.status == "some failed" and summary.exit_code == inbox.EXIT_SOME_FAILED
    assert "same artwork" in (got["a/s3.png"].reason or "")
    assert "corrupt" in (got["b/broken.tif"].reason or "")

    # the store: two scans per artwork (the wrong one was taken back), two comparisons
    assert [s.original_name for s in repository.list_scans(store, "a")] == ["s1.png", "s2.png"]
    assert len(repository.list_scans(store, "b")) == 2
    for slug in ("a", "b"):
        item = got[f"{slug}/s2.png"]
        detail = repository.comparison_detail(store, item.comparison_id or -1)
        assert detail.baseline.original_name == "s1.png"
        assert detail.current.original_name == "s2.png"
        assert detail.light == Light(180.0, 25.0)
        assert len(detail.regions) == item.regions and item.regions >= 3  # 5 planted
        assert item.captured_at_source == "sidecar"
        report = Path(item.report or "")
        assert report.parent == reports / slug and report.read_bytes()[:5] == b"%PDF-"
        assert item.alert == {"command": {"returncode": 0}}
    counts = row_counts(store)
    assert counts["comparison"] == 2 and counts["scan"] == 4

    # files: nothing left in the artwork folders, bad ones with their reason, sidecars follow
    assert sorted(p.name for p in (box / "a").iterdir()) == []
    assert sorted(p.name for p in (box / "b").iterdir()) == []
    moved = box / (got["a/s3.png"].moved_to or "")
    assert moved.parent == box / "_quarantine" / "a" and moved.read_bytes() == \
        (box / "_quarantine" / "a" / moved.name).read_bytes()
    assert moved.with_suffix(".json").is_file()
    reason = Path(f"{moved}{inbox.REASON_SUFFIX}").read_text()
    assert reason.splitlines()[0].startswith("the two images do not appear to show the same")
    assert sha(moved) in reason and not wrong.exists()
    broken = box / (got["b/broken.tif"].moved_to or "")
    assert Path(f"{broken}{inbox.REASON_SUFFIX}").is_file()
    assert len(list((box / "_processed").rglob("*.png"))) == 4
    assert not (store.home / inbox.PENDING_DIR).is_dir() or not any(
        (store.home / inbox.PENDING_DIR).iterdir()
    )

    # the alert hook ran once per comparison with the comparison's JSON on stdin
    alerts = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(a["comparison_id"] for a in alerts) == sorted(
        got[f"{s}/s2.png"].comparison_id for s in ("a", "b")
    )
    assert all(a["regions"] and a["max_significance"] > 0 for a in alerts)

    # a second pass over the same inbox does nothing
    again = inbox.process_inbox(store, box, reports, settings)
    assert again.items == () and again.exit_code == inbox.EXIT_NOTHING
    assert row_counts(store) == counts
    assert len(log.read_text().splitlines()) == 2


# --------------------------------------------------------------------------- order, take-back


def test_scans_are_compared_in_capture_order_and_only_inbox_scans_are_taken_back(
    tmp_path: Path,
) -> None:
    store = new_home(tmp_path, "w")
    # a scan already in the store before the inbox saw anything
    manual = write_image(tmp_path / "manual.png", 10)
    repository.ingest_scan(store, "w", manual,
                           repository.ScanMeta(captured_at=datetime(2023, 1, 1, tzinfo=UTC)))
    box = tmp_path / "inbox"
    late = drop(box / "w", "late.png", 11, captured_at="2024-05-01")
    bad = drop(box / "w", "bad.png", 12, captured_at="2024-03-01")
    early = drop(box / "w", "early.png", 13, captured_at="2024-01-01T09:30:00+02:00")
    calls: list[tuple[str, str]] = []
    bad_sha = sha(bad)
    run = fake_run({bad_sha}, calls)
    summary = fake_pass(store, box, tmp_path, run, SETTINGS)
    got = by_file(summary)
    assert got["w/early.png"].outcome == "compared"
    assert got["w/bad.png"].outcome == "quarantined"
    assert got["w/late.png"].outcome == "compared"
    assert got["w/early.png"].captured_at == "2024-01-01T07:30:00+00:00"
    # in capture order; the scan after the rejected one is compared with the one before it
    assert calls == [(sha(manual), sha(tmp_path / "inbox/_processed/w" / Path(
        got["w/early.png"].moved_to or "").name)), (calls[0][1], bad_sha), (calls[0][1],
                                                                            calls[2][1])]
    assert [s.original_name for s in repository.list_scans(store, "w")] == [
        "manual.png", "early.png", "late.png"]
    assert not late.exists() and not early.exists()

    # a file whose image was already stored by hand keeps its scan when it is refused
    again = drop(box / "w", "manual-again.png", 10)
    calls.clear()
    run2 = fake_run({sha(manual)}, calls)
    # the manual scan is the oldest: it has nothing to be compared with and is accepted as is
    res = by_file(fake_pass(store, box, tmp_path, run2, SETTINGS))
    assert res["w/manual-again.png"].outcome == "baseline" and calls == []
    assert res["w/manual-again.png"].captured_at_source == "already stored"
    assert not again.exists()
    # a re-drop of the newest scan finds its comparison stored: nothing is computed again
    drop(box / "w", "late-again.png", 11)
    res = by_file(fake_pass(store, box, tmp_path, run2, SETTINGS))
    assert res["w/late-again.png"].outcome == "compared" and res["w/late-again.png"].reused
    assert calls == []
    # a refused file whose image was stored by hand (not by the inbox) leaves that scan alone
    newer = write_image(tmp_path / "newer.png", 14)
    repository.ingest_scan(store, "w", newer,
                           repository.ScanMeta(captured_at=datetime(2025, 1, 1, tzinfo=UTC)))
    drop(box / "w", "newer-again.png", 14)
    res = by_file(fake_pass(store, box, tmp_path, fake_run({sha(newer)}, calls), SETTINGS))
    assert res["w/newer-again.png"].outcome == "quarantined"
    assert "stays in the store" in (res["w/newer-again.png"].reason or "")
    assert len(repository.list_scans(store, "w")) == 4


def test_capture_time_falls_back_to_file_time_and_duplicates_are_filed_once(
    tmp_path: Path,
) -> None:
    store = new_home(tmp_path, "w")
    box = tmp_path / "inbox"
    first = drop(box / "w", "one.png", 1)
    copy = box / "w" / "one-copy.png"
    copy.write_bytes(first.read_bytes())
    second = drop(box / "w", "two.png", 2)
    os.utime(first, (1_700_000_000, 1_700_000_000))
    os.utime(copy, (1_700_000_000, 1_700_000_000))
    os.utime(second, (1_710_000_000, 1_710_000_000))
    calls: list[tuple[str, str]] = []
    summary = fake_pass(store, box, tmp_path, fake_run(set(), calls))
    got = by_file(summary)
    assert {k: v.outcome for k, v in got.items()} == {
        "w/one-copy.png": "baseline", "w/one.png": "duplicate", "w/two.png": "compared"}
    assert got["w/one-copy.png"].captured_at_source == "file time"
    assert got["w/one-copy.png"].captured_at == datetime.fromtimestamp(
        1_700_000_000, UTC).isoformat()
    assert len(calls) == 1 and summary.exit_code == inbox.EXIT_DONE
    assert len(repository.list_scans(store, "w")) == 2
    assert len(list((box / "_processed" / "w").iterdir())) == 3


# --------------------------------------------------------------------------- crash recovery


class Killed(BaseException):
    """Stands in for the process dying (not an Exception: nothing may catch it)."""


def test_a_pass_that_dies_mid_comparison_is_finished_by_the_next(tmp_path: Path) -> None:
    store = new_home(tmp_path, "w")
    box = tmp_path / "inbox"
    drop(box / "w", "a.png", 1, captured_at="2024-01-01")
    drop(box / "w", "b.png", 2, captured_at="2024-02-01")
    bad = drop(box / "w", "c.png", 3, captured_at="2024-03-01")
    calls: list[tuple[str, str]] = []
    good = fake_run({sha(bad)}, calls)

    def dies(*args: object) -> Comparison:
        raise Killed

    with pytest.raises(Killed):
        fake_pass(store, box, tmp_path, dies)
    # scans were stored, no comparison; the first (a baseline) was filed before the death,
    # the others are still in the inbox and their markers say "the inbox added these"
    assert row_counts(store)["scan"] == 3 and row_counts(store)["comparison"] == 0
    assert sorted(p.name for p in (box / "w").iterdir()) == ["b.json", "b.png", "c.json",
                                                              "c.png"]
    assert len(list((store.home / inbox.PENDING_DIR).glob("*.json"))) == 2
    summary = fake_pass(store, box, tmp_path, good, SETTINGS)
    got = by_file(summary)
    assert [got[f"w/{n}.png"].outcome for n in "bc"] == ["compared", "quarantined"]
    # the refused scan was taken back although a previous pass stored it
    assert [s.original_name for s in repository.list_scans(store, "w")] == ["a.png", "b.png"]
    assert row_counts(store) == {"scan": 2, "comparison": 1, "region": 1}
    assert not list((store.home / inbox.PENDING_DIR).glob("*.json"))
    # store consistent: every referenced object exists, every object is referenced
    with Session(store.engine) as session:
        refs = set(session.scalars(select(Scan.stored_path)))
        for artifacts in session.scalars(select(ComparisonRecord.artifacts)):
            refs.update(artifacts.values())
    objects = {p.relative_to(store.home).as_posix()
               for p in (store.home / "objects").rglob("*") if p.is_file()}
    assert objects == refs


# --------------------------------------------------------------------------- lock


def test_lock_is_exclusive_waits_and_is_released(tmp_path: Path) -> None:
    store = new_home(tmp_path)
    (tmp_path / "inbox").mkdir()
    with inbox.inbox_lock(store.home) as first:
        assert first
        with inbox.inbox_lock(store.home) as second:
            assert not second
        start = time.monotonic()
        with inbox.inbox_lock(store.home, wait_s=0.4, poll_s=0.05) as third:
            assert not third
        assert time.monotonic() - start >= 0.4
        busy = inbox.run_inbox(store.home, SETTINGS, inbox=tmp_path / "inbox")
        assert busy.busy and busy.exit_code == inbox.EXIT_BUSY and busy.items == ()
    with inbox.inbox_lock(store.home) as again:
        assert again
    free = inbox.run_inbox(store.home, SETTINGS, inbox=tmp_path / "inbox")
    assert not free.busy and free.exit_code == inbox.EXIT_NOTHING
    with pytest.raises(MonitorError, match="lock wait"), inbox.inbox_lock(store.home, wait_s=-1):
        pass


# --------------------------------------------------------------------------- discovery


def test_discover_skips_unsettled_hidden_and_partial_files(tmp_path: Path) -> None:
    box = tmp_path / "inbox"
    old = drop(box / "w", "old.png", 1, operator="JV")
    fresh = drop(box / "w", "fresh.png", 2)
    for name in (".hidden.png", "copying.png.part", "Thumbs.db"):
        (box / "w" / name).write_bytes(b"x")
    (box / "w" / "orphan.toml").write_text("operator = 'x'\n")
    (box / "w" / "sub").mkdir()
    twin = drop(box / "v", "t.png", 3, operator="A")
    (box / "v" / "t.toml").write_text("operator = 'B'\n")
    (box / "loose.png").write_bytes(old.read_bytes())
    (box / "_processed" / "w").mkdir(parents=True)
    drop(box / "_processed" / "w", "done.png", 4)
    now = time.time()
    for path in (old, old.with_suffix(".json"), twin, twin.with_suffix(".json"),
                 box / "v" / "t.toml", box / "loose.png"):
        os.utime(path, (now - 100, now - 100))
    files, waiting, ignored = inbox.discover(box, settle_s=30, now=now)
    by = {f.rel: f for f in files}
    assert sorted(by) == ["loose.png", "v/t.png", "w/old.png"]
    assert by["w/old.png"].sidecar == old.with_suffix(".json") and by["w/old.png"].problem is None
    assert by["loose.png"].slug is None and "artwork folder" in (by["loose.png"].problem or "")
    assert "two sidecars" in (by["v/t.png"].problem or "")
    assert waiting == ["w/fresh.png"] and fresh.exists()
    assert sorted(ignored) == ["w/orphan.toml", "w/sub"]
    with pytest.raises(MonitorError, match="no inbox"):
        inbox.discover(tmp_path / "missing")


def test_read_sidecar_json_and_toml(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text("captured_at = 2024-05-01T10:00:00+02:00\npx_per_mm = 4\n"
                    "light_azimuth = 90.0\noperator = 'JV'\n")
    meta = inbox.read_sidecar(toml)
    assert meta.captured_at == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert meta.px_per_mm == 4.0 and meta.light_azimuth == 90.0 and meta.operator == "JV"
    day = tmp_path / "d.toml"
    day.write_text("captured_at = 2024-05-01\n")
    assert inbox.read_sidecar(day).captured_at == datetime(2024, 5, 1, tzinfo=UTC)
    js = tmp_path / "s.json"
    js.write_text(json.dumps({"captured_at": "2024-05-01T10:00:00", "camera": "X"}))
    assert inbox.read_sidecar(js).captured_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    for body, match in (({"px_per_mm": "4"}, "must be a number"),
                        ({"pixels_per_mm": 4}, "unknown key"),
                        ({"camera": 3}, "must be text"),
                        ({"captured_at": "yesterday"}, "ISO 8601"),
                        ([1, 2], "table of keys")):
        js.write_text(json.dumps(body))
        with pytest.raises(MonitorError, match=match):
            inbox.read_sidecar(js)
    js.write_text("{not json")
    with pytest.raises(MonitorError, match="cannot read"):
        inbox.read_sidecar(js)


def test_bad_sidecar_unknown_artwork_and_loose_files_are_quarantined(tmp_path: Path) -> None:
    store = new_home(tmp_path, "w")
    box = tmp_path / "inbox"
    drop(box / "w", "neg.png", 1, px_per_mm=-2)
    drop(box / "w", "typo.png", 2, captured=1)
    drop(box / "nope", "x.png", 3)
    drop(box / "Bad Name", "y.png", 4)
    (box / "loose.png").write_bytes((box / "w" / "neg.png").read_bytes())
    summary = fake_pass(store, box, tmp_path, fake_run(set(), []), SETTINGS)
    got = by_file(summary)
    assert all(v.outcome == "quarantined" for v in got.values()) and len(got) == 5
    assert "positive" in (got["w/neg.png"].reason or "")
    assert "unknown key" in (got["w/typo.png"].reason or "")
    assert "no artwork 'nope'" in (got["nope/x.png"].reason or "")
    assert "not an artwork slug" in (got["Bad Name/y.png"].reason or "")
    assert (box / "_quarantine" / "nope").is_dir() and (box / "_quarantine" / "Bad Name").is_dir()
    assert any(p.name.endswith(inbox.REASON_SUFFIX) for p in (box / "_quarantine").iterdir())
    assert row_counts(store)["scan"] == 0
    assert not list((store.home / inbox.PENDING_DIR).glob("*.json"))


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    store = new_home(tmp_path, "w")
    box = tmp_path / "inbox"
    a = drop(box / "w", "a.png", 1)
    drop(box / "zz", "b.png", 2)
    before = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    summary = inbox.run_inbox(store.home, SETTINGS, inbox=box, dry_run=True)
    assert summary.dry_run and summary.exit_code == inbox.EXIT_DONE
    assert {i.file: i.outcome for i in summary.items} == {
        "w/a.png": "would process", "zz/b.png": "would quarantine"}
    assert by_file(summary)["w/a.png"].sha256 == sha(a)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == before
    assert row_counts(store)["scan"] == 0


# --------------------------------------------------------------------------- alerts


def test_alert_threshold_and_failing_hooks_never_fail_the_pass(tmp_path: Path) -> None:
    store = new_home(tmp_path, "w")
    box = tmp_path / "inbox"
    drop(box / "w", "a.png", 1, captured_at="2024-01-01")
    drop(box / "w", "b.png", 2, captured_at="2024-02-01")
    env_log = tmp_path / "env.txt"
    hook = (f"{sys.executable} -c \"import os, sys; open(sys.argv[1], 'w').write("
            f"os.environ['MONITOR_ALERT_ARTWORK'] + ' ' + os.environ['MONITOR_ALERT_REGIONS'])\""
            f" {env_log}")
    quiet = SETTINGS.replace(alert_command=hook, alert_min_significance=10.0)
    got = by_file(fake_pass(store, box, tmp_path, fake_run(set(), [], significance=9.5), quiet))
    assert got["w/b.png"].outcome == "compared" and got["w/b.png"].alert is None
    assert not env_log.exists()
    drop(box / "w", "c.png", 3, captured_at="2024-03-01")
    loud = quiet.replace(alert_min_significance=9.0)
    got = by_file(fake_pass(store, box, tmp_path, fake_run(set(), [], significance=9.5), loud))
    assert got["w/c.png"].alert == {"command": {"returncode": 0}}
    assert env_log.read_text() == "w 1"
    # a failing command and an unusable URL are reported, and the file is still filed
    drop(box / "w", "d.png", 4, captured_at="2024-04-01")
    broken = loud.replace(
        alert_command=f"{sys.executable} -c \"import sys; sys.exit('hook broke')\"",
        alert_url="ftp://example.invalid/hook",
    )
    summary = fake_pass(store, box, tmp_path, fake_run(set(), [], significance=9.5), broken)
    item = by_file(summary)["w/d.png"]
    assert item.outcome == "compared" and summary.exit_code == inbox.EXIT_DONE
    assert item.alert is not None
    assert item.alert["command"] == {"returncode": 1, "error": "hook broke"}
    assert "http(s)" in item.alert["url"]["error"]
    missing = inbox.send_alert({"artwork": "w"}, SETTINGS.replace(
        alert_command=str(tmp_path / "no-such-program")))
    assert "error" in missing["command"]


# --------------------------------------------------------------------------- schedule


@pytest.mark.parametrize(
    ("every", "at", "calendar", "cron"),
    [
        ("15m", "02:30", "*-*-* *:00/15:00", "*/15 * * * *"),
        ("1m", "02:30", "*-*-* *:00/01:00", "* * * * *"),
        ("6h", "00:05", "*-*-* 00/06:05:00", "5 */6 * * *"),
        ("1h", "00:20", "*-*-* 00/01:20:00", "20 * * * *"),
        ("1d", "03:15", "*-*-* 03:15:00", "15 3 * * *"),
        ("1w", "22:00", "Mon *-*-* 22:00:00", "0 22 * * 1"),
    ],
)
def test_parse_every(every: str, at: str, calendar: str, cron: str) -> None:
    assert inbox.parse_every(every, at) == (calendar, cron)


@pytest.mark.parametrize(("every", "at"), [("7m", "02:30"), ("5h", "02:30"), ("2d", "02:30"),
                                           ("0m", "02:30"), ("1y", "02:30"), ("1d", "25:00"),
                                           ("1d", "noon"), ("m", "02:30")])
def test_parse_every_refuses_what_timers_cannot_express(every: str, at: str) -> None:
    with pytest.raises(MonitorError):
        inbox.parse_every(every, at)


def test_schedule_files_use_absolute_paths_and_escape(tmp_path: Path) -> None:
    home = tmp_path / "data 100%"
    exe = tmp_path / "venv" / "bin" / "monitor"
    config = tmp_path / "monitor.toml"
    sched = inbox.schedule_files("1d", home=home, inbox=tmp_path / "in", reports=tmp_path / "r",
                                 at="04:00", executable=exe, config=config)
    assert f'ExecStart={exe} run --home "{tmp_path}/data 100%%"' in sched.service
    assert f"--inbox {tmp_path}/in --reports {tmp_path}/r --no-wait" in sched.service
    assert f"Environment=MONITOR_CONFIG={config}" in sched.service
    assert "SuccessExitStatus=3 75" in sched.service
    assert "OnCalendar=*-*-* 04:00:00" in sched.timer and "Persistent=true" in sched.timer
    assert sched.crontab.startswith(f"0 4 * * * MONITOR_CONFIG={config} {exe} run --home ")
    assert f"'{tmp_path}/data 100\\%'" in sched.crontab
    assert sched.crontab.endswith(" 2>&1\n") and sched.crontab.count("\n") == 1
    with pytest.raises(MonitorError, match="absolute"):
        inbox.schedule_files("1d", home=Path("rel"), inbox=tmp_path, reports=tmp_path,
                             executable=exe)
    with pytest.raises(MonitorError, match="unit name"):
        inbox.schedule_files("1d", home=home, inbox=tmp_path, reports=tmp_path,
                             executable=exe, name="a b")


# --------------------------------------------------------------------------- store: take-back


def test_remove_scan_refuses_used_scans_and_keeps_shared_files(tmp_path: Path) -> None:
    store = new_home(tmp_path, "w", "v")
    images = [write_image(tmp_path / f"{i}.png", i) for i in range(3)]
    scans = [
        repository.ingest_scan(store, "w", img, repository.ScanMeta(
            captured_at=datetime(2024, i + 1, 1, tzinfo=UTC))).scan
        for i, img in enumerate(images)
    ]
    shared = repository.ingest_scan(store, "v", images[2]).scan
    repository.compare_and_store(store, "w", lambda *a: make_comparison(), fake_write,
                                 baseline=str(scans[0].id), current=str(scans[1].id))
    with pytest.raises(MonitorError, match="used by comparison"):
        repository.remove_scan(store, scans[1].id)
    assert repository.remove_scan(store, scans[2].id)
    assert shared.path.is_file()  # artwork v still uses the same bytes
    assert repository.remove_scan(store, shared.id)
    assert not shared.path.exists()
    assert not repository.remove_scan(store, shared.id)
    assert [s.id for s in repository.list_scans(store, "w")] == [scans[0].id, scans[1].id]
