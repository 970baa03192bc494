"""Regions carry the scale they were found at (multi-scale change, issue #11).

``scale_px`` (baseline pixels per pixel of the pyramid level), ``scale_mm``
(the same in mm when px/mm is known) and ``level`` (0 = native); NULL for
regions of the single-grid route and for rows written before this revision.

Revision ID: 0006
Revises: 0005

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
# the head on main when this branch merged it; the integrator fixes the chain
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("region") as batch:
        batch.add_column(sa.Column("scale_px", sa.Float(), nullable=True))
        batch.add_column(sa.Column("scale_mm", sa.Float(), nullable=True))
        batch.add_column(sa.Column("level", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("region") as batch:
        batch.drop_column("level")
        batch.drop_column("scale_mm")
        batch.drop_column("scale_px")
