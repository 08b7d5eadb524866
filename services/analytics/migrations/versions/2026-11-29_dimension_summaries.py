"""per-dimension daily summaries for the handling report with a value filter

Three tables hold, per receipt day, dimension (``channel``, ``category``, ``department``,
``priority``) and value of that dimension (NULL is a value), what migration 0004's
``complaint_day_totals``, ``complaint_day_hist`` and ``complaint_day_remedy`` hold per day:

- ``complaint_day_dim_totals``: every additive figure of the handling report;
- ``complaint_day_dim_hist``: durations per bucket (same measures and buckets as 0004);
- ``complaint_day_dim_remedy``: complaints and compensation (minor units) per remedy.

A filter on values of one of these dimensions then sums the rows of those values. The row
trigger ``complaint_fact_dim_summary`` keeps them exact in the writing transaction the way
0004's trigger does (previous contribution subtracted, new one added, rows at count 0
deleted, skipped when nothing they hold changed). ``analytics.complaint_summary_backfill()``
now recomputes these too (0004's function is kept as ``complaint_summary_backfill_days``).

The bucket indexes of 0004 are recreated with the four dimensions as INCLUDE columns, so a
percentile's value under a value filter is still read index-only.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 23:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DIMS = ("channel", "category", "department", "priority")
#: (column, one complaint's contribution ``r``): the same as migration 0004's TOTALS.
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


def _key(r: str) -> str:
    return "(" + ", ".join(e.replace("r.", f"{r}.") for _, e in TOTALS[1:]) + ")"


def _totals_fn() -> str:
    cols = ", ".join(c for c, _ in TOTALS)
    vals = ", ".join(f"s * ({e})" for _, e in TOTALS)
    sets = ", ".join(f"{c} = t.{c} + EXCLUDED.{c}" for c, _ in TOTALS)
    return f"""
CREATE FUNCTION analytics.complaint_dim_totals(p_dim text, p_v text, r analytics.complaint_fact,
                                               s int)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE left_n bigint; loc tid;
BEGIN
    INSERT INTO analytics.complaint_day_dim_totals AS t (day, dim, value, {cols})
    VALUES (r.received_day, p_dim, p_v, {vals})
    ON CONFLICT (day, dim, value) DO UPDATE SET {sets}
    RETURNING t.n, t.ctid INTO left_n, loc;
    IF left_n = 0 THEN
        DELETE FROM analytics.complaint_day_dim_totals WHERE ctid = loc;
    END IF;
END $$;
"""


REMEDY_FN = """
CREATE FUNCTION analytics.complaint_dim_remedy(p_dim text, p_v text, r analytics.complaint_fact,
                                               s int)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE left_n bigint; loc tid;
BEGIN
    INSERT INTO analytics.complaint_day_dim_remedy AS t
        (day, dim, value, remedy, n, compensation)
    VALUES (r.received_day, p_dim, p_v, r.remedy, s, s * r.compensation_minor)
    ON CONFLICT (day, dim, value, remedy) DO UPDATE SET
        n = t.n + EXCLUDED.n, compensation = t.compensation + EXCLUDED.compensation
    RETURNING t.n, t.ctid INTO left_n, loc;
    IF left_n = 0 THEN
        DELETE FROM analytics.complaint_day_dim_remedy WHERE ctid = loc;
    END IF;
END $$;
"""

HIST_FN = """
CREATE FUNCTION analytics.complaint_dim_hist(d date, p_dim text, p_v text, m text, b int, s int)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE left_n bigint; loc tid;
BEGIN
    INSERT INTO analytics.complaint_day_dim_hist AS t (day, dim, value, measure, bucket, n)
    VALUES (d, p_dim, p_v, m, b, s)
    ON CONFLICT (day, dim, value, measure, bucket) DO UPDATE SET n = t.n + EXCLUDED.n
    RETURNING t.n, t.ctid INTO left_n, loc;
    IF left_n = 0 THEN
        DELETE FROM analytics.complaint_day_dim_hist WHERE ctid = loc;
    END IF;
