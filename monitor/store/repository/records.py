"""The records the store hands out (frozen dataclasses) and the validation of what comes in."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from monitor.errors import MonitorError
from monitor.results import (
    AppearanceRegion,
    ImageData,
    Light,
    Outline,
    Region,
    ScaledRegion,
)
from monitor.store.models import Artwork, ComparisonRecord, Scan

SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


ReaderFn = Callable[[Path], ImageData]


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
    accession_number: str | None = None
    owner: str | None = None
    venue: str | None = None
    exhibition: str | None = None
    frame: str | None = None
    glazing: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return asdict(self)


#: Loan fields of an artwork (free text, at most this many characters).
LOAN_FIELDS: dict[str, int] = {
    "accession_number": 200,
    "owner": 500,
    "venue": 500,
    "exhibition": 500,
    "frame": 500,
    "glazing": 500,
}


@dataclass(frozen=True)
class Annotation:
    """What the examiner records on a comparison (``monitor comparison annotate``)."""

    examiner: str | None = None
    examined_at: str | None = None
    conditions: str | None = None
    condition: str | None = None
    recommendations: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return asdict(self)


#: Annotation fields and their largest length.
ANNOTATION_FIELDS: dict[str, int] = {
    "examiner": 200,
    "examined_at": 40,
    "conditions": 10_000,
    "condition": 100_000,
    "recommendations": 100_000,
}


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
    light_source: str = "ingest"  # "sidecar" when read from the inbox's sidecar file


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
    n_lights: int | None = None  # a multi-light scan: its lamps (``path`` is its .lp manifest)
    light_source: str | None = None  # "ingest" / "sidecar"; None: no light recorded

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
    series: str = "other"  # "since first scan", "scan to scan" or "other"
    wording: str = ""  # plain words, e.g. "stable since the last scan"
    n_appearance: int = 0

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
    summary: str = ""  # plain words for the whole history
    tracks: tuple[TrackPoint, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "artwork": self.artwork.to_dict(),
            "comparisons": [e.to_dict() for e in self.entries],
            "trend": self.trend,
            "trend_units": self.trend_units,
            "summary": self.summary,
            "tracks": [t.to_dict() for t in self.tracks],
        }


@dataclass(frozen=True)
class TrackPoint:
    """One sighting of a tracked region: its number across comparisons, and its size then."""

    track: int
    comparison_id: int
    number: int  # its number within that comparison
    captured_at: datetime  # the current scan's capture time
    polarity: str
    area_px: float
    area_mm2: float | None
    peak: float
    peak_mm: float | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        out = asdict(self)
        out["captured_at"] = self.captured_at.isoformat()
        return out


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
    appearance: tuple[AppearanceRegion, ...] = ()
    annotation: Annotation = field(default_factory=Annotation)
    outline: Outline | None = None

    @property
    def appearance_findings(self) -> list[str]:
        """One line per appearance finding (colour change, not relief), for viewers."""
        return [
            f"A{a.id}: {a.kind}, CIEDE2000 {a.delta_e_mean:.1f} (max {a.delta_e_max:.0f}), "
            + (f"{a.area_mm2:.3g} mm²" if a.area_mm2 is not None else f"{a.area_px:.0f} px²")
            for a in self.appearance
        ]
    # where the lamp came from (given, sidecar, ingest, estimated, default; None
    # before migration 0003 filled it), the estimate's uncertainty, whether the
    # scans disagreed with a claimed lamp (None: not checked) and the message
    light_source: str | None = None
    light_uncertainty: float | None = None
    light_disagrees: bool | None = None
    light_message: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        skip = {"artwork", "baseline", "current", "regions", "light", "artifacts", "appearance",
                "annotation", "outline"}
        out: dict[str, object] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip
        }
        out["appearance"] = [a.to_dict(self.px_per_mm) for a in self.appearance]
        out["annotation"] = self.annotation.to_dict()
        out["outline"] = None if self.outline is None else self.outline.to_dict(self.px_per_mm)
        out["created_at"] = self.created_at.isoformat()
        out["homography"] = list(self.homography)
        out["artwork"] = self.artwork.to_dict()
        out["baseline"] = self.baseline.to_dict()
        out["current"] = self.current.to_dict()
        out["light"] = {
            **asdict(self.light),
            "source": self.light_source,
            "azimuth_uncertainty_deg": self.light_uncertainty,
            "disagrees": self.light_disagrees,
            "message": self.light_message,
        }
        for name in ("light_source", "light_uncertainty", "light_disagrees", "light_message"):
            out.pop(name, None)
        out["regions"] = [
            r.to_dict(self.px_per_mm, height_in_px=self.method in ("photometric", "pair"))
            for r in self.regions
        ]
        out["artifacts"] = {k: str(v) for k, v in self.artifacts.items()}
        return out


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
        n_lights=scan.n_lights,
        light_source=scan.light_source,
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
        **{name: getattr(art, name) for name in LOAN_FIELDS},
    )


def _get_artwork(session: Session, slug: str) -> Artwork:
    validate_slug(slug)
    art = session.scalar(select(Artwork).where(Artwork.slug == slug))
    if art is None:
        raise MonitorError(no_artwork_message(slug, session.scalars(select(Artwork.slug)).all()))
    return art


def no_artwork_message(slug: str, known: Sequence[str]) -> str:
    """The error for an unknown slug: the nearest known slugs, never an invitation to duplicate.

    Examples
    --------
    >>> no_artwork_message("nightwatch", ["night-watch", "sunflowers"])
    "no artwork 'nightwatch'; did you mean 'night-watch'? (list them with 'monitor artwork list')"
    >>> no_artwork_message("x", []).startswith("no artwork 'x'; there are no artworks yet")
    True
    """
    if not known:
        return (f"no artwork {slug!r}; there are no artworks yet "
                "(add one with 'monitor artwork add SLUG --title ...')")
    near = difflib.get_close_matches(slug, list(known), n=3, cutoff=0.6)
    hint = (f"did you mean {' or '.join(repr(n) for n in near)}? " if near else "")
    return f"no artwork {slug!r}; {hint}(list them with 'monitor artwork list')"


def _db_error(action: str, exc: SQLAlchemyError) -> MonitorError:
    detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return MonitorError(f"{action} failed: {detail}")


def _regions_of(row: ComparisonRecord) -> tuple[Region, ...]:
    out: list[Region] = []
    for r in row.regions:
        fields = {
            "id": r.number,
            "polarity": "bulge" if r.polarity == "bulge" else "recession",
            "centroid": (r.centroid_x, r.centroid_y),
            "bbox": (r.bbox_x0, r.bbox_y0, r.bbox_x1, r.bbox_y1),
            "area_px": r.area_px,
            "peak": r.peak,
            "mean": r.mean,
            "significance": r.significance,
            "area_mm2": r.area_mm2,
        }
        if r.level is None:
            out.append(Region(**fields))  # type: ignore[arg-type]
        else:
            out.append(ScaledRegion(**fields, scale_px=r.scale_px or 1.0,  # type: ignore[arg-type]
                                    scale_mm=r.scale_mm, level=r.level))
    return tuple(out)


def _appearance_of(row: ComparisonRecord) -> tuple[AppearanceRegion, ...]:
    return tuple(
        AppearanceRegion(
            id=a.number,
            kind="possible loss" if a.kind == "possible loss" else "discoloration",
            centroid=(a.centroid_x, a.centroid_y),
            bbox=(a.bbox_x0, a.bbox_y0, a.bbox_x1, a.bbox_y1),
            area_px=a.area_px,
            delta_e_mean=a.delta_e_mean,
            delta_e_max=a.delta_e_max,
            delta_l=a.delta_l,
            delta_chroma=a.delta_chroma,
            area_mm2=a.area_mm2,
        )
        for a in row.appearance_regions
    )


def _annotation_of(row: ComparisonRecord) -> Annotation:
    return Annotation(**{name: getattr(row, name) for name in ANNOTATION_FIELDS})


def _outline_of(row: ComparisonRecord) -> Outline | None:
    if not row.outline or len(row.outline) != 4:
        return None
    source = row.outline_source if row.outline_source in ("found", "image", "user") else "found"
    return Outline(tuple(float(v) for v in row.outline), source)  # type: ignore[arg-type]
