"""report dimensions index: index-only scans for trend, types and cross analysis

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 21:56:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "complaint_fact_dims_idx",
        "complaint_fact",
        ["received_day", "channel", "category", "department", "priority"],
        unique=False,
        schema="analytics",
    )


def downgrade() -> None:
    op.drop_index("complaint_fact_dims_idx", table_name="complaint_fact", schema="analytics")
