"""Indexes for history queries (scans and comparisons of an artwork in time order).

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-25

"""
from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_scan_artwork_captured", "scan", ["artwork_id", "captured_at"])
    op.create_index("ix_comparison_artwork_created", "comparison", ["artwork_id", "created_at"])
    op.create_index("ix_comparison_scans", "comparison", ["baseline_scan_id", "current_scan_id"])


def downgrade() -> None:
    op.drop_index("ix_comparison_scans", table_name="comparison")
    op.drop_index("ix_comparison_artwork_created", table_name="comparison")
    op.drop_index("ix_scan_artwork_captured", table_name="scan")
