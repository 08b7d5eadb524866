"""repeat complaints without a pass over the range: customer links and month cells

The repeat-complaint report (``/complaints/repeats``, ``min_complaints`` 2) needs, for a
range [from, to), the complaints of customers with at least two complaints in the range.
Two tables make that a read of a few thousand rows:

- ``complaint_repeat_link``: one row per complaint whose customer key and receipt are known,
  with the receipt instant and local day of the same customer's previous and next complaint
  (order: receipt instant, then complaint id). A customer's complaints inside a range are
  consecutive in that order, so with N complaints, P consecutive pairs and T consecutive
  triples inside the range: customers = N - P, repeat customers = P - T, their complaints
  = 2P - T. Each row is up to four points (first, last) with its category: the complaint
  (kind 0: itself, itself), the pair ending here (1: previous, itself), the pair starting
  here (2: itself, next) and the triple around it (3: previous, next); a point is inside the
  range when its first receipt is at or after ``from`` and its last before ``to``.
- ``complaint_repeat_month``: how many points of each kind and category have their first
  and last receipt in each pair of local months. A range reads the cells of its whole months
  and the points whose first or last receipt falls in its partial first or last month from
  the links (indexes on the receipt, previous and next day).

Kept in the writing transaction: the row trigger ``complaint_fact_repeat_link`` (only when
the customer key, receipt or category of a complaint changes) takes a transaction advisory
lock on the customer key, writes the complaint's link row and recomputes the links of that
customer (a window over the customer's rows); statement triggers on the links add the new
points to the month cells and subtract the old ones (rows at 0 deleted). Both tables are
therefore functions of the fact rows; ``analytics.complaint_repeat_backfill()`` recomputes
them, and ``analytics.complaint_summary_backfill()`` now calls it too (0007's function is
kept as ``complaint_summary_backfill_dims``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 00:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _month(col: str) -> str:
    return f"date_trunc('month', {col}::timestamp)::date"


def _points(src: str, sign: int) -> str:
    """SELECT of the points of the link rows in ``src`` with weight ``sign``."""
    day, prev, nxt = "received_day", "prev_day", "next_day"
    return " UNION ALL ".join(
        [
            f"SELECT 0 AS kind, {_month(day)} AS s_month, {_month(day)} AS e_month, "
            f"category, {sign} AS d FROM {src}",
            f"SELECT 1, {_month(prev)}, {_month(day)}, category, {sign} FROM {src} "
            f"WHERE {prev} IS NOT NULL",
            f"SELECT 2, {_month(day)}, {_month(nxt)}, category, {sign} FROM {src} "
            f"WHERE {nxt} IS NOT NULL",
            f"SELECT 3, {_month(prev)}, {_month(nxt)}, category, {sign} FROM {src} "
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
        SELECT kind, s_month, e_month, category, sum(d) AS d
        FROM ({points}) AS p
        GROUP BY 1, 2, 3, 4
        HAVING sum(d) <> 0
        ORDER BY 1, 2, 3, 4
    LOOP
        INSERT INTO analytics.complaint_repeat_month AS t (kind, s_month, e_month, category, n)
        VALUES (c.kind, c.s_month, c.e_month, c.category, c.d)
        ON CONFLICT (kind, s_month, e_month, category) DO UPDATE SET n = t.n + EXCLUDED.n
        RETURNING t.n, t.ctid INTO left_n, loc;
        IF left_n = 0 THEN
            DELETE FROM analytics.complaint_repeat_month WHERE ctid = loc;
        END IF;
    END LOOP;
    RETURN NULL;
END $$;
"""


RELINK_FN = """
CREATE FUNCTION analytics.complaint_repeat_relink(k text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE analytics.complaint_repeat_link AS l
    SET prev_at = x.prev_at, prev_day = x.prev_day, next_at = x.next_at, next_day = x.next_day
    FROM (
        SELECT complaint_id,
               lag(received_at) OVER w AS prev_at, lag(received_day) OVER w AS prev_day,
               lead(received_at) OVER w AS next_at, lead(received_day) OVER w AS next_day
        FROM analytics.complaint_repeat_link
        WHERE customer_key = k
        WINDOW w AS (ORDER BY received_at, complaint_id)
    ) AS x
    WHERE l.complaint_id = x.complaint_id
      AND (l.prev_at, l.prev_day, l.next_at, l.next_day)
          IS DISTINCT FROM (x.prev_at, x.prev_day, x.next_at, x.next_day);
END $$;
"""

