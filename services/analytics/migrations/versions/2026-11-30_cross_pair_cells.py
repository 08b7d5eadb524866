"""cross analysis of any pair with product line, region or branch: month cells per pair

Cross analysis reads ``complaint_day_dims`` when both dimensions are among channel,
category, department and priority (6 pairs), and since 0011 the month cells
``complaint_month_cross`` for product line, region or branch against category (3 pairs).
The 12 other pairs (product line, region or branch against channel, department, priority
or each other) were a pass over every fact index entry of the range (about 300-450 ms over
two years on 1,000,000 complaints; docs/analytics.md, sixth round).

This revision replaces ``complaint_month_cross`` by ``complaint_month_pair``: per pair of
dimensions (the 15 pairs not held by ``complaint_day_dims``, 0011's three included, so one
mechanism), local receipt month (first day of the month) and the two values (NULL is a
value), the complaints and their resolution clocks completed and on time. ``pair`` is
``"<a>:<b>"`` with the report's dimension names, ``a`` before ``b`` in the order channel,
category, product_line, department, priority, region, branch (``value_a`` is ``a``'s
value). The report sums the whole months of a day-aligned range from these cells and the
days of the partial months at its edges from the facts (docs/analytics.md §4), as 0011 did.

Kept exact in the writing transaction by the row trigger ``complaint_fact_month_pair``: one
statement per row change builds the row's previous contribution (-1) and its new one (+1)
for the 15 pairs, sums them per cell (a cell whose key did not change nets to 0 and is
skipped: a priority change touches the 3 pairs with priority, a clock change one row per
pair), upserts the differences and deletes the cells whose count reached 0. The update
trigger fires only when the receipt day, one of the seven dimensions or a resolution clock
count changes (a ``WHEN`` condition). ``analytics.complaint_month_pair_backfill()``
recomputes the cells and ``analytics.complaint_summary_backfill()`` calls it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 03:10:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The seven dimensions in pair order (report name -> complaint_fact column).
DIMS = {
    "channel": "channel",
    "category": "category",
    "product_line": "product_line",
    "department": "department",
    "priority": "priority",
    "region": "region",
    "branch": "branch_code",
}
#: Held per day by complaint_day_dims (0004): their pairs get no month cells.
DAY_DIMS = ("channel", "category", "department", "priority")
NAMES = list(DIMS)
#: The 15 pairs (a, b), a before b in :data:`NAMES`, at least one not in :data:`DAY_DIMS`.
PAIRS = [
    (a, b)
    for i, a in enumerate(NAMES)
    for b in NAMES[i + 1 :]
    if not (a in DAY_DIMS and b in DAY_DIMS)
]
#: The columns whose change moves a complaint's cells.
WATCHED = ("received_day", *DIMS.values(), "res_clocks_done", "res_clocks_on_time")


def _trigger_fn() -> str:
    cols = ", ".join(f"{{r}}.{c}" for c in DIMS.values())
    side = (
        "SELECT {s}::int AS s, date_trunc('month', {r}.received_day)::date AS month, "
        + cols
        + ", {r}.res_clocks_done AS done, {r}.res_clocks_on_time AS on_time WHERE {has}"
    )
    pairs = ",\n                ".join(f"('{a}:{b}', c.{DIMS[a]}, c.{DIMS[b]})" for a, b in PAIRS)
    return f"""
CREATE FUNCTION analytics.complaint_month_pair_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    old_r analytics.complaint_fact;
    new_r analytics.complaint_fact;
    has_o bool := false;
    has_n bool := false;
    dead tid[];
BEGIN
    IF TG_OP <> 'INSERT' THEN
        old_r := OLD;
        has_o := OLD.received_day IS NOT NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        new_r := NEW;
        has_n := NEW.received_day IS NOT NULL;
    END IF;
    IF NOT has_o AND NOT has_n THEN
        RETURN NULL;
    END IF;
    WITH c AS (
        {side.format(s=-1, r="old_r", has="has_o")}
        UNION ALL
        {side.format(s=1, r="new_r", has="has_n")}
    ), d AS (
        SELECT c.month, p.pair, p.a, p.b, sum(c.s) AS n, sum(c.s * c.done) AS done,
            sum(c.s * c.on_time) AS on_time
        FROM c CROSS JOIN LATERAL (VALUES
                {pairs}
            ) AS p(pair, a, b)
        GROUP BY c.month, p.pair, p.a, p.b
        HAVING sum(c.s) <> 0 OR sum(c.s * c.done) <> 0 OR sum(c.s * c.on_time) <> 0
    ), up AS (
        INSERT INTO analytics.complaint_month_pair AS t
            (pair, month, value_a, value_b, n, res_done, res_on_time)
        SELECT d.pair, d.month, d.a, d.b, d.n, d.done, d.on_time FROM d
        ON CONFLICT (pair, month, value_a, value_b) DO UPDATE SET
            n = t.n + EXCLUDED.n,
            res_done = t.res_done + EXCLUDED.res_done,
            res_on_time = t.res_on_time + EXCLUDED.res_on_time
        RETURNING t.n, t.ctid
    )
    SELECT array_agg(up.ctid) FILTER (WHERE up.n = 0) INTO dead FROM up;
    IF dead IS NOT NULL THEN
        DELETE FROM analytics.complaint_month_pair WHERE ctid = ANY(dead);
    END IF;
    RETURN NULL;
