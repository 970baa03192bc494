"""Comparisons: cache key, recording a result with its files, compare_and_store, detail."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import asdict, replace
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from monitor import __version__
from monitor.config import Settings, validate_light
from monitor.errors import MonitorError
from monitor.results import Comparison, Light, Region, RunFn, WriteFn
from monitor.store.db import Store
from monitor.store.models import AppearanceRecord, ComparisonRecord, RegionRecord
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
    ANNOTATION_FIELDS,
    Annotation,
    ComparisonDetail,
    ScanInfo,
    StoredComparison,
    _annotation_of,
    _appearance_of,
    _artwork_info,
    _db_error,
    _get_artwork,
    _optional_text,
    _outline_of,
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
    # light: the chosen lamp enters the key itself; strictness changes no result
    "light_azimuth", "strict_light",
})


def comparison_inputs(
    baseline: ScanInfo,
    current: ScanInfo,
    settings: Settings,
    light: Light | None = None,
) -> tuple[Light | Literal["auto"], str, float | None]:
    """Light, its source and the scale a stored comparison runs with.

    The light is, in order: ``light`` (a flag given now: it applies and is
    recorded as "given"); the scans' recorded lights ("ingest" or
    "sidecar"; two recorded lamps more than 45 deg apart are refused); the
    settings' ``light_azimuth`` when it is a number (config or environment:
    "given"); else "auto" (estimated from the scans). The scale is the
    baseline's (results are in baseline pixels).

    Parameters
    ----------
    baseline, current
        The two scans.
    settings
        Defaults for what the scans do not record.
    light
        A lamp given for this comparison (overrides the records).

    Returns
    -------
    tuple
        (Light or "auto", source, px_per_mm or None).

    Raises
    ------
    MonitorError
        When the two scans were recorded under clearly different lamps.
    """
    from monitor.config import settings_light

    if light is not None:
        return light, "given", baseline.px_per_mm
    recorded = [
        (Light(float(s.light_azimuth), float(
            s.light_elevation if s.light_elevation is not None else settings.light_elevation
        )), s.light_source or "ingest")
        for s in (baseline, current)
        if s.light_azimuth is not None
    ]
    for lamp, _ in recorded:  # rows stored before the ranges were checked where they enter
        validate_light(lamp.azimuth_deg, lamp.elevation_deg,
                       source=f"scans {baseline.id}/{current.id}")
    if len(recorded) == 2:
        a, b = recorded[0][0], recorded[1][0]
        diff = abs((a.azimuth_deg - b.azimuth_deg + 180.0) % 360.0 - 180.0)
        if diff > SAME_LAMP_DEG:
            raise MonitorError(
                f"scans {baseline.id} and {current.id} were recorded under different lamps "
                f"({a.azimuth_deg:g} and {b.azimuth_deg:g} deg, {diff:.0f} apart): the comparison "
                "assumes one lamp, so a moved lamp would read as relief; compare scans lit alike"
            )
    if recorded:
        return recorded[0][0], recorded[0][1], baseline.px_per_mm
    given = settings_light(settings)
    if given is not None:
        return given, "given", baseline.px_per_mm
    return "auto", "estimated", baseline.px_per_mm


#: Two recorded lamps further apart than this (degrees) are different lamps.
SAME_LAMP_DEG = 45.0


def _light_columns(comparison: Comparison) -> dict[str, object]:
    """The lamp's source, uncertainty, check and evidence as comparison columns."""
    used = comparison.light_used
    if used is None:  # a comparison made without the light stage (e.g. a test double)
        return {"light_source": "given", "light_uncertainty": None, "light_disagrees": None,
                "light_message": None, "light_evidence": None}
    unc = used.azimuth_uncertainty_deg
    return {
        "light_source": used.source,
        "light_uncertainty": None if unc is None else float(unc),
        "light_disagrees": None if used.check is None else bool(used.check.disagrees),
        "light_message": "; ".join(used.warnings) or (
            None if used.check is None else used.check.message
        ),
        "light_evidence": _jsonable(used.to_dict()),
    }


