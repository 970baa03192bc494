"""Loan condition report fields, the examiner's record, the work's outline, appearance findings.

Artwork: accession number, owner / lender, venue, exhibition, frame, glazing.
Comparison: examiner, examination date, conditions, overall condition,
recommendations (free text recorded with ``monitor comparison annotate``),
and the work's outline in the baseline (found, or set by the user).
A table of appearance findings (colour change that is not relief).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ARTWORK_TEXT = (
    ("accession_number", 200),
    ("owner", 500),
    ("venue", 500),
    ("exhibition", 500),
    ("frame", 500),
    ("glazing", 500),
)


def upgrade() -> None:
    with op.batch_alter_table("artwork") as batch:
        for name, length in ARTWORK_TEXT:
            batch.add_column(sa.Column(name, sa.String(length), nullable=True))
    with op.batch_alter_table("comparison") as batch:
        batch.add_column(sa.Column("examiner", sa.String(200), nullable=True))
        batch.add_column(sa.Column("examined_at", sa.String(40), nullable=True))
        batch.add_column(sa.Column("conditions", sa.Text(), nullable=True))
        batch.add_column(sa.Column("condition", sa.Text(), nullable=True))
        batch.add_column(sa.Column("recommendations", sa.Text(), nullable=True))
        batch.add_column(sa.Column("outline", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("outline_source", sa.String(16), nullable=True))
    op.create_table(
        "appearance_region",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("comparison_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("centroid_x", sa.Float(), nullable=False),
        sa.Column("centroid_y", sa.Float(), nullable=False),
        sa.Column("bbox_x0", sa.Float(), nullable=False),
        sa.Column("bbox_y0", sa.Float(), nullable=False),
        sa.Column("bbox_x1", sa.Float(), nullable=False),
        sa.Column("bbox_y1", sa.Float(), nullable=False),
        sa.Column("area_px", sa.Float(), nullable=False),
        sa.Column("area_mm2", sa.Float(), nullable=True),
        sa.Column("delta_e_mean", sa.Float(), nullable=False),
        sa.Column("delta_e_max", sa.Float(), nullable=False),
        sa.Column("delta_l", sa.Float(), nullable=False),
        sa.Column("delta_chroma", sa.Float(), nullable=False),
        sa.CheckConstraint("kind IN ('discoloration', 'possible loss')",
                           name=op.f("ck_appearance_region_kind")),
        sa.CheckConstraint("area_px >= 0", name=op.f("ck_appearance_region_area")),
        sa.ForeignKeyConstraint(["comparison_id"], ["comparison.id"], ondelete="CASCADE",
                                name=op.f("fk_appearance_region_comparison_id_comparison")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appearance_region")),
        sa.UniqueConstraint("comparison_id", "number",
                            name=op.f("uq_appearance_region_comparison_id_number")),
    )


def downgrade() -> None:
    op.drop_table("appearance_region")
    with op.batch_alter_table("comparison") as batch:
        for name in ("outline_source", "outline", "recommendations", "condition", "conditions",
                     "examined_at", "examiner"):
            batch.drop_column(name)
    with op.batch_alter_table("artwork") as batch:
        for name, _ in reversed(ARTWORK_TEXT):
            batch.drop_column(name)
