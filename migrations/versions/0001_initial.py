"""Initial schema: artwork, scan, comparison, region.

Revision ID: 0001
Revises:
Create Date: 2025-11-25

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "artwork",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("artist", sa.String(length=500), nullable=True),
        sa.Column("date", sa.String(length=100), nullable=True),
        sa.Column("medium", sa.String(length=500), nullable=True),
        sa.Column("width_mm", sa.Float(), nullable=True),
        sa.Column("height_mm", sa.Float(), nullable=True),
        sa.Column("location", sa.String(length=500), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artwork")),
        sa.UniqueConstraint("slug", name=op.f("uq_artwork_slug")),
    )
    op.create_table(
        "scan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("artwork_id", sa.Integer(), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("stored_path", sa.String(length=300), nullable=False),
        sa.Column("original_name", sa.String(length=500), nullable=True),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("px_per_mm", sa.Float(), nullable=True),
        sa.Column("light_azimuth", sa.Float(), nullable=True),
        sa.Column("light_elevation", sa.Float(), nullable=True),
        sa.Column("camera", sa.String(length=200), nullable=True),
        sa.Column("operator", sa.String(length=200), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.CheckConstraint("width > 0 AND height > 0", name=op.f("ck_scan_positive_size")),
        sa.CheckConstraint(
            "px_per_mm IS NULL OR px_per_mm > 0", name=op.f("ck_scan_positive_scale")
        ),
        sa.ForeignKeyConstraint(
            ["artwork_id"], ["artwork.id"], name=op.f("fk_scan_artwork_id_artwork"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan")),
        sa.UniqueConstraint("artwork_id", "sha256", name=op.f("uq_scan_artwork_id_sha256")),
    )
    op.create_table(
        "comparison",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("artwork_id", sa.Integer(), nullable=False),
        sa.Column("baseline_scan_id", sa.Integer(), nullable=False),
        sa.Column("current_scan_id", sa.Integer(), nullable=False),
        sa.Column("cache_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("software_version", sa.String(length=50), nullable=False),
        sa.Column("method", sa.String(length=100), nullable=False),
        sa.Column("model_id", sa.String(length=300), nullable=False),
        sa.Column("weights_sha256", sa.String(length=64), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("n_matches", sa.Integer(), nullable=False),
        sa.Column("n_inliers", sa.Integer(), nullable=False),
        sa.Column("rmse_homography_px", sa.Float(), nullable=False),
        sa.Column("rmse_px", sa.Float(), nullable=False),
        sa.Column("homography", sa.JSON(), nullable=False),
        sa.Column("align_scale", sa.Float(), nullable=True),
        sa.Column("align_shift", sa.Float(), nullable=True),
        sa.Column("align_n_used", sa.Integer(), nullable=True),
        sa.Column("align_inlier_fraction", sa.Float(), nullable=True),
        sa.Column("analysis_scale", sa.Float(), nullable=False),
        sa.Column("noise_sigma", sa.Float(), nullable=False),
        sa.Column("px_per_mm", sa.Float(), nullable=True),
        sa.Column("light_azimuth", sa.Float(), nullable=False),
        sa.Column("light_elevation", sa.Float(), nullable=False),
        sa.Column("n_regions", sa.Integer(), nullable=False),
        sa.Column("changed_area_px", sa.Float(), nullable=False),
        sa.Column("changed_area_mm2", sa.Float(), nullable=True),
        sa.Column("timings", sa.JSON(), nullable=False),
        sa.Column("artifacts", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["artwork_id"], ["artwork.id"], name=op.f("fk_comparison_artwork_id_artwork"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["baseline_scan_id"], ["scan.id"],
            name=op.f("fk_comparison_baseline_scan_id_scan"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["current_scan_id"], ["scan.id"],
            name=op.f("fk_comparison_current_scan_id_scan"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comparison")),
        sa.UniqueConstraint("cache_key", name=op.f("uq_comparison_cache_key")),
    )
    op.create_table(
        "region",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("comparison_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("polarity", sa.String(length=16), nullable=False),
        sa.Column("centroid_x", sa.Float(), nullable=False),
        sa.Column("centroid_y", sa.Float(), nullable=False),
        sa.Column("bbox_x0", sa.Float(), nullable=False),
        sa.Column("bbox_y0", sa.Float(), nullable=False),
        sa.Column("bbox_x1", sa.Float(), nullable=False),
        sa.Column("bbox_y1", sa.Float(), nullable=False),
        sa.Column("area_px", sa.Float(), nullable=False),
        sa.Column("area_mm2", sa.Float(), nullable=True),
        sa.Column("peak", sa.Float(), nullable=False),
        sa.Column("mean", sa.Float(), nullable=False),
        sa.Column("significance", sa.Float(), nullable=False),
        sa.CheckConstraint("area_px >= 0", name=op.f("ck_region_area")),
        sa.CheckConstraint("polarity IN ('bulge', 'recession')", name=op.f("ck_region_polarity")),
        sa.ForeignKeyConstraint(
            ["comparison_id"], ["comparison.id"],
            name=op.f("fk_region_comparison_id_comparison"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_region")),
        sa.UniqueConstraint("comparison_id", "number", name=op.f("uq_region_comparison_id_number")),
    )


def downgrade() -> None:
    op.drop_table("region")
    op.drop_table("comparison")
    op.drop_table("scan")
    op.drop_table("artwork")
