"""repeat complaints with any value filters: the complaints in customer order, narrow

The repeat report (``/complaints/repeats``) reads the customer links of 0008 without a value
filter and those of 0010 with one value of one dimension (``min_complaints`` 2). Any other
shape (two or more filtered dimensions, several values of one, or ``min_complaints`` above
2) kept one pass over ``complaint_fact`` in customer order with two window functions:
0.2-0.8 s on 1,000,000 complaints (phone + P3 over two years 275-298 ms, phone or web 705-792
ms, no filter with ``min_complaints`` 3 about 530 ms; docs/analytics.md, fifteenth round).
Links cannot serve them: which complaints of a customer are neighbours depends on the filter.

This revision keeps what such a pass reads, narrow and in customer order:

- ``complaint_customer``: an integer id per customer key (a key is never deleted);
- ``complaint_category``: an integer id per category label (``unclassified`` for none);
- ``complaint_customer_cell``: one row per complaint whose customer key, receipt instant and
  local receipt day are known: the customer id, the complaint id, the complaint's cell of
  six dimensions (``complaint_cell`` of 0015), its category id and its receipt instant.
  Partitioned by hash of the customer id into two tables (:data:`PARTITIONS`): a customer's
  rows are all in one partition, so PostgreSQL groups each partition by customer on its own
  (partitionwise aggregation) and runs the partitions in parallel workers. The key
  ``(customer_id, complaint_id)`` INCLUDEs the cell, category and receipt: the report reads
  the index only, in customer order, without a sort.

The report selects the cells of its value filters from ``complaint_cell`` and counts, per
customer, the complaints in those cells and in the range, then sums over customers:
customers, repeat customers (at least ``min_complaints``), their complaints, per category.
Per category it needs, with ``min_complaints`` 2 or 3, only each customer's smallest and
largest category id and the range's complaints per category from the summaries, less those
without a customer key: the partial index ``complaint_fact_unkeyed_idx`` finds those.

Kept exact in the writing transaction by the row trigger ``complaint_fact_customer_cell``
(+ ``_update`` when the customer key, receipt or one of the six dimensions changes): the
complaint's old row is deleted and its new row inserted. ``complaint_customer_cell_backfill()``
recomputes the rows (ids already given are kept) and ``complaint_summary_backfill()`` calls it.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 17:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Hash partitions of ``complaint_customer_cell``: the number of processes that can group
#: customers at once (the bench machine has two cores; a parallel query uses at most
#: ``max_parallel_workers_per_gather`` workers plus the leader).
PARTITIONS = 2
#: The six dimensions of a cell, in the order of ``complaint_cell.dims`` (0015).
CELL_COLUMNS = ("channel", "category", "product_line", "department", "priority", "region")
#: The columns whose change moves a complaint's row (the update trigger's WHEN).
WATCHED = ("customer_key", "received_at", "received_day", *CELL_COLUMNS)


def _dims(r: str) -> str:
    return "ARRAY[" + ", ".join(f"{r}.{c}" for c in CELL_COLUMNS) + "]::text[]"


def _has(r: str) -> str:
    return (
        f"{r}.customer_key IS NOT NULL AND {r}.received_at IS NOT NULL "
        f"AND {r}.received_day IS NOT NULL"
    )


TABLES = [
    """
CREATE TABLE analytics.complaint_customer (
    customer_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_key text NOT NULL CONSTRAINT complaint_customer_key_key UNIQUE
)""",
    """
CREATE TABLE analytics.complaint_category (
    category_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    category text NOT NULL CONSTRAINT complaint_category_category_key UNIQUE
)""",
    """
