"""Where the lamp came from: per scan and per comparison (issue #10).

Scans get ``light_source`` ("ingest" or "sidecar" when a light was recorded).
Comparisons get the lamp's source, the estimate's uncertainty, whether the
scans disagreed with a claimed lamp, the message the user was shown, and the
scans' estimates as JSON. Rows from before this revision are backfilled with
what they were computed from: "ingest" where a scan recorded a light (the
store used it), else "default" (the old built-in 180 deg); nothing was checked
then, so ``light_disagrees`` stays NULL ("not checked", never "agreed").

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scan") as batch:
        batch.add_column(sa.Column("light_source", sa.String(length=20), nullable=True))
    with op.batch_alter_table("comparison") as batch:
        batch.add_column(sa.Column("light_source", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("light_uncertainty", sa.Float(), nullable=True))
        batch.add_column(sa.Column("light_disagrees", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("light_message", sa.Text(), nullable=True))
        batch.add_column(sa.Column("light_evidence", sa.JSON(), nullable=True))
    op.execute("UPDATE scan SET light_source = 'ingest' WHERE light_azimuth IS NOT NULL")
    op.execute(
        "UPDATE comparison SET light_source = CASE WHEN EXISTS ("
        "SELECT 1 FROM scan WHERE scan.light_azimuth IS NOT NULL AND scan.id IN "
        "(comparison.baseline_scan_id, comparison.current_scan_id)) "
        "THEN 'ingest' ELSE 'default' END"
    )


def downgrade() -> None:
    with op.batch_alter_table("comparison") as batch:
        batch.drop_column("light_evidence")
        batch.drop_column("light_message")
        batch.drop_column("light_disagrees")
        batch.drop_column("light_uncertainty")
        batch.drop_column("light_source")
    with op.batch_alter_table("scan") as batch:
        batch.drop_column("light_source")
