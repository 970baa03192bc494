"""Scans: ingest (read, hash, place, record), list, remove, and the choice of a pair."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from monitor.errors import MonitorError
from monitor.results import ImageData
from monitor.store.db import Store
from monitor.store.models import ComparisonRecord, Scan, utcnow
from monitor.store.repository.blobs import (
    _discard,
    _lock,
    _pause_point,
    _place,
    _remove_unreferenced,
    _stage,
    _undo_created,
)
from monitor.store.repository.records import (
    IngestResult,
    ReaderFn,
    ScanInfo,
    ScanMeta,
    _angle,
    _db_error,
    _exif_time,
    _get_artwork,
    _optional_text,
    _positive,
    _scan_info,
    validate_slug,
)


def _default_reader(path: Path) -> ImageData:
    from monitor.io import read_image  # io sits below the store; imported when needed

    return read_image(path)


def ingest_scan(
    store: Store,
    slug: str,
    image: Path,
    meta: ScanMeta | None = None,
    *,
    reader: ReaderFn | None = None,
) -> IngestResult:
    """Store a scan of an artwork: its file in the object store, its metadata in the database.

    Ingesting the same bytes again for the same artwork returns the existing
    scan (``created=False``); for another artwork the file is shared.

    Parameters
    ----------
    store
        The open store.
    slug
        Artwork id.
    image
        Image file (read once to check it and to get its size and EXIF).
    meta
        Capture time (default: EXIF DateTimeOriginal, else now), scale, light,
        camera, operator, notes.
    reader
        Image reader; :func:`monitor.io.read_image` by default.

    Returns
    -------
    IngestResult
        The scan and what was new.
    """
    meta = meta or ScanMeta()
    validate_slug(slug)
    image = Path(image)
    if not image.is_file():
        raise MonitorError(f"no such image file: {image}")
    px_per_mm = _positive("px_per_mm", meta.px_per_mm)
    azimuth = _angle("light azimuth", meta.light_azimuth, -360.0, 360.0)
    elevation = _angle("light elevation", meta.light_elevation, 0.0, 90.0)
    camera = _optional_text("camera", meta.camera, 200)
    operator = _optional_text("operator", meta.operator, 200)
    notes = _optional_text("notes", meta.notes, 100_000)
    with Session(store.engine) as session:
        _get_artwork(session, slug)  # fail before reading a large file
    data = (reader or _default_reader)(image)
    if meta.captured_at is not None:
        if meta.captured_at.tzinfo is None:
            raise MonitorError("captured_at must carry a time zone")
        captured, source = meta.captured_at.astimezone(UTC), "given"
    elif (exif_time := _exif_time(data.exif)) is not None:
        captured, source = exif_time, "exif"
    else:
        captured, source = utcnow(), "ingest time"

    obj = _stage(store, image)
    _pause_point("staged")
    try:
        with Session(store.engine) as session, session.begin():
            _lock(session)  # SQLite: held since BEGIN IMMEDIATE
            art = _get_artwork(session, slug)
            _place(store, obj)  # under the lock: no cleanup or gc can remove it before commit
            _pause_point("placed")
            existing = session.scalar(
                select(Scan).where(Scan.artwork_id == art.id, Scan.sha256 == obj.sha)
            )
            if existing is not None:
                result = IngestResult(
                    _scan_info(existing, store.home), False, obj.created, source
                )
            else:
                scan = Scan(
                    artwork=art,
                    captured_at=captured,
                    sha256=obj.sha,
                    stored_path=obj.rel,
                    original_name=image.name[:500],
                    width=data.width,
                    height=data.height,
                    px_per_mm=px_per_mm,
                    light_azimuth=azimuth,
                    light_elevation=elevation,
                    camera=camera,
                    operator=operator,
                    notes=notes,
                )
                session.add(scan)
                session.flush()
                result = IngestResult(_scan_info(scan, store.home), True, obj.created, source)
    except BaseException as exc:
        _undo_created(store, [obj])
        if isinstance(exc, SQLAlchemyError):
            raise _db_error("ingesting the scan", exc) from exc
        raise
    _discard(obj)
    _pause_point("committed")
    return result


def list_scans(store: Store, slug: str) -> list[ScanInfo]:
    """Scans of an artwork, oldest first (by capture time, then id).

    Parameters
    ----------
    store
        The open store.
    slug
        Artwork id.

    Returns
    -------
    list of ScanInfo
        The scans.
    """
    with Session(store.engine) as session:
        art = _get_artwork(session, slug)
        rows = session.scalars(
            select(Scan).where(Scan.artwork_id == art.id).order_by(Scan.captured_at, Scan.id)
        )
        return [_scan_info(s, store.home) for s in rows]


def remove_scan(store: Store, scan_id: int) -> bool:
    """Delete a scan that no comparison uses, and its file when nothing else refers to it.

    Used to take back a scan that turned out not to belong to its artwork
    (the scheduled inbox quarantines such files). The row goes first, in one
    transaction; the file is removed afterwards, so a crash in between leaves
    only an unreferenced file for :func:`collect_garbage`.

    Parameters
    ----------
    store
        The open store.
    scan_id
        Id of the scan.

    Returns
    -------
    bool
        True if the scan was deleted, False if there was no such scan.

    Raises
    ------
    MonitorError
        When a stored comparison uses the scan.
    """
    try:
        with Session(store.engine) as session, session.begin():
            scan = session.get(Scan, scan_id)
            if scan is None:
                return False
            used = session.scalar(
                select(ComparisonRecord.id).where(
                    (ComparisonRecord.baseline_scan_id == scan_id)
                    | (ComparisonRecord.current_scan_id == scan_id)
                )
            )
            if used is not None:
                raise MonitorError(f"scan {scan_id} is used by comparison {used}; not removed")
            rel = scan.stored_path
            session.delete(scan)
    except SQLAlchemyError as exc:
        raise _db_error("removing the scan", exc) from exc
    _remove_unreferenced(store, [rel])
    return True


def _pick_scan(scans: Sequence[ScanInfo], ref: str, slug: str) -> ScanInfo:
    ref = ref.strip()
    if ref.isdigit():
        hits = [s for s in scans if s.id == int(ref)]
    elif re.fullmatch(r"[0-9a-fA-F]{6,64}", ref):
        hits = [s for s in scans if s.sha256.startswith(ref.lower())]
    else:
        raise MonitorError(f"scan {ref!r}: give a scan id or at least 6 hex digits of its sha256")
    if not hits:
        raise MonitorError(f"artwork {slug!r} has no scan {ref!r}")
    if len(hits) > 1:
        raise MonitorError(f"scan {ref!r} is ambiguous for artwork {slug!r}")
    return hits[0]


def select_pair(
    store: Store, slug: str, baseline: str | None = None, current: str | None = None
) -> tuple[ScanInfo, ScanInfo]:
    """Choose the scans to compare: by default the newest against the one before it.

    Parameters
    ----------
    store
        The open store.
    slug
        Artwork id.
    baseline, current
        Scan id or sha256 prefix (6+ hex digits); None for the default. With
        only ``current`` given the baseline is the scan before it; with only
        ``baseline`` the current is the newest scan.

    Returns
    -------
    tuple of ScanInfo
        (baseline, current).
    """
    scans = list_scans(store, slug)
    if len(scans) < 2 and (baseline is None or current is None):
        raise MonitorError(f"artwork {slug!r} has {len(scans)} scan(s); a comparison needs two")
    cur = _pick_scan(scans, current, slug) if current is not None else None
    base = _pick_scan(scans, baseline, slug) if baseline is not None else None
    if cur is None:
        cur = scans[-1]
    if base is None:
        index = scans.index(cur)
        if index == 0:
            raise MonitorError(f"scan {cur.id} is the oldest of {slug!r}; give --baseline")
        base = scans[index - 1]
    if base.id == cur.id or base.sha256 == cur.sha256:
        raise MonitorError("baseline and current are the same image")
    return base, cur
