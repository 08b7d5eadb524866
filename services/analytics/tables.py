"""Tables of the analytics schema: a read model built only from events.

``complaint_fact`` has one row per complaint, filled in by whichever of its events arrive,
in any order (each handler writes only the columns its event knows, with an upsert).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, Index, Table, Text
from sqlalchemy.dialects.postgresql import UUID

from shared.db import make_metadata
from shared.events.processed import processed_events_table

SCHEMA = "analytics"
metadata = make_metadata(SCHEMA)

complaint_fact = Table(
    "complaint_fact",
    metadata,
    Column("complaint_id", UUID(as_uuid=False), primary_key=True),
    Column("reference", Text),
    Column("channel", Text),
    Column("customer_key", Text),
    Column("received_at", DateTime(timezone=True)),
    Column("branch_code", Text),
    Column("region", Text),
    Column("language", Text),
    Column("amount_minor", BigInteger),
    Column("category", Text),
    Column("product_line", Text),
    Column("priority", Text),
    Column("department", Text),
    Column("needs_triage", Boolean),
    Column("opened_at", DateTime(timezone=True)),
    Column("due_at", DateTime(timezone=True)),
    Column("due_date", Date),
)
Index("complaint_fact_received_idx", complaint_fact.c.received_at)
Index("complaint_fact_category_idx", complaint_fact.c.category, complaint_fact.c.received_at)

processed_events = processed_events_table(metadata)
