"""Comparisons: cache key, recording a result with its files, compare_and_store, detail."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from monitor import __version__
from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.results import Comparison, Light, Region
from monitor.store.db import Store
from monitor.store.models import ComparisonRecord, RegionRecord
from monitor.store.repository.blobs import (
    _discard,
    _lock,
    _place,
    _remove_unreferenced,
    _stage,
    _Staged,
    _undo_created,
)
from monitor.store.repository.records import (
    ComparisonDetail,
    RunFn,
    ScanInfo,
    StoredComparison,
    WriteFn,
    _artwork_info,
    _db_error,
    _get_artwork,
    _regions_of,
    _scan_info,
)
from monitor.store.repository.scans import select_pair

#: Settings that do not change a comparison's result (left out of the cache key).
NON_RESULT_SETTINGS = frozenset({
    "home", "database_url", "device", "max_pixels",
    # scheduled runs (monitor.inbox): where files come from and go, locks, alerts
    "inbox", "reports", "inbox_settle_s", "lock_wait_s", "busy_timeout_s",
    "alert_command", "alert_url", "alert_min_significance",
})


def comparison_inputs(
    baseline: ScanInfo, current: ScanInfo, settings: Settings
) -> tuple[Light, float | None]:
    """Light and scale a stored comparison runs with.

    The light is the baseline scan's recorded light, else the current
    scan's, else the settings'; the scale is the baseline's (results are in
    baseline pixels).

    Parameters
    ----------
    baseline, current
        The two scans.
    settings
        Defaults for what the scans do not record.

    Returns
    -------
    tuple
        (Light, px_per_mm or None).
    """
    azimuth = next(
        (v for v in (baseline.light_azimuth, current.light_azimuth) if v is not None),
        settings.light_azimuth,
    )
    elevation = next(
        (v for v in (baseline.light_elevation, current.light_elevation) if v is not None),
        settings.light_elevation,
    )
    return Light(float(azimuth), float(elevation)), baseline.px_per_mm


def cache_key(
    baseline: ScanInfo,
    current: ScanInfo,
    settings: Settings,
    light: Light,
    px_per_mm: float | None,
    software_version: str = __version__,
) -> str:
    """Key of a comparison request: same key, same result.

    Parameters
    ----------
    baseline, current
        The two scans (their image hashes enter the key).
    settings
        Parameters; those in :data:`NON_RESULT_SETTINGS` are left out.
    light, px_per_mm
        What the comparison runs with.
    software_version
        Version of monitor.

    Returns
    -------
    str
        Hex sha256 of the canonical JSON of the request.
    """
    request = {
        "baseline": baseline.sha256,
        "current": current.sha256,
        "settings": {
            k: v for k, v in sorted(asdict(settings).items()) if k not in NON_RESULT_SETTINGS
        },
        "light": [light.azimuth_deg, light.elevation_deg],
        "px_per_mm": px_per_mm,
        "software_version": software_version,
    }
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise MonitorError(f"comparison has a non-finite {name}")
    return value


def _region_area_mm2(region: Region, px_per_mm: float | None) -> float | None:
    if region.area_mm2 is not None:
        return float(region.area_mm2)
    if px_per_mm:
        return float(region.area_px) / px_per_mm**2
    return None


def _jsonable(value: Any) -> Any:
    """Turn numpy scalars/arrays and tuples into plain JSON values."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def _comparison_row(
    comparison: Comparison,
    artwork_id: int,
    baseline: ScanInfo,
    current: ScanInfo,
    key: str,
    artifacts: Mapping[str, str],
) -> ComparisonRecord:
    reg = comparison.registration
    change = comparison.change
    homography = np.asarray(reg.homography, dtype=np.float64)
    if homography.shape != (3, 3) or not np.all(np.isfinite(homography)):
        raise MonitorError("comparison has an invalid homography")
    px_per_mm = comparison.px_per_mm
    areas_mm2 = [_region_area_mm2(r, px_per_mm) for r in comparison.regions]
    align = change.alignment
    row = ComparisonRecord(
        artwork_id=artwork_id,
        baseline_scan_id=baseline.id,
        current_scan_id=current.id,
        cache_key=key,
        software_version=comparison.software_version,
        method=change.method,
        model_id=change.model_id,
        weights_sha256=change.weights_sha256,
        params=_jsonable(dict(comparison.params)),
        n_matches=int(reg.n_matches),
        n_inliers=int(reg.n_inliers),
        rmse_homography_px=_finite("rmse", reg.rmse_homography_px),
        rmse_px=_finite("rmse", reg.rmse_px),
        homography=[float(v) for v in homography.ravel()],
        align_scale=None if align is None else float(align.scale),
        align_shift=None if align is None else float(align.shift),
        align_n_used=None if align is None else int(align.n_used),
        align_inlier_fraction=None if align is None else float(align.inlier_fraction),
        analysis_scale=_finite("analysis scale", change.scale),
        noise_sigma=_finite("noise sigma", change.noise_sigma),
        px_per_mm=px_per_mm,
        light_azimuth=float(comparison.light.azimuth_deg),
        light_elevation=float(comparison.light.elevation_deg),
        n_regions=len(comparison.regions),
        changed_area_px=float(sum(r.area_px for r in comparison.regions)),
        changed_area_mm2=None
        if any(a is None for a in areas_mm2) or px_per_mm is None
        else float(sum(a for a in areas_mm2 if a is not None)),
        timings=[_jsonable(asdict(t)) for t in comparison.timings],
        artifacts=dict(artifacts),
    )
    for region, area_mm2 in zip(comparison.regions, areas_mm2, strict=True):
        x0, y0, x1, y1 = (float(v) for v in region.bbox)
        row.regions.append(
            RegionRecord(
                number=int(region.id),
                polarity=str(region.polarity),
                centroid_x=_finite("centroid", region.centroid[0]),
                centroid_y=_finite("centroid", region.centroid[1]),
                bbox_x0=x0,
                bbox_y0=y0,
                bbox_x1=x1,
                bbox_y1=y1,
                area_px=_finite("region area", region.area_px),
                area_mm2=area_mm2,
                peak=_finite("region peak", region.peak),
                mean=_finite("region mean", region.mean),
                significance=_finite("significance", region.significance),
                scale_px=getattr(region, "scale_px", None),
                scale_mm=getattr(region, "scale_mm", None),
                level=getattr(region, "level", None),
            )
        )
    return row


