"""Tables of the tracking schema.

- ``case``: one complaint being handled (id = complaint id), its status and routing.
- ``case_clock``: the deadlines of a case: ``resolution`` (5 working days), ``acknowledgement``
  (1 working day) and ``regulatory`` (15 calendar days); a reopen starts a new resolution
  clock (``round`` + 1). ``next_check_at`` is what the SLA sweep scans (indexed).
- ``case_event``: the case's timeline (append-only).
- ``case_extension``: requests for more time on a clock, and the supervisor's decision.
- ``calendar_override`` / ``calendar_official_year`` / ``calendar_version``: the bank's
  corrections of the working-day calendar (``GET/POST /v1/calendar/...``) and a version
  counter that tells every replica to rebuild its calendar.
- ``suggestion``, ``suggestion_evaluation``, ``suggestion_event``, ``reward_ledger``: the
  suggestion workflow.
- ``audit_log`` (append-only), ``outbox``, ``processed_events``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
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
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from shared.audit import audit_table
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
    # 0002: the outcome of handling, recusal and merging.
    Column("responsibility", Text),
    Column("at_fault_unit", Text),
    Column("remedy", Text),
    Column("compensation_minor", BigInteger),
    Column("currency", Text),
    Column("resolution_summary", Text),
    Column("notified_channel", Text),
    Column("merged_into", UUID(as_uuid=False)),
    Column("status_before_escalation", Text),
    Column("involved_staff", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("closed_outcome", Text),
)
Index("case_queue_idx", case.c.status, case.c.department)
Index("case_handler_idx", case.c.handler, case.c.status)
Index("case_department_status_idx", case.c.department, case.c.status)

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
    # 0002: pauses (awaiting the customer), extensions, the due time before any of them.
    Column("paused_at", DateTime(timezone=True)),
    Column("pauses", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("paused_working_days", Integer, nullable=False, server_default=text("0")),
    Column("extension_working_days", Integer, nullable=False, server_default=text("0")),
    Column("original_due_at", DateTime(timezone=True)),
    Column("original_due_date", Date),
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

case_extension = Table(
    "case_extension",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "case_id", UUID(as_uuid=False), ForeignKey(case.c.id, ondelete="CASCADE"), nullable=False
    ),
    Column("round", Integer, nullable=False),
    Column("working_days", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", Text, nullable=False),  # requested | approved | rejected
    Column("requested_by", Text, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", Text),
    Column("decided_at", DateTime(timezone=True)),
    Column("decision_reason", Text),
    Column("new_due_at", DateTime(timezone=True)),
    Column("new_due_date", Date),
)
Index("case_extension_case_idx", case_extension.c.case_id, case_extension.c.id)

calendar_override = Table(
    "calendar_override",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("day", Date, nullable=False),
    Column("kind", Text, nullable=False),  # holiday | working_day
    Column("reason", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("removed_by", Text),
    Column("removed_at", DateTime(timezone=True)),
    Column("removal_reason", Text),
)
Index(
    "calendar_override_active_day_idx",
    calendar_override.c.day,
    unique=True,
    postgresql_where=calendar_override.c.removed_at.is_(None),
)

calendar_official_year = Table(
    "calendar_official_year",
    metadata,
    Column("year", Integer, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("declared_by", Text, nullable=False),
    Column("declared_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

calendar_version = Table(
    "calendar_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

suggestion = Table(
    "suggestion",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("reference", Text, nullable=False, unique=True),
    Column("status", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("customer_key", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("product_line", Text, nullable=False),
    Column("department", Text, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("near_duplicate_of", UUID(as_uuid=False)),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("screen_reason", Text),
    Column("decision_reason", Text),
    Column("score", Float),
    Column("plan_department", Text),
    Column("plan_owner", Text),
    Column("plan_working_days", Integer),
    Column("plan_due_date", Date),
    Column("implemented_at", DateTime(timezone=True)),
    Column("effect_note", Text),
    Column("notified_at", DateTime(timezone=True)),
    Column("version", Integer, nullable=False, server_default=text("1")),
)
Index("suggestion_queue_idx", suggestion.c.status, suggestion.c.department)

suggestion_evaluation = Table(
    "suggestion_evaluation",
    metadata,
    Column(
        "suggestion_id",
        UUID(as_uuid=False),
        ForeignKey(suggestion.c.id, ondelete="CASCADE"),
        nullable=False,
    ),
    Column("reviewer", Text, nullable=False),
    Column("feasibility", Integer, nullable=False),
    Column("reasonableness", Integer, nullable=False),
    Column("expected_effect", Integer, nullable=False),
    Column("weighted_score", Float, nullable=False),
    Column("comment", Text),
    Column("evaluated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("suggestion_id", "reviewer"),
)

suggestion_event = Table(
    "suggestion_event",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "suggestion_id",
        UUID(as_uuid=False),
        ForeignKey(suggestion.c.id, ondelete="CASCADE"),
        nullable=False,
    ),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("action", Text, nullable=False),
    Column("from_status", Text),
    Column("to_status", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
)
Index("suggestion_event_sug_idx", suggestion_event.c.suggestion_id, suggestion_event.c.id)

reward_ledger = Table(
    "reward_ledger",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "suggestion_id",
        UUID(as_uuid=False),
        ForeignKey(suggestion.c.id, ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("customer_key", Text, nullable=False),
    Column("reward_type", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", Text),
    Column("granted_by", Text, nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
)
Index("reward_ledger_sug_idx", reward_ledger.c.suggestion_id)

audit_log = audit_table(metadata)
outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