END $$;
"""


def _same(dim: str, extra: str) -> str:
    return (
        f"has_o AND has_n AND o.received_day = n.received_day "
        f"AND o.{dim} IS NOT DISTINCT FROM n.{dim} AND {extra}"
    )


def _trigger() -> str:
    body = []
    for d in DIMS:
        body.append(f"""
    IF {_same(d, f"{_key('o')} IS NOT DISTINCT FROM {_key('n')}")} THEN
        NULL;
    ELSE
        IF has_o THEN PERFORM analytics.complaint_dim_totals('{d}', o.{d}, o, -1); END IF;
        IF has_n THEN PERFORM analytics.complaint_dim_totals('{d}', n.{d}, n, 1); END IF;
    END IF;
    IF {
            _same(
                d,
                "(o.remedy, o.compensation_minor) IS NOT DISTINCT FROM "
                "(n.remedy, n.compensation_minor)",
            )
        } THEN
        NULL;
    ELSE
        IF has_o AND o.remedy IS NOT NULL THEN
            PERFORM analytics.complaint_dim_remedy('{d}', o.{d}, o, -1);
        END IF;
        IF has_n AND n.remedy IS NOT NULL THEN
            PERFORM analytics.complaint_dim_remedy('{d}', n.{d}, n, 1);
        END IF;
    END IF;""")
        for m, col, expr in HIST:
            bucket = expr.replace(col, "{r}." + col)
            body.append(f"""
    IF {_same(d, f"o.{col} IS NOT DISTINCT FROM n.{col}")} THEN
        NULL;
    ELSE
        IF has_o AND o.{col} IS NOT NULL THEN
            PERFORM analytics.complaint_dim_hist(o.received_day, '{d}', o.{d}, '{m}',
                {bucket.format(r="o")}, -1);
        END IF;
        IF has_n AND n.{col} IS NOT NULL THEN
            PERFORM analytics.complaint_dim_hist(n.received_day, '{d}', n.{d}, '{m}',
                {bucket.format(r="n")}, 1);
        END IF;
    END IF;""")
    return f"""
CREATE FUNCTION analytics.complaint_dim_summary_trigger() RETURNS trigger
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


def _backfill() -> str:
    tot = ", ".join(
        f"sum({e.replace('r.', 'f.')})" + ("" if c in NUMERIC else "::bigint") for c, e in TOTALS
    )
    stmts = []
    for d in DIMS:
        stmts.append(
            f"INSERT INTO analytics.complaint_day_dim_totals "
            f"(day, dim, value, {', '.join(c for c, _ in TOTALS)}) "
            f"SELECT f.received_day, '{d}', f.{d}, {tot} FROM analytics.complaint_fact AS f "
            f"WHERE f.received_day IS NOT NULL GROUP BY f.received_day, f.{d};"
        )
        stmts.append(
            f"INSERT INTO analytics.complaint_day_dim_remedy "
            f"SELECT received_day, '{d}', {d}, remedy, count(*), sum(compensation_minor) "
            f"FROM analytics.complaint_fact "
            f"WHERE received_day IS NOT NULL AND remedy IS NOT NULL GROUP BY 1, 3, 4;"
        )
        for m, col, expr in HIST:
            stmts.append(
                f"INSERT INTO analytics.complaint_day_dim_hist "
                f"SELECT received_day, '{d}', {d}, '{m}', {expr}, count(*) "
                f"FROM analytics.complaint_fact "
                f"WHERE received_day IS NOT NULL AND {col} IS NOT NULL GROUP BY 1, 3, 5;"
            )
    body = "\n    ".join(stmts)
    return f"""
CREATE FUNCTION analytics.complaint_summary_backfill() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM analytics.complaint_summary_backfill_days();
    DELETE FROM analytics.complaint_day_dim_totals;
    DELETE FROM analytics.complaint_day_dim_remedy;
    DELETE FROM analytics.complaint_day_dim_hist;
    {body}
END $$;
"""


