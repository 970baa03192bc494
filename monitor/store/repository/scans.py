"""Scans: ingest (read, hash, place, record), list, remove, and the choice of a pair."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from monitor.capture import read_capture
from monitor.config import validate_light
from monitor.errors import MonitorError
from monitor.results import Capture, ImageData
from monitor.store.db import Store
from monitor.store.models import ComparisonRecord, Scan, ScanImage, utcnow
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
    _db_error,
    _exif_time,
    _get_artwork,
    _optional_text,
    _positive,
    _scan_info,
    to_utc,
    validate_slug,
)


def _default_reader(path: Path) -> ImageData:
    from monitor.io import read_scan  # io sits below the store; imported when needed

    return read_scan(path)


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
    where = "sidecar " if meta.light_source == "sidecar" else ""
    azimuth, elevation = validate_light(
        meta.light_azimuth, meta.light_elevation,
        names=(f"{where}light_azimuth", f"{where}light_elevation"),
    )
    if meta.light_source not in ("ingest", "sidecar"):
        raise MonitorError(f"scan light source must be ingest or sidecar: {meta.light_source!r}")
    camera = _optional_text("camera", meta.camera, 200)
    operator = _optional_text("operator", meta.operator, 200)
    notes = _optional_text("notes", meta.notes, 100_000)
    with Session(store.engine) as session:
        _get_artwork(session, slug)  # fail before reading a large file
    data = (reader or _default_reader)(image)
    if meta.captured_at is not None:
        if meta.captured_at.tzinfo is None:
            raise MonitorError("captured_at must carry a time zone")
        captured, source = to_utc(meta.captured_at), "given"
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
                    light_source=None if azimuth is None and elevation is None
                    else meta.light_source,
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


def _capture_manifest(store: Store, cap: Capture, rels: Sequence[str]) -> Path:
    """The canonical ``.lp`` of a stored capture: lamps (y up) and the images' object paths.

    It lives in ``objects/<sha[:2]>/`` like the images, so ``../<xx>/<sha>.png``
    names each image relative to it and :func:`monitor.capture.read_capture`
    reads it as any capture.
    """
    lines = [str(cap.n_lights)]
    for rel, v in zip(rels, cap.lights, strict=True):
        name = "../" + "/".join(Path(rel).parts[-2:])
        lines.append(f"{name} {v[0]:.9f} {-v[1]:.9f} {v[2]:.9f}")
    store.tmp_dir.mkdir(parents=True, exist_ok=True)
    manifest = store.tmp_dir / f"capture.{uuid.uuid4().hex}.lp"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def ingest_capture(
    store: Store,
    slug: str,
    capture: Path,
    meta: ScanMeta | None = None,
) -> IngestResult:
    """Store a multi-light scan: every image and the light file content-addressed, one scan row.

    The scan's file is a canonical ``.lp`` manifest naming the stored images
    by their sha256 (so the scan's sha256 covers every image and lamp: the
    same capture twice is stored once, the same light file with new
    photographs is a new scan); the original light file is kept as an
    object too (``Scan.light_file_path``), and each image has a
    ``scan_image`` row. :func:`monitor.capture.read_capture` reads the
    stored manifest like any capture.

    Parameters
    ----------
    store
        The open store.
    slug
        Artwork id.
    capture
        Capture folder or light file (see :func:`monitor.capture.read_capture`).
    meta
        Capture time (default: EXIF of the first image, else now), scale, camera,
        operator, notes. A light given here is refused: each image has its own.

    Returns
    -------
    IngestResult
        The scan (``n_lights`` set) and what was new.

    Raises
    ------
    MonitorError
        Unreadable capture, unknown artwork, a light given in ``meta``.

    Examples
    --------
    >>> res = ingest_capture(store, "night-watch", Path("rti-2026/"))  # doctest: +SKIP
    >>> res.scan.n_lights  # doctest: +SKIP
    24
    """
    from monitor.io import read_image

    meta = meta or ScanMeta()
    validate_slug(slug)
    if meta.light_azimuth is not None or meta.light_elevation is not None:
        raise MonitorError("a multi-light scan has one lamp per image (its light file); "
                           "give no --light-azimuth/--light-elevation")
    px_per_mm = _positive("px_per_mm", meta.px_per_mm)
    camera = _optional_text("camera", meta.camera, 200)
    operator = _optional_text("operator", meta.operator, 200)
    notes = _optional_text("notes", meta.notes, 100_000)
    with Session(store.engine) as session:
        _get_artwork(session, slug)
    cap = read_capture(capture)
    if meta.captured_at is not None:
        if meta.captured_at.tzinfo is None:
            raise MonitorError("captured_at must carry a time zone")
        captured, source = to_utc(meta.captured_at), "given"
    elif (exif_time := _exif_time(read_image(cap.paths[0]).exif)) is not None:
        captured, source = exif_time, "exif"
    else:
        captured, source = utcnow(), "ingest time"
    staged = []
    try:
        images = [_stage(store, Path(p)) for p in cap.paths]
        staged.extend(images)
        light_obj = _stage(store, Path(cap.source))
        staged.append(light_obj)
        manifest = _stage(store, _capture_manifest(store, cap, [o.rel for o in images]),
                          move=True)
        staged.append(manifest)
        with Session(store.engine) as session, session.begin():
            _lock(session)
            art = _get_artwork(session, slug)
            for obj in staged:
                _place(store, obj)
            existing = session.scalar(
                select(Scan).where(Scan.artwork_id == art.id, Scan.sha256 == manifest.sha)
            )
            if existing is not None:
                result = IngestResult(_scan_info(existing, store.home), False,
                                      any(o.created for o in staged), source)
            else:
                scan = Scan(
                    artwork=art,
                    captured_at=captured,
                    sha256=manifest.sha,
                    stored_path=manifest.rel,
                    original_name=Path(capture).name[:500],
                    width=cap.size[0],
                    height=cap.size[1],
                    px_per_mm=px_per_mm,
                    camera=camera,
                    operator=operator,
                    notes=notes,
                    n_lights=cap.n_lights,
                    light_file_path=light_obj.rel,
                )
                scan.images = [
                    ScanImage(position=k, sha256=o.sha, stored_path=o.rel,
                              original_name=Path(p).name[:500])
                    for k, (o, p) in enumerate(zip(images, cap.paths, strict=True))
                ]
                session.add(scan)
                session.flush()
                result = IngestResult(_scan_info(scan, store.home), True,
                                      any(o.created for o in staged), source)
    except BaseException as exc:
        _undo_created(store, staged)
        if isinstance(exc, SQLAlchemyError):
            raise _db_error("ingesting the multi-light scan", exc) from exc
        raise
    for obj in staged:
        _discard(obj)
    return result
