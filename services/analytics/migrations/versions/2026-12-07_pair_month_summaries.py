"""handling figures per month and pair of dimensions: two value filters without a fact pass

The handling report with value filters on two dimensions read the matching fact rows
(``complaint_fact_dims_idx``, 0007). A large match is a pass over every fact of the range:
phone + priority P3 over two years (169,661 of 1,000,000 complaints) took 605-707 ms, most
of it PostgreSQL's per-row work on the sequential scan (docs/analytics.md, twelfth round).

This revision keeps the handling figures of migrations 0006/0007 (totals, remedies,
duration histograms) per local receipt month (its first day), pair of dimensions and the
two values (NULL is a value), for the 15 pairs of channel, category, product_line,
department, priority and region (``pair`` = ``"<a>:<b>"``, ``a`` before ``b`` in that order,
``value_a`` is ``a``'s value). Pairs with branch get none: a branch is about 0.3 % of the
complaints, so its matches are few and the fact path is fast (branch + phone over a year:
9-16 ms), while its cells would be three quarters of the rows (8.5 M of 11.8 M histogram
rows on the benchmark's data; sizing in docs/analytics.md, twelfth round).

- ``complaint_month_pair_totals``: the columns of ``complaint_day_totals`` per cell;
- ``complaint_month_pair_remedy``: complaints and compensation (minor units) per remedy;
- ``complaint_month_pair_hist``: values per measure (``wd``, ``res``, ``ack``) and bucket,
  the buckets of the fact table's bucket indexes (``tables.HIST_MEASURES``).

The report sums the whole months of its range from these rows and reads the days of the
partial months at the range's ends (and partial edge days) from the facts; the exact
percentiles come from the bucket indexes, which INCLUDE all seven dimensions.

Kept exact in the writing transaction by the row trigger ``complaint_fact_pair_summary``,
as 0012's month cells: per kind of row one statement builds the complaint's previous
contribution (-1) and its new one (+1) for the 15 pairs, sums them per row key (a key whose
sums net to 0 is skipped), upserts the differences in key order (so two writers lock shared
rows in the same order) and deletes the rows whose count reached 0. A kind whose inputs did
not change (same day, same six values, same contributions) is not touched; the update
trigger fires only when one of the columns read changes (a ``WHEN`` condition).
``analytics.complaint_pair_summary_backfill()`` recomputes the rows and
``analytics.complaint_summary_backfill()`` calls it.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 08:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The six dimensions in pair order (report name -> complaint_fact column).
DIMS = {
    "channel": "channel",
    "category": "category",
    "product_line": "product_line",
    "department": "department",
    "priority": "priority",
    "region": "region",
}
NAMES = list(DIMS)
#: The 15 pairs (a, b), a before b in :data:`NAMES`.
PAIRS = [(a, b) for i, a in enumerate(NAMES) for b in NAMES[i + 1 :]]
#: (column, one complaint's contribution ``r``): the same as migrations 0004, 0006 and 0007.
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
KEY = "pair text NOT NULL, month date NOT NULL, value_a text, value_b text"
KEY_COLS = ("pair", "value_a", "value_b", "month")


def _tables() -> list[str]:
    totals = ",\n    ".join(
        f"{c} {'numeric' if c in NUMERIC else 'bigint'} NOT NULL DEFAULT 0" for c, _ in TOTALS
    )
    # Key order (pair, values, month): a report reads one pair's values over a month range.
    return [
        f"""
CREATE TABLE analytics.complaint_month_pair_totals (
    {KEY},
    {totals},
    CONSTRAINT complaint_month_pair_totals_key
        UNIQUE NULLS NOT DISTINCT (pair, value_a, value_b, month)
)""",
        f"""
CREATE TABLE analytics.complaint_month_pair_remedy (
    {KEY},
    remedy text NOT NULL,
    n bigint NOT NULL DEFAULT 0,
    compensation bigint NOT NULL DEFAULT 0,
    CONSTRAINT complaint_month_pair_remedy_key
        UNIQUE NULLS NOT DISTINCT (pair, value_a, value_b, month, remedy)
)""",
        f"""
