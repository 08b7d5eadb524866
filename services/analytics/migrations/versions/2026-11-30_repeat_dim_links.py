"""repeat complaints with a value filter: customer links per dimension value and month cells

Migration 0008 links each complaint to the same customer's previous and next complaint
among *all* their complaints, which answers the repeat report (``min_complaints`` 2)
without a value filter. With a filter ``dim = v`` the report needs the pairs among the
customer's complaints *with that value*, so before this revision it fell back to a pass over
the facts (0.2-0.7 s on 1,000,000 complaints over two years; docs/analytics.md, fourth
round). This revision keeps the same structure per dimension value:

- ``complaint_repeat_dim_link``: one row per complaint and filter dimension (``channel``,
  ``category``, ``product_line``, ``department``, ``priority``, ``region``, ``branch``) whose
  value is not NULL and whose customer key and receipt are known: the value, the category
  (``unclassified`` for NULL, for the per-category figures) and the receipt instant and
  local day of the same customer's previous and next complaint *with the same value of that
  dimension* (order: receipt instant, complaint id). The points (kind 0 complaint, 1 pair
  ending here, 2 pair starting here, 3 triple around it) and the counting (customers N - P,
  repeat customers P - T, their complaints 2P - T) are 0008's, per (dimension, value).
- ``complaint_repeat_dim_month``: how many points of each dimension, value, kind and category
  have their first and last receipt in each pair of local months.

Kept in the writing transaction: the row trigger ``complaint_fact_repeat_dim_link`` fires
when a complaint's customer key, receipt, category, channel, product line, department,
priority, region or branch changes (routing changes several at once; one recomputation per
row). It takes the same transaction advisory lock on the customer key as 0008's trigger
(two writers of one customer wait for each other; both customers in a fixed order when the
key changes) and recomputes that customer's rows from ``complaint_fact`` (through
``complaint_fact_customer_idx``): a window per dimension and value over the customer's
complaints, written as an upsert of the rows that differ and a delete of the rows that are
gone. Statement triggers on the links (transition tables) add the new points to the month
cells and subtract the old ones (a cell at 0 is deleted). Both tables are functions of the
fact rows; ``analytics.complaint_repeat_dim_backfill()`` recomputes them and
``analytics.complaint_summary_backfill()`` calls it too.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 01:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Filter dimension (the report's filter name, as ``complaint_day_dim_totals.dim``) ->
#: column of ``complaint_fact``.
DIMS = {
    "channel": "channel",
    "category": "category",
    "product_line": "product_line",
    "department": "department",
    "priority": "priority",
    "region": "region",
    "branch": "branch_code",
}
#: The columns whose change moves a complaint's dimension links.
WATCHED = ("customer_key", "received_at", "received_day", *dict.fromkeys(DIMS.values()))


def _unpivot(alias: str) -> str:
    """VALUES list of (dim, value) of the fact row ``alias`` (a LATERAL source)."""
    return ", ".join(f"('{d}', {alias}.{c})" for d, c in DIMS.items())


def _wanted(where: str) -> str:
    """SELECT of the link rows the facts matching ``where`` (on alias ``c``) call for."""
    return f"""
SELECT d.dim, c.complaint_id, d.value, c.customer_key, c.received_at, c.received_day,
       COALESCE(c.category, 'unclassified') AS category,
       lag(c.received_at) OVER w AS prev_at, lag(c.received_day) OVER w AS prev_day,
       lead(c.received_at) OVER w AS next_at, lead(c.received_day) OVER w AS next_day
FROM analytics.complaint_fact AS c
CROSS JOIN LATERAL (VALUES {_unpivot("c")}) AS d(dim, value)
WHERE {where} AND c.received_at IS NOT NULL AND c.received_day IS NOT NULL
  AND d.value IS NOT NULL
WINDOW w AS (PARTITION BY c.customer_key, d.dim, d.value
             ORDER BY c.received_at, c.complaint_id)"""


def _month(col: str) -> str:
    return f"date_trunc('month', {col}::timestamp)::date"


def _points(src: str, sign: int) -> str:
    """SELECT of the points of the link rows in ``src`` with weight ``sign`` (as 0008)."""
    day, prev, nxt = "received_day", "prev_day", "next_day"
    key = "dim, value"
    return " UNION ALL ".join(
        [
            f"SELECT {key}, 0 AS kind, {_month(day)} AS s_month, {_month(day)} AS e_month, "
            f"category, {sign} AS d FROM {src}",
            f"SELECT {key}, 1, {_month(prev)}, {_month(day)}, category, {sign} FROM {src} "
            f"WHERE {prev} IS NOT NULL",
            f"SELECT {key}, 2, {_month(day)}, {_month(nxt)}, category, {sign} FROM {src} "
            f"WHERE {nxt} IS NOT NULL",
            f"SELECT {key}, 3, {_month(prev)}, {_month(nxt)}, category, {sign} FROM {src} "
            f"WHERE {prev} IS NOT NULL AND {nxt} IS NOT NULL",
        ]
    )


def _cells_fn(name: str, points: str) -> str:
    # Keys in a fixed order, so that two writers lock cell rows in the same order.
    return f"""
