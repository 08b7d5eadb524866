"""daily summaries of complaint_fact kept exact by a row trigger; percentile and repeat indexes

Four summary tables hold the contribution of every complaint whose receipt day is known:

- ``complaint_day_dims``: per (day, channel, category, department, priority): complaints,
  resolution clocks completed and on time (trend, types, cross analysis);
- ``complaint_day_totals``: per day, every additive figure of the handling report (counts,
  clocks, breaches, exact ``numeric`` sums of the durations, satisfaction);
- ``complaint_day_remedy``: per (day, remedy): complaints and compensation (minor units);
- ``complaint_day_hist``: per (day, measure, bucket): how many durations fall in the bucket
  (``wd``: ceil(working days * 10), ``res``: ceil(resolution seconds / 3600), ``ack``:
  ceil(acknowledgement seconds / 900)); reports find the percentile's bucket here and read
  the exact values from the fact table through the matching expression indexes.

The trigger ``complaint_fact_summary`` (AFTER INSERT/UPDATE/DELETE, FOR EACH ROW)
subtracts the row's previous contribution and adds the new one in the writing transaction,
and deletes a summary row whose count reaches 0, so the summaries are a function of the
fact rows only (any event order, any duplicate, a rebuild: same rows). Sums are integers or
``numeric`` (exact), never floats. ``analytics.complaint_summary_backfill()`` recomputes
them from scratch (used here for rows that already exist, and by bulk loads).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 22:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WD = "ceil(resolution_working_days * 10)::int"
RES = "ceil(resolution_seconds / 3600)::int"
ACK = "ceil(ack_seconds / 900)::int"

#: (column, SQL expression of one complaint's contribution ``r``) of complaint_day_totals.
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
HIST = (("wd", "resolution_working_days", WD), ("res", "resolution_seconds", RES),
        ("ack", "ack_seconds", ACK))  # fmt: skip
DIMS = ("channel", "category", "department", "priority")


def _totals_apply() -> str:
    cols = ", ".join(c for c, _ in TOTALS)
    vals = ", ".join(f"s * ({e})" for _, e in TOTALS)
    sets = ", ".join(f"{c} = t.{c} + EXCLUDED.{c}" for c, _ in TOTALS)
    return f"""
CREATE FUNCTION analytics.complaint_summary_totals(r analytics.complaint_fact, s int)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE left_n bigint; loc tid;
BEGIN
    INSERT INTO analytics.complaint_day_totals AS t (day, {cols})
    VALUES (r.received_day, {vals})
    ON CONFLICT (day) DO UPDATE SET {sets}
    RETURNING t.n, t.ctid INTO left_n, loc;
    IF left_n = 0 THEN
        DELETE FROM analytics.complaint_day_totals WHERE ctid = loc;
    END IF;
END $$;
"""


def _totals_key(r: str) -> str:
    """Row constructor of everything a complaint contributes to the totals."""
    return "(" + ", ".join(e.replace("r.", f"{r}.") for _, e in TOTALS[1:]) + ")"


def _hist_branch(measure: str, column: str, expr: str) -> str:
    bucket = expr.replace(column, f"{{r}}.{column}")
    return f"""
    IF has_o AND has_n AND o.received_day = n.received_day
        AND o.{column} IS NOT DISTINCT FROM n.{column} THEN
        NULL;
    ELSE
        IF has_o AND o.{column} IS NOT NULL THEN
            PERFORM analytics.complaint_summary_hist(o.received_day, '{measure}',
                {bucket.format(r="o")}, -1);
        END IF;
        IF has_n AND n.{column} IS NOT NULL THEN
            PERFORM analytics.complaint_summary_hist(n.received_day, '{measure}',
                {bucket.format(r="n")}, 1);
        END IF;
    END IF;
"""


def _trigger() -> str:
    dims_o = ", ".join(f"o.{d}" for d in DIMS)
    dims_n = ", ".join(f"n.{d}" for d in DIMS)
    hist = "".join(_hist_branch(*h) for h in HIST)
    return f"""
