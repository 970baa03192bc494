"""Concurrent writers on one data home: nobody deletes a file a committed row uses (#18).

The race: two ingests of the same image; one commits its scan row while the
other fails on the database lock and, cleaning up, removed the shared
content-addressed file. Here the interleaving is forced with engine events
(two threads, one engine each): the second ingest is held inside its
transaction, right after it looked for an existing scan, until the first
one has started its own database work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from monitor.cli import app
from monitor.store import db, repository
from monitor.store.models import Scan

SLUG = "w1"


def write_image(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
    return path


def scan_rows(store: db.Store) -> int:
    with Session(store.engine) as session:
        return int(session.scalar(select(func.count()).select_from(Scan)) or 0)


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[db.Store]:
    s = db.init_home(tmp_path / "home")
    repository.add_artwork(s, SLUG, "Work")
    yield s
    s.engine.dispose()


def test_concurrent_ingests_of_one_image_both_succeed_and_keep_the_file(
    store: db.Store, tmp_path: Path
) -> None:
    img = write_image(tmp_path / "scan.png", 1)
    engine_a = db.open_store(store.home).engine
    engine_b = db.open_store(store.home).engine
    b_in_txn, a_started = threading.Event(), threading.Event()

    @event.listens_for(engine_b, "after_cursor_execute")
    def _hold_b(_conn: Any, _cur: Any, statement: str, *_args: Any) -> None:
        if "FROM scan " in statement and "sha256 =" in statement and not b_in_txn.is_set():
            b_in_txn.set()  # B looked for an existing scan, inside its transaction
            a_started.wait(10)
            time.sleep(0.5)  # let A run as far as it can (unfixed: up to its COMMIT)

    @event.listens_for(engine_a, "before_cursor_execute")
    def _mark_a(_conn: Any, _cur: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("BEGIN"):
            a_started.set()

    results: dict[str, Any] = {}

    def ingest(name: str, engine: Any) -> None:
        try:
            results[name] = repository.ingest_scan(db.Store(store.home, engine), SLUG, img)
        except Exception as exc:  # reported below, with the other thread's outcome
            results[name] = exc

    thread_b = threading.Thread(target=ingest, args=("b", engine_b))
    thread_b.start()
    assert b_in_txn.wait(10)
    thread_a = threading.Thread(target=ingest, args=("a", engine_a))
    thread_a.start()
    thread_a.join(30)
    thread_b.join(30)
    engine_a.dispose()
    engine_b.dispose()

    assert all(isinstance(r, repository.IngestResult) for r in results.values()), results
    assert sorted(r.created for r in results.values()) == [False, True]
    assert results["a"].scan.id == results["b"].scan.id
    assert scan_rows(store) == 1
    assert results["a"].scan.path.read_bytes() == img.read_bytes()
    assert repository.verify_store(store).ok
    assert not any(store.tmp_dir.iterdir())


def _ingest_cmd(home: Path, image: Path) -> list[str]:
    code = "import sys; from monitor.cli import app; sys.argv[0] = 'monitor'; app()"
    return [sys.executable, "-c", code, "ingest", SLUG, str(image), "--home", str(home)]


@pytest.mark.parametrize("point", repository.PAUSE_POINTS)
def test_ingest_killed_at_any_step_leaves_a_verifiable_store(
    store: db.Store, tmp_path: Path, point: str
) -> None:
    img = write_image(tmp_path / "scan.png", 2)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, repository.PAUSE_ENV: f"{point}:{barrier}"}
    proc = subprocess.Popen(_ingest_cmd(store.home, img), env=env)
    try:
        deadline = time.monotonic() + 20
        while not (barrier / f"{point}.reached").exists():
            assert proc.poll() is None, f"ingest ended before reaching {point}"
            assert time.monotonic() < deadline, f"ingest never reached {point}"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    committed = point == "committed"
    assert scan_rows(store) == int(committed)
    report = repository.verify_store(store)
    assert report.ok and report.scans == int(committed), report
    again = repository.ingest_scan(store, SLUG, img)  # the lock of the dead process is gone
    assert again.created is not committed
    assert again.scan.path.read_bytes() == img.read_bytes()
    repository.collect_garbage(store, min_age_s=0)
    assert repository.verify_store(store).ok
    assert not any(store.tmp_dir.iterdir())


def test_verify_lists_missing_and_altered_files(store: db.Store, tmp_path: Path) -> None:
    a = repository.ingest_scan(store, SLUG, write_image(tmp_path / "a.png", 3)).scan
    b = repository.ingest_scan(store, SLUG, write_image(tmp_path / "b.png", 4)).scan
    c = repository.ingest_scan(store, SLUG, write_image(tmp_path / "c.png", 5)).scan
    assert repository.verify_store(store).summary().startswith("ok: checked 3 scan(s)")
    a.path.unlink()
    b.path.write_bytes(b"not the image")
    report = repository.verify_store(store)
    assert not report.ok
    assert {(p.row_id, p.problem) for p in report.problems} == {
        (a.id, "missing"),
        (b.id, "hash mismatch"),
    }
    assert c.id not in {p.row_id for p in report.problems}

    runner = CliRunner()
    result = runner.invoke(app, ["verify", "--home", str(store.home)])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("2 problem(s): checked 3 scan(s)")
    assert f"scan {a.id}: missing: {a.path.relative_to(store.home).as_posix()}" in lines
    as_json = runner.invoke(app, ["verify", "--home", str(store.home), "--json"])
    assert as_json.exit_code == 1 and '"ok": false' in as_json.output


def test_verify_and_gc_commands_on_a_sound_store(store: db.Store, tmp_path: Path) -> None:
    scan = repository.ingest_scan(store, SLUG, write_image(tmp_path / "a.png", 6)).scan
    _sha, stray, _new = repository.put_object(store, write_image(tmp_path / "stray.png", 7))
    runner = CliRunner()
    result = runner.invoke(app, ["verify", "--home", str(store.home)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "ok: checked 1 scan(s) and 0 comparison file(s)"
    result = runner.invoke(app, ["gc", "--home", str(store.home), "--min-age-s", "0"])
    assert result.exit_code == 0, result.output
    assert f"removed {stray}" in result.output
    assert not (store.home / stray).exists() and scan.path.is_file()


def test_failed_comparison_keeps_artifacts_another_comparison_committed_meanwhile(
    store: db.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B places the artifacts then fails; A commits rows using them before B cleans up."""
    from tests.test_store import fake_write, make_comparison

    base = repository.ingest_scan(store, SLUG, write_image(tmp_path / "a.png", 8)).scan
    cur = repository.ingest_scan(store, SLUG, write_image(tmp_path / "b.png", 9)).scan
    comparison = make_comparison()
    files_a = fake_write(comparison, tmp_path / "out-a")
    files_b = fake_write(comparison, tmp_path / "out-b")  # same bytes, same objects
    engine_b = db.open_store(store.home).engine

    @event.listens_for(engine_b, "before_cursor_execute")
    def _fail_b(_conn: Any, _cur: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO REGION"):
            raise RuntimeError("disk full (injected)")

    original = repository.blobs._remove_unreferenced
    stored_a: list[repository.StoredComparison] = []

    def a_commits_first(s: db.Store, relpaths: Any) -> list[str]:
        if relpaths and not stored_a:  # B's undo: A gets the lock in between
            a = repository.record_comparison(store, base, cur, comparison, "k-a", files_a)
            stored_a.append(a)
        return original(s, relpaths)

    monkeypatch.setattr(repository.blobs, "_remove_unreferenced", a_commits_first)
    with pytest.raises(RuntimeError, match="injected"):
        repository.record_comparison(
            db.Store(store.home, engine_b), base, cur, comparison, "k-b", files_b
        )
    engine_b.dispose()
    assert stored_a, "B placed no object, so the interleaving was not exercised"
    detail = repository.comparison_detail(store, stored_a[0].id)
    assert detail is not None
    report = repository.verify_store(store)
    assert report.ok and report.artifacts == 2, report
    assert repository.find_comparison(store, "k-b") is None
