"""handling figures per month and cell of six dimensions: three or more value filters

The handling report with value filters on three or more dimensions read the matching fact
rows: phone + priority P3 + fees over two years (41,991 of 1,000,000 complaints) took
289-452 ms, a bitmap heap scan of nearly every page of ``complaint_fact`` (the fees
complaints lie on 42,906 of its 43,100 pages; docs/analytics.md, fourteenth round).

This revision keeps the handling figures of migrations 0006/0007/0014 (totals, remedies,
duration histograms) per local receipt month (its first day) and **cell**: one combination
of the values of channel, category, product_line, department, priority and region (NULL is
a value). Any value filters on those six dimensions select a set of cells, so one set of
tables serves three, four, five or six filters (branch is left out as in 0014: a branch's
matches are few and the fact path is fast). On the benchmark's data 4,484 cells hold the
1,000,000 complaints (86,821 cell months); phone + P3 + fees is 525 cell months.

- ``complaint_cell``: the cells met so far, ``cell_id`` per combination (``dims``, the six
  values as a ``text[]``: array equality treats NULL elements as equal, so one unique index
  finds a combination with NULLs). A cell is never deleted (a small dimension table).
- ``complaint_month_cell_totals``: the columns of ``complaint_day_totals`` per cell month;
- ``complaint_month_cell_remedy``: complaints and compensation (minor units) per remedy;
- ``complaint_month_cell_hist``: values per measure (``wd``, ``res``, ``ack``) and bucket,
  the buckets of the fact table's bucket indexes (``tables.HIST_MEASURES``). Its primary
  key INCLUDEs ``n``: a report reads a cell's rows index-only (phone + P3 + fees: 48,275
  rows in 19-27 ms, against 88-113 ms through the heap, whose rows of a cell lie apart).

The report selects the cells of its filters from ``complaint_cell``, sums the whole months
of its range from the cell rows (their primary keys lead with ``cell_id``), and reads the
days of the partial months at the range's ends from the facts, as 0014's pair path does.

Kept exact in the writing transaction by the row trigger ``complaint_fact_cell_summary``,
the scheme of 0014: per kind of row one statement builds the complaint's previous
contribution (-1) and its new one (+1), sums them per row key (a key whose sums net to 0 is
skipped), upserts the differences in key order and deletes the rows whose count reached 0.
``analytics.complaint_cell_summary_backfill()`` recomputes the rows (keeping the cell ids
already given) and ``analytics.complaint_summary_backfill()`` calls it.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The six dimensions of a cell, in the order of its ``dims`` (report name -> fact column).
DIMS = {
    "channel": "channel",
    "category": "category",
    "product_line": "product_line",
    "department": "department",
    "priority": "priority",
    "region": "region",
}
#: (column, one complaint's contribution ``r``): the same as migrations 0004, 0006, 0007, 0014.
TOTALS = (
    ("n", "1"),
    ("open", "(r.opened_at IS NOT NULL AND r.closed_at IS NULL)::int"),
    ("resolved", "(r.resolved_at IS NOT NULL)::int"),
    ("closed", "(r.closed_at IS NOT NULL)::int"),
    ("res_done", "r.res_clocks_done"),
    ("res_on_time", "r.res_clocks_on_time"),
    ("ack_done", "r.ack_clock_done"),
    ("ack_on_time", "r.ack_clock_on_time"),
    ("b_res", "r.breaches_resolution"),
    ("b_ack", "r.breaches_acknowledgement"),
    ("b_reg", "r.breaches_regulatory"),
    ("wd_n", "(r.resolution_working_days IS NOT NULL)::int"),
    ("wd_sum", "COALESCE(r.resolution_working_days::numeric, 0)"),
    ("res_n", "(r.resolution_seconds IS NOT NULL)::int"),
    ("res_sum", "COALESCE(r.resolution_seconds::numeric, 0)"),
    ("ack_n", "(r.ack_seconds IS NOT NULL)::int"),
    ("ack_sum", "COALESCE(r.ack_seconds::numeric, 0)"),
    ("reopened", "(r.reopen_count > 0)::int"),
    ("escalations", "r.escalation_count"),
    ("escalated", "(r.escalation_count > 0)::int"),
    ("extensions", "r.extension_count"),
    ("compensation", "r.compensation_minor"),
    ("visits", "r.visits_done"),
    ("unreachable", "r.visits_unreachable"),
    ("unsatisfied", "r.visits_unsatisfied"),
    ("score_n", "r.score_n"),
    ("score_sum", "r.score_sum"),
    ("s1", "r.score_1"),
    ("s2", "r.score_2"),
    ("s3", "r.score_3"),
    ("s4", "r.score_4"),
    ("s5", "r.score_5"),
)
NUMERIC = {"wd_sum", "res_sum", "ack_sum"}
HIST = (("wd", "resolution_working_days", "ceil(resolution_working_days * 10)::int"),
        ("res", "resolution_seconds", "ceil(resolution_seconds / 3600)::int"),
        ("ack", "ack_seconds", "ceil(ack_seconds / 900)::int"))  # fmt: skip
#: complaint_fact columns the totals read (a change of any other column changes nothing).
TOTALS_INPUTS = (
    "opened_at", "closed_at", "resolved_at", "res_clocks_done", "res_clocks_on_time",
    "ack_clock_done", "ack_clock_on_time", "breaches_resolution", "breaches_acknowledgement",
    "breaches_regulatory", "resolution_working_days", "resolution_seconds", "ack_seconds",
    "reopen_count", "escalation_count", "extension_count", "compensation_minor",
    "visits_done", "visits_unreachable", "visits_unsatisfied", "score_n", "score_sum",
    "score_1", "score_2", "score_3", "score_4", "score_5",
)  # fmt: skip
#: The columns whose change may move a complaint's rows (the update trigger's WHEN).
WATCHED = ("received_day", *DIMS.values(), *TOTALS_INPUTS, "remedy")
KEY = "cell_id integer NOT NULL, month date NOT NULL"
#: ``dims`` of a fact row ``{r}``.
DIMS_ARRAY = "ARRAY[" + ", ".join(f"{{r}}.{c}" for c in DIMS.values()) + "]::text[]"


def _tables() -> list[str]:
    dims = ",\n    ".join(f"{c} text" for c in DIMS.values())
    array = ", ".join(DIMS.values())
    totals = ",\n    ".join(
        f"{c} {'numeric' if c in NUMERIC else 'bigint'} NOT NULL DEFAULT 0" for c, _ in TOTALS
    )
    return [
        f"""