def find_comparison(store: Store, key: str) -> int | None:
    """Id of the stored comparison with this cache key, if any.

    Parameters
    ----------
    store
        The open store.
    key
        From :func:`cache_key`.

    Returns
    -------
    int or None
        The comparison id.
    """
    with Session(store.engine) as session:
        return session.scalar(select(ComparisonRecord.id).where(ComparisonRecord.cache_key == key))


def record_comparison(
    store: Store,
    baseline: ScanInfo,
    current: ScanInfo,
    comparison: Comparison,
    key: str,
    artifacts: Mapping[str, Path] | None = None,
    *,
    replace: bool = False,
) -> StoredComparison:
    """Store a computed comparison, its regions and its files, all or nothing.

    Artifact files are moved (if staged in ``<home>/tmp``) or copied into the
    object store first; then the comparison row and its region rows are
    written in one transaction that holds the write lock. If that
    transaction fails, the files it put into place and that no other row
    refers to are removed again (under the lock); files other writers
    stored are never touched.

    Parameters
    ----------
    store
        The open store.
    baseline, current
        The scans compared (same artwork).
    comparison
        The result.
    key
        Request key (:func:`cache_key`).
    artifacts
        Name -> file (e.g. from :func:`monitor.pipeline.write_outputs`).
    replace
        Replace an existing comparison with the same key (``--force``);
        otherwise an existing one is an error.

    Returns
    -------
    StoredComparison
        The new id and the id it replaced.
    """
    if baseline.artwork_slug != current.artwork_slug:
        raise MonitorError("baseline and current scans belong to different artworks")
    staged: list[_Staged] = []
    stored: dict[str, str] = {}
    tmp_root = store.tmp_dir.resolve()
    replaced_id: int | None = None
    old_artifacts: dict[str, str] = {}
    try:
        for name, path in (artifacts or {}).items():
            path = Path(path)
            obj = _stage(store, path, move=path.resolve().is_relative_to(tmp_root))
            staged.append(obj)
            stored[str(name)] = obj.rel
        with Session(store.engine) as session, session.begin():
            _lock(session)
            art = _get_artwork(session, baseline.artwork_slug)
            for obj in staged:  # under the lock, as in ingest_scan
                _place(store, obj)
            old = session.scalar(select(ComparisonRecord).where(ComparisonRecord.cache_key == key))
            if old is not None:
                if not replace:
                    raise MonitorError(f"comparison {old.id} already holds this result")
                replaced_id, old_artifacts = old.id, dict(old.artifacts)
                session.execute(delete(RegionRecord).where(RegionRecord.comparison_id == old.id))
                session.delete(old)
                session.flush()
            row = _comparison_row(comparison, art.id, baseline, current, key, stored)
            session.add(row)
            session.flush()
            new_id = row.id
    except BaseException as exc:
        _undo_created(store, staged)
        if isinstance(exc, SQLAlchemyError):
            raise _db_error("storing the comparison", exc) from exc
        raise
    for obj in staged:
        _discard(obj)
    _remove_unreferenced(store, list(old_artifacts.values()))
    return StoredComparison(id=new_id, reused=False, replaced_id=replaced_id)


