"""Two workers on the same artwork at the same moment: nothing stored twice, no row lost.

Each test runs on SQLite and on PostgreSQL. Threads stand for worker
processes (each has its own database connection); a barrier makes both
pass the "is it stored already?" check before either writes, which is the
window a campaign's duplicate task or a second lab's run falls into.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from test_store import fake_write, make_comparison, object_files, write_image

from monitor.config import Settings
from monitor.results import Comparison, Light
from monitor.store import db, repository
from monitor.store.models import ComparisonRecord, RegionRecord, Scan


@pytest.fixture()
def store(tmp_path: Path, db_settings: Settings) -> Iterator[db.Store]:
    s = db.init_home(tmp_path / "home", db_settings)
    repository.add_artwork(s, "w", "Work")
    yield s
    s.engine.dispose()


def both(fn: Callable[[], Any]) -> list[Any]:
    """Run ``fn`` in two threads at once; return their results (or raise the first error)."""
    results: list[Any] = [None, None]
    errors: list[BaseException] = []

    def go(i: int) -> None:
        try:
            results[i] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results


def count(store: db.Store, model: type) -> int:
    with Session(store.engine) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_two_workers_comparing_the_same_pair_store_it_once(
    store: db.Store, tmp_path: Path, db_settings: Settings
) -> None:
    for i, month in enumerate((1, 6)):
        repository.ingest_scan(store, "w", write_image(tmp_path / f"{i}.png", i),
                               repository.ScanMeta(captured_at=datetime(2025, month, 1,
                                                                        tzinfo=UTC)))
    barrier = threading.Barrier(2, timeout=30)

    def run(base: Path, cur: Path, light: Light, px_per_mm: float | None) -> Comparison:
        barrier.wait()  # both have looked the request up and found nothing
        return make_comparison()

    results = both(lambda: repository.compare_and_store(store, "w", run, fake_write,
                                                        settings=db_settings))
    assert results[0].id == results[1].id  # both callers hold the one stored row
    assert sorted(r.reused for r in results) == [False, True]
    assert count(store, ComparisonRecord) == 1
    assert count(store, RegionRecord) == 3
    detail = repository.comparison_detail(store, results[0].id)
    assert all(p.is_file() for p in detail.artifacts.values())
    assert list((store.home / "tmp").iterdir()) == []


def test_two_workers_ingesting_the_same_image_keep_one_scan_and_its_file(
    store: db.Store, tmp_path: Path
) -> None:
    image = write_image(tmp_path / "a.png", 7)
    meta = repository.ScanMeta(captured_at=datetime(2025, 1, 1, tzinfo=UTC))
    barrier = threading.Barrier(2, timeout=30)

    def reader(path: Path) -> Any:
        from monitor.io import read_image

        data = read_image(path)
        barrier.wait()  # both have checked the artwork and read the file
        return data

    results = both(lambda: repository.ingest_scan(store, "w", image, meta, reader=reader))
    assert results[0].scan.id == results[1].scan.id
    assert sorted(r.created for r in results) == [False, True]
    assert count(store, Scan) == 1
    assert results[0].scan.path.is_file()  # the loser removed no file the winner uses
    assert object_files(store.home) == {f"objects/{results[0].scan.sha256[:2]}/"
                                        f"{results[0].scan.path.name}"}