CREATE TABLE analytics.complaint_cell (
    cell_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    {dims},
    dims text[] GENERATED ALWAYS AS (ARRAY[{array}]::text[]) STORED,
    CONSTRAINT complaint_cell_dims_key UNIQUE (dims)
)""",
        f"""
CREATE TABLE analytics.complaint_month_cell_totals (
    {KEY},
    {totals},
    PRIMARY KEY (cell_id, month)
)""",
        f"""
CREATE TABLE analytics.complaint_month_cell_remedy (
    {KEY},
    remedy text NOT NULL,
    n bigint NOT NULL DEFAULT 0,
    compensation bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (cell_id, month, remedy)
)""",
        f"""
CREATE TABLE analytics.complaint_month_cell_hist (
    {KEY},
    measure text NOT NULL,
    bucket integer NOT NULL,
    n bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (cell_id, month, measure, bucket) INCLUDE (n)
)""",
    ]


#: The cell id of six values, the cell added when new. Writers run at READ COMMITTED: a
#: concurrent writer adding the same cell makes the insert wait and then do nothing, and the
#: second lookup (a new snapshot) finds its row. (Under REPEATABLE READ the insert would raise
#: a serialization failure instead, which the consumer retries.)
CELL_ID_FN = f"""
CREATE FUNCTION analytics.complaint_cell_id(value_dims text[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    cell integer;
BEGIN
    SELECT k.cell_id INTO cell FROM analytics.complaint_cell AS k WHERE k.dims = value_dims;
    IF cell IS NULL THEN
        INSERT INTO analytics.complaint_cell ({", ".join(DIMS.values())})
        VALUES ({", ".join(f"value_dims[{i + 1}]" for i in range(len(DIMS)))})
        ON CONFLICT (dims) DO NOTHING
        RETURNING cell_id INTO cell;
        IF cell IS NULL THEN
            SELECT k.cell_id INTO cell FROM analytics.complaint_cell AS k
            WHERE k.dims = value_dims;
        END IF;
    END IF;
    RETURN cell;
END $$;
"""


def _apply(table: str, cols: list[str], extra_key: tuple[str, ...], side: str) -> str:
    """One statement: -1/+1 contributions per cell month, summed per key, upserted, zeros
    deleted.

    ``side`` is a SELECT over ``{r}`` with ``{s}`` (the sign) and ``{cell}`` giving ``s,
    cell_id, month``, the ``extra_key`` columns and ``cols`` (one complaint's values).
    """
    key = ("cell_id", "month", *extra_key)
    sums = ", ".join(f"sum(c.s * c.{c}) AS {c}" for c in cols)
    nonzero = " OR ".join(f"sum(c.s * c.{c}) <> 0" for c in cols)
    sets = ",\n            ".join(f"{c} = t.{c} + EXCLUDED.{c}" for c in cols)
    return f"""
    WITH c AS (
        {side.format(s=-1, r="o", has="has_o", cell="cell_o")}
        UNION ALL
        {side.format(s=1, r="n", has="has_n", cell="cell_n")}
    ), d AS (
        SELECT {", ".join(f"c.{k}" for k in key)}, {sums}
        FROM c
        GROUP BY {", ".join(f"c.{k}" for k in key)}
        HAVING {nonzero}
    ), up AS (
        INSERT INTO analytics.{table} AS t ({", ".join(key)}, {", ".join(cols)})
        SELECT {", ".join(f"d.{k}" for k in key)}, {", ".join(f"d.{c}" for c in cols)}
        FROM d ORDER BY {", ".join(f"d.{k}" for k in key)}
        ON CONFLICT ({", ".join(key)}) DO UPDATE SET
            {sets}
        RETURNING t.n, t.ctid
    )
    SELECT array_agg(up.ctid) FILTER (WHERE up.n = 0) INTO dead FROM up;
    IF dead IS NOT NULL THEN
        DELETE FROM analytics.{table} WHERE ctid = ANY(dead);
    END IF;"""


def _same(extra: str) -> str:
    return f"has_o AND has_n AND o.received_day = n.received_day AND cell_o = cell_n AND {extra}"


def _trigger_fn() -> str:
    month = "date_trunc('month', {r}.received_day)::date AS month"
    totals_side = (
        f"SELECT {{s}}::int AS s, {{cell}} AS cell_id, {month}, "
        + ", ".join(f"{e.replace('r.', '{r}.')} AS {c}" for c, e in TOTALS)
        + " WHERE {has}"
    )
    remedy_side = (
        f"SELECT {{s}}::int AS s, {{cell}} AS cell_id, {month}, {{r}}.remedy, 1 AS n, "
        "{r}.compensation_minor AS compensation WHERE {has} AND {r}.remedy IS NOT NULL"
    )
    hist_side = " UNION ALL ".join(
        f"SELECT {{s}}::int AS s, {{cell}} AS cell_id, {month}, '{m}' AS measure, "
        f"{expr.replace(col, '{r}.' + col)} AS bucket, 1 AS n "
        f"WHERE {{has}} AND {{r}}.{col} IS NOT NULL"
        for m, col, expr in HIST
    )
    totals_key = "(" + ", ".join(f"{{r}}.{c}" for c in TOTALS_INPUTS) + ")"
    measures = ", ".join(f"{{r}}.{col}" for _, col, _ in HIST)
    return f"""
CREATE FUNCTION analytics.complaint_cell_summary_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    o analytics.complaint_fact;
    n analytics.complaint_fact;
    has_o bool := false;
    has_n bool := false;
    cell_o integer;
    cell_n integer;
    dead tid[];
BEGIN
    IF TG_OP <> 'INSERT' THEN o := OLD; has_o := OLD.received_day IS NOT NULL; END IF;
    IF TG_OP <> 'DELETE' THEN n := NEW; has_n := NEW.received_day IS NOT NULL; END IF;
    IF NOT has_o AND NOT has_n THEN
        RETURN NULL;
    END IF;
    IF has_o THEN
        cell_o := analytics.complaint_cell_id({DIMS_ARRAY.format(r="o")});
    END IF;
    IF has_n THEN
        IF has_o AND {DIMS_ARRAY.format(r="o")} = {DIMS_ARRAY.format(r="n")} THEN
            cell_n := cell_o;
        ELSE
            cell_n := analytics.complaint_cell_id({DIMS_ARRAY.format(r="n")});
        END IF;
    END IF;
    IF NOT ({_same(f"{totals_key.format(r='o')} IS NOT DISTINCT FROM {totals_key.format(r='n')}")}) THEN
{_apply("complaint_month_cell_totals", [c for c, _ in TOTALS], (), totals_side)}
    END IF;
    IF NOT ({_same("(o.remedy, o.compensation_minor) IS NOT DISTINCT FROM (n.remedy, n.compensation_minor)")}) THEN
{_apply("complaint_month_cell_remedy", ["n", "compensation"], ("remedy",), remedy_side)}
    END IF;
    IF NOT ({_same(f"({measures.format(r='o')}) IS NOT DISTINCT FROM ({measures.format(r='n')})")}) THEN
{_apply("complaint_month_cell_hist", ["n"], ("measure", "bucket"), hist_side)}
    END IF;
    RETURN NULL;
END $$;
"""  # noqa: E501


def _backfill_fn() -> str:
    """Recompute the cell rows from the facts; cells already known keep their ids."""
    tot = ", ".join(
        f"sum({e.replace('r.', 'f.')})" + ("" if c in NUMERIC else "::bigint") for c, e in TOTALS
    )
    month = "date_trunc('month', f.received_day)::date"
    cols = ", ".join(DIMS.values())
    facts = (
        "FROM analytics.complaint_fact AS f JOIN analytics.complaint_cell AS k "
        f"ON k.dims = {DIMS_ARRAY.format(r='f')} WHERE f.received_day IS NOT NULL"
    )
    hist = " UNION ALL ".join(
        f"SELECT '{m}' AS measure, k.cell_id, {month} AS month, "
        f"{expr.replace(col, 'f.' + col)} AS bucket {facts} AND f.{col} IS NOT NULL"
        for m, col, expr in HIST
    )
    return f"""
CREATE FUNCTION analytics.complaint_cell_summary_backfill() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE analytics.complaint_month_cell_totals, analytics.complaint_month_cell_remedy,
        analytics.complaint_month_cell_hist;
    INSERT INTO analytics.complaint_cell ({cols})
    SELECT DISTINCT {", ".join(f"f.{c}" for c in DIMS.values())}
    FROM analytics.complaint_fact AS f WHERE f.received_day IS NOT NULL
    ON CONFLICT (dims) DO NOTHING;
    INSERT INTO analytics.complaint_month_cell_totals (cell_id, month, {", ".join(c for c, _ in TOTALS)})
    SELECT k.cell_id, {month}, {tot} {facts} GROUP BY 1, 2;
    INSERT INTO analytics.complaint_month_cell_remedy (cell_id, month, remedy, n, compensation)
    SELECT k.cell_id, {month}, f.remedy, count(*), sum(f.compensation_minor)
    {facts} AND f.remedy IS NOT NULL GROUP BY 1, 2, 3;
    INSERT INTO analytics.complaint_month_cell_hist (cell_id, month, measure, bucket, n)
    SELECT h.cell_id, h.month, h.measure, h.bucket, count(*) FROM ({hist}) AS h
    GROUP BY 1, 2, 3, 4;
END $$;
"""  # noqa: E501


#: 0014's ``complaint_summary_backfill`` plus this revision's rows.
SUMMARY_BACKFILL_FN = """
CREATE OR REPLACE FUNCTION analytics.complaint_summary_backfill() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM analytics.complaint_summary_backfill_dims();
    PERFORM analytics.complaint_repeat_backfill();
    PERFORM analytics.complaint_repeat_dim_backfill();
    PERFORM analytics.complaint_month_pair_backfill();
    PERFORM analytics.complaint_pair_summary_backfill();
    PERFORM analytics.complaint_cell_summary_backfill();
END $$;
"""

#: 0014's version (the downgrade puts it back).
SUMMARY_BACKFILL_FN_0014 = """
CREATE OR REPLACE FUNCTION analytics.complaint_summary_backfill() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM analytics.complaint_summary_backfill_dims();
    PERFORM analytics.complaint_repeat_backfill();
    PERFORM analytics.complaint_repeat_dim_backfill();
    PERFORM analytics.complaint_month_pair_backfill();
    PERFORM analytics.complaint_pair_summary_backfill();
END $$;
"""


def upgrade() -> None:
    for sql in (*_tables(), CELL_ID_FN, _trigger_fn(), _backfill_fn(), SUMMARY_BACKFILL_FN):
        op.execute(sql)
    op.execute(
        """
CREATE TRIGGER complaint_fact_cell_summary AFTER INSERT OR DELETE ON analytics.complaint_fact
FOR EACH ROW EXECUTE FUNCTION analytics.complaint_cell_summary_trigger()"""
    )
    old = ", ".join(f"OLD.{c}" for c in WATCHED)
    new = ", ".join(f"NEW.{c}" for c in WATCHED)
    op.execute(
        f"""
CREATE TRIGGER complaint_fact_cell_summary_update
AFTER UPDATE OF {", ".join(WATCHED)} ON analytics.complaint_fact
FOR EACH ROW WHEN (({old}) IS DISTINCT FROM ({new}))
EXECUTE FUNCTION analytics.complaint_cell_summary_trigger()"""
    )
    op.execute("SELECT analytics.complaint_cell_summary_backfill()")
    for t in ("cell", "month_cell_totals", "month_cell_remedy", "month_cell_hist"):
        op.execute(f"ANALYZE analytics.complaint_{t}")


def downgrade() -> None:
    for trigger in ("complaint_fact_cell_summary", "complaint_fact_cell_summary_update"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON analytics.complaint_fact")
    op.execute(SUMMARY_BACKFILL_FN_0014)
    for fn in (
        "complaint_cell_summary_trigger()",
        "complaint_cell_summary_backfill()",
        "complaint_cell_id(text[])",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS analytics.{fn}")
    for t in ("month_cell_totals", "month_cell_remedy", "month_cell_hist", "cell"):
        op.execute(f"DROP TABLE IF EXISTS analytics.complaint_{t}")