def compare_and_store(
    store: Store,
    slug: str,
    run: RunFn,
    write: WriteFn | None = None,
    *,
    settings: Settings | None = None,
    baseline: str | None = None,
    current: str | None = None,
    force: bool = False,
) -> StoredComparison:
    """Compare two stored scans of an artwork and store the result, or reuse a stored one.

    Parameters
    ----------
    store
        The open store.
    slug
        Artwork id.
    run
        ``run(baseline_file, current_file, light, px_per_mm) -> Comparison``.
    write
        ``write(comparison, out_dir) -> {name: path}``; the files are moved
        into the store. None stores no files.
    settings
        Parameters of the comparison (they enter the cache key).
    baseline, current
        Scan references (see :func:`select_pair`); default: newest vs previous.
    force
        Recompute and replace even when the same request is stored.

    Returns
    -------
    StoredComparison
        The comparison id and whether it was reused.
    """
    settings = settings or Settings()
    base, cur = select_pair(store, slug, baseline, current)
    light, px_per_mm = comparison_inputs(base, cur, settings)
    key = cache_key(base, cur, settings, light, px_per_mm)
    existing = find_comparison(store, key)
    if existing is not None and not force:
        return StoredComparison(id=existing, reused=True)
    for scan in (base, cur):
        if not scan.path.is_file():
            raise MonitorError(f"stored file of scan {scan.id} is missing: {scan.path}")
    result = run(base.path, cur.path, light, px_per_mm)
    staging = store.tmp_dir / f"cmp-{uuid.uuid4().hex}"
    try:
        files: Mapping[str, Path] = {}
        if write is not None:
            staging.mkdir(parents=True)
            files = write(result, staging / "out")
        return record_comparison(store, base, cur, result, key, files, replace=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def comparison_detail(store: Store, comparison_id: int) -> ComparisonDetail:
    """Everything stored about one comparison.

    Parameters
    ----------
    store
        The open store.
    comparison_id
        Id of the comparison.

    Returns
    -------
    ComparisonDetail
        The comparison with its artwork, scans, regions and artifact paths.
    """
    with Session(store.engine) as session:
        row = session.get(ComparisonRecord, comparison_id)
        if row is None:
            raise MonitorError(f"no comparison {comparison_id}")
        return ComparisonDetail(
            id=row.id,
            artwork=_artwork_info(row.artwork),
            baseline=_scan_info(row.baseline_scan, store.home),
            current=_scan_info(row.current_scan, store.home),
            created_at=row.created_at,
            software_version=row.software_version,
            method=row.method,
            model_id=row.model_id,
            weights_sha256=row.weights_sha256,
            params=dict(row.params),
            n_matches=row.n_matches,
            n_inliers=row.n_inliers,
            rmse_homography_px=row.rmse_homography_px,
            rmse_px=row.rmse_px,
            homography=tuple(row.homography),
            align_scale=row.align_scale,
            align_shift=row.align_shift,
            align_n_used=row.align_n_used,
            align_inlier_fraction=row.align_inlier_fraction,
            analysis_scale=row.analysis_scale,
            noise_sigma=row.noise_sigma,
            px_per_mm=row.px_per_mm,
            light=Light(row.light_azimuth, row.light_elevation),
            regions=_regions_of(row),
            changed_area_px=row.changed_area_px,
            changed_area_mm2=row.changed_area_mm2,
            timings=tuple(row.timings),
            artifacts={name: store.home / rel for name, rel in row.artifacts.items()},
        )
