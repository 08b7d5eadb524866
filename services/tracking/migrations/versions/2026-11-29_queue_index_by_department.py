"""queue index by department

The handlers' queue filters by department far more often than by status alone; the
``(status, department)`` index of 0001 cannot serve a department-only filter.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 21:55:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "case_department_status_idx",
        "case",
        ["department", "status"],
        unique=False,
        schema="tracking",
    )


def downgrade() -> None:
    op.drop_index("case_department_status_idx", table_name="case", schema="tracking")