def upgrade() -> None:
    cols = ",\n".join(
        f"    {c} {'numeric' if c in NUMERIC else 'bigint'} NOT NULL DEFAULT 0" for c, _ in TOTALS
    )
    ddl = f"""
CREATE TABLE analytics.complaint_day_dim_totals (
    day date NOT NULL,
    dim text NOT NULL,
    value text,
{cols},
    CONSTRAINT complaint_day_dim_totals_key UNIQUE NULLS NOT DISTINCT (day, dim, value)
);
CREATE TABLE analytics.complaint_day_dim_remedy (
    day date NOT NULL,
    dim text NOT NULL,
    value text,
    remedy text NOT NULL,
    n bigint NOT NULL DEFAULT 0,
    compensation bigint NOT NULL DEFAULT 0,
    CONSTRAINT complaint_day_dim_remedy_key UNIQUE NULLS NOT DISTINCT
        (day, dim, value, remedy)
);
CREATE TABLE analytics.complaint_day_dim_hist (
    day date NOT NULL,
    dim text NOT NULL,
    value text,
    measure text NOT NULL,
    bucket int NOT NULL,
    n bigint NOT NULL DEFAULT 0,
    CONSTRAINT complaint_day_dim_hist_key UNIQUE NULLS NOT DISTINCT
        (day, dim, value, measure, bucket)
)
"""
    for statement in ddl.split(";"):
        op.execute(statement)
    # Reads filter on (dim, value) over a day range.
    for t in ("complaint_day_dim_totals", "complaint_day_dim_remedy", "complaint_day_dim_hist"):
        op.execute(f"CREATE INDEX {t}_dim_idx ON analytics.{t} (dim, value, day)")
    op.execute(
        "ALTER FUNCTION analytics.complaint_summary_backfill() "
        "RENAME TO complaint_summary_backfill_days"
    )
    for sql in (_totals_fn(), REMEDY_FN, HIST_FN, _trigger(), _backfill()):
        op.execute(sql)
    op.execute(
        """
CREATE TRIGGER complaint_fact_dim_summary
AFTER INSERT OR UPDATE OR DELETE ON analytics.complaint_fact
FOR EACH ROW EXECUTE FUNCTION analytics.complaint_dim_summary_trigger();
"""
    )
    for m, col, expr in HIST:
        op.execute(f"DROP INDEX IF EXISTS analytics.complaint_fact_{m}_bucket_idx")
        op.execute(
            f"CREATE INDEX complaint_fact_{m}_bucket_idx ON analytics.complaint_fact "
            f"(({expr}), {col}, received_day) INCLUDE ({', '.join(DIMS)}) "
            f"WHERE {col} IS NOT NULL AND received_day IS NOT NULL"
        )
    op.execute("SELECT analytics.complaint_summary_backfill()")


def downgrade() -> None:
    for m, col, expr in HIST:
        op.execute(f"DROP INDEX IF EXISTS analytics.complaint_fact_{m}_bucket_idx")
        op.execute(
            f"CREATE INDEX complaint_fact_{m}_bucket_idx ON analytics.complaint_fact "
            f"(({expr}), {col}, received_day) "
            f"WHERE {col} IS NOT NULL AND received_day IS NOT NULL"
        )
    op.execute("DROP TRIGGER IF EXISTS complaint_fact_dim_summary ON analytics.complaint_fact")
    op.execute("DROP FUNCTION IF EXISTS analytics.complaint_summary_backfill()")
    op.execute(
        "ALTER FUNCTION analytics.complaint_summary_backfill_days() "
        "RENAME TO complaint_summary_backfill"
    )
    for fn in (
        "complaint_dim_summary_trigger()",
        "complaint_dim_totals(text, text, analytics.complaint_fact, int)",
        "complaint_dim_remedy(text, text, analytics.complaint_fact, int)",
        "complaint_dim_hist(date, text, text, text, int, int)",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS analytics.{fn}")
    for t in ("complaint_day_dim_hist", "complaint_day_dim_remedy", "complaint_day_dim_totals"):
        op.execute(f"DROP TABLE IF EXISTS analytics.{t}")