def cache_key(
    baseline: ScanInfo,
    current: ScanInfo,
    settings: Settings,
    light: Light | str,
    px_per_mm: float | None,
    software_version: str = __version__,
    fingerprint: Mapping[str, object] | None = None,
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
    fingerprint
        What else decides the numbers: the resolved device and the weights'
        hash (:func:`monitor.pipeline.result_fingerprint`); the caller computes
        it, since the store never imports the algorithms.

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
        "light": "auto" if isinstance(light, str) else [light.azimuth_deg, light.elevation_deg],
        "px_per_mm": px_per_mm,
        "software_version": software_version,
        "fingerprint": dict(fingerprint or {}),
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
        **_light_columns(comparison),
        n_regions=len(comparison.regions),
        changed_area_px=float(sum(r.area_px for r in comparison.regions)),
        changed_area_mm2=None
        if any(a is None for a in areas_mm2) or px_per_mm is None
        else float(sum(a for a in areas_mm2 if a is not None)),
        timings=[_jsonable(asdict(t)) for t in comparison.timings],
        artifacts=dict(artifacts),
        outline=None if comparison.outline is None
        else [_finite("outline", float(v)) for v in comparison.outline.bbox],
        outline_source=None if comparison.outline is None else comparison.outline.source,
    )
    for a in comparison.appearance_regions:
        x0, y0, x1, y1 = (float(v) for v in a.bbox)
        row.appearance_regions.append(
            AppearanceRecord(
                number=int(a.id),
                kind=str(a.kind),
                centroid_x=_finite("centroid", a.centroid[0]),
                centroid_y=_finite("centroid", a.centroid[1]),
                bbox_x0=x0,
                bbox_y0=y0,
                bbox_x1=x1,
                bbox_y1=y1,
                area_px=_finite("appearance area", a.area_px),
                area_mm2=None if px_per_mm is None else a.area_px / px_per_mm**2,
                delta_e_mean=_finite("colour difference", a.delta_e_mean),
                delta_e_max=_finite("colour difference", a.delta_e_max),
                delta_l=_finite("lightness change", a.delta_l),
                delta_chroma=_finite("chroma change", a.delta_chroma),
            )
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
    reuse: bool = False,
) -> StoredComparison:
    """Store a computed comparison, its regions and its files, all or nothing.

    Artifact files are moved (if staged in ``<home>/tmp``) or copied into the
    object store first; then the comparison row and its region rows are
    written in one transaction that holds the write lock. If that
    transaction fails, the files it put into place and that no other row
    refers to are removed again (under the lock); files other writers
    stored are never touched.

    Who stores a request is decided by the database: the lookup of the key
    and the insert happen in one transaction under the store's write lock
    (SQLite ``BEGIN IMMEDIATE``, PostgreSQL advisory lock), and ``cache_key``
    is ``UNIQUE`` (on other backends a unique violation is what tells). So of
    two workers that computed the same request at once, the second finds the
    first one's row: with ``reuse`` it returns that row, and no row is
    replaced or stored twice.

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
        Replace an existing comparison with the same key (``--force``).
    reuse
        Return an existing comparison with the same key (``reused=True``)
        instead of storing this one. With neither flag an existing one is an
        error.

    Returns
    -------
    StoredComparison
        The new id and the id it replaced, or the existing id (``reused``).

    Examples
    --------
    >>> first = record_comparison(store, base, cur, result, key, files)  # doctest: +SKIP
    >>> record_comparison(store, base, cur, result, key, files, reuse=True)  # doctest: +SKIP
    StoredComparison(id=first.id, reused=True, replaced_id=None)
    """
    if baseline.artwork_slug != current.artwork_slug:
        raise MonitorError("baseline and current scans belong to different artworks")
    staged: list[_Staged] = []
    stored: dict[str, str] = {}
    tmp_root = store.tmp_dir.resolve()
    replaced_id: int | None = None
    reused_id: int | None = None
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
            old = session.scalar(select(ComparisonRecord).where(ComparisonRecord.cache_key == key))
            if old is not None and not replace:
                if not reuse:
                    raise MonitorError(f"comparison {old.id} already holds this result")
                reused_id = old.id  # stored meanwhile by another worker: nothing to write
            else:
                for obj in staged:  # under the lock, as in ingest_scan
                    _place(store, obj)
                if old is not None:
                    replaced_id, old_artifacts = old.id, dict(old.artifacts)
                    session.execute(
                        delete(RegionRecord).where(RegionRecord.comparison_id == old.id)
                    )
                    session.execute(
                        delete(AppearanceRecord).where(AppearanceRecord.comparison_id == old.id)
                    )
                    session.delete(old)
                    session.flush()
                row = _comparison_row(comparison, art.id, baseline, current, key, stored)
                session.add(row)
                session.flush()
                new_id = row.id
    except BaseException as exc:
        _undo_created(store, staged)
        if reuse and isinstance(exc, IntegrityError):  # a backend without the write lock
            existing = find_comparison(store, key)
            if existing is not None:
                return StoredComparison(id=existing, reused=True)
        if isinstance(exc, SQLAlchemyError):
            raise _db_error("storing the comparison", exc) from exc
        raise
    for obj in staged:
        _discard(obj)
    if reused_id is not None:
        return StoredComparison(id=reused_id, reused=True)
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
    fingerprint: Mapping[str, object] | None = None,
    allow_reversed: bool = False,
    light: Light | None = None,
) -> StoredComparison:
    """Compare two stored scans of an artwork and store the result, or reuse a stored one.

    Parameters
    ----------
    store
        The open store.
    slug
        Artwork id.
    run
        ``run(baseline_file, current_file, light, px_per_mm) -> Comparison``;
        ``light`` is a :class:`Light` or ``"auto"``.
    write
        ``write(comparison, out_dir) -> {name: path}``; the files are moved
        into the store. None stores no files.
    settings
        Parameters of the comparison (they enter the cache key).
    baseline, current
        Scan references (see :func:`select_pair`); default: newest vs previous.
    force
        Recompute and replace even when the same request is stored.
    fingerprint
        Device and weights' hash (enter the cache key, see :func:`cache_key`).
    allow_reversed
        Compare a current scan captured *before* its baseline (normally
        refused: its change would read backwards in the history).
    light
        A lamp given for this comparison (e.g. ``--light-azimuth``): it applies
        and is recorded; None uses the scans' records, then the settings,
        then the estimate (see :func:`comparison_inputs`).

    Returns
    -------
    StoredComparison
        The comparison id and whether it was reused (found stored before the
        run, or stored by another worker while this one computed).
    """
    settings = settings or Settings()
    base, cur = select_pair(store, slug, baseline, current)
    check_order(base, cur, allow_reversed=allow_reversed)
    chosen, source, px_per_mm = comparison_inputs(base, cur, settings, light)
    key = cache_key(base, cur, settings, chosen, px_per_mm, fingerprint=fingerprint)
    existing = find_comparison(store, key)
    if existing is not None and not force:
        return StoredComparison(id=existing, reused=True)
    # paths from the database are followed only inside objects/, and the bytes are the stored ones
    base_file = store.verified_file(base.path, base.sha256, f"scan {base.id}")
    cur_file = store.verified_file(cur.path, cur.sha256, f"scan {cur.id}")
    result = run(base_file, cur_file, chosen, px_per_mm)
    if result.light_used is not None and result.light_used.source != source:
        # the runner ran with this lamp; the store knows where it came from
        used = result.light_used
        el_source = source if used.elevation_source == used.source else used.elevation_source
        result = replace(
            result, light_used=replace(used, source=source, elevation_source=el_source)
        )
    staging = store.tmp_dir / f"cmp-{uuid.uuid4().hex}"
    try:
        files: Mapping[str, Path] = {}
        if write is not None:
            staging.mkdir(parents=True)
            files = write(result, staging / "out")
        # not force: a worker that stored the same request meanwhile wins, its row is returned
        return record_comparison(store, base, cur, result, key, files, replace=force,
                                 reuse=not force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check_order(baseline: ScanInfo, current: ScanInfo, *, allow_reversed: bool = False) -> None:
    """Refuse a pair whose current scan was captured before its baseline (unless allowed).

    Parameters
    ----------
    baseline, current
        The pair.
    allow_reversed
        Let a reversed pair through (it is then read as "other" in the history).

    Raises
    ------
    MonitorError
        When the current scan is older than the baseline.
    """
    if allow_reversed or current.captured_at >= baseline.captured_at:
        return
    raise MonitorError(
        f"current scan {current.id} ({current.captured_at:%Y-%m-%d}) is older than baseline "
        f"scan {baseline.id} ({baseline.captured_at:%Y-%m-%d}); swap --baseline and --current, "
        "or pass --allow-reversed to compare backwards on purpose"
    )


def annotate_comparison(
    store: Store,
    comparison_id: int,
    *,
    outline: tuple[float, float, float, float] | None = None,
    **fields: str | None,
) -> Annotation:
    """Record the examiner's words on a comparison (fields not given are kept).

    Parameters
    ----------
    store
        The open store.
    comparison_id
        Id of the comparison.
    **fields
        Any of ``examiner``, ``examined_at`` (YYYY-MM-DD), ``conditions``,
        ``condition``, ``recommendations``; ``None`` keeps the stored value,
        an empty string clears it.
    outline
        The work's edges in the baseline, ``(x0, y0, x1, y1)`` baseline pixels,
        set by the user (locations in the report are then measured from it).

    Returns
    -------
    Annotation
        The annotation now stored.

    Examples
    --------
    >>> # annotate_comparison(store, 3, examiner="A. Registrar", condition="Stable.")
    """
    unknown = sorted(set(fields) - set(ANNOTATION_FIELDS))
    if unknown:
        raise MonitorError(f"unknown annotation field(s): {', '.join(unknown)}")
    clean: dict[str, str | None] = {}
    for name, value in fields.items():
        if value is None:
            continue
        text = _optional_text(name, value, ANNOTATION_FIELDS[name])
        if name == "examined_at" and text is not None:
            try:
                text = date.fromisoformat(text).isoformat()
            except ValueError:
                raise MonitorError(
                    f"examined_at must be a date YYYY-MM-DD, got {value!r}"
                ) from None
        clean[name] = text
    if outline is not None:
        x0, y0, x1, y1 = (float(v) for v in outline)
        if not all(math.isfinite(v) and v >= 0 for v in (x0, y0, x1, y1)) or x1 <= x0 or y1 <= y0:
            raise MonitorError(f"outline must be x0,y0,x1,y1 with x0 < x1, y0 < y1, got {outline}")
    try:
        with Session(store.engine) as session, session.begin():
            row = session.get(ComparisonRecord, comparison_id)
            if row is None:
                raise MonitorError(f"no comparison {comparison_id}")
            for name, value in clean.items():
                setattr(row, name, value)
            if outline is not None:
                scan = row.baseline_scan
                if x1 > scan.width or y1 > scan.height:
                    raise MonitorError(
                        f"outline {outline} leaves the baseline image ({scan.width} x "
                        f"{scan.height} px)"
                    )
                row.outline = [x0, y0, x1, y1]
                row.outline_source = "user"
            session.flush()
            return _annotation_of(row)
    except SQLAlchemyError as exc:
        raise _db_error("annotating the comparison", exc) from exc


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
            light_source=row.light_source,
            light_uncertainty=row.light_uncertainty,
            light_disagrees=row.light_disagrees,
            light_message=row.light_message,
            regions=_regions_of(row),
            changed_area_px=row.changed_area_px,
            changed_area_mm2=row.changed_area_mm2,
            timings=tuple(row.timings),
            artifacts={name: store.home / rel for name, rel in row.artifacts.items()},
            appearance=_appearance_of(row),
            annotation=_annotation_of(row),
            outline=_outline_of(row),
        )
