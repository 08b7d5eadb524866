"""Tables of the followup schema.

- ``subject``: what followup knows of each case or suggestion it follows up: the highest
  round seen and the highest round closed. Its row is locked (``FOR UPDATE``) by every
  event handler of that subject, so events of one case that arrive on different topics
  (and so in any order, on any replica) are applied one at a time.
- ``visit``: one follow-up visit of a case round or a suggestion. At most one ``active``
  visit per subject (partial unique index ``visit_one_active_idx``) and at most one visit
  per subject and round (``visit_subject_round_key``): the database refuses a second one
  whatever the order or number of deliveries of the events.
- ``attempt``: the tries of a visit (reached or unreachable, and the answer when reached).
- ``audit_log`` (append-only), ``outbox``, ``processed_events``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from shared.audit import audit_table
from shared.db import make_metadata
from shared.events.outbox import outbox_table
from shared.events.processed import processed_events_table

SCHEMA = "followup"
metadata = make_metadata(SCHEMA)

subject = Table(
    "subject",
    metadata,
    Column("subject_kind", Text, nullable=False),
    Column("subject_id", Text, nullable=False),
    Column("latest_round", Integer, nullable=False, server_default=text("0")),
    Column("closed_round", Integer, nullable=False, server_default=text("0")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("subject_kind", "subject_id"),
    CheckConstraint("subject_kind IN ('case', 'suggestion')", name="kind"),
)

visit = Table(
    "visit",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("subject_kind", Text, nullable=False),
    Column("subject_id", Text, nullable=False),
    Column("round", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("department", Text),
    Column("category", Text),
    Column("customer_key", Text, nullable=False),
    Column("triggered_at", DateTime(timezone=True), nullable=False),
    Column("first_attempt_at", DateTime(timezone=True), nullable=False),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("due_date", Date, nullable=False),
    Column("provisional", Boolean, nullable=False, server_default=text("false")),
    Column("attempts_count", Integer, nullable=False, server_default=text("0")),
    Column("max_attempts", Integer, nullable=False),
    Column("outcome", Text),
    Column("satisfied", Boolean),
    Column("score", SmallInteger),
    Column("reason_code", Text),
    Column("comment", Text),
    Column("completed_at", DateTime(timezone=True)),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("cancel_reason", Text),
    Column("reopened_at", DateTime(timezone=True)),
    Column("reopened_round", Integer),
    # The visit clock's sweep (issue 6 §4): when to look next (NULL: never again), and when
    # the warning / overdue alert was emitted (each at most once per visit).
    Column("clock_check_at", DateTime(timezone=True)),
    Column("warned_at", DateTime(timezone=True)),
    Column("overdue_at", DateTime(timezone=True)),
    Column("source_event_id", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("subject_kind", "subject_id", "round", name="visit_subject_round_key"),
    CheckConstraint("subject_kind IN ('case', 'suggestion')", name="kind"),
    CheckConstraint("status IN ('active', 'completed', 'cancelled')", name="status"),
    CheckConstraint("channel IN ('call', 'sms', 'app_survey')", name="channel"),
    CheckConstraint(
        "outcome IS NULL OR outcome IN ('satisfied', 'unsatisfied', 'unreachable')",
        name="outcome",
    ),
    CheckConstraint("score IS NULL OR score BETWEEN 1 AND 5", name="score"),
    CheckConstraint("(status = 'completed') = (outcome IS NOT NULL)", name="completed_outcome"),
    CheckConstraint("(status = 'active') = (next_attempt_at IS NOT NULL)", name="active_next"),
)
Index(
    "visit_one_active_idx",
    visit.c.subject_kind,
    visit.c.subject_id,
    unique=True,
    postgresql_where=visit.c.status == "active",
)
Index(
    "visit_worklist_idx",
    visit.c.next_attempt_at,
    postgresql_where=visit.c.status == "active",
)
Index("visit_status_due_idx", visit.c.status, visit.c.due_at)
Index(
    "visit_clock_check_idx",
    visit.c.clock_check_at,
    postgresql_where=visit.c.clock_check_at.is_not(None),
)

attempt = Table(
    "attempt",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "visit_id",
        UUID(as_uuid=False),
        ForeignKey(visit.c.id, ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("number", Integer, nullable=False),
    Column("result", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("satisfied", Boolean),
    Column("score", SmallInteger),
    Column("reason_code", Text),
    Column("comment", Text),
    Column("recorded_by", Text, nullable=False),
    Column("attempted_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("visit_id", "number", name="attempt_visit_number_key"),
    CheckConstraint("result IN ('reached', 'unreachable')", name="result"),
    CheckConstraint("score IS NULL OR score BETWEEN 1 AND 5", name="score"),
)

audit_log = audit_table(metadata)
outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