CREATE TABLE analytics.complaint_customer_cell (
    customer_id integer NOT NULL,
    complaint_id uuid NOT NULL,
    cell_id integer NOT NULL,
    category_id integer NOT NULL,
    received_at timestamptz NOT NULL,
    CONSTRAINT complaint_customer_cell_pkey PRIMARY KEY (complaint_id, customer_id)
) PARTITION BY HASH (customer_id)""",
    # The report's index: in customer order, the rest INCLUDEd (without the complaint id: a
    # uuid would make each entry half as wide again; 200-250 ms instead of about 145 for
    # phone or web over two years).
    "CREATE INDEX complaint_customer_cell_customer_idx ON analytics.complaint_customer_cell "
    "(customer_id) INCLUDE (cell_id, category_id, received_at)",
    # Autovacuum after 1 % new or changed rows (the default is 20 % of inserts): the report
    # reads the index only while the visibility map says the pages are all visible; with it
    # unset every entry visits the heap (phone or web over two years: 1-2 s, not 0.15).
    *[
        f"CREATE TABLE analytics.complaint_customer_cell_p{i} PARTITION OF "
        "analytics.complaint_customer_cell "
        f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i}) "
        "WITH (autovacuum_vacuum_insert_scale_factor = 0.01, "
        "autovacuum_vacuum_scale_factor = 0.01)"
        for i in range(PARTITIONS)
    ],
    # The complaints without a customer key (few), which the summaries count and the report
    # subtracts.
    "CREATE INDEX complaint_fact_unkeyed_idx ON analytics.complaint_fact (received_day) "
    "WHERE customer_key IS NULL AND received_day IS NOT NULL",
]


def _id_fn(name: str, table: str, id_col: str, id_type: str, key: str) -> str:
    """A get-or-create function of an id by its key, as 0015's ``complaint_cell_id``.

    Writers run at READ COMMITTED: a concurrent writer adding the same key makes the insert
    wait and then do nothing, and the second lookup (a new snapshot) finds its row.
    """
    return f"""
CREATE FUNCTION analytics.{name}(k text) RETURNS {id_type}
LANGUAGE plpgsql AS $$
DECLARE
    id {id_type};
BEGIN
    SELECT t.{id_col} INTO id FROM analytics.{table} AS t WHERE t.{key} = k;
    IF id IS NULL THEN
        INSERT INTO analytics.{table} ({key}) VALUES (k)
        ON CONFLICT ({key}) DO NOTHING
        RETURNING {id_col} INTO id;
        IF id IS NULL THEN
            SELECT t.{id_col} INTO id FROM analytics.{table} AS t WHERE t.{key} = k;
        END IF;
    END IF;
    RETURN id;
END $$;
"""


TRIGGER_FN = f"""
CREATE FUNCTION analytics.complaint_customer_cell_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND {_has("OLD")} THEN
        DELETE FROM analytics.complaint_customer_cell AS r
        USING analytics.complaint_customer AS k
        WHERE r.complaint_id = OLD.complaint_id AND k.customer_key = OLD.customer_key
          AND r.customer_id = k.customer_id;
    END IF;
    IF TG_OP <> 'DELETE' AND {_has("NEW")} THEN
        INSERT INTO analytics.complaint_customer_cell
            (customer_id, complaint_id, cell_id, category_id, received_at)
        VALUES (
            analytics.complaint_customer_id(NEW.customer_key),
            NEW.complaint_id,
            analytics.complaint_cell_id({_dims("NEW")}),
            analytics.complaint_category_id(COALESCE(NEW.category, 'unclassified')),
            NEW.received_at);
    END IF;
    RETURN NULL;
