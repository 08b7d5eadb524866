"""suggestion participants without sorting every key: links to a customer's previous suggestion

The suggestions report's participants (distinct suggesters of the suggestions received in
[from, to)) were ``count(DISTINCT customer_key)`` over the range: a sort of every key (60-80
ms of the report's 130-210 ms over two years on 100,000 suggestions; docs/analytics.md,
eighth round).

``suggestion_link``: one row per suggestion whose customer key and receipt instant are
known, with the receipt instant of the same customer's previous suggestion (order: receipt
instant, then suggestion id, a total order, so ties on the instant are exact). A customer's
suggestions inside a range are consecutive in that order, so each customer with suggestions
in the range has exactly one whose previous suggestion is not in it (none, or received
before ``from``: the previous one is never at or after ``to``). Hence participants = the
link rows in the range whose ``prev_at`` is NULL or before ``from`` (all those with
``prev_at`` NULL for an open ``from``): a count over an index-only range scan.

Kept in the writing transaction by the row trigger ``suggestion_fact_link`` (insert and
delete; updates only when the customer key or the receipt instant changes): it takes a
transaction advisory lock on the customer key (seed 13; both keys in a fixed order when the
key changes), so two writers of one customer wait for each other and each sees the other's
committed rows (READ COMMITTED: every statement of the function takes a new snapshot),
replaces the suggestion's link row and recomputes ``prev_at`` of that customer's rows (a
window over the customer's few rows; only rows that differ are updated). The table is
therefore a function of the fact rows: redelivery (no change: the trigger does not fire),
any order of events, changes of receipt or customer give the same rows, and
``analytics.suggestion_link_backfill()`` recomputes it (the bench's bulk load calls it).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 04:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RELINK_FN = """
CREATE FUNCTION analytics.suggestion_relink(k text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE analytics.suggestion_link AS l
    SET prev_at = x.prev_at
    FROM (
        SELECT suggestion_id,
               lag(received_at) OVER (ORDER BY received_at, suggestion_id) AS prev_at
        FROM analytics.suggestion_link
        WHERE customer_key = k
    ) AS x
    WHERE l.suggestion_id = x.suggestion_id AND l.prev_at IS DISTINCT FROM x.prev_at;
END $$;
"""

#: A suggestion has a link row when these are known (``count(DISTINCT customer_key)`` of the
#: report counts the known keys of the suggestions with a receipt instant).
ELIGIBLE = "{r}.customer_key IS NOT NULL AND {r}.received_at IS NOT NULL"

FACT_TRIGGER_FN = f"""
CREATE FUNCTION analytics.suggestion_link_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    has_o bool := TG_OP <> 'INSERT' AND {ELIGIBLE.format(r="OLD")};
    has_n bool := TG_OP <> 'DELETE' AND {ELIGIBLE.format(r="NEW")};
BEGIN
    -- One writer per customer at a time (seed 13: not the complaints' locks of 0008/0010).
    IF has_o AND has_n AND OLD.customer_key <> NEW.customer_key THEN
        PERFORM pg_advisory_xact_lock(
            hashtextextended(least(OLD.customer_key, NEW.customer_key), 13));
        PERFORM pg_advisory_xact_lock(
            hashtextextended(greatest(OLD.customer_key, NEW.customer_key), 13));
    ELSIF has_o THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(OLD.customer_key, 13));
    ELSIF has_n THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(NEW.customer_key, 13));
    END IF;
    IF has_o THEN
        DELETE FROM analytics.suggestion_link WHERE suggestion_id = OLD.suggestion_id;
    END IF;
    IF has_n THEN
        INSERT INTO analytics.suggestion_link (suggestion_id, customer_key, received_at)
        VALUES (NEW.suggestion_id, NEW.customer_key, NEW.received_at);
    END IF;
    IF has_o AND NOT (has_n AND OLD.customer_key = NEW.customer_key) THEN
        PERFORM analytics.suggestion_relink(OLD.customer_key);
    END IF;
    IF has_n THEN
        PERFORM analytics.suggestion_relink(NEW.customer_key);
    END IF;
    RETURN NULL;
END $$;
"""

BACKFILL_FN = """
CREATE FUNCTION analytics.suggestion_link_backfill() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE analytics.suggestion_link;
    INSERT INTO analytics.suggestion_link (suggestion_id, customer_key, received_at, prev_at)
    SELECT suggestion_id, customer_key, received_at,
           lag(received_at) OVER (PARTITION BY customer_key ORDER BY received_at, suggestion_id)
    FROM analytics.suggestion_fact
    WHERE customer_key IS NOT NULL AND received_at IS NOT NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(
        """
CREATE TABLE analytics.suggestion_link (
    suggestion_id uuid PRIMARY KEY,
    customer_key text NOT NULL,
    received_at timestamptz NOT NULL,
    prev_at timestamptz
)"""
    )
    op.execute(
        "CREATE INDEX suggestion_link_customer_idx ON analytics.suggestion_link "
        "(customer_key, received_at, suggestion_id)"
    )
    op.execute(
        "CREATE INDEX suggestion_link_received_idx ON analytics.suggestion_link "
        "(received_at) INCLUDE (prev_at)"
    )
    for sql in (RELINK_FN, FACT_TRIGGER_FN, BACKFILL_FN):
        op.execute(sql)
    op.execute(
        """
CREATE TRIGGER suggestion_fact_link AFTER INSERT OR DELETE ON analytics.suggestion_fact
FOR EACH ROW EXECUTE FUNCTION analytics.suggestion_link_trigger()"""
    )
    op.execute(
        """
CREATE TRIGGER suggestion_fact_link_update
AFTER UPDATE OF customer_key, received_at ON analytics.suggestion_fact
FOR EACH ROW
WHEN ((OLD.customer_key, OLD.received_at) IS DISTINCT FROM (NEW.customer_key, NEW.received_at))
EXECUTE FUNCTION analytics.suggestion_link_trigger()"""
    )
    op.execute("SELECT analytics.suggestion_link_backfill()")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS suggestion_fact_link ON analytics.suggestion_fact")
    op.execute("DROP TRIGGER IF EXISTS suggestion_fact_link_update ON analytics.suggestion_fact")
    op.execute("DROP TABLE IF EXISTS analytics.suggestion_link")
    for fn in (
        "suggestion_link_trigger()",
        "suggestion_relink(text)",
        "suggestion_link_backfill()",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS analytics.{fn}")