CREATE FUNCTION analytics.complaint_summary_trigger() RETURNS trigger
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

    IF has_o AND has_n
        AND (o.received_day, {dims_o}, o.res_clocks_done, o.res_clocks_on_time)
            IS NOT DISTINCT FROM (n.received_day, {dims_n}, n.res_clocks_done,
                                  n.res_clocks_on_time) THEN
        NULL;
    ELSE
        IF has_o THEN PERFORM analytics.complaint_summary_dims(o, -1); END IF;
        IF has_n THEN PERFORM analytics.complaint_summary_dims(n, 1); END IF;
    END IF;

    IF has_o AND has_n AND o.received_day = n.received_day
        AND {_totals_key("o")} IS NOT DISTINCT FROM {_totals_key("n")} THEN
        NULL;
    ELSE
        IF has_o THEN PERFORM analytics.complaint_summary_totals(o, -1); END IF;
        IF has_n THEN PERFORM analytics.complaint_summary_totals(n, 1); END IF;
    END IF;

    IF has_o AND has_n AND o.received_day = n.received_day
        AND (o.remedy, o.compensation_minor) IS NOT DISTINCT FROM
            (n.remedy, n.compensation_minor) THEN
        NULL;
    ELSE
        IF has_o AND o.remedy IS NOT NULL THEN
            PERFORM analytics.complaint_summary_remedy(o, -1);
        END IF;
        IF has_n AND n.remedy IS NOT NULL THEN
            PERFORM analytics.complaint_summary_remedy(n, 1);
        END IF;
    END IF;
{hist}
    RETURN NULL;
END $$;
"""


DIMS_FN = f"""
CREATE FUNCTION analytics.complaint_summary_dims(r analytics.complaint_fact, s int)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE left_n bigint; loc tid;
BEGIN
    INSERT INTO analytics.complaint_day_dims AS t
        (day, {", ".join(DIMS)}, n, res_done, res_on_time)
    VALUES (r.received_day, {", ".join(f"r.{d}" for d in DIMS)}, s,
            s * r.res_clocks_done, s * r.res_clocks_on_time)
    ON CONFLICT (day, {", ".join(DIMS)}) DO UPDATE SET
        n = t.n + EXCLUDED.n,
        res_done = t.res_done + EXCLUDED.res_done,
        res_on_time = t.res_on_time + EXCLUDED.res_on_time
    RETURNING t.n, t.ctid INTO left_n, loc;
    IF left_n = 0 THEN
        DELETE FROM analytics.complaint_day_dims WHERE ctid = loc;
    END IF;
END $$;
"""

REMEDY_FN = """
CREATE FUNCTION analytics.complaint_summary_remedy(r analytics.complaint_fact, s int)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE left_n bigint; loc tid;
BEGIN
    INSERT INTO analytics.complaint_day_remedy AS t (day, remedy, n, compensation)
    VALUES (r.received_day, r.remedy, s, s * r.compensation_minor)
    ON CONFLICT (day, remedy) DO UPDATE SET
        n = t.n + EXCLUDED.n, compensation = t.compensation + EXCLUDED.compensation
    RETURNING t.n, t.ctid INTO left_n, loc;
    IF left_n = 0 THEN
        DELETE FROM analytics.complaint_day_remedy WHERE ctid = loc;
    END IF;
END $$;
"""

HIST_FN = """
CREATE FUNCTION analytics.complaint_summary_hist(d date, m text, b int, s int)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE left_n bigint; loc tid;
BEGIN
    INSERT INTO analytics.complaint_day_hist AS t (day, measure, bucket, n)
    VALUES (d, m, b, s)
    ON CONFLICT (day, measure, bucket) DO UPDATE SET n = t.n + EXCLUDED.n
    RETURNING t.n, t.ctid INTO left_n, loc;
    IF left_n = 0 THEN
        DELETE FROM analytics.complaint_day_hist WHERE ctid = loc;
    END IF;
END $$;
"""


def _backfill() -> str:
    tot = ", ".join(
        f"sum({e.replace('r.', 'f.')})" + ("" if c in NUMERIC else "::bigint") for c, e in TOTALS
    )
    hist = " UNION ALL ".join(
        f"SELECT received_day, '{m}', {expr}, count(*) FROM analytics.complaint_fact "
        f"WHERE received_day IS NOT NULL AND {col} IS NOT NULL GROUP BY 1, 3"
        for m, col, expr in HIST
    )
    return f"""
