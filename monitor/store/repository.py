"""Queries, transactions and the content-addressed file store of the artwork history.

Every function takes an open :class:`monitor.store.db.Store` (data home +
engine) and returns small frozen dataclasses, never ORM objects, so callers
hold no session.

Files (scans and comparison artifacts) live under ``<home>/objects`` named by
the sha256 of their bytes (``objects/ab/abcdef...<suffix>``): the same image
ingested twice is stored once. Files are copied to a temporary name in
``<home>/tmp`` and renamed into place, so a reader never sees half a file.
A comparison and its regions are written in one transaction; if it fails, the
files it added are removed again (no partial row, no orphan file).

This module never imports the algorithms: a comparison is computed by a
``run`` function the caller passes in (the CLI passes
:func:`monitor.pipeline.compare`), and its files are written by a ``write``
function (:func:`monitor.pipeline.write_outputs`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from monitor import __version__
from monitor.config import Settings, validate_light
from monitor.errors import MonitorError
from monitor.results import Comparison, ImageData, Light, Region
from monitor.store.db import Store, write_lock
from monitor.store.models import Artwork, ComparisonRecord, RegionRecord, Scan, utcnow

SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
#: Settings that do not change a comparison's result (left out of the cache key).
NON_RESULT_SETTINGS = frozenset({
    "home", "database_url", "device", "max_pixels",
    # scheduled runs (monitor.inbox): where files come from and go, locks, alerts
    "inbox", "reports", "inbox_settle_s", "lock_wait_s", "busy_timeout_s",
    "alert_command", "alert_url", "alert_min_significance",
})
#: Relative change of the fitted changed area across the history below which it is "stable".
TREND_TOLERANCE = 0.2
_CHUNK = 1 << 20

RunFn = Callable[[Path, Path, Light, float | None], Comparison]
WriteFn = Callable[[Comparison, Path], Mapping[str, Path]]
ReaderFn = Callable[[Path], ImageData]


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ArtworkInfo:
    """An artwork's identification."""

    slug: str
    title: str
    artist: str | None = None
    date: str | None = None
    medium: str | None = None
    width_mm: float | None = None
    height_mm: float | None = None
    location: str | None = None
    notes: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class ScanMeta:
    """What the operator tells about a scan at ingest (all optional)."""

    captured_at: datetime | None = None
    px_per_mm: float | None = None
    light_azimuth: float | None = None
    light_elevation: float | None = None
    camera: str | None = None
    operator: str | None = None
    notes: str | None = None


