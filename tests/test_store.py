"""Store: slugs, content-addressed ingest, comparisons in one transaction, reuse, history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.pipeline import OUTPUT_FILES, write_outputs
from monitor.results import (
    Alignment,
    ChangeMap,
    Comparison,
    Light,
    Region,
    Registration,
    ScaledRegion,
    StageTiming,
)
from monitor.store import db, repository
from monitor.store.models import ComparisonRecord, RegionRecord, Scan


def make_comparison(
    regions: tuple[Region, ...] | None = None,
    *,
    px_per_mm: float | None = 4.0,
    shape: tuple[int, int] = (48, 64),
    light: Light | None = None,
) -> Comparison:
    """A small, complete Comparison built by hand (no pipeline)."""
    if regions is None:
        regions = (
            Region(1, "bulge", (20.5, 12.5), (14.0, 8.0, 27.0, 17.0), 96.0, 0.8, 0.4, 9.5),
            Region(2, "recession", (44.0, 30.0), (40.0, 26.0, 48.0, 34.0), 60.0, -0.5, -0.2, 6.1),
            Region(3, "bulge", (8.0, 40.0), (6.0, 38.0, 10.0, 42.0), 12.0, 0.3, 0.2, 4.4),
        )
    height = np.zeros(shape, dtype=np.float32)
    for r in regions:
        x0, y0, x1, y1 = (int(v) for v in r.bbox)
        height[y0:y1, x0:x1] = r.peak
    reg = Registration(
        homography=np.eye(3),
        baseline_shape=shape,
        current_shape=shape,
        n_matches=400,
        n_inliers=350,
        rmse_homography_px=0.6,
        rmse_px=0.4,
    )
    change = ChangeMap(
        height=height,
        scale=1.0,
        method="photometric",
        noise_sigma=0.05,
        alignment=Alignment(1.01, -0.02, 3000, 0.93),
        model_id="shading",
        weights_sha256=None,
    )
    return Comparison(
        baseline_path="b.png",
        current_path="c.png",
        baseline_shape=shape,
        registration=reg,
        change=change,
        regions=regions,
        light=light or Light(180.0, 30.0),
        params={"method": "photometric", "significance_z": np.float64(4.0)},
        timings=(StageTiming("read", 0.01, 100.0),),
        software_version="0.1.0",
        px_per_mm=px_per_mm,
        preview=np.full((*shape, 3), 128, np.uint8),  # what write_outputs draws the overlay on
    )


def write_image(path: Path, seed: int, size: tuple[int, int] = (64, 48)) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def object_files(home: Path) -> set[str]:
    return {p.relative_to(home).as_posix() for p in (home / "objects").rglob("*") if p.is_file()}


@pytest.fixture()
def store(tmp_path: Path, db_settings: Settings) -> Iterator[db.Store]:
    """A fresh data home on each backend (SQLite file, PostgreSQL database)."""
    s = db.init_home(tmp_path / "home", db_settings)
    yield s
    s.engine.dispose()


@pytest.fixture()
def two_scans(store: db.Store, tmp_path: Path) -> tuple[repository.ScanInfo, repository.ScanInfo]:
    repository.add_artwork(store, "night-watch", "The Night Watch", width_mm=16.0, height_mm=12.0)
    a = repository.ingest_scan(
        store,
        "night-watch",
        write_image(tmp_path / "a.png", 1),
        repository.ScanMeta(captured_at=datetime(2024, 1, 1, tzinfo=UTC), px_per_mm=4.0),
    )
    b = repository.ingest_scan(
        store,
        "night-watch",
        write_image(tmp_path / "b.png", 2),
        repository.ScanMeta(captured_at=datetime(2024, 6, 1, tzinfo=UTC), px_per_mm=4.0),
    )
    return a.scan, b.scan


@pytest.mark.parametrize(
    "slug", ["../etc", "a/b", "..", "", "A", "x" * 65, "-lead", "a\\b", "a b", "é", ".hidden"]
)
def test_invalid_slugs_are_refused(slug: str) -> None:
    with pytest.raises(MonitorError, match="invalid artwork slug"):
        repository.validate_slug(slug)


@pytest.mark.parametrize("slug", ["a", "night-watch", "rijks_sk-c-5", "x" * 64, "1642"])
def test_valid_slugs(slug: str) -> None:
    assert repository.validate_slug(slug) == slug


def test_add_artwork_twice_is_refused(store: db.Store) -> None:
    repository.add_artwork(store, "w1", "Work", artist="Someone")
    with pytest.raises(MonitorError, match="already exists"):
        repository.add_artwork(store, "w1", "Other")
    assert [a.slug for a in repository.list_artworks(store)] == ["w1"]
    assert repository.get_artwork(store, "w1").artist == "Someone"


def test_ingest_same_image_twice_stores_it_once(store: db.Store, tmp_path: Path) -> None:
    repository.add_artwork(store, "w1", "Work")
    repository.add_artwork(store, "w2", "Work 2")
    img = write_image(tmp_path / "scan.png", 7)
    first = repository.ingest_scan(store, "w1", img)
    again = repository.ingest_scan(store, "w1", img)
    other = repository.ingest_scan(store, "w2", img)
    assert first.created and first.file_stored
    assert not again.created and not again.file_stored
    assert again.scan.id == first.scan.id
    assert other.created and not other.file_stored
    assert object_files(store.home) == {first.scan.path.relative_to(store.home).as_posix()}
    assert first.scan.path.read_bytes() == img.read_bytes()
    assert first.scan.sha256 == repository.sha256_file(img)
    assert first.scan.path.name == f"{first.scan.sha256}.png"
    assert (first.scan.width, first.scan.height) == (64, 48)
    assert first.captured_at_source == "ingest time"
    assert len(repository.list_scans(store, "w1")) == 1
    assert not any(store.tmp_dir.iterdir())


def test_ingest_checks_inputs(store: db.Store, tmp_path: Path) -> None:
    img = write_image(tmp_path / "scan.png", 3)
    with pytest.raises(MonitorError, match="no artwork"):
        repository.ingest_scan(store, "missing", img)
    repository.add_artwork(store, "w1", "Work")
    with pytest.raises(MonitorError, match="px_per_mm"):
        repository.ingest_scan(store, "w1", img, repository.ScanMeta(px_per_mm=-1.0))
    with pytest.raises(MonitorError, match="elevation"):
        repository.ingest_scan(store, "w1", img, repository.ScanMeta(light_elevation=120.0))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(MonitorError):
        repository.ingest_scan(store, "w1", bad)
    assert object_files(store.home) == set()


def test_parse_time() -> None:
    assert repository.parse_time("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert repository.parse_time("2024-05-01T12:00:00+02:00") == datetime(
        2024, 5, 1, 10, tzinfo=UTC
    )
    with pytest.raises(MonitorError, match="ISO 8601"):
        repository.parse_time("yesterday")


def test_select_pair_defaults_to_newest_against_previous(
    store: db.Store, two_scans: tuple[repository.ScanInfo, repository.ScanInfo], tmp_path: Path
) -> None:
    a, b = two_scans
    # a scan captured between the two, ingested last: order follows capture time, not ingest
    mid = repository.ingest_scan(
        store,
        "night-watch",
        write_image(tmp_path / "m.png", 5),
        repository.ScanMeta(captured_at=datetime(2024, 3, 1, tzinfo=UTC)),
    ).scan
    base, cur = repository.select_pair(store, "night-watch")
    assert (base.id, cur.id) == (mid.id, b.id)
    base, cur = repository.select_pair(store, "night-watch", baseline=str(a.id))
    assert (base.id, cur.id) == (a.id, b.id)
    base, cur = repository.select_pair(store, "night-watch", current=mid.sha256[:10])
    assert (base.id, cur.id) == (a.id, mid.id)
    with pytest.raises(MonitorError, match="oldest"):
        repository.select_pair(store, "night-watch", current=str(a.id))
    with pytest.raises(MonitorError, match="no scan"):
        repository.select_pair(store, "night-watch", baseline="999")
    with pytest.raises(MonitorError, match="same image"):
        repository.select_pair(store, "night-watch", baseline=str(b.id), current=str(b.id))


def test_compare_and_store_then_reuse_then_force(
    store: db.Store, two_scans: tuple[repository.ScanInfo, repository.ScanInfo]
) -> None:
    calls: list[tuple[Path, Path, Light | str, float | None]] = []

    def run(base: Path, cur: Path, light: Light | str, px_per_mm: float | None) -> Comparison:
        calls.append((base, cur, light, px_per_mm))
        # no light recorded: the store asks for "auto"; this double "estimates" one
        assert light == "auto" or isinstance(light, Light)
        lamp = light if isinstance(light, Light) else Light(123.0, 30.0)
        return make_comparison(px_per_mm=px_per_mm, light=lamp)

    first = repository.compare_and_store(store, "night-watch", run, write_outputs)
    assert not first.reused
    assert len(calls) == 1
    a, b = two_scans
    assert calls[0][0] == a.path and calls[0][1] == b.path and calls[0][3] == 4.0
    again = repository.compare_and_store(store, "night-watch", run, write_outputs)
    assert again.reused and again.id == first.id and len(calls) == 1
    # other parameters: a new comparison
    other = repository.compare_and_store(
        store, "night-watch", run, write_outputs, settings=Settings(significance_z=5.0)
    )
    assert not other.reused and other.id != first.id and len(calls) == 2
    forced = repository.compare_and_store(store, "night-watch", run, write_outputs, force=True)
    assert not forced.reused and forced.replaced_id == first.id and len(calls) == 3
    with Session(store.engine) as session:
        assert session.scalar(select(func.count()).select_from(ComparisonRecord)) == 2
        assert session.scalar(select(func.count()).select_from(RegionRecord)) == 6
        assert session.get(ComparisonRecord, first.id) is None

    detail = repository.comparison_detail(store, forced.id)
    assert detail.artwork.title == "The Night Watch"
    assert (detail.baseline.id, detail.current.id) == (a.id, b.id)
    assert [r.polarity for r in detail.regions] == ["bulge", "recession", "bulge"]
    assert detail.regions[0].area_mm2 == pytest.approx(96.0 / 16.0)
    assert detail.changed_area_px == pytest.approx(168.0)
    assert detail.changed_area_mm2 == pytest.approx(168.0 / 16.0)
    assert detail.align_scale == pytest.approx(1.01)
    assert detail.params["significance_z"] == 4.0
    assert set(detail.artifacts) == set(OUTPUT_FILES)
    summary = json.loads(detail.artifacts["regions.json"].read_text())
    assert summary["counts"] == {"bulge": 2, "recession": 1, "appearance": 0}
    for path in detail.artifacts.values():
        assert path.is_file() and path.is_relative_to(store.objects_dir)
        assert path.name.startswith(repository.sha256_file(path))
    # every stored file is referenced, nothing is left in tmp
    assert repository.collect_garbage(store, min_age_s=0) == []
    assert not any(store.tmp_dir.iterdir())


def test_failure_in_transaction_leaves_no_row_and_no_file(
    store: db.Store, two_scans: tuple[repository.ScanInfo, repository.ScanInfo]
) -> None:
    before = object_files(store.home)

    def explode(*args: object) -> None:
        statement = str(args[2])
        if statement.lstrip().upper().startswith("INSERT INTO REGION"):
            raise RuntimeError("disk full (injected)")

    event.listen(store.engine, "before_cursor_execute", explode)
    try:
        with pytest.raises(RuntimeError, match="injected"):
            repository.compare_and_store(
                store, "night-watch", lambda *a: make_comparison(), write_outputs
            )
    finally:
        event.remove(store.engine, "before_cursor_execute", explode)
    with Session(store.engine) as session:
        assert session.scalar(select(func.count()).select_from(ComparisonRecord)) == 0
        assert session.scalar(select(func.count()).select_from(RegionRecord)) == 0
    assert object_files(store.home) == before
    assert not any(store.tmp_dir.iterdir())
    # and it works once the failure is gone
    ok = repository.compare_and_store(
        store, "night-watch", lambda *a: make_comparison(), write_outputs
    )
    assert len(repository.comparison_detail(store, ok.id).regions) == 3


def test_failure_while_writing_files_leaves_nothing(
    store: db.Store, two_scans: tuple[repository.ScanInfo, repository.ScanInfo]
) -> None:
    before = object_files(store.home)

    def half_write(comparison: Comparison, out_dir: Path) -> dict[str, Path]:
        write_outputs(comparison, out_dir)
        raise MonitorError("cannot write overlay.png (injected)")

    with pytest.raises(MonitorError, match="injected"):
        repository.compare_and_store(store, "night-watch", lambda *a: make_comparison(), half_write)
    assert object_files(store.home) == before
    assert not any(store.tmp_dir.iterdir())
    assert repository.history(store, "night-watch").entries == ()


def test_invalid_region_is_rejected_without_partial_rows(
    store: db.Store, two_scans: tuple[repository.ScanInfo, repository.ScanInfo]
) -> None:
    bad = (Region(1, "bulge", (float("nan"), 1.0), (0.0, 0.0, 2.0, 2.0), 4.0, 1.0, 1.0, 5.0),)
    with pytest.raises(MonitorError, match="non-finite"):
        repository.compare_and_store(
            store, "night-watch", lambda *a: make_comparison(bad), write_outputs
        )
    with Session(store.engine) as session:
        assert session.scalar(select(func.count()).select_from(ComparisonRecord)) == 0


def test_history_in_time_order_with_trend(store: db.Store, tmp_path: Path) -> None:
    repository.add_artwork(store, "w", "Work")
    areas = [40.0, 90.0, 160.0]
    for i in range(4):
        repository.ingest_scan(
            store,
            "w",
            write_image(tmp_path / f"s{i}.png", 10 + i),
            repository.ScanMeta(
                captured_at=datetime(2020 + i, 1, 1, tzinfo=UTC), px_per_mm=2.0
            ),
        )
    scans = repository.list_scans(store, "w")
    # store the later pair first: history must still come out in time order
    for i in (2, 0, 1):
        regions = (
            Region(1, "bulge", (5.0, 5.0), (0.0, 0.0, 10.0, 10.0), areas[i], 0.9, 0.5, 8.0),
            Region(2, "bulge", (30.0, 5.0), (25.0, 0.0, 35.0, 10.0), 10.0, 2.0, 1.0, 9.0),
            Region(3, "recession", (30.0, 30.0), (25.0, 25.0, 35.0, 35.0), 20.0, -0.7, -0.3, 7.0),
        )
        repository.compare_and_store(
            store,
            "w",
            lambda *a, regions=regions: make_comparison(regions, px_per_mm=2.0),
            None,
            baseline=str(scans[i].id),
            current=str(scans[i + 1].id),
        )
    hist = repository.history(store, "w")
    assert [e.current_scan_id for e in hist.entries] == [s.id for s in scans[1:]]
    first = hist.entries[0]
    assert (first.n_bulge, first.n_recession) == (2, 1)
    assert first.largest_bulge is not None and first.largest_bulge.area_px == 40.0
    assert first.largest_bulge.area_mm2 == pytest.approx(10.0)
    assert first.largest_bulge.peak_mm == pytest.approx(0.45)
    assert first.largest_recession is not None and first.largest_recession.peak == -0.7
    assert first.changed_area_px == pytest.approx(70.0)
    assert hist.trend == "rising" and hist.trend_units == "mm2"
    as_json = json.loads(json.dumps(hist.to_dict()))
    assert len(as_json["comparisons"]) == 3
    rows = repository.history_rows(hist)
    assert set(rows[0]) == set(repository.HISTORY_CSV_COLUMNS)
    assert repository.latest_comparison_id(store, "w") == hist.entries[-1].comparison_id


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([5.0], "insufficient data"),
        ([10.0, 10.5, 9.8], "stable"),
        ([0.0, 0.0], "stable"),
        ([10.0, 20.0, 30.0], "rising"),
        ([30.0, 15.0, 5.0], "falling"),
    ],
)
def test_trend(values: list[float], expected: str) -> None:
    times = [datetime(2020 + i, 1, 1, tzinfo=UTC) for i in range(len(values))]
    assert repository.trend(times, values) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # one outlying comparison (a least-squares line calls these rising / falling / stable)
        ([10.0, 10.5, 9.8, 10.2, 10.1, 50.0], "stable"),
        ([10.0, 60.0, 10.3, 9.9, 10.1, 10.0], "stable"),
        ([10.0, 12.0, 14.0, 16.0, 18.0, 2.0], "rising"),
        # a change that appears late is not taken for an outlier
        ([0.0, 0.0, 0.0, 50.0], "rising"),
    ],
)
def test_trend_is_robust_to_one_outlying_comparison(values: list[float], expected: str) -> None:
    times = [datetime(2020 + i, 1, 1, tzinfo=UTC) for i in range(len(values))]
    assert repository.trend(times, values) == expected


def test_open_store_refuses_uninitialised_home(tmp_path: Path) -> None:
    with pytest.raises(MonitorError, match="monitor init"):
        db.open_store(tmp_path / "nothing")


def test_collect_garbage_removes_only_unreferenced_old_files(
    store: db.Store, two_scans: tuple[repository.ScanInfo, repository.ScanInfo], tmp_path: Path
) -> None:
    stray = write_image(tmp_path / "stray.png", 99)
    _sha, rel, new = repository.put_object(store, stray)
    assert new and (store.home / rel).is_file()
    assert repository.collect_garbage(store) == []  # too young
    assert repository.collect_garbage(store, min_age_s=0) == [rel]
    assert all(s.path.is_file() for s in two_scans)
    with Session(store.engine) as session:
        assert session.scalar(select(func.count()).select_from(Scan)) == 2


def test_multiscale_regions_keep_their_scale(
    store: db.Store, two_scans: tuple[repository.ScanInfo, repository.ScanInfo]
) -> None:
    regions = (
        ScaledRegion(1, "bulge", (20.5, 12.5), (14.0, 8.0, 27.0, 17.0), 96.0, 0.8, 0.4, 9.5,
                     scale_px=2.0, scale_mm=0.5, level=1),
        Region(2, "recession", (44.0, 30.0), (40.0, 26.0, 48.0, 34.0), 60.0, -0.5, -0.2, 6.1),
    )

    def run(base: Path, cur: Path, light: Light | str, px_per_mm: float | None) -> Comparison:
        lamp = light if isinstance(light, Light) else Light()  # "auto": any lamp will do here
        return make_comparison(regions, px_per_mm=px_per_mm, light=lamp)

    stored = repository.compare_and_store(store, "night-watch", run, write_outputs)
    first, second = repository.comparison_detail(store, stored.id).regions
    assert isinstance(first, ScaledRegion)
    assert (first.scale_px, first.scale_mm, first.level) == (2.0, 0.5, 1)
    assert not isinstance(second, ScaledRegion)
