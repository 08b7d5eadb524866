"""metrics indexes: open cases and the last 29 days by category, index-only at scrape time

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 22:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX complaint_fact_open_dims_idx ON analytics.complaint_fact "
        "(status, department, priority) WHERE closed_at IS NULL AND opened_at IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX complaint_fact_received_cat_idx ON analytics.complaint_fact "
        "(received_at) INCLUDE (category)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS analytics.complaint_fact_received_cat_idx")
    op.execute("DROP INDEX IF EXISTS analytics.complaint_fact_open_dims_idx")