@dataclass(frozen=True)
class ScanInfo:
    """A stored scan. ``path`` is the absolute path of its file in the store."""

    id: int
    artwork_slug: str
    captured_at: datetime
    sha256: str
    path: Path
    original_name: str | None
    width: int
    height: int
    px_per_mm: float | None
    light_azimuth: float | None
    light_elevation: float | None
    camera: str | None
    operator: str | None
    notes: str | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (times in ISO 8601, path as a string)."""
        out = asdict(self)
        out["captured_at"] = self.captured_at.isoformat()
        out["path"] = str(self.path)
        return out


@dataclass(frozen=True)
class IngestResult:
    """Outcome of :func:`ingest_scan`."""

    scan: ScanInfo
    created: bool  # False: this artwork already had this exact image
    file_stored: bool  # False: the bytes were already in the store
    captured_at_source: str  # "given", "exif" or "ingest time"


@dataclass(frozen=True)
class StoredComparison:
    """Outcome of :func:`compare_and_store`."""

    id: int
    reused: bool
    replaced_id: int | None = None


@dataclass(frozen=True)
class RegionSummary:
    """The largest region of one polarity in a comparison."""

    number: int
    peak: float
    peak_mm: float | None
    area_px: float
    area_mm2: float | None


@dataclass(frozen=True)
class HistoryEntry:
    """One comparison of an artwork's history."""

    comparison_id: int
    created_at: datetime
    baseline_scan_id: int
    baseline_captured_at: datetime
    current_scan_id: int
    current_captured_at: datetime
    method: str
    n_bulge: int
    n_recession: int
    largest_bulge: RegionSummary | None
    largest_recession: RegionSummary | None
    changed_area_px: float
    changed_area_mm2: float | None
    max_abs_peak: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (times in ISO 8601)."""
        out = asdict(self)
        for key in ("created_at", "baseline_captured_at", "current_captured_at"):
            out[key] = getattr(self, key).isoformat()
        return out


@dataclass(frozen=True)
class ArtworkHistory:
    """Every comparison of an artwork in time order, and the trend of the changed area."""

    artwork: ArtworkInfo
    entries: tuple[HistoryEntry, ...]
    trend: str  # "rising", "falling", "stable" or "insufficient data"
    trend_units: str  # "mm2" or "px"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "artwork": self.artwork.to_dict(),
            "comparisons": [e.to_dict() for e in self.entries],
            "trend": self.trend,
            "trend_units": self.trend_units,
        }


@dataclass(frozen=True)
class ComparisonDetail:
    """Everything a condition report needs about one stored comparison."""

    id: int
    artwork: ArtworkInfo
    baseline: ScanInfo
    current: ScanInfo
    created_at: datetime
    software_version: str
    method: str
    model_id: str
    weights_sha256: str | None
    params: dict[str, Any]
    n_matches: int
    n_inliers: int
    rmse_homography_px: float
    rmse_px: float
    homography: tuple[float, ...]
    align_scale: float | None
    align_shift: float | None
    align_n_used: int | None
    align_inlier_fraction: float | None
    analysis_scale: float
    noise_sigma: float
    px_per_mm: float | None
    light: Light
    regions: tuple[Region, ...]
    changed_area_px: float
    changed_area_mm2: float | None
    timings: tuple[dict[str, Any], ...]
    artifacts: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        out: dict[str, object] = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in {"artwork", "baseline", "current", "regions", "light", "artifacts"}
        }
        out["created_at"] = self.created_at.isoformat()
        out["homography"] = list(self.homography)
        out["artwork"] = self.artwork.to_dict()
        out["baseline"] = self.baseline.to_dict()
        out["current"] = self.current.to_dict()
        out["light"] = asdict(self.light)
        out["regions"] = [r.to_dict() for r in self.regions]
        out["artifacts"] = {k: str(v) for k, v in self.artifacts.items()}
        return out


# --------------------------------------------------------------------------- helpers


def validate_slug(slug: str) -> str:
    """Return ``slug`` if it is a valid artwork id, else raise.

    Parameters
    ----------
    slug
        1-64 characters: lowercase letters, digits, ``-`` and ``_``, starting
        with a letter or digit (so no path separators, no ``..``).

    Returns
    -------
    str
        The same slug.
    """
    if not isinstance(slug, str) or SLUG_PATTERN.fullmatch(slug) is None:
        raise MonitorError(
            f"invalid artwork slug {slug!r}: use 1-64 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return slug


_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_text(name: str, value: str | None, max_len: int) -> str | None:
    """Metadata text as stored: stripped, at most ``max_len`` characters, no control characters.

    Parameters
    ----------
    name
        Field name, for the message.
    value
        The text, or None.
    max_len
        Longest accepted length.

    Returns
    -------
    str or None
        The stripped text (None when empty).

    Examples
    --------
    >>> check_text("operator", "  JV ", 200)
    'JV'
    """
    if value is None:
        return None
    value = value.strip()
    if len(value) > max_len:
        raise MonitorError(f"{name} is longer than {max_len} characters")
    if (bad := _CONTROL_CHARS.search(value)) is not None:
        what = "a NUL byte" if bad.group() == "\x00" else f"the control character {bad.group()!r}"
        raise MonitorError(f"{name} contains {what}; use plain text")
    return value or None


_optional_text = check_text


def _positive(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or value <= 0:
        raise MonitorError(f"{name} must be a positive number, got {value}")
    return float(value)


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 date or date-time; naive values are taken as UTC.

    Parameters
    ----------
    text
        e.g. ``2024-05-01`` or ``2024-05-01T14:30:00+02:00``.

    Returns
    -------
    datetime
        Timezone-aware UTC datetime.
    """
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise MonitorError(f"cannot read {text!r} as an ISO 8601 date or date-time") from exc
    return to_utc(value, text)


