"""visit clock sweep: clock_check_at, warned_at, overdue_at

The sweep (``services/followup/domain/visit/clock_sweep.py``) claims active visits whose
``clock_check_at`` has come through the partial index ``visit_clock_check_idx`` and records
in ``warned_at`` / ``overdue_at`` that ``followups.visit-warning`` /
``followups.visit-overdue`` was emitted. Active visits that exist already are checked at
the first sweep after the upgrade.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for name in ("clock_check_at", "warned_at", "overdue_at"):
        op.add_column(
            "visit",
            sa.Column(name, sa.DateTime(timezone=True), nullable=True),
            schema="followup",
        )
    op.create_index(
        "visit_clock_check_idx",
        "visit",
        ["clock_check_at"],
        unique=False,
        schema="followup",
        postgresql_where=sa.text("clock_check_at IS NOT NULL"),
    )
    op.execute("UPDATE followup.visit SET clock_check_at = now() WHERE status = 'active'")


def downgrade() -> None:
    op.drop_index(
        "visit_clock_check_idx",
        table_name="visit",
        schema="followup",
        postgresql_where=sa.text("clock_check_at IS NOT NULL"),
    )
    for name in ("overdue_at", "warned_at", "clock_check_at"):
        op.drop_column("visit", name, schema="followup")