#: A complaint has a link row when these are known (the repeat report's population).
ELIGIBLE = (
    "{r}.customer_key IS NOT NULL AND {r}.received_at IS NOT NULL AND {r}.received_day IS NOT NULL"
)

FACT_TRIGGER_FN = f"""
CREATE FUNCTION analytics.complaint_repeat_link_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    has_o bool := TG_OP <> 'INSERT' AND {ELIGIBLE.format(r="OLD")};
    has_n bool := TG_OP <> 'DELETE' AND {ELIGIBLE.format(r="NEW")};
BEGIN
    -- One writer per customer at a time: the links of a customer are recomputed from the
    -- rows committed before (each statement below sees them: READ COMMITTED, volatile).
    IF has_o AND has_n AND OLD.customer_key <> NEW.customer_key THEN
        -- Both customers, in a fixed order.
        PERFORM pg_advisory_xact_lock(
            hashtextextended(least(OLD.customer_key, NEW.customer_key), 8));
        PERFORM pg_advisory_xact_lock(
            hashtextextended(greatest(OLD.customer_key, NEW.customer_key), 8));
    ELSIF has_o THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(OLD.customer_key, 8));
    ELSIF has_n THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(NEW.customer_key, 8));
    END IF;
    IF has_o AND has_n AND OLD.customer_key = NEW.customer_key
        AND OLD.received_at = NEW.received_at AND OLD.received_day = NEW.received_day THEN
        -- Only the category changed: the complaint's points move, no link changes.
        UPDATE analytics.complaint_repeat_link
        SET category = COALESCE(NEW.category, 'unclassified')
        WHERE complaint_id = NEW.complaint_id
          AND category <> COALESCE(NEW.category, 'unclassified');
        RETURN NULL;
    END IF;
    IF has_o THEN
        DELETE FROM analytics.complaint_repeat_link WHERE complaint_id = OLD.complaint_id;
        PERFORM analytics.complaint_repeat_relink(OLD.customer_key);
    END IF;
    IF has_n THEN
        INSERT INTO analytics.complaint_repeat_link
            (complaint_id, customer_key, received_at, received_day, category)
        VALUES (NEW.complaint_id, NEW.customer_key, NEW.received_at, NEW.received_day,
                COALESCE(NEW.category, 'unclassified'));
        PERFORM analytics.complaint_repeat_relink(NEW.customer_key);
    END IF;
    RETURN NULL;
END $$;
"""

BACKFILL_FN = """
CREATE FUNCTION analytics.complaint_repeat_backfill() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE analytics.complaint_repeat_link, analytics.complaint_repeat_month;
    INSERT INTO analytics.complaint_repeat_link
    SELECT complaint_id, customer_key, received_at, received_day,
           COALESCE(category, 'unclassified'),
           lag(received_at) OVER w, lag(received_day) OVER w,
           lead(received_at) OVER w, lead(received_day) OVER w
    FROM analytics.complaint_fact
    WHERE customer_key IS NOT NULL AND received_at IS NOT NULL AND received_day IS NOT NULL
    WINDOW w AS (PARTITION BY customer_key ORDER BY received_at, complaint_id);
END $$;
"""

SUMMARY_BACKFILL_FN = """
CREATE FUNCTION analytics.complaint_summary_backfill() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM analytics.complaint_summary_backfill_dims();
    PERFORM analytics.complaint_repeat_backfill();
END $$;
"""


