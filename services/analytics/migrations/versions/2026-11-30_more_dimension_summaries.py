"""per-dimension summaries for product line, region and branch; a seven-dimension index

Migration 0006 keeps the handling figures per receipt day, dimension and value for
``channel``, ``category``, ``department`` and ``priority``. This revision adds the three
other filter dimensions of the reports, ``product_line``, ``region`` and ``branch`` (column
``branch_code``), to the same tables (``complaint_day_dim_totals``, ``complaint_day_dim_remedy``,
``complaint_day_dim_hist``): the row trigger ``complaint_fact_dim_summary`` and
``analytics.complaint_summary_backfill()`` are replaced by versions that cover the seven
dimensions, and the rows of the three new dimensions are computed once here.

Indexes on ``complaint_fact``:

- the bucket indexes (``complaint_fact_<measure>_bucket_idx``) carry all seven dimensions
  as INCLUDE columns, so a percentile's value under a value filter on any of them (or on
  several at once) is read index-only;
- ``complaint_fact_dims_idx`` (received_day, channel, category, department, priority) gets
  product_line, region and branch_code appended: a handling report with value filters on two
  or more dimensions finds its rows in the index (every condition checked there) and visits
  only the matching heap rows. Its leading columns are unchanged, so the index-only scans of
  trend, types and cross analysis keep using it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 00:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Dimension name (the ``dim`` value of the summary rows) -> complaint_fact column.
OLD_DIMS = {"channel": "channel", "category": "category", "department": "department",
            "priority": "priority"}  # fmt: skip
NEW_DIMS = {"product_line": "product_line", "region": "region", "branch": "branch_code"}
ALL_DIMS = {**OLD_DIMS, **NEW_DIMS}
#: (column, one complaint's contribution ``r``): the same as migrations 0004 and 0006.
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
DIMS_INDEX_OLD = ("received_day", "channel", "category", "department", "priority")
DIMS_INDEX_NEW = (*DIMS_INDEX_OLD, "product_line", "region", "branch_code")


def _key(r: str) -> str:
    return "(" + ", ".join(e.replace("r.", f"{r}.") for _, e in TOTALS[1:]) + ")"


def _same(col: str, extra: str) -> str:
    return (
        f"has_o AND has_n AND o.received_day = n.received_day "
        f"AND o.{col} IS NOT DISTINCT FROM n.{col} AND {extra}"
    )


def _trigger(dims: dict[str, str]) -> str:
    """0006's trigger function over ``dims`` (same rules: subtract, add, skip unchanged)."""
    body = []
    for d, col in dims.items():
        body.append(f"""
    IF {_same(col, f"{_key('o')} IS NOT DISTINCT FROM {_key('n')}")} THEN
        NULL;
    ELSE
        IF has_o THEN PERFORM analytics.complaint_dim_totals('{d}', o.{col}, o, -1); END IF;
        IF has_n THEN PERFORM analytics.complaint_dim_totals('{d}', n.{col}, n, 1); END IF;
    END IF;
    IF {
            _same(
                col,
                "(o.remedy, o.compensation_minor) IS NOT DISTINCT FROM "
                "(n.remedy, n.compensation_minor)",
            )
        } THEN
        NULL;
    ELSE
        IF has_o AND o.remedy IS NOT NULL THEN
            PERFORM analytics.complaint_dim_remedy('{d}', o.{col}, o, -1);
        END IF;
        IF has_n AND n.remedy IS NOT NULL THEN
            PERFORM analytics.complaint_dim_remedy('{d}', n.{col}, n, 1);
        END IF;
    END IF;""")
        for m, mcol, expr in HIST:
            bucket = expr.replace(mcol, "{r}." + mcol)
            body.append(f"""
    IF {_same(col, f"o.{mcol} IS NOT DISTINCT FROM n.{mcol}")} THEN
        NULL;
    ELSE
        IF has_o AND o.{mcol} IS NOT NULL THEN
            PERFORM analytics.complaint_dim_hist(o.received_day, '{d}', o.{col}, '{m}',
                {bucket.format(r="o")}, -1);
        END IF;
        IF has_n AND n.{mcol} IS NOT NULL THEN
            PERFORM analytics.complaint_dim_hist(n.received_day, '{d}', n.{col}, '{m}',
                {bucket.format(r="n")}, 1);
        END IF;
    END IF;""")
    return f"""
CREATE OR REPLACE FUNCTION analytics.complaint_dim_summary_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    o analytics.complaint_fact;
    n analytics.complaint_fact;
    has_o bool := false;
    has_n bool := false;
BEGIN
    IF TG_OP <> 'INSERT' THEN o := OLD; has_o := OLD.received_day IS NOT NULL; END IF;
    IF TG_OP <> 'DELETE' THEN n := NEW; has_n := NEW.received_day IS NOT NULL; END IF;
    IF NOT has_o AND NOT has_n THEN
        RETURN NULL;
    END IF;
{"".join(body)}
    RETURN NULL;
END $$;
"""