CREATE TABLE analytics.complaint_month_pair_hist (
    {KEY},
    measure text NOT NULL,
    bucket integer NOT NULL,
    n bigint NOT NULL DEFAULT 0,
    CONSTRAINT complaint_month_pair_hist_key
        UNIQUE NULLS NOT DISTINCT (pair, value_a, value_b, month, measure, bucket)
)""",
    ]


def _pairs_values() -> str:
    return ",\n            ".join(f"('{a}:{b}', c.{DIMS[a]}, c.{DIMS[b]})" for a, b in PAIRS)


def _apply(table: str, cols: list[str], extra_key: tuple[str, ...], side: str) -> str:
    """One statement: -1/+1 contributions per pair, summed per key, upserted, zeros deleted.

    ``side`` is a SELECT over ``{r}`` with ``{s}`` (the sign) giving ``s, month``, the six
    dimension columns, the ``extra_key`` columns and ``cols`` (one complaint's values).
    """
    keys = ", ".join(f"c.{k}" for k in extra_key)
    sums = ", ".join(f"sum(c.s * c.{c}) AS {c}" for c in cols)
    nonzero = " OR ".join(f"sum(c.s * c.{c}) <> 0" for c in cols)
    key_list = ", ".join(("pair", "month", "value_a", "value_b", *extra_key))
    conflict = ", ".join((*KEY_COLS, *extra_key))
    order = ", ".join(f"d.{k}" for k in ("pair", "a", "b", "month", *extra_key))
    sets = ",\n            ".join(f"{c} = t.{c} + EXCLUDED.{c}" for c in cols)
    group = ", ".join(("c.month", "p.pair", "p.a", "p.b", *(f"c.{k}" for k in extra_key)))
    return f"""
    WITH c AS (
        {side.format(s=-1, r="o", has="has_o")}
        UNION ALL
        {side.format(s=1, r="n", has="has_n")}
    ), d AS (
        SELECT c.month, p.pair, p.a, p.b{", " + keys if keys else ""}, {sums}
        FROM c CROSS JOIN LATERAL (VALUES
            {_pairs_values()}
        ) AS p(pair, a, b)
        GROUP BY {group}
        HAVING {nonzero}
    ), up AS (
        INSERT INTO analytics.{table} AS t ({key_list}, {", ".join(cols)})
        SELECT d.pair, d.month, d.a, d.b{", " + ", ".join(f"d.{k}" for k in extra_key) if extra_key else ""},
            {", ".join(f"d.{c}" for c in cols)}
        FROM d ORDER BY {order}
        ON CONFLICT ({conflict}) DO UPDATE SET
            {sets}
        RETURNING t.n, t.ctid
    )
    SELECT array_agg(up.ctid) FILTER (WHERE up.n = 0) INTO dead FROM up;
    IF dead IS NOT NULL THEN
        DELETE FROM analytics.{table} WHERE ctid = ANY(dead);
    END IF;"""  # noqa: E501


def _same(extra: str) -> str:
    dims = " AND ".join(f"o.{c} IS NOT DISTINCT FROM n.{c}" for c in DIMS.values())
    return f"has_o AND has_n AND o.received_day = n.received_day AND {dims} AND {extra}"


def _trigger_fn() -> str:
    dims = ", ".join(f"{{r}}.{c}" for c in DIMS.values())
    month = "date_trunc('month', {r}.received_day)::date AS month"
    totals_side = (
        f"SELECT {{s}}::int AS s, {month}, {dims}, "
        + ", ".join(f"{e.replace('r.', '{r}.')} AS {c}" for c, e in TOTALS)
        + " WHERE {has}"
    )
    remedy_side = (
        f"SELECT {{s}}::int AS s, {month}, {dims}, {{r}}.remedy, 1 AS n, "
        "{r}.compensation_minor AS compensation WHERE {has} AND {r}.remedy IS NOT NULL"
    )
    hist_side = " UNION ALL ".join(
        f"SELECT {{s}}::int AS s, {month}, {dims}, '{m}' AS measure, "
        f"{expr.replace(col, '{r}.' + col)} AS bucket, 1 AS n "
        f"WHERE {{has}} AND {{r}}.{col} IS NOT NULL"
        for m, col, expr in HIST
    )
    totals_key = "(" + ", ".join(f"{{r}}.{c}" for c in TOTALS_INPUTS) + ")"
    measures = ", ".join(f"{{r}}.{col}" for _, col, _ in HIST)
    return f"""
CREATE FUNCTION analytics.complaint_pair_summary_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    o analytics.complaint_fact;
    n analytics.complaint_fact;
    has_o bool := false;
    has_n bool := false;
    dead tid[];
BEGIN
    IF TG_OP <> 'INSERT' THEN o := OLD; has_o := OLD.received_day IS NOT NULL; END IF;
    IF TG_OP <> 'DELETE' THEN n := NEW; has_n := NEW.received_day IS NOT NULL; END IF;
    IF NOT has_o AND NOT has_n THEN
        RETURN NULL;
    END IF;
    IF NOT ({_same(f"{totals_key.format(r='o')} IS NOT DISTINCT FROM {totals_key.format(r='n')}")}) THEN
{_apply("complaint_month_pair_totals", [c for c, _ in TOTALS], (), totals_side)}
    END IF;
    IF NOT ({_same("(o.remedy, o.compensation_minor) IS NOT DISTINCT FROM (n.remedy, n.compensation_minor)")}) THEN
{_apply("complaint_month_pair_remedy", ["n", "compensation"], ("remedy",), remedy_side)}
    END IF;
    IF NOT ({_same(f"({measures.format(r='o')}) IS NOT DISTINCT FROM ({measures.format(r='n')})")}) THEN
{_apply("complaint_month_pair_hist", ["n"], ("measure", "bucket"), hist_side)}
    END IF;
    RETURN NULL;
END $$;
"""  # noqa: E501


def _fills() -> list[str]:
    """INSERT statements computing every pair's rows from the facts (one pass per pair)."""
    tot = ", ".join(
        f"sum({e.replace('r.', 'f.')})" + ("" if c in NUMERIC else "::bigint") for c, e in TOTALS
    )
    month = "date_trunc('month', f.received_day)::date"
    stmts = []
    for a, b in PAIRS:
        ca, cb = DIMS[a], DIMS[b]
        stmts.append(
            f"INSERT INTO analytics.complaint_month_pair_totals "
            f"(pair, month, value_a, value_b, {', '.join(c for c, _ in TOTALS)}) "
            f"SELECT '{a}:{b}', {month}, f.{ca}, f.{cb}, {tot} FROM analytics.complaint_fact AS f "
            f"WHERE f.received_day IS NOT NULL GROUP BY 2, 3, 4;"
        )
        stmts.append(
            f"INSERT INTO analytics.complaint_month_pair_remedy "
            f"(pair, month, value_a, value_b, remedy, n, compensation) "
            f"SELECT '{a}:{b}', {month}, f.{ca}, f.{cb}, f.remedy, count(*), "
            f"sum(f.compensation_minor) FROM analytics.complaint_fact AS f "
            f"WHERE f.received_day IS NOT NULL AND f.remedy IS NOT NULL GROUP BY 2, 3, 4, 5;"
        )
        hist = " UNION ALL ".join(
            f"SELECT '{m}' AS measure, {month} AS month, f.{ca} AS a, f.{cb} AS b, "
            f"{expr.replace(col, 'f.' + col)} AS bucket FROM analytics.complaint_fact AS f "
            f"WHERE f.received_day IS NOT NULL AND f.{col} IS NOT NULL"
            for m, col, expr in HIST
        )
        stmts.append(
            f"INSERT INTO analytics.complaint_month_pair_hist "
            f"(pair, month, value_a, value_b, measure, bucket, n) "
            f"SELECT '{a}:{b}', h.month, h.a, h.b, h.measure, h.bucket, count(*) "
            f"FROM ({hist}) AS h GROUP BY 2, 3, 4, 5, 6;"
        )
    return stmts


def _backfill_fn() -> str:
    body = "\n    ".join(_fills())
    return f"""
CREATE FUNCTION analytics.complaint_pair_summary_backfill() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE analytics.complaint_month_pair_totals, analytics.complaint_month_pair_remedy,
        analytics.complaint_month_pair_hist;
    {body}
END $$;
"""


#: 0012's ``complaint_summary_backfill`` plus this revision's rows.
SUMMARY_BACKFILL_FN = """
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

#: 0012's version (the downgrade puts it back).
SUMMARY_BACKFILL_FN_0012 = """
CREATE OR REPLACE FUNCTION analytics.complaint_summary_backfill() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM analytics.complaint_summary_backfill_dims();
    PERFORM analytics.complaint_repeat_backfill();
    PERFORM analytics.complaint_repeat_dim_backfill();
    PERFORM analytics.complaint_month_pair_backfill();
END $$;
"""


def upgrade() -> None:
    for sql in (*_tables(), _trigger_fn(), _backfill_fn(), SUMMARY_BACKFILL_FN):
        op.execute(sql)
    op.execute(
        """
CREATE TRIGGER complaint_fact_pair_summary AFTER INSERT OR DELETE ON analytics.complaint_fact
FOR EACH ROW EXECUTE FUNCTION analytics.complaint_pair_summary_trigger()"""
    )
    old = ", ".join(f"OLD.{c}" for c in WATCHED)
    new = ", ".join(f"NEW.{c}" for c in WATCHED)
    op.execute(
        f"""
CREATE TRIGGER complaint_fact_pair_summary_update
AFTER UPDATE OF {", ".join(WATCHED)} ON analytics.complaint_fact
FOR EACH ROW WHEN (({old}) IS DISTINCT FROM ({new}))
EXECUTE FUNCTION analytics.complaint_pair_summary_trigger()"""
    )
    op.execute("SELECT analytics.complaint_pair_summary_backfill()")
    for t in ("totals", "remedy", "hist"):
        op.execute(f"ANALYZE analytics.complaint_month_pair_{t}")


def downgrade() -> None:
    for trigger in ("complaint_fact_pair_summary", "complaint_fact_pair_summary_update"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON analytics.complaint_fact")
    op.execute(SUMMARY_BACKFILL_FN_0012)
    for fn in ("complaint_pair_summary_trigger()", "complaint_pair_summary_backfill()"):
        op.execute(f"DROP FUNCTION IF EXISTS analytics.{fn}")
    for t in ("totals", "remedy", "hist"):
        op.execute(f"DROP TABLE IF EXISTS analytics.complaint_month_pair_{t}")
