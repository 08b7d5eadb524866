"""indexes led by channel, priority, department and category: reports with a value filter

0009 gave value filters on product line and region a covering index led by the dimension
(index-only range scans over the matching complaints). A value filter on channel, priority,
department or category was served by the summaries for most reports, but cross analysis
and types grouped by product line, region or branch with such a filter read the whole of
``complaint_fact`` in a parallel sequential scan: cross analysis branch x category over two
years took 190-270 ms with one priority, category or department filter and 259 ms with
phone or web, on 1,000,000 complaints; the same reports read 43-145 ms with these indexes
(docs/analytics.md, sixteenth round).

Four covering indexes, like 0009's: led by the dimension and the receipt day, with the
other report dimensions, the branch and the resolution clock counts as INCLUDE columns;
partial on ``received_day IS NOT NULL``. The category's is named ``..._category_dims_idx``
(``complaint_fact_category_idx`` on category and receipt instant stays for the metrics).
``IF NOT EXISTS``: on a large live model the indexes can be built ``CONCURRENTLY`` by hand
first (same names and definitions), and the upgrade then only records the revision.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The six report dimensions in INCLUDE order (as 0009); the leading one is left out.
_DIMS = ("channel", "category", "department", "priority", "product_line", "region")
#: Index name -> leading column.
INDEXES = {
    "complaint_fact_channel_idx": "channel",
    "complaint_fact_priority_idx": "priority",
    "complaint_fact_department_idx": "department",
    "complaint_fact_category_dims_idx": "category",
}


def upgrade() -> None:
    for name, lead in INDEXES.items():
        include = [d for d in _DIMS if d != lead]
        include += ["branch_code", "res_clocks_done", "res_clocks_on_time"]
        op.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON analytics.complaint_fact ({lead}, received_day) "
            f"INCLUDE ({', '.join(include)}) WHERE received_day IS NOT NULL"
        )


def downgrade() -> None:
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS analytics.{name}")
