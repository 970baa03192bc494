"""The records the store hands out (frozen dataclasses) and the validation of what comes in."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from monitor.errors import MonitorError
from monitor.results import Comparison, ImageData, Light, Region, ScaledRegion
from monitor.store.models import Artwork, ComparisonRecord, Scan

SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


RunFn = Callable[[Path, Path, Light, float | None], Comparison]


WriteFn = Callable[[Comparison, Path], Mapping[str, Path]]


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


def _optional_text(name: str, value: str | None, max_len: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > max_len:
        raise MonitorError(f"{name} is longer than {max_len} characters")
    return value or None


def _positive(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or value <= 0:
        raise MonitorError(f"{name} must be a positive number, got {value}")
    return float(value)


def _angle(name: str, value: float | None, low: float, high: float) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or not low <= value <= high:
        raise MonitorError(f"{name} must be between {low:g} and {high:g} degrees, got {value}")
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
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


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