END $$;
"""

BACKFILL_FN = f"""
CREATE FUNCTION analytics.complaint_customer_cell_backfill() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE analytics.complaint_customer_cell;
    -- Only the keys not yet known: an insert that meets a conflict would still use up an
    -- identity value, and a rebuild runs this every time.
    INSERT INTO analytics.complaint_customer (customer_key)
    SELECT DISTINCT f.customer_key FROM analytics.complaint_fact AS f
    WHERE {_has("f")} AND NOT EXISTS (
        SELECT FROM analytics.complaint_customer AS k WHERE k.customer_key = f.customer_key)
    ORDER BY 1;
    INSERT INTO analytics.complaint_category (category)
    SELECT DISTINCT COALESCE(f.category, 'unclassified') FROM analytics.complaint_fact AS f
    WHERE {_has("f")} AND NOT EXISTS (
        SELECT FROM analytics.complaint_category AS g
        WHERE g.category = COALESCE(f.category, 'unclassified'))
    ORDER BY 1;
    INSERT INTO analytics.complaint_cell ({", ".join(CELL_COLUMNS)})
    SELECT DISTINCT {", ".join(f"f.{c}" for c in CELL_COLUMNS)}
    FROM analytics.complaint_fact AS f
    WHERE {_has("f")} AND NOT EXISTS (
        SELECT FROM analytics.complaint_cell AS c WHERE c.dims = {_dims("f")});
    INSERT INTO analytics.complaint_customer_cell
        (customer_id, complaint_id, cell_id, category_id, received_at)
    SELECT k.customer_id, f.complaint_id, c.cell_id, g.category_id, f.received_at
    FROM analytics.complaint_fact AS f
    JOIN analytics.complaint_customer AS k ON k.customer_key = f.customer_key
    JOIN analytics.complaint_cell AS c ON c.dims = {_dims("f")}
    JOIN analytics.complaint_category AS g ON g.category = COALESCE(f.category, 'unclassified')
    WHERE {_has("f")}
    ORDER BY 1, 2;
END $$;
"""

#: 0015's ``complaint_summary_backfill`` plus this revision's rows.
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
    PERFORM analytics.complaint_customer_cell_backfill();
END $$;
"""

#: 0015's version (the downgrade puts it back).
SUMMARY_BACKFILL_FN_0015 = """
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


def upgrade() -> None:
    for sql in (
        *TABLES,
        _id_fn("complaint_customer_id", "complaint_customer", "customer_id", "integer",
               "customer_key"),
        _id_fn("complaint_category_id", "complaint_category", "category_id", "integer",
               "category"),
        TRIGGER_FN,
        BACKFILL_FN,
        SUMMARY_BACKFILL_FN,
    ):  # fmt: skip
        op.execute(sql)
    op.execute(
        """
CREATE TRIGGER complaint_fact_customer_cell AFTER INSERT OR DELETE ON analytics.complaint_fact
FOR EACH ROW EXECUTE FUNCTION analytics.complaint_customer_cell_trigger()"""
    )
    old = ", ".join(f"OLD.{c}" for c in WATCHED)
    new = ", ".join(f"NEW.{c}" for c in WATCHED)
    op.execute(
        f"""
CREATE TRIGGER complaint_fact_customer_cell_update
AFTER UPDATE OF {", ".join(WATCHED)} ON analytics.complaint_fact
FOR EACH ROW WHEN (({old}) IS DISTINCT FROM ({new}))
EXECUTE FUNCTION analytics.complaint_customer_cell_trigger()"""
    )
    op.execute("SELECT analytics.complaint_customer_cell_backfill()")
    for t in ("customer", "category", "cell", "customer_cell"):
        op.execute(f"ANALYZE analytics.complaint_{t}")


def downgrade() -> None:
    for trigger in ("complaint_fact_customer_cell", "complaint_fact_customer_cell_update"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON analytics.complaint_fact")
    op.execute(SUMMARY_BACKFILL_FN_0015)
    for fn in (
        "complaint_customer_cell_trigger()",
        "complaint_customer_cell_backfill()",
        "complaint_customer_id(text)",
        "complaint_category_id(text)",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS analytics.{fn}")
    op.execute("DROP INDEX IF EXISTS analytics.complaint_fact_unkeyed_idx")
    for t in ("customer_cell", "category", "customer"):
        op.execute(f"DROP TABLE IF EXISTS analytics.complaint_{t}")
