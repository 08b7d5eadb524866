"""cross analysis by product line, region or branch x category: month cells

Cross analysis reads ``complaint_day_dims`` (day, channel, category, department, priority)
when both of its dimensions are among those four. With product line, region or branch
against category it was a pass over every fact index entry of the range (276-311 ms on
1,000,000 complaints over two years; docs/analytics.md, fourth and fifth rounds).

``complaint_month_cross`` holds, per local receipt month (first day of the month), dimension
(``product_line``, ``region``, ``branch``: the report's names), value of that dimension and
category (NULL is a value for both), the complaints and their resolution clocks completed
and on time: the three measures of a cross cell. The report sums the whole months of a
day-aligned range from these cells and the days of the partial months at its edges from
the facts (docs/analytics.md §4), like the month cells and strips of 0008/0010.

Kept exact in the writing transaction by the row trigger ``complaint_fact_month_cross``
(the row's previous contribution subtracted, the new one added, a cell whose count reaches
0 deleted; a complaint contributes when its receipt day is known). The update trigger fires
only when the receipt day, category, product line, region, branch or a resolution clock
count changes (a ``WHEN`` condition, so most updates of the case-derived columns do not
call the function). ``analytics.complaint_month_cross_backfill()`` recomputes the cells and
``analytics.complaint_summary_backfill()`` calls it too.

``complaint_fact_dims_idx`` (received_day, the seven dimensions) gets the resolution clock
counts as INCLUDE columns, so the edge days (and any whole-day cross analysis that falls
back to the facts) are read index-only. Updates that change those counts are already
non-HOT (0009's indexes include them), so the write side gains no index maintenance beyond
the wider entries.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 02:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Dimension (the report's name, ``complaint_month_cross.dim``) -> complaint_fact column.
DIMS = {"product_line": "product_line", "region": "region", "branch": "branch_code"}
#: The columns whose change moves a complaint's cells.
WATCHED = ("received_day", "category", *DIMS.values(), "res_clocks_done", "res_clocks_on_time")
DIMS_INDEX = ("received_day", "channel", "category", "department", "priority",
              "product_line", "region", "branch_code")  # fmt: skip

ADD_FN = """
CREATE FUNCTION analytics.complaint_month_cross_add(
    p_month date, p_dim text, p_v text, p_cat text, p_n int, p_done int, p_on_time int)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE left_n bigint; loc tid;
BEGIN
    INSERT INTO analytics.complaint_month_cross AS t
        (dim, month, value, category, n, res_done, res_on_time)
    VALUES (p_dim, p_month, p_v, p_cat, p_n, p_done, p_on_time)
    ON CONFLICT (dim, month, value, category) DO UPDATE SET
        n = t.n + EXCLUDED.n,
        res_done = t.res_done + EXCLUDED.res_done,
        res_on_time = t.res_on_time + EXCLUDED.res_on_time
    RETURNING t.n, t.ctid INTO left_n, loc;
    IF left_n = 0 THEN
        DELETE FROM analytics.complaint_month_cross WHERE ctid = loc;
    END IF;
END $$;
"""


def _trigger_fn() -> str:
    body = []
    for d, col in DIMS.items():
        body.append(f"""
    IF has_o AND has_n AND o_month = n_month AND o.category IS NOT DISTINCT FROM n.category
            AND o.{col} IS NOT DISTINCT FROM n.{col} THEN
        IF (o.res_clocks_done, o.res_clocks_on_time)
                IS DISTINCT FROM (n.res_clocks_done, n.res_clocks_on_time) THEN
            PERFORM analytics.complaint_month_cross_add(n_month, '{d}', n.{col}, n.category, 0,
                n.res_clocks_done - o.res_clocks_done,
                n.res_clocks_on_time - o.res_clocks_on_time);
        END IF;
    ELSE
        IF has_o THEN
            PERFORM analytics.complaint_month_cross_add(o_month, '{d}', o.{col}, o.category, -1,
                -o.res_clocks_done, -o.res_clocks_on_time);
        END IF;
        IF has_n THEN
            PERFORM analytics.complaint_month_cross_add(n_month, '{d}', n.{col}, n.category, 1,
                n.res_clocks_done, n.res_clocks_on_time);
        END IF;
    END IF;""")
    return f"""