def upgrade() -> None:
    op.execute(
        """
CREATE TABLE analytics.complaint_repeat_link (
    complaint_id uuid PRIMARY KEY,
    customer_key text NOT NULL,
    received_at timestamptz NOT NULL,
    received_day date NOT NULL,
    category text NOT NULL,
    prev_at timestamptz,
    prev_day date,
    next_at timestamptz,
    next_day date
)"""
    )
    op.execute(
        """
CREATE TABLE analytics.complaint_repeat_month (
    kind smallint NOT NULL,
    s_month date NOT NULL,
    e_month date NOT NULL,
    category text NOT NULL,
    n bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, s_month, e_month, category)
)"""
    )
    cols = "received_at, prev_at, prev_day, next_at, category"
    op.execute(
        "CREATE INDEX complaint_repeat_link_customer_idx ON analytics.complaint_repeat_link "
        "(customer_key, received_at, complaint_id)"
    )
    op.execute(
        "CREATE INDEX complaint_repeat_link_day_idx ON analytics.complaint_repeat_link "
        f"(received_day) INCLUDE ({cols}, next_day)"
    )
    op.execute(
        "CREATE INDEX complaint_repeat_link_prev_idx ON analytics.complaint_repeat_link "
        "(prev_day) INCLUDE (prev_at, received_at, next_at, category) "
        "WHERE prev_day IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX complaint_repeat_link_next_idx ON analytics.complaint_repeat_link "
        "(next_day) INCLUDE (next_at, received_day, prev_day, category) "
        "WHERE next_day IS NOT NULL"
    )
    for name, points in (
        ("complaint_repeat_cells_insert", _points("new_rows", 1)),
        ("complaint_repeat_cells_update",
         _points("old_rows", -1) + " UNION ALL " + _points("new_rows", 1)),
        ("complaint_repeat_cells_delete", _points("old_rows", -1)),
    ):  # fmt: skip
        op.execute(_cells_fn(name, points))
    op.execute(
        """
CREATE TRIGGER complaint_repeat_cells_insert AFTER INSERT ON analytics.complaint_repeat_link
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION analytics.complaint_repeat_cells_insert()"""
    )
    op.execute(
        """
CREATE TRIGGER complaint_repeat_cells_update AFTER UPDATE ON analytics.complaint_repeat_link
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION analytics.complaint_repeat_cells_update()"""
    )
    op.execute(
        """
CREATE TRIGGER complaint_repeat_cells_delete AFTER DELETE ON analytics.complaint_repeat_link
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION analytics.complaint_repeat_cells_delete()"""
    )
    for sql in (RELINK_FN, FACT_TRIGGER_FN, BACKFILL_FN):
        op.execute(sql)
    op.execute(
        """
CREATE TRIGGER complaint_fact_repeat_link AFTER INSERT OR DELETE ON analytics.complaint_fact
FOR EACH ROW EXECUTE FUNCTION analytics.complaint_repeat_link_trigger()"""
    )
    op.execute(
        """
CREATE TRIGGER complaint_fact_repeat_link_update
AFTER UPDATE OF customer_key, received_at, received_day, category ON analytics.complaint_fact
FOR EACH ROW
WHEN ((OLD.customer_key, OLD.received_at, OLD.received_day, OLD.category)
      IS DISTINCT FROM (NEW.customer_key, NEW.received_at, NEW.received_day, NEW.category))
EXECUTE FUNCTION analytics.complaint_repeat_link_trigger()"""
    )
    op.execute(
        "ALTER FUNCTION analytics.complaint_summary_backfill() "
        "RENAME TO complaint_summary_backfill_dims"
    )
    op.execute(SUMMARY_BACKFILL_FN)
    op.execute("SELECT analytics.complaint_repeat_backfill()")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS analytics.complaint_summary_backfill()")
    op.execute(
        "ALTER FUNCTION analytics.complaint_summary_backfill_dims() "
        "RENAME TO complaint_summary_backfill"
    )
    op.execute("DROP TRIGGER IF EXISTS complaint_fact_repeat_link ON analytics.complaint_fact")
    op.execute(
        "DROP TRIGGER IF EXISTS complaint_fact_repeat_link_update ON analytics.complaint_fact"
    )
    op.execute("DROP TABLE IF EXISTS analytics.complaint_repeat_link")
    op.execute("DROP TABLE IF EXISTS analytics.complaint_repeat_month")
    for fn in (
        "complaint_repeat_link_trigger()",
        "complaint_repeat_relink(text)",
        "complaint_repeat_backfill()",
        "complaint_repeat_cells_insert()",
        "complaint_repeat_cells_update()",
        "complaint_repeat_cells_delete()",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS analytics.{fn}")