def to_utc(value: datetime, shown: object = None) -> datetime:
    """``value`` in UTC (naive = UTC), refused when UTC cannot hold it (year 1 or 9999 ends).

    Parameters
    ----------
    value
        A date-time.
    shown
        How to name it in the message (default: its ISO form).

    Returns
    -------
    datetime
        Timezone-aware UTC datetime.

    Examples
    --------
    >>> to_utc(datetime(2024, 5, 1, 12)).isoformat()
    '2024-05-01T12:00:00+00:00'
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        shown = value.isoformat() if shown is None else shown
        raise MonitorError(
            f"capture time {shown} lies outside the years 1-9999 once converted to UTC"
        ) from exc


def _exif_time(exif: Mapping[str, str]) -> datetime | None:
    for key in ("DateTimeOriginal", "DateTimeDigitized", "DateTime"):
        raw = exif.get(key)
        if raw:
            try:
                value = datetime.strptime(str(raw).strip()[:19], "%Y:%m:%d %H:%M:%S")
            except ValueError:
                continue
            return value.replace(tzinfo=UTC)
    return None


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes.

    Parameters
    ----------
    path
        File to hash.

    Returns
    -------
    str
        64 hex digits.
    """
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise MonitorError(f"cannot read {path}: {exc}") from exc
    return digest.hexdigest()


def _object_relpath(sha: str, suffix: str) -> str:
    suffix = suffix.lower()
    if not re.fullmatch(r"(\.[a-z0-9]{1,8}){0,2}", suffix):
        suffix = ""
    return f"objects/{sha[:2]}/{sha}{suffix}"


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not supported everywhere (e.g. Windows)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


#: Test hook: ``MONITOR_TEST_PAUSE_AT=<point>:<folder>`` makes a process write
#: ``<folder>/<point>.reached`` at that point and wait for ``<folder>/<point>.go``.
PAUSE_ENV = "MONITOR_TEST_PAUSE_AT"
PAUSE_POINTS = ("staged", "placed", "committed")
_PAUSE_LIMIT_S = 60.0


