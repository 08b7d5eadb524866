"""indexes led by product line and region: types and cross analysis filtered on them

Trend, types and cross analysis read ``complaint_day_dims`` (day, channel, category,
department, priority) for whole-day ranges; a value filter on ``product_line`` or
``region`` is not among its columns, so those reports read ``complaint_fact``. Before this
revision that was an index-only scan of the whole ``complaint_fact_dims_idx`` (its leading
column is the day) plus, for cross analysis, a heap visit per row for the resolution clocks:
about 0.2-0.3 s on 1,000,000 complaints over two years (docs/analytics.md, fourth round).

Two covering indexes, one per dimension, make these index-only range scans over the
matching complaints only: led by the dimension and the receipt day, with the other report
dimensions and the resolution clock counts as INCLUDE columns. Partial on
``received_day IS NOT NULL`` (every report condition has it). A branch filter already has
``complaint_fact_branch_idx`` (a branch holds about 0.5 % of the complaints).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 00:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Index name -> (leading column, INCLUDE columns).
INDEXES = {
    "complaint_fact_region_idx": (
        "region",
        ("channel", "category", "department", "priority", "product_line", "branch_code",
         "res_clocks_done", "res_clocks_on_time"),
    ),
    "complaint_fact_product_line_idx": (
        "product_line",
        ("channel", "category", "department", "priority", "region", "branch_code",
         "res_clocks_done", "res_clocks_on_time"),
    ),
}  # fmt: skip


def upgrade() -> None:
    for name, (lead, include) in INDEXES.items():
        op.execute(
            f"CREATE INDEX {name} ON analytics.complaint_fact ({lead}, received_day) "
            f"INCLUDE ({', '.join(include)}) WHERE received_day IS NOT NULL"
        )


def downgrade() -> None:
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS analytics.{name}")