CREATE FUNCTION analytics.complaint_summary_backfill() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM analytics.complaint_day_dims;
    DELETE FROM analytics.complaint_day_totals;
    DELETE FROM analytics.complaint_day_remedy;
    DELETE FROM analytics.complaint_day_hist;
    INSERT INTO analytics.complaint_day_dims
    SELECT received_day, {", ".join(DIMS)}, count(*), sum(res_clocks_done),
           sum(res_clocks_on_time)
    FROM analytics.complaint_fact WHERE received_day IS NOT NULL
    GROUP BY received_day, {", ".join(DIMS)};
    INSERT INTO analytics.complaint_day_totals (day, {", ".join(c for c, _ in TOTALS)})
    SELECT f.received_day, {tot}
    FROM analytics.complaint_fact AS f WHERE f.received_day IS NOT NULL
    GROUP BY f.received_day;
    INSERT INTO analytics.complaint_day_remedy
    SELECT received_day, remedy, count(*), sum(compensation_minor)
    FROM analytics.complaint_fact WHERE received_day IS NOT NULL AND remedy IS NOT NULL
    GROUP BY 1, 2;
    INSERT INTO analytics.complaint_day_hist {hist};
END $$;
"""


def upgrade() -> None:
    cols = ",\n".join(
        f"    {c} {'numeric' if c in NUMERIC else 'bigint'} NOT NULL DEFAULT 0" for c, _ in TOTALS
    )
    ddl = f"""
CREATE TABLE analytics.complaint_day_dims (
    day date NOT NULL,
    channel text,
    category text,
    department text,
    priority text,
    n bigint NOT NULL DEFAULT 0,
    res_done bigint NOT NULL DEFAULT 0,
    res_on_time bigint NOT NULL DEFAULT 0,
    CONSTRAINT complaint_day_dims_key UNIQUE NULLS NOT DISTINCT
        (day, channel, category, department, priority)
);
CREATE TABLE analytics.complaint_day_totals (
    day date PRIMARY KEY,
{cols}
);
CREATE TABLE analytics.complaint_day_remedy (
    day date NOT NULL,
    remedy text NOT NULL,
    n bigint NOT NULL DEFAULT 0,
    compensation bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, remedy)
);
CREATE TABLE analytics.complaint_day_hist (
    day date NOT NULL,
    measure text NOT NULL,
    bucket int NOT NULL,
    n bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, measure, bucket)
)
"""
    for statement in ddl.split(";"):
        op.execute(statement)
    for sql in (DIMS_FN, _totals_apply(), REMEDY_FN, HIST_FN, _trigger(), _backfill()):
        op.execute(sql)
    op.execute(
        """
CREATE TRIGGER complaint_fact_summary
AFTER INSERT OR UPDATE OR DELETE ON analytics.complaint_fact
FOR EACH ROW EXECUTE FUNCTION analytics.complaint_summary_trigger();
"""
    )
    # Exact percentiles: the bucket of a rank comes from complaint_day_hist, its values
    # from these indexes (in bucket then value order, index-only).
    for m, col, expr in HIST:
        op.execute(
            f"CREATE INDEX complaint_fact_{m}_bucket_idx ON analytics.complaint_fact "
            f"(({expr}), {col}, received_day) "
            f"WHERE {col} IS NOT NULL AND received_day IS NOT NULL"
        )
    # Repeat complaints: per customer in index order, with the category, index-only.
    op.execute(
        "CREATE INDEX complaint_fact_customer_cat_idx ON analytics.complaint_fact "
        "(customer_key, received_day, category) WHERE customer_key IS NOT NULL"
    )
    op.execute("SELECT analytics.complaint_summary_backfill()")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS analytics.complaint_fact_customer_cat_idx")
    for m, _, _ in HIST:
        op.execute(f"DROP INDEX IF EXISTS analytics.complaint_fact_{m}_bucket_idx")
    op.execute("DROP TRIGGER IF EXISTS complaint_fact_summary ON analytics.complaint_fact")
    for fn in (
        "complaint_summary_trigger()",
        "complaint_summary_backfill()",
        "complaint_summary_dims(analytics.complaint_fact, int)",
        "complaint_summary_totals(analytics.complaint_fact, int)",
        "complaint_summary_remedy(analytics.complaint_fact, int)",
        "complaint_summary_hist(date, text, int, int)",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS analytics.{fn}")
    for t in ("complaint_day_hist", "complaint_day_remedy", "complaint_day_totals",
              "complaint_day_dims"):  # fmt: skip
        op.execute(f"DROP TABLE IF EXISTS analytics.{t}")