def _pause_point(point: str) -> None:
    """Test hook (see :data:`PAUSE_ENV`): stop here until the test lets the process go on."""
    spec = os.environ.get(PAUSE_ENV)
    if not spec:
        return
    name, _, folder = spec.partition(":")
    if name != point or not folder:
        return
    barrier = Path(folder)
    (barrier / f"{point}.reached").write_text(str(os.getpid()))
    deadline = time.monotonic() + _PAUSE_LIMIT_S
    while not (barrier / f"{point}.go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)


@dataclass
class _Staged:
    """An object on its way into the store: its bytes in a temporary file of ours.

    ``temp`` is None when the object was already in place at staging time
    (then ``source`` is copied again only if it vanished before placing).
    """

    sha: str
    rel: str
    source: Path
    temp: Path | None
    created: bool = False  # set by _place: this transaction put the object into objects/


def _copy_to_temp(store: Store, source: Path, sha: str) -> Path:
    store.tmp_dir.mkdir(parents=True, exist_ok=True)
    temp = store.tmp_dir / f"{sha}.{uuid.uuid4().hex}.part"
    try:
        with source.open("rb") as src, temp.open("wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
            dst.flush()
            os.fsync(dst.fileno())
        if sha256_file(temp) != sha:
            raise MonitorError(f"{source} changed while it was being stored")
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _stage(store: Store, source: Path, *, move: bool = False) -> _Staged:
    """Hash ``source`` and copy it to a temporary file of this process (no lock needed).

    With ``move`` the source (a file of ours in ``<home>/tmp``) is the temporary file.
    """
    if not source.is_file():
        raise MonitorError(f"no such file: {source}")
    sha = sha256_file(source)
    rel = _object_relpath(sha, "".join(source.suffixes[-1:]))
    try:
        if move:
            return _Staged(sha, rel, source, source)
        if (store.home / rel).is_file():
            return _Staged(sha, rel, source, None)
        return _Staged(sha, rel, source, _copy_to_temp(store, source, sha))
    except OSError as exc:
        raise MonitorError(f"cannot store {source}: {exc}") from exc


def _place(store: Store, obj: _Staged) -> None:
    """Rename the staged bytes into ``objects/``; call only while holding the write lock.

    An object already in place is kept (same name, same bytes) and our
    temporary file dropped; ``obj.created`` tells whether this call put it there.
    """
    target = store.home / obj.rel
    try:
        if target.is_file():
            _discard(obj)
            return
        if obj.temp is None or not obj.temp.is_file():  # vanished since staging (gc)
            obj.temp = _copy_to_temp(store, obj.source, obj.sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(obj.temp, target)
        obj.temp = None
        obj.created = True
        _fsync_dir(target.parent)
    except OSError as exc:
        raise MonitorError(f"cannot store {obj.source}: {exc}") from exc


def _discard(obj: _Staged) -> None:
    """Remove this process's temporary file of ``obj`` (never an object in place)."""
    if obj.temp is not None:
        with contextlib.suppress(OSError):
            obj.temp.unlink(missing_ok=True)
        obj.temp = None


def _lock(session: Session) -> None:
    write_lock(session.connection())


def _undo_created(store: Store, objs: Sequence[_Staged]) -> None:
    """After a failed transaction: drop our temps, and objects we placed that no row refers to.

    The check and the removal happen under the write lock, so an object that
    another writer's committed row (or its transaction in progress) uses is kept.
    """
    for obj in objs:
        _discard(obj)
    _remove_unreferenced(store, [obj.rel for obj in objs if obj.created])


def _remove_unreferenced(store: Store, relpaths: Sequence[str]) -> list[str]:
    """Remove those of ``relpaths`` that no row refers to, checked and done under the write lock.

    Best effort: when the lock cannot be had, nothing is removed (the files
    stay for :func:`collect_garbage`).
    """
    if not relpaths:
        return []
    removed: list[str] = []
    with contextlib.suppress(SQLAlchemyError), Session(store.engine) as session, session.begin():
        _lock(session)
        refs = _referenced_objects(session)
        removed = [rel for rel in relpaths if rel not in refs]
        _remove_objects(store, removed)
    return removed


def put_object(store: Store, source: Path, *, move: bool = False) -> tuple[str, str, bool]:
    """Put a file into the content-addressed store.

    The bytes go to a temporary name in ``<home>/tmp`` first (copied, or
    moved when ``move`` and ``source`` is already in ``tmp``) and are renamed
    to ``objects/<sha[:2]>/<sha><suffix>`` while holding the store's write
    lock. No row refers to the object yet: :func:`collect_garbage` may
    remove it once it is older than its ``min_age_s``.

    Parameters
    ----------
    store
        The open store.
    source
        File to store (its suffix is kept, lower-cased).
    move
        Move instead of copy (for files staged in ``<home>/tmp``).

    Returns
    -------
    tuple
        (sha256, path relative to the home, True if the file was new).

    Examples
    --------
    >>> sha, rel, new = put_object(store, Path("scan.png"))  # doctest: +SKIP
    >>> rel.startswith("objects/" + sha[:2])  # doctest: +SKIP
    True
    """
    obj = _stage(store, source, move=move)
    try:
        with Session(store.engine) as session, session.begin():
            _lock(session)
            _place(store, obj)
    except SQLAlchemyError as exc:
        raise _db_error("storing the file", exc) from exc
    finally:
        _discard(obj)
    return obj.sha, obj.rel, obj.created


def _scan_info(scan: Scan, home: Path) -> ScanInfo:
    return ScanInfo(
        id=scan.id,
        artwork_slug=scan.artwork.slug,
        captured_at=scan.captured_at,
        sha256=scan.sha256,
        path=home / scan.stored_path,
        original_name=scan.original_name,
        width=scan.width,
        height=scan.height,
        px_per_mm=scan.px_per_mm,
        light_azimuth=scan.light_azimuth,
        light_elevation=scan.light_elevation,
        camera=scan.camera,
        operator=scan.operator,
        notes=scan.notes,
    )


def _artwork_info(art: Artwork) -> ArtworkInfo:
    return ArtworkInfo(
        slug=art.slug,
        title=art.title,
        artist=art.artist,
        date=art.date,
        medium=art.medium,
        width_mm=art.width_mm,
        height_mm=art.height_mm,
        location=art.location,
        notes=art.notes,
    )


def _get_artwork(session: Session, slug: str) -> Artwork:
    validate_slug(slug)
    art = session.scalar(select(Artwork).where(Artwork.slug == slug))
    if art is None:
        raise MonitorError(f"no artwork {slug!r}; add it with 'monitor artwork add {slug}'")
    return art


def _db_error(action: str, exc: SQLAlchemyError) -> MonitorError:
    detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return MonitorError(f"{action} failed: {detail}")


# --------------------------------------------------------------------------- artworks


def add_artwork(
    store: Store,
    slug: str,
    title: str,
    *,
    artist: str | None = None,
    date: str | None = None,
    medium: str | None = None,
    width_mm: float | None = None,
    height_mm: float | None = None,
    location: str | None = None,
    notes: str | None = None,
) -> ArtworkInfo:
    """Register a new artwork.

    Parameters
    ----------
    store
        The open store.
    slug
        Stable id (see :func:`validate_slug`).
    title
        Title of the work (required, non-empty).
    artist, date, medium, location, notes
        Free-text identification (stored as given, escaped when rendered).
    width_mm, height_mm
        Dimensions of the work in millimetres.

    Returns
    -------
    ArtworkInfo
        The stored artwork.
    """
    validate_slug(slug)
    title_clean = _optional_text("title", title, 500)
    if title_clean is None:
        raise MonitorError("title must not be empty")
    info = ArtworkInfo(
        slug=slug,
        title=title_clean,
        artist=_optional_text("artist", artist, 500),
        date=_optional_text("date", date, 100),
        medium=_optional_text("medium", medium, 500),
        width_mm=_positive("width_mm", width_mm),
        height_mm=_positive("height_mm", height_mm),
        location=_optional_text("location", location, 500),
        notes=_optional_text("notes", notes, 100_000),
    )
    try:
        with Session(store.engine) as session, session.begin():
            if session.scalar(select(Artwork.id).where(Artwork.slug == slug)) is not None:
                raise MonitorError(f"artwork {slug!r} already exists")
            session.add(Artwork(**asdict(info)))
    except IntegrityError as exc:
        raise MonitorError(f"artwork {slug!r} already exists") from exc
    except SQLAlchemyError as exc:
        raise _db_error("adding the artwork", exc) from exc
    return info


def get_artwork(store: Store, slug: str) -> ArtworkInfo:
    """Identification of one artwork.

    Parameters
    ----------
    store
        The open store.
    slug
        Artwork id.

    Returns
    -------
    ArtworkInfo
        The artwork.
    """
    with Session(store.engine) as session:
        return _artwork_info(_get_artwork(session, slug))


def list_artworks(store: Store) -> list[ArtworkInfo]:
    """All artworks, by slug.

    Parameters
    ----------
    store
        The open store.

    Returns
    -------
    list of ArtworkInfo
        The artworks.
    """
    with Session(store.engine) as session:
        return [_artwork_info(a) for a in session.scalars(select(Artwork).order_by(Artwork.slug))]


# --------------------------------------------------------------------------- scans


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
    azimuth, elevation = validate_light(meta.light_azimuth, meta.light_elevation)
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
    # rows stored before the ranges were checked where they enter are checked here
    azimuth, elevation = validate_light(
        azimuth, elevation, source=f"scans {baseline.id}/{current.id} or settings"
    )
    assert azimuth is not None and elevation is not None
    return Light(azimuth, elevation), baseline.px_per_mm


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


# --------------------------------------------------------------------------- comparisons


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
            )
        )
    return row


def _remove_objects(store: Store, relpaths: Sequence[str]) -> None:
    for rel in relpaths:
        with contextlib.suppress(OSError):
            (store.home / rel).unlink(missing_ok=True)


def _referenced_objects(session: Session) -> set[str]:
    refs = set(session.scalars(select(Scan.stored_path)))
    for artifacts in session.scalars(select(ComparisonRecord.artifacts)):
        refs.update(artifacts.values())
    return refs


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
    # paths from the database are followed only inside objects/, and the bytes are the stored ones
    base_file = store.verified_file(base.path, base.sha256, f"scan {base.id}")
    cur_file = store.verified_file(cur.path, cur.sha256, f"scan {cur.id}")
    result = run(base_file, cur_file, light, px_per_mm)
    staging = store.tmp_dir / f"cmp-{uuid.uuid4().hex}"
    try:
        files: Mapping[str, Path] = {}
        if write is not None:
            staging.mkdir(parents=True)
            files = write(result, staging / "out")
        return record_comparison(store, base, cur, result, key, files, replace=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _regions_of(row: ComparisonRecord) -> tuple[Region, ...]:
    return tuple(
        Region(
            id=r.number,
            polarity="bulge" if r.polarity == "bulge" else "recession",
            centroid=(r.centroid_x, r.centroid_y),
            bbox=(r.bbox_x0, r.bbox_y0, r.bbox_x1, r.bbox_y1),
            area_px=r.area_px,
            peak=r.peak,
            mean=r.mean,
            significance=r.significance,
            area_mm2=r.area_mm2,
        )
        for r in row.regions
    )


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


def latest_comparison_id(store: Store, slug: str) -> int:
    """Id of the artwork's most recent comparison (newest current scan, then newest row).

    Parameters
    ----------
    store
        The open store.
    slug
        Artwork id.

    Returns
    -------
    int
        The comparison id.
    """
    history_ids = [e.comparison_id for e in history(store, slug).entries]
    if not history_ids:
        raise MonitorError(f"artwork {slug!r} has no comparison yet; run 'monitor compare {slug}'")
    return history_ids[-1]


# --------------------------------------------------------------------------- history


def peak_mm(peak: float, method: str, px_per_mm: float | None) -> float | None:
    """A peak height in millimetres, when the method measures in pixel pitch and the scale is known.

    Parameters
    ----------
    peak
        Peak height change as stored.
    method
        Change method; only ``photometric`` heights are in baseline pixel pitch.
    px_per_mm
        Baseline pixels per millimetre.

    Returns
    -------
    float or None
        Millimetres, or None when not convertible.
    """
    if px_per_mm and method == "photometric":
        return peak / px_per_mm
    return None


def _largest(
    regions: Sequence[Region], method: str, px_per_mm: float | None
) -> RegionSummary | None:
    if not regions:
        return None
    best = max(regions, key=lambda r: (r.area_px, abs(r.peak)))
    return RegionSummary(
        number=best.id,
        peak=best.peak,
        peak_mm=peak_mm(best.peak, method, px_per_mm),
        area_px=best.area_px,
        area_mm2=best.area_mm2,
    )


def trend(times: Sequence[datetime], values: Sequence[float]) -> str:
    """Direction of a series: a least-squares line over time, judged relative to its mean.

    Parameters
    ----------
    times
        When each value was observed (the current scan's capture time).
    values
        Changed area of each comparison.

    Returns
    -------
    str
        ``rising``, ``falling``, ``stable`` (fitted change across the history
        within :data:`TREND_TOLERANCE` of the mean) or ``insufficient data``
        (fewer than two comparisons).
    """
    if len(values) < 2:
        return "insufficient data"
    y = np.asarray(values, dtype=np.float64)
    t = np.array([(ts - times[0]).total_seconds() / 86400.0 for ts in times])
    if np.ptp(t) <= 0:
        t = np.arange(len(y), dtype=np.float64)
    scale = float(np.mean(np.abs(y)))
    if scale == 0.0:
        return "stable"
    slope = float(np.polyfit(t, y, 1)[0])
    relative = slope * float(np.ptp(t)) / scale
    if abs(relative) <= TREND_TOLERANCE:
        return "stable"
    return "rising" if relative > 0 else "falling"


def history(store: Store, slug: str) -> ArtworkHistory:
    """Every comparison of an artwork in time order, with region statistics and the trend.

    Time order is the current scan's capture time, then the baseline's, then
    the comparison id.

    Parameters
    ----------
    store
        The open store.
    slug
        Artwork id.

    Returns
    -------
    ArtworkHistory
        The entries and the trend of the changed area.
    """
    with Session(store.engine) as session:
        art = _get_artwork(session, slug)
        base_scan = aliased(Scan)
        cur_scan = aliased(Scan)
        rows = session.scalars(
            select(ComparisonRecord)
            .join(base_scan, ComparisonRecord.baseline_scan_id == base_scan.id)
            .join(cur_scan, ComparisonRecord.current_scan_id == cur_scan.id)
            .where(ComparisonRecord.artwork_id == art.id)
            .order_by(cur_scan.captured_at, base_scan.captured_at, ComparisonRecord.id)
        ).all()
        entries = []
        for row in rows:
            regions = _regions_of(row)
            bulges = [r for r in regions if r.polarity == "bulge"]
            recessions = [r for r in regions if r.polarity == "recession"]
            entries.append(
                HistoryEntry(
                    comparison_id=row.id,
                    created_at=row.created_at,
                    baseline_scan_id=row.baseline_scan_id,
                    baseline_captured_at=row.baseline_scan.captured_at,
                    current_scan_id=row.current_scan_id,
                    current_captured_at=row.current_scan.captured_at,
                    method=row.method,
                    n_bulge=len(bulges),
                    n_recession=len(recessions),
                    largest_bulge=_largest(bulges, row.method, row.px_per_mm),
                    largest_recession=_largest(recessions, row.method, row.px_per_mm),
                    changed_area_px=row.changed_area_px,
                    changed_area_mm2=row.changed_area_mm2,
                    max_abs_peak=max((abs(r.peak) for r in regions), default=0.0),
                )
            )
        info = _artwork_info(art)
    use_mm = bool(entries) and all(e.changed_area_mm2 is not None for e in entries)
    values = [
        float(e.changed_area_mm2) if use_mm and e.changed_area_mm2 is not None
        else e.changed_area_px
        for e in entries
    ]
    return ArtworkHistory(
        artwork=info,
        entries=tuple(entries),
        trend=trend([e.current_captured_at for e in entries], values),
        trend_units="mm2" if use_mm else "px",
    )


HISTORY_CSV_COLUMNS = (
    "comparison_id",
    "created_at",
    "baseline_scan_id",
    "baseline_captured_at",
    "current_scan_id",
    "current_captured_at",
    "method",
    "n_bulge",
    "n_recession",
    "largest_bulge_peak",
    "largest_bulge_area_px",
    "largest_bulge_area_mm2",
    "largest_recession_peak",
    "largest_recession_area_px",
    "largest_recession_area_mm2",
    "changed_area_px",
    "changed_area_mm2",
)


def history_rows(hist: ArtworkHistory) -> list[dict[str, object]]:
    """Flat rows of a history (one per comparison) for CSV.

    Parameters
    ----------
    hist
        From :func:`history`.

    Returns
    -------
    list of dict
        Keys are :data:`HISTORY_CSV_COLUMNS`.
    """
    rows = []
    for e in hist.entries:
        row: dict[str, object] = {
            "comparison_id": e.comparison_id,
            "created_at": e.created_at.isoformat(),
            "baseline_scan_id": e.baseline_scan_id,
            "baseline_captured_at": e.baseline_captured_at.isoformat(),
            "current_scan_id": e.current_scan_id,
            "current_captured_at": e.current_captured_at.isoformat(),
            "method": e.method,
            "n_bulge": e.n_bulge,
            "n_recession": e.n_recession,
            "changed_area_px": e.changed_area_px,
            "changed_area_mm2": e.changed_area_mm2,
        }
        for name, largest in (("bulge", e.largest_bulge), ("recession", e.largest_recession)):
            row[f"largest_{name}_peak"] = None if largest is None else largest.peak
            row[f"largest_{name}_area_px"] = None if largest is None else largest.area_px
            row[f"largest_{name}_area_mm2"] = None if largest is None else largest.area_mm2
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- housekeeping


@dataclass(frozen=True)
class StoreProblem:
    """A row whose stored file is missing or no longer holds the bytes it was stored with."""

    kind: str  # "scan" or "comparison"
    row_id: int
    name: str  # "file" for a scan, the artifact's name for a comparison
    path: str  # relative to the home
    problem: str  # "missing" or "hash mismatch"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready fields."""
        return asdict(self)

    def line(self) -> str:
        """One line for a listing."""
        what = f"{self.kind} {self.row_id}" + ("" if self.kind == "scan" else f" {self.name}")
        return f"{what}: {self.problem}: {self.path}"


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of :func:`verify_store`."""

    scans: int  # scan rows checked
    artifacts: int  # comparison artifact files checked
    problems: tuple[StoreProblem, ...]

    @property
    def ok(self) -> bool:
        """True when no row lost its file."""
        return not self.problems

    def summary(self) -> str:
        """One summary line."""
        state = "ok" if self.ok else f"{len(self.problems)} problem(s)"
        return f"{state}: checked {self.scans} scan(s) and {self.artifacts} comparison file(s)"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready fields."""
        return {
            "ok": self.ok,
            "scans": self.scans,
            "artifacts": self.artifacts,
            "problems": [p.to_dict() for p in self.problems],
        }


def _check_object(store: Store, rel: str, sha: str | None) -> str | None:
    try:
        path = store.stored_file(rel)
    except MonitorError:
        return "outside the store's objects/ (altered row?)"
    if not path.is_file():
        return "missing"
    if sha is None:  # artifacts are named by their hash
        sha = Path(rel).name.split(".", 1)[0]
    try:
        return None if sha256_file(path) == sha else "hash mismatch"
    except MonitorError:
        return "unreadable"


def verify_store(store: Store) -> VerifyReport:
    """Check that every scan and comparison artifact row has its file, with the right bytes.

    Reports are rendered on demand (``monitor report``) and not stored, so
    there is nothing of theirs to check.

    Parameters
    ----------
    store
        The open store.

    Returns
    -------
    VerifyReport
        Counts and one :class:`StoreProblem` per missing or altered file.

    Examples
    --------
    >>> report = verify_store(store)  # doctest: +SKIP
    >>> report.ok, report.summary()  # doctest: +SKIP
    (True, 'ok: checked 2 scan(s) and 3 comparison file(s)')
    """
    try:
        with Session(store.engine) as session:
            scans = list(session.execute(select(Scan.id, Scan.stored_path, Scan.sha256)))
            comparisons = list(
                session.execute(select(ComparisonRecord.id, ComparisonRecord.artifacts))
            )
    except SQLAlchemyError as exc:
        raise _db_error("reading the rows to verify", exc) from exc
    problems: list[StoreProblem] = []
    for scan_id, rel, sha in scans:
        if (problem := _check_object(store, rel, sha)) is not None:
            problems.append(StoreProblem("scan", scan_id, "file", rel, problem))
    n_artifacts = 0
    for comparison_id, artifacts in comparisons:
        for name, rel in sorted((artifacts or {}).items()):
            n_artifacts += 1
            if (problem := _check_object(store, rel, None)) is not None:
                problems.append(StoreProblem("comparison", comparison_id, name, rel, problem))
    return VerifyReport(scans=len(scans), artifacts=n_artifacts, problems=tuple(problems))



def collect_garbage(store: Store, *, min_age_s: float = 3600.0) -> list[str]:
    """Remove files no row refers to (left by a crash between rename and commit) and stale temps.

    Objects are checked against the rows and removed while holding the
    store's write lock, the lock writers hold from putting an object into
    place until their row is committed. Only files older than ``min_age_s``
    are touched, so that temporary files of work in progress survive.

    Parameters
    ----------
    store
        The open store.
    min_age_s
        Minimum age (modification time) of a file or staging folder to remove.

    Returns
    -------
    list of str
        Removed paths, relative to the home.
    """
    cutoff = time.time() - min_age_s
    removed: list[str] = []

    def old(path: Path) -> bool:
        try:
            return path.stat().st_mtime <= cutoff
        except OSError:
            return False

    try:
        with Session(store.engine) as session, session.begin():
            _lock(session)  # the same lock writers place objects under
            refs = _referenced_objects(session)
            if store.objects_dir.is_dir():
                for path in sorted(store.objects_dir.rglob("*")):
                    rel = path.relative_to(store.home).as_posix()
                    if path.is_file() and rel not in refs and old(path):
                        path.unlink(missing_ok=True)
                        removed.append(rel)
    except SQLAlchemyError as exc:
        raise _db_error("collecting garbage", exc) from exc
    if store.tmp_dir.is_dir():
        for path in sorted(store.tmp_dir.iterdir()):
            if not old(path):
                continue
            removed.append(path.relative_to(store.home).as_posix())
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    return removed
