"""Multi-light scans: lamp count, the original light file, one row per photograph.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scan") as batch:
        batch.add_column(sa.Column("n_lights", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("light_file_path", sa.String(length=300), nullable=True))
    op.create_table(
        "scan_image",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scan_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("stored_path", sa.String(length=300), nullable=False),
        sa.Column("original_name", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["scan_id"], ["scan.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scan_id", "position"),
    )


def downgrade() -> None:
    op.drop_table("scan_image")
    with op.batch_alter_table("scan") as batch:
        batch.drop_column("light_file_path")
        batch.drop_column("n_lights")
