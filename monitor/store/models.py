"""SQLAlchemy 2 typed models of the artwork history store.

The schema is created and changed only through the Alembic migrations in
``migrations/`` (see :mod:`monitor.store.db`); these classes describe it for
queries. Everything here is portable SQL (SQLite, PostgreSQL, MySQL): string
lengths are explicit, JSON columns use :class:`sqlalchemy.JSON` and times are
stored in UTC through :class:`UTCDateTime`.

Paths stored in rows (``Scan.stored_path``, ``ComparisonRecord.artifacts``)
are relative to the data home, so a home can be moved as a whole.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite keeps no zone, so values are normalised to UTC on the way in and
    marked UTC on the way out; naive inputs are refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so migrations name constraints."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Artwork(Base):
    """One painting, identified by a stable slug."""

    __tablename__ = "artwork"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    artist: Mapped[str | None] = mapped_column(String(500))
    date: Mapped[str | None] = mapped_column(String(100))
    medium: Mapped[str | None] = mapped_column(String(500))
    width_mm: Mapped[float | None] = mapped_column(Float)
    height_mm: Mapped[float | None] = mapped_column(Float)
    location: Mapped[str | None] = mapped_column(String(500))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # loan condition report (migration 0004)
    accession_number: Mapped[str | None] = mapped_column(String(200))
    owner: Mapped[str | None] = mapped_column(String(500))
    venue: Mapped[str | None] = mapped_column(String(500))
    exhibition: Mapped[str | None] = mapped_column(String(500))
    frame: Mapped[str | None] = mapped_column(String(500))
    glazing: Mapped[str | None] = mapped_column(String(500))

    scans: Mapped[list[Scan]] = relationship(
        back_populates="artwork", cascade="all, delete-orphan", order_by="Scan.captured_at"
    )


class Scan(Base):
    """One photograph of an artwork, kept in the content-addressed store."""

    __tablename__ = "scan"
    __table_args__ = (
        UniqueConstraint("artwork_id", "sha256"),
        CheckConstraint("width > 0 AND height > 0", name="positive_size"),
        CheckConstraint("px_per_mm IS NULL OR px_per_mm > 0", name="positive_scale"),
        Index("ix_scan_artwork_captured", "artwork_id", "captured_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    artwork_id: Mapped[int] = mapped_column(ForeignKey("artwork.id", ondelete="CASCADE"))
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sha256: Mapped[str] = mapped_column(String(64))
    stored_path: Mapped[str] = mapped_column(String(300))
    original_name: Mapped[str | None] = mapped_column(String(500))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    px_per_mm: Mapped[float | None] = mapped_column(Float)
    light_azimuth: Mapped[float | None] = mapped_column(Float)
    light_elevation: Mapped[float | None] = mapped_column(Float)
    # where the recorded light came from: "ingest" (the command's flags) or
    # "sidecar" (the inbox's sidecar file); None when no light was recorded
    light_source: Mapped[str | None] = mapped_column(String(20))
    camera: Mapped[str | None] = mapped_column(String(200))
    operator: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)
    #: Multi-light capture: its lamp count and the original light file (.lp / .csv)
    #: as an object; ``stored_path`` is then the canonical ``.lp`` manifest naming
    #: the content-addressed images. Both NULL for one photograph.
    n_lights: Mapped[int | None] = mapped_column(Integer)
    light_file_path: Mapped[str | None] = mapped_column(String(300))

    artwork: Mapped[Artwork] = relationship(back_populates="scans")
    images: Mapped[list[ScanImage]] = relationship(
        back_populates="scan", cascade="all, delete-orphan", order_by="ScanImage.position"
    )


class ScanImage(Base):
    """One photograph of a multi-light scan (one lamp), kept in the content-addressed store."""

    __tablename__ = "scan_image"
    __table_args__ = (UniqueConstraint("scan_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("scan.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    stored_path: Mapped[str] = mapped_column(String(300))
    original_name: Mapped[str | None] = mapped_column(String(500))

    scan: Mapped[Scan] = relationship(back_populates="images")


class ComparisonRecord(Base):
    """A stored comparison of two scans of the same artwork.

    ``cache_key`` is the sha256 of the request (both images, the parameters,
    the light, the scale and the software version): a second request with the
    same key reuses this row.
    """

    __tablename__ = "comparison"
    __table_args__ = (
        Index("ix_comparison_artwork_created", "artwork_id", "created_at"),
        Index("ix_comparison_scans", "baseline_scan_id", "current_scan_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    artwork_id: Mapped[int] = mapped_column(ForeignKey("artwork.id", ondelete="CASCADE"))
    baseline_scan_id: Mapped[int] = mapped_column(ForeignKey("scan.id", ondelete="CASCADE"))
    current_scan_id: Mapped[int] = mapped_column(ForeignKey("scan.id", ondelete="CASCADE"))
    cache_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    software_version: Mapped[str] = mapped_column(String(50))
    method: Mapped[str] = mapped_column(String(100))
    model_id: Mapped[str] = mapped_column(String(300))
    weights_sha256: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    # registration figures
    n_matches: Mapped[int] = mapped_column(Integer)
    n_inliers: Mapped[int] = mapped_column(Integer)
    rmse_homography_px: Mapped[float] = mapped_column(Float)
    rmse_px: Mapped[float] = mapped_column(Float)
    homography: Mapped[list[float]] = mapped_column(JSON)
    # alignment coefficients (None when the method fits none)
    align_scale: Mapped[float | None] = mapped_column(Float)
    align_shift: Mapped[float | None] = mapped_column(Float)
    align_n_used: Mapped[int | None] = mapped_column(Integer)
    align_inlier_fraction: Mapped[float | None] = mapped_column(Float)
    # summary figures
    analysis_scale: Mapped[float] = mapped_column(Float)
    noise_sigma: Mapped[float] = mapped_column(Float)
    px_per_mm: Mapped[float | None] = mapped_column(Float)
    light_azimuth: Mapped[float] = mapped_column(Float)
    light_elevation: Mapped[float] = mapped_column(Float)
    # the lamp's source (given, sidecar, ingest, estimated, default), the
    # estimate's ~2 sigma azimuth uncertainty (None for a claimed lamp), whether
    # the scans disagreed with a claimed lamp and what the user was told, and
    # the scans' own estimates (pair, baseline, current)
    light_source: Mapped[str | None] = mapped_column(String(20))
    light_uncertainty: Mapped[float | None] = mapped_column(Float)
    light_disagrees: Mapped[bool | None] = mapped_column(Boolean)
    light_message: Mapped[str | None] = mapped_column(Text)
    light_evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    n_regions: Mapped[int] = mapped_column(Integer)
    changed_area_px: Mapped[float] = mapped_column(Float)
    changed_area_mm2: Mapped[float | None] = mapped_column(Float)
    timings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    artifacts: Mapped[dict[str, str]] = mapped_column(JSON)
    # the examiner's record (migration 0004): free text a person adds to a comparison
    examiner: Mapped[str | None] = mapped_column(String(200))
    examined_at: Mapped[str | None] = mapped_column(String(40))
    conditions: Mapped[str | None] = mapped_column(Text)
    condition: Mapped[str | None] = mapped_column(Text)
    recommendations: Mapped[str | None] = mapped_column(Text)
    # the work's outline in the baseline, (x0, y0, x1, y1) px, and where it came from
    outline: Mapped[list[float] | None] = mapped_column(JSON(none_as_null=True))
    outline_source: Mapped[str | None] = mapped_column(String(16))

    artwork: Mapped[Artwork] = relationship()
    baseline_scan: Mapped[Scan] = relationship(foreign_keys=[baseline_scan_id])
    current_scan: Mapped[Scan] = relationship(foreign_keys=[current_scan_id])
    regions: Mapped[list[RegionRecord]] = relationship(
        back_populates="comparison",
        cascade="all, delete-orphan",
        order_by="RegionRecord.number",
    )
    appearance_regions: Mapped[list[AppearanceRecord]] = relationship(
        back_populates="comparison",
        cascade="all, delete-orphan",
        order_by="AppearanceRecord.number",
    )


class RegionRecord(Base):
    """One region of significant change of a stored comparison."""

    __tablename__ = "region"
    __table_args__ = (
        UniqueConstraint("comparison_id", "number"),
        CheckConstraint("polarity IN ('bulge', 'recession')", name="polarity"),
        CheckConstraint("area_px >= 0", name="area"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    comparison_id: Mapped[int] = mapped_column(ForeignKey("comparison.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    polarity: Mapped[str] = mapped_column(String(16))
    centroid_x: Mapped[float] = mapped_column(Float)
    centroid_y: Mapped[float] = mapped_column(Float)
    bbox_x0: Mapped[float] = mapped_column(Float)
    bbox_y0: Mapped[float] = mapped_column(Float)
    bbox_x1: Mapped[float] = mapped_column(Float)
    bbox_y1: Mapped[float] = mapped_column(Float)
    area_px: Mapped[float] = mapped_column(Float)
    area_mm2: Mapped[float | None] = mapped_column(Float)
    peak: Mapped[float] = mapped_column(Float)
    mean: Mapped[float] = mapped_column(Float)
    significance: Mapped[float] = mapped_column(Float)
    # the scale a multi-scale region was found at (NULL: single-grid route)
    scale_px: Mapped[float | None] = mapped_column(Float)
    scale_mm: Mapped[float | None] = mapped_column(Float)
    level: Mapped[int | None] = mapped_column(Integer)

    comparison: Mapped[ComparisonRecord] = relationship(back_populates="regions")


class AppearanceRecord(Base):
    """One appearance finding (colour change, not relief) of a stored comparison."""

    __tablename__ = "appearance_region"
    __table_args__ = (
        UniqueConstraint("comparison_id", "number"),
        CheckConstraint("kind IN ('discoloration', 'possible loss')", name="kind"),
        CheckConstraint("area_px >= 0", name="area"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    comparison_id: Mapped[int] = mapped_column(ForeignKey("comparison.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    centroid_x: Mapped[float] = mapped_column(Float)
    centroid_y: Mapped[float] = mapped_column(Float)
    bbox_x0: Mapped[float] = mapped_column(Float)
    bbox_y0: Mapped[float] = mapped_column(Float)
    bbox_x1: Mapped[float] = mapped_column(Float)
    bbox_y1: Mapped[float] = mapped_column(Float)
    area_px: Mapped[float] = mapped_column(Float)
    area_mm2: Mapped[float | None] = mapped_column(Float)
    delta_e_mean: Mapped[float] = mapped_column(Float)
    delta_e_max: Mapped[float] = mapped_column(Float)
    delta_l: Mapped[float] = mapped_column(Float)
    delta_chroma: Mapped[float] = mapped_column(Float)

    comparison: Mapped[ComparisonRecord] = relationship(back_populates="appearance_regions")