CREATE FUNCTION analytics.{name}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    c record;
    left_n bigint;
    loc tid;
BEGIN
    FOR c IN
        SELECT dim, value, kind, s_month, e_month, category, sum(d) AS d
        FROM ({points}) AS p
        GROUP BY 1, 2, 3, 4, 5, 6
        HAVING sum(d) <> 0
        ORDER BY 1, 2, 3, 4, 5, 6
    LOOP
        INSERT INTO analytics.complaint_repeat_dim_month AS t
            (dim, value, kind, s_month, e_month, category, n)
        VALUES (c.dim, c.value, c.kind, c.s_month, c.e_month, c.category, c.d)
        ON CONFLICT (dim, value, kind, s_month, e_month, category)
        DO UPDATE SET n = t.n + EXCLUDED.n
        RETURNING t.n, t.ctid INTO left_n, loc;
        IF left_n = 0 THEN
            DELETE FROM analytics.complaint_repeat_dim_month WHERE ctid = loc;
        END IF;
    END LOOP;
    RETURN NULL;
END $$;
"""


LINK_COLS = (
    "dim, complaint_id, value, customer_key, received_at, received_day, category, "
    "prev_at, prev_day, next_at, next_day"
)

RELINK_FN = f"""
CREATE FUNCTION analytics.complaint_repeat_dim_relink(k text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- Rows of the customer that the facts no longer call for (complaint gone, value now
    -- NULL, receipt or key lost), then the rows that are new or differ.
    DELETE FROM analytics.complaint_repeat_dim_link AS l
    WHERE l.customer_key = k
      AND NOT EXISTS (
          SELECT FROM analytics.complaint_fact AS c
          WHERE c.complaint_id = l.complaint_id AND c.customer_key = k
            AND c.received_at IS NOT NULL AND c.received_day IS NOT NULL
            AND (CASE l.dim {" ".join(f"WHEN '{d}' THEN c.{col}" for d, col in DIMS.items())}
                 END) IS NOT NULL);
    INSERT INTO analytics.complaint_repeat_dim_link AS l ({LINK_COLS})
    {_wanted("c.customer_key = k")}
    ON CONFLICT (dim, complaint_id) DO UPDATE
    SET value = EXCLUDED.value, customer_key = EXCLUDED.customer_key,
        received_at = EXCLUDED.received_at, received_day = EXCLUDED.received_day,
        category = EXCLUDED.category, prev_at = EXCLUDED.prev_at,
        prev_day = EXCLUDED.prev_day, next_at = EXCLUDED.next_at, next_day = EXCLUDED.next_day
    WHERE (l.value, l.customer_key, l.received_at, l.received_day, l.category, l.prev_at,
           l.prev_day, l.next_at, l.next_day)
          IS DISTINCT FROM
          (EXCLUDED.value, EXCLUDED.customer_key, EXCLUDED.received_at, EXCLUDED.received_day,
           EXCLUDED.category, EXCLUDED.prev_at, EXCLUDED.prev_day, EXCLUDED.next_at,
           EXCLUDED.next_day);
END $$;
"""

#: The previous and the new customer of a row (either may be NULL: no key, no row).
FACT_TRIGGER_FN = """
CREATE FUNCTION analytics.complaint_repeat_dim_link_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ko text := CASE WHEN TG_OP <> 'INSERT' THEN OLD.customer_key END;
    kn text := CASE WHEN TG_OP <> 'DELETE' THEN NEW.customer_key END;
BEGIN
    -- One writer per customer at a time (the lock of 0008's trigger; both customers in a
    -- fixed order): the customer's rows are recomputed from the facts committed before.
    IF ko IS NOT NULL AND kn IS NOT NULL AND ko <> kn THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(least(ko, kn), 8));
        PERFORM pg_advisory_xact_lock(hashtextextended(greatest(ko, kn), 8));
        PERFORM analytics.complaint_repeat_dim_relink(least(ko, kn));
        PERFORM analytics.complaint_repeat_dim_relink(greatest(ko, kn));
    ELSIF COALESCE(ko, kn) IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(COALESCE(ko, kn), 8));
        PERFORM analytics.complaint_repeat_dim_relink(COALESCE(ko, kn));
    END IF;
    RETURN NULL;
END $$;
"""

BACKFILL_FN = f"""
CREATE FUNCTION analytics.complaint_repeat_dim_backfill() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE analytics.complaint_repeat_dim_link, analytics.complaint_repeat_dim_month;
    INSERT INTO analytics.complaint_repeat_dim_link ({LINK_COLS})
    {_wanted("c.customer_key IS NOT NULL")};
END $$;
"""

SUMMARY_BACKFILL_FN = """
CREATE OR REPLACE FUNCTION analytics.complaint_summary_backfill() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM analytics.complaint_summary_backfill_dims();
    PERFORM analytics.complaint_repeat_backfill();
    {extra}