def _fill(dims: dict[str, str]) -> list[str]:
    """INSERT statements computing the per-dimension rows of ``dims`` from the facts."""
    tot = ", ".join(
        f"sum({e.replace('r.', 'f.')})" + ("" if c in NUMERIC else "::bigint") for c, e in TOTALS
    )
    stmts = []
    for d, col in dims.items():
        stmts.append(
            f"INSERT INTO analytics.complaint_day_dim_totals "
            f"(day, dim, value, {', '.join(c for c, _ in TOTALS)}) "
            f"SELECT f.received_day, '{d}', f.{col}, {tot} FROM analytics.complaint_fact AS f "
            f"WHERE f.received_day IS NOT NULL GROUP BY f.received_day, f.{col};"
        )
        stmts.append(
            f"INSERT INTO analytics.complaint_day_dim_remedy "
            f"SELECT received_day, '{d}', {col}, remedy, count(*), sum(compensation_minor) "
            f"FROM analytics.complaint_fact "
            f"WHERE received_day IS NOT NULL AND remedy IS NOT NULL GROUP BY 1, 3, 4;"
        )
        for m, mcol, expr in HIST:
            stmts.append(
                f"INSERT INTO analytics.complaint_day_dim_hist "
                f"SELECT received_day, '{d}', {col}, '{m}', {expr}, count(*) "
                f"FROM analytics.complaint_fact "
                f"WHERE received_day IS NOT NULL AND {mcol} IS NOT NULL GROUP BY 1, 3, 5;"
            )
    return stmts


def _backfill(dims: dict[str, str]) -> str:
    body = "\n    ".join(_fill(dims))
    return f"""
CREATE OR REPLACE FUNCTION analytics.complaint_summary_backfill() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM analytics.complaint_summary_backfill_days();
    DELETE FROM analytics.complaint_day_dim_totals;
    DELETE FROM analytics.complaint_day_dim_remedy;
    DELETE FROM analytics.complaint_day_dim_hist;
    {body}
END $$;
"""


def _indexes(dims: tuple[str, ...], dims_index: tuple[str, ...]) -> None:
    for m, col, expr in HIST:
        op.execute(f"DROP INDEX IF EXISTS analytics.complaint_fact_{m}_bucket_idx")
        op.execute(
            f"CREATE INDEX complaint_fact_{m}_bucket_idx ON analytics.complaint_fact "
            f"(({expr}), {col}, received_day) INCLUDE ({', '.join(dims)}) "
            f"WHERE {col} IS NOT NULL AND received_day IS NOT NULL"
        )
    op.execute("DROP INDEX IF EXISTS analytics.complaint_fact_dims_idx")
    op.execute(
        f"CREATE INDEX complaint_fact_dims_idx ON analytics.complaint_fact "
        f"({', '.join(dims_index)})"
    )


def upgrade() -> None:
    op.execute(_trigger(ALL_DIMS))
    op.execute(_backfill(ALL_DIMS))
    for t in ("complaint_day_dim_totals", "complaint_day_dim_remedy", "complaint_day_dim_hist"):
        op.execute(f"DELETE FROM analytics.{t} WHERE dim IN ('product_line', 'region', 'branch')")
    for statement in _fill(NEW_DIMS):
        op.execute(statement)
    _indexes(tuple(ALL_DIMS.values()), DIMS_INDEX_NEW)


def downgrade() -> None:
    op.execute(_trigger(OLD_DIMS))
    op.execute(_backfill(OLD_DIMS))
    for t in ("complaint_day_dim_totals", "complaint_day_dim_remedy", "complaint_day_dim_hist"):
        op.execute(f"DELETE FROM analytics.{t} WHERE dim IN ('product_line', 'region', 'branch')")
    _indexes(tuple(OLD_DIMS.values()), DIMS_INDEX_OLD)