END $$;
"""


def _backfill_fn() -> str:
    fills = "\n    ".join(
        f"INSERT INTO analytics.complaint_month_pair "
        f"(pair, month, value_a, value_b, n, res_done, res_on_time) "
        f"SELECT '{a}:{b}', date_trunc('month', received_day)::date, {DIMS[a]}, {DIMS[b]}, "
        f"count(*), sum(res_clocks_done), sum(res_clocks_on_time) FROM analytics.complaint_fact "
        f"WHERE received_day IS NOT NULL GROUP BY 2, 3, 4;"
        for a, b in PAIRS
    )
    return f"""
CREATE FUNCTION analytics.complaint_month_pair_backfill() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE analytics.complaint_month_pair;
    {fills}
END $$;
"""


#: 0011's ``complaint_summary_backfill`` with this revision's cells instead of 0011's.
SUMMARY_BACKFILL_FN = """
CREATE OR REPLACE FUNCTION analytics.complaint_summary_backfill() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM analytics.complaint_summary_backfill_dims();
    PERFORM analytics.complaint_repeat_backfill();
    PERFORM analytics.complaint_repeat_dim_backfill();
    PERFORM analytics.complaint_month_pair_backfill();
END $$;
"""


def _drop_0011() -> None:
    op.execute("DROP TRIGGER IF EXISTS complaint_fact_month_cross ON analytics.complaint_fact")
    op.execute(
        "DROP TRIGGER IF EXISTS complaint_fact_month_cross_update ON analytics.complaint_fact"
    )
    op.execute("DROP TABLE IF EXISTS analytics.complaint_month_cross")
    for fn in (
        "complaint_month_cross_trigger()",
        "complaint_month_cross_backfill()",
        "complaint_month_cross_add(date, text, text, text, int, int, int)",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS analytics.{fn}")


def upgrade() -> None:
    _drop_0011()
    op.execute(
        """
CREATE TABLE analytics.complaint_month_pair (
    pair text NOT NULL,
    month date NOT NULL,
    value_a text,
    value_b text,
    n bigint NOT NULL DEFAULT 0,
    res_done bigint NOT NULL DEFAULT 0,
    res_on_time bigint NOT NULL DEFAULT 0,
    CONSTRAINT complaint_month_pair_key
        UNIQUE NULLS NOT DISTINCT (pair, month, value_a, value_b)
)"""
    )
    for sql in (_trigger_fn(), _backfill_fn(), SUMMARY_BACKFILL_FN):
        op.execute(sql)
    op.execute(
        """
CREATE TRIGGER complaint_fact_month_pair AFTER INSERT OR DELETE ON analytics.complaint_fact
FOR EACH ROW EXECUTE FUNCTION analytics.complaint_month_pair_trigger()"""
    )
    old = ", ".join(f"OLD.{c}" for c in WATCHED)
    new = ", ".join(f"NEW.{c}" for c in WATCHED)
    op.execute(
        f"""
CREATE TRIGGER complaint_fact_month_pair_update
AFTER UPDATE OF {", ".join(WATCHED)} ON analytics.complaint_fact
FOR EACH ROW WHEN (({old}) IS DISTINCT FROM ({new}))
EXECUTE FUNCTION analytics.complaint_month_pair_trigger()"""
    )
    op.execute("SELECT analytics.complaint_month_pair_backfill()")
    op.execute("ANALYZE analytics.complaint_month_pair")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS complaint_fact_month_pair ON analytics.complaint_fact")
    op.execute(
        "DROP TRIGGER IF EXISTS complaint_fact_month_pair_update ON analytics.complaint_fact"
    )
    op.execute("DROP TABLE IF EXISTS analytics.complaint_month_pair")
    for fn in ("complaint_month_pair_trigger()", "complaint_month_pair_backfill()"):
        op.execute(f"DROP FUNCTION IF EXISTS analytics.{fn}")
    # 0011's objects, as its upgrade creates them (cells backfilled, summary backfill
    # function calling them; it also re-creates complaint_fact_dims_idx as it is now).
    path = Path(__file__).with_name("2026-11-30_cross_month_cells.py")
    spec = importlib.util.spec_from_file_location("_analytics_0011", path)
    assert spec is not None
    assert spec.loader is not None
    rev0011 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rev0011)
    rev0011.upgrade()
