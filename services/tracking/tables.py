"""Tables of the tracking schema.

- ``case``: one complaint being handled (id = complaint id), its status and routing.
- ``case_clock``: the deadlines of a case: ``resolution`` (5 working days), ``acknowledgement``
  (1 working day) and ``regulatory`` (15 calendar days); a reopen starts a new resolution
  clock (``round`` + 1). ``next_check_at`` is what the SLA sweep scans (indexed).
- ``case_event``: the case's timeline (append-only).
- ``outbox``, ``processed_events``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.db import make_metadata
from shared.events.outbox import outbox_table
from shared.events.processed import processed_events_table

SCHEMA = "tracking"
metadata = make_metadata(SCHEMA)

case = Table(
    "case",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("reference", Text, nullable=False, unique=True),
    Column("status", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("product_line", Text, nullable=False),
    Column("priority", Text, nullable=False),
    Column("department", Text, nullable=False),
    Column("handler", Text),
    Column("channel", Text, nullable=False),
    Column("customer_key", Text, nullable=False),
    Column("branch_code", Text),
    Column("region", Text),
    Column("needs_triage", Boolean, nullable=False, server_default=text("false")),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("reopen_count", Integer, nullable=False, server_default=text("0")),
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
)
Index("case_queue_idx", case.c.status, case.c.department)

case_clock = Table(
    "case_clock",
    metadata,
    Column("case_id", UUID(as_uuid=False), ForeignKey(case.c.id, ondelete="CASCADE")),
    Column("kind", Text, nullable=False),
    Column("round", Integer, nullable=False, server_default=text("1")),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("due_date", Date, nullable=False),
    Column("provisional", Boolean, nullable=False, server_default=text("false")),
    Column("warn_at", DateTime(timezone=True)),
    Column("stopped_at", DateTime(timezone=True)),
    Column("warned_at", DateTime(timezone=True)),
    Column("breached_at", DateTime(timezone=True)),
    Column("next_check_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("case_id", "kind", "round"),
)
Index(
    "case_clock_next_check_idx",
    case_clock.c.next_check_at,
    postgresql_where=case_clock.c.next_check_at.is_not(None),
)

case_event = Table(
    "case_event",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "case_id", UUID(as_uuid=False), ForeignKey(case.c.id, ondelete="CASCADE"), nullable=False
    ),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("action", Text, nullable=False),
    Column("from_status", Text),
    Column("to_status", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
)
Index("case_event_case_idx", case_event.c.case_id, case_event.c.id)

outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
