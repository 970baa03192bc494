"""Campaigns on Dask: planning, fan-out, idempotency, failures with reasons, a killed worker.

Every test runs on SQLite and on PostgreSQL (``db_settings``). The
comparisons are stand-ins (``FakeRun``: a hand-made Comparison, no
pipeline) so that the Dask machinery, not the algorithms, is what is timed
and broken here; the stand-ins are module-level classes so that Dask can
send them to worker processes.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from test_store import fake_write, make_comparison, object_files, write_image

from monitor import campaign
from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.results import Comparison, Light
from monitor.store import db, repository
from monitor.store.models import ComparisonRecord, RegionRecord, Scan

distributed = pytest.importorskip("distributed")


class FakeRun:
    """A comparison stand-in for workers.

    ``bad``: current-scan ids that fail like a registration does (MonitorError).
    ``victim``: an artwork whose first attempt announces itself in ``marker_dir``
    (``running-<pid>``) and then hangs until it is killed; later attempts run.
    """

    def __init__(self, marker_dir: str = "", victim: str = "", bad: frozenset[str] = frozenset(),
                 delay_s: float = 0.0) -> None:
        self.marker_dir, self.victim, self.bad, self.delay_s = marker_dir, victim, bad, delay_s

    def __call__(self, base: Path, cur: Path, light: Light, px_per_mm: float | None
                 ) -> Comparison:
        if self.marker_dir:
            markers = Path(self.marker_dir)
            # the stored file names are sha256s; the victim's scans are listed by the test
            victim_files = (markers / "victim-files").read_text().split()
            if cur.name in victim_files and not (markers / "killed").exists():
                (markers / f"running-{os.getpid()}").write_text(cur.name)
                time.sleep(120)  # killed long before
        if self.delay_s:
            time.sleep(self.delay_s)
        if cur.name in self.bad:
            raise MonitorError("registration failed: 3 inliers (need 25)")
        return make_comparison()


def make_home(tmp_path: Path, settings: Settings, works: dict[str, int]) -> db.Store:
    """A data home with artworks ``{slug: number of scans}`` (random images, monthly)."""
    store = db.init_home(tmp_path / "home", settings)
    seed = 0
    for slug, n in works.items():
        repository.add_artwork(store, slug, f"Work {slug}")
        for month in range(1, n + 1):
            seed += 1
            repository.ingest_scan(
                store, slug, write_image(tmp_path / f"{slug}-{month}.png", seed),
                repository.ScanMeta(captured_at=datetime(2025, month, 1, tzinfo=UTC)),
            )
    return store


def counts(store: db.Store) -> dict[str, int]:
    with Session(store.engine) as session:
        return {
            m.__tablename__: session.scalar(select(func.count()).select_from(m)) or 0
            for m in (Scan, ComparisonRecord, RegionRecord)
        }


def referenced(store: db.Store) -> set[str]:
    with Session(store.engine) as session:
        refs = set(session.scalars(select(Scan.stored_path)))
        for artifacts in session.scalars(select(ComparisonRecord.artifacts)):
            refs.update(artifacts.values())
    return refs


def pairs_stored_once(store: db.Store) -> bool:
    with Session(store.engine) as session:
        rows = session.execute(
            select(ComparisonRecord.baseline_scan_id, ComparisonRecord.current_scan_id,
                   func.count()).group_by(ComparisonRecord.baseline_scan_id,
                                          ComparisonRecord.current_scan_id)
        ).all()
    return all(n == 1 for _b, _c, n in rows)


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    """Two worker processes for the whole module (starting a cluster costs seconds)."""
    with campaign.dask_client(2) as c:
        yield c


def test_plan_pairs_consecutive_scans_and_skips_what_is_stored(
    tmp_path: Path, db_settings: Settings
) -> None:
    store = make_home(tmp_path, db_settings, {"a": 3, "b": 1, "c": 2})
    tasks, skipped = campaign.plan_campaign(store.home, db_settings)
    scans = {s: repository.list_scans(store, s) for s in "abc"}
    assert [(t.slug, t.baseline_scan_id, t.current_scan_id) for t in tasks] == [
        ("a", scans["a"][0].id, scans["a"][1].id),
        ("a", scans["a"][1].id, scans["a"][2].id),
        ("c", scans["c"][0].id, scans["c"][1].id),
    ]
    assert [(o.task.slug, o.status, o.reason) for o in skipped] == [
        ("b", "skipped", "1 scan(s): nothing to compare")
    ]
    stored = repository.compare_and_store(store, "c", lambda *a: make_comparison(), fake_write,
                                          settings=db_settings)
    tasks2, skipped2 = campaign.plan_campaign(store.home, db_settings, ["c", "a"])
    assert [t.slug for t in tasks2] == ["a", "a"]
    assert [(o.task.slug, o.comparison_id) for o in skipped2] == [("c", stored.id)]
    with pytest.raises(MonitorError, match="no artwork"):
        campaign.plan_campaign(store.home, db_settings, ["nope"])
    store.engine.dispose()


def test_campaign_stores_every_pair_once_and_a_rerun_skips_them(
    tmp_path: Path, db_settings: Settings, client: object
) -> None:
    store = make_home(tmp_path, db_settings, {f"w{i}": 3 for i in range(4)})
    seen: list[tuple[int, int]] = []
    summary = campaign.run_campaign(store.home, db_settings, client=client, run=FakeRun(),
                                    write=fake_write,
                                    progress=lambda i, n, _o: seen.append((i, n)))
    assert summary.counts == {"done": 8, "skipped": 0, "failed": 0}
    assert seen == [(i, 8) for i in range(1, 9)]
    assert summary.workers == 2
    assert len({o.worker for o in summary.outcomes}) >= 1
    assert counts(store)["comparison"] == 8 and pairs_stored_once(store)
    assert all(o.comparison_id is not None for o in summary.outcomes)
    for o in summary.outcomes:  # each outcome names the row of its own pair
        detail = repository.comparison_detail(store, o.comparison_id)  # type: ignore[arg-type]
        assert (detail.baseline.id, detail.current.id) == (o.task.baseline_scan_id,
                                                           o.task.current_scan_id)
    assert object_files(store.home) == referenced(store) & object_files(store.home)

    again = campaign.run_campaign(store.home, db_settings, client=client, run=FakeRun(),
                                  write=fake_write)
    assert again.counts == {"done": 0, "skipped": 8, "failed": 0}
    assert counts(store)["comparison"] == 8
    store.engine.dispose()


def test_bad_pairs_fail_with_their_reason_and_the_rest_is_stored(
    tmp_path: Path, db_settings: Settings, client: object
) -> None:
    store = make_home(tmp_path, db_settings, {"good": 2, "bad": 2})
    bad_scan = repository.list_scans(store, "bad")[-1]
    summary = campaign.run_campaign(
        store.home, db_settings, client=client, write=fake_write,
        run=FakeRun(bad=frozenset({bad_scan.path.name})),
    )
    assert summary.counts == {"done": 1, "skipped": 0, "failed": 1}
    (failed,) = summary.failures
    assert failed.task.slug == "bad" and "registration failed" in failed.reason
    assert counts(store)["comparison"] == 1
    assert summary.to_dict()["counts"] == summary.counts
    store.engine.dispose()


def test_a_worker_killed_mid_comparison_does_not_stop_the_campaign(
    tmp_path: Path, db_settings: Settings, client: object
) -> None:
    store = make_home(tmp_path, db_settings, {"victim": 2, **{f"w{i}": 3 for i in range(3)}})
    markers = tmp_path / "markers"
    markers.mkdir()
    victim_cur = repository.list_scans(store, "victim")[-1]
    (markers / "victim-files").write_text(victim_cur.path.name)
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for marker in markers.glob("running-*"):
                pid = int(marker.name.removeprefix("running-"))
                (markers / "killed").write_text(str(pid))
                os.kill(pid, signal.SIGKILL)  # the worker process, mid-comparison
                killed.append(pid)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    summary = campaign.run_campaign(store.home, db_settings, client=client, write=fake_write,
                                    run=FakeRun(marker_dir=str(markers), delay_s=0.2))
    thread.join(5)
    assert killed, "the victim's comparison never started"
    assert summary.counts == {"done": 7, "skipped": 0, "failed": 0}, summary.failures
    victim = next(o for o in summary.outcomes if o.task.slug == "victim")
    assert victim.worker and not victim.worker.endswith(f":{killed[0]}")  # ran again elsewhere
    assert counts(store)["comparison"] == 7 and pairs_stored_once(store)
    # no orphan: every stored file is referenced, and no staging left behind
    assert object_files(store.home) <= referenced(store)
    assert list((store.home / "tmp").iterdir()) == []
    store.engine.dispose()


def test_campaign_on_a_fresh_local_cluster_with_one_worker(
    tmp_path: Path, db_settings: Settings
) -> None:
    store = make_home(tmp_path, db_settings, {"solo": 3})
    summary = campaign.run_campaign(store.home, db_settings, workers=1, run=FakeRun(),
                                    write=fake_write)
    assert summary.counts["done"] == 2 and summary.workers == 1
    assert summary.comparisons_per_minute > 0
    with pytest.raises(MonitorError, match="workers"):
        campaign.run_campaign(store.home, db_settings.replace(method="other"), workers=0,
                              run=FakeRun(), write=fake_write)
    store.engine.dispose()


class SuicidalRun(FakeRun):
    """Kills its own worker process whenever it compares the scan file named ``doomed``."""

    def __init__(self, doomed: str) -> None:
        super().__init__()
        self.doomed = doomed

    def __call__(self, base: Path, cur: Path, light: Light, px_per_mm: float | None
                 ) -> Comparison:
        if cur.name == self.doomed:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(base, cur, light, px_per_mm)


def test_a_pair_that_kills_every_worker_is_reported_failed_and_the_rest_is_stored(
    tmp_path: Path,
) -> None:
    import dask

    settings = Settings()  # SQLite in the home: the backend plays no part here
    store = make_home(tmp_path, settings, {"doomed": 2, "fine": 3})
    doomed = repository.list_scans(store, "doomed")[-1].path.name
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), \
            campaign.dask_client(2) as own:
        summary = campaign.run_campaign(store.home, settings, client=own,
                                        run=SuicidalRun(doomed), write=fake_write)
    (failed,) = summary.failures
    assert failed.task.slug == "doomed" and "worker died" in failed.reason
    # the fine pairs are stored, once each; one may be reported "skipped" when the worker
    # died after it stored the pair but before the scheduler heard: its re-run found the row
    fine = [o for o in summary.outcomes if o.task.slug == "fine"]
    assert len(fine) == 2 and all(o.status in ("done", "skipped") for o in fine)
    assert all(o.comparison_id is not None for o in fine)
    assert counts(store)["comparison"] == 2 and pairs_stored_once(store)
    store.engine.dispose()