END $$;
"""


def upgrade() -> None:
    op.execute(
        """
CREATE TABLE analytics.complaint_repeat_dim_link (
    dim text NOT NULL,
    complaint_id uuid NOT NULL,
    value text NOT NULL,
    customer_key text NOT NULL,
    received_at timestamptz NOT NULL,
    received_day date NOT NULL,
    category text NOT NULL,
    prev_at timestamptz,
    prev_day date,
    next_at timestamptz,
    next_day date,
    PRIMARY KEY (dim, complaint_id)
)"""
    )
    op.execute(
        """
CREATE TABLE analytics.complaint_repeat_dim_month (
    dim text NOT NULL,
    value text NOT NULL,
    kind smallint NOT NULL,
    s_month date NOT NULL,
    e_month date NOT NULL,
    category text NOT NULL,
    n bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (dim, value, kind, s_month, e_month, category)
)"""
    )
    link = "analytics.complaint_repeat_dim_link"
    op.execute(f"CREATE INDEX complaint_repeat_dim_link_customer_idx ON {link} (customer_key)")
    op.execute(
        f"CREATE INDEX complaint_repeat_dim_link_day_idx ON {link} (dim, value, received_day) "
        "INCLUDE (received_at, prev_at, prev_day, next_at, category, next_day)"
    )
    op.execute(
        f"CREATE INDEX complaint_repeat_dim_link_prev_idx ON {link} (dim, value, prev_day) "
        "INCLUDE (prev_at, received_at, next_at, category) WHERE prev_day IS NOT NULL"
    )
    op.execute(
        f"CREATE INDEX complaint_repeat_dim_link_next_idx ON {link} (dim, value, next_day) "
        "INCLUDE (next_at, received_day, prev_day, category) WHERE next_day IS NOT NULL"
    )
    for name, points in (
        ("complaint_repeat_dim_cells_insert", _points("new_rows", 1)),
        ("complaint_repeat_dim_cells_update",
         _points("old_rows", -1) + " UNION ALL " + _points("new_rows", 1)),
        ("complaint_repeat_dim_cells_delete", _points("old_rows", -1)),
    ):  # fmt: skip
        op.execute(_cells_fn(name, points))
    for op_name, ref in (
        ("insert", "NEW TABLE AS new_rows"),
        ("update", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ("delete", "OLD TABLE AS old_rows"),
    ):
        op.execute(
            f"CREATE TRIGGER complaint_repeat_dim_cells_{op_name} AFTER {op_name.upper()} "
            f"ON {link} REFERENCING {ref} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION analytics.complaint_repeat_dim_cells_{op_name}()"
        )
    for sql in (RELINK_FN, FACT_TRIGGER_FN, BACKFILL_FN):
        op.execute(sql)
    op.execute(
        """
CREATE TRIGGER complaint_fact_repeat_dim_link AFTER INSERT OR DELETE
ON analytics.complaint_fact
FOR EACH ROW EXECUTE FUNCTION analytics.complaint_repeat_dim_link_trigger()"""
    )
    old = ", ".join(f"OLD.{c}" for c in WATCHED)
    new = ", ".join(f"NEW.{c}" for c in WATCHED)
    op.execute(
        f"""
CREATE TRIGGER complaint_fact_repeat_dim_link_update
AFTER UPDATE OF {", ".join(WATCHED)} ON analytics.complaint_fact
FOR EACH ROW WHEN (({old}) IS DISTINCT FROM ({new}))
EXECUTE FUNCTION analytics.complaint_repeat_dim_link_trigger()"""
    )
    op.execute(
        SUMMARY_BACKFILL_FN.format(extra="PERFORM analytics.complaint_repeat_dim_backfill();")
    )
    op.execute("SELECT analytics.complaint_repeat_dim_backfill()")
    op.execute(f"ANALYZE {link}")
    op.execute("ANALYZE analytics.complaint_repeat_dim_month")


def downgrade() -> None:
    op.execute(SUMMARY_BACKFILL_FN.format(extra=""))
    op.execute("DROP TRIGGER IF EXISTS complaint_fact_repeat_dim_link ON analytics.complaint_fact")
    op.execute(
        "DROP TRIGGER IF EXISTS complaint_fact_repeat_dim_link_update ON analytics.complaint_fact"
    )
    op.execute("DROP TABLE IF EXISTS analytics.complaint_repeat_dim_link")
    op.execute("DROP TABLE IF EXISTS analytics.complaint_repeat_dim_month")
    for fn in (
        "complaint_repeat_dim_link_trigger()",
        "complaint_repeat_dim_relink(text)",
        "complaint_repeat_dim_backfill()",
        "complaint_repeat_dim_cells_insert()",
        "complaint_repeat_dim_cells_update()",
        "complaint_repeat_dim_cells_delete()",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS analytics.{fn}")
