"""Tables of the routing schema.

- ``classification``: the category, product line, priority and department chosen for each
  complaint or suggestion, with confidence, explanation and versions; ``needs_triage``
  marks the ones a person must confirm (the triage queue).
- ``routing_rule_set``: versioned routing rules (the newest version is in force).
- ``labelled_example``: a supervisor's override of a complaint, kept as a labelled training
  example for the next training run (the latest override of a complaint wins).
- ``suggestion_minhash``: MinHash LSH band keys of each suggestion's text, to find
  near-duplicate suggestions without comparing against every earlier one.
- ``audit_log`` (append-only: rule changes, overrides), ``outbox``, ``processed_events``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.audit import audit_table
from shared.db import make_metadata
from shared.events.outbox import outbox_table
from shared.events.processed import processed_events_table

SCHEMA = "routing"
metadata = make_metadata(SCHEMA)

classification = Table(
    "classification",
    metadata,
    Column("subject_id", UUID(as_uuid=False), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("reference", Text, nullable=False),
    Column("customer_key", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("category", Text, nullable=False),
    Column("product_line", Text, nullable=False),
    Column("priority", Text, nullable=False),
    Column("department", Text, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("needs_triage", Boolean, nullable=False, server_default=text("false")),
    Column("explanation", JSONB, nullable=False),
    Column("rule_version", Integer, nullable=False),
    Column("classifier_version", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("amount_minor", BigInteger),
    Column("classified_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("overridden_by", Text),
    Column("overridden_at", DateTime(timezone=True)),
    Column("near_duplicate_of", UUID(as_uuid=False)),
    Column("near_duplicate_similarity", Float),
)
Index(
    "classification_customer_idx",
    classification.c.customer_key,
    classification.c.received_at,
)
Index(
    "classification_triage_idx",
    classification.c.received_at,
    postgresql_where=classification.c.needs_triage,
)

routing_rule_set = Table(
    "routing_rule_set",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("rules", JSONB, nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

labelled_example = Table(
    "labelled_example",
    metadata,
    Column("complaint_id", UUID(as_uuid=False), primary_key=True),
    Column("text", Text, nullable=False),
    Column("language", Text),
    Column("category", Text, nullable=False),
    Column("product_line", Text, nullable=False),
    Column("priority", Text, nullable=False),
    Column("department", Text, nullable=False),
    Column("previous_category", Text, nullable=False),
    Column("previous_product_line", Text, nullable=False),
    Column("classifier_version", Text, nullable=False),
    Column("labelled_by", Text, nullable=False),
    Column("labelled_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

suggestion_minhash = Table(
    "suggestion_minhash",
    metadata,
    Column("band", SmallInteger, nullable=False),
    Column("bucket", BigInteger, nullable=False),
    Column("suggestion_id", UUID(as_uuid=False), nullable=False),
    PrimaryKeyConstraint("band", "bucket", "suggestion_id"),
)

audit_log = audit_table(metadata)
outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