CREATE FUNCTION analytics.complaint_month_cross_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    o analytics.complaint_fact;
    n analytics.complaint_fact;
    has_o bool := false;
    has_n bool := false;
    o_month date;
    n_month date;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        o := OLD;
        has_o := OLD.received_day IS NOT NULL;
        o_month := date_trunc('month', OLD.received_day)::date;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        n := NEW;
        has_n := NEW.received_day IS NOT NULL;
        n_month := date_trunc('month', NEW.received_day)::date;
    END IF;
    IF NOT has_o AND NOT has_n THEN
        RETURN NULL;
    END IF;
{"".join(body)}
    RETURN NULL;
END $$;
"""


def _backfill_fn() -> str:
    fills = "\n    ".join(
        f"INSERT INTO analytics.complaint_month_cross "
        f"(dim, month, value, category, n, res_done, res_on_time) "
        f"SELECT '{d}', date_trunc('month', received_day)::date, {col}, category, count(*), "
        f"sum(res_clocks_done), sum(res_clocks_on_time) FROM analytics.complaint_fact "
        f"WHERE received_day IS NOT NULL GROUP BY 2, 3, 4;"
        for d, col in DIMS.items()
    )
    return f"""
CREATE FUNCTION analytics.complaint_month_cross_backfill() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE analytics.complaint_month_cross;
    {fills}
END $$;
"""


#: 0010's ``complaint_summary_backfill`` (``extra`` empty) and this revision's.
SUMMARY_BACKFILL_FN = """
CREATE OR REPLACE FUNCTION analytics.complaint_summary_backfill() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM analytics.complaint_summary_backfill_dims();
    PERFORM analytics.complaint_repeat_backfill();
    PERFORM analytics.complaint_repeat_dim_backfill();
    {extra}
END $$;
"""


def _dims_index(include: str) -> None:
    op.execute("DROP INDEX IF EXISTS analytics.complaint_fact_dims_idx")
    op.execute(
        f"CREATE INDEX complaint_fact_dims_idx ON analytics.complaint_fact "
        f"({', '.join(DIMS_INDEX)}){include}"
    )


def upgrade() -> None:
    op.execute(
        """
CREATE TABLE analytics.complaint_month_cross (
    dim text NOT NULL,
    month date NOT NULL,
    value text,
    category text,
    n bigint NOT NULL DEFAULT 0,
    res_done bigint NOT NULL DEFAULT 0,
    res_on_time bigint NOT NULL DEFAULT 0,
    CONSTRAINT complaint_month_cross_key UNIQUE NULLS NOT DISTINCT (dim, month, value, category)
)"""
    )
    for sql in (ADD_FN, _trigger_fn(), _backfill_fn()):
        op.execute(sql)
    op.execute(
        """
CREATE TRIGGER complaint_fact_month_cross AFTER INSERT OR DELETE ON analytics.complaint_fact
FOR EACH ROW EXECUTE FUNCTION analytics.complaint_month_cross_trigger()"""
    )
    old = ", ".join(f"OLD.{c}" for c in WATCHED)
    new = ", ".join(f"NEW.{c}" for c in WATCHED)
    op.execute(
        f"""
CREATE TRIGGER complaint_fact_month_cross_update
AFTER UPDATE OF {", ".join(WATCHED)} ON analytics.complaint_fact
FOR EACH ROW WHEN (({old}) IS DISTINCT FROM ({new}))
EXECUTE FUNCTION analytics.complaint_month_cross_trigger()"""
    )
    op.execute(
        SUMMARY_BACKFILL_FN.format(extra="PERFORM analytics.complaint_month_cross_backfill();")
    )
    op.execute("SELECT analytics.complaint_month_cross_backfill()")
    op.execute("ANALYZE analytics.complaint_month_cross")
    _dims_index(" INCLUDE (res_clocks_done, res_clocks_on_time)")


def downgrade() -> None:
    _dims_index("")
    op.execute(SUMMARY_BACKFILL_FN.format(extra=""))
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
