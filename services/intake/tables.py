"""Tables of the intake schema (SQLAlchemy Core: the intake write path is the hot path).

- ``submission``: one complaint or suggestion as recorded, free text redacted.
- ``vault``: the personal data of a submission, AES-256-GCM encrypted, with its key id.
- ``idempotency_key``: replies remembered per client and ``Idempotency-Key``.
- ``outbox``: events to publish.
- ``audit_log``: append-only record of every unmasked read of personal data and every
  change (submissions recorded, vault keys rotated), read by auditors (``GET /v1/audit``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.audit import audit_table
from shared.db import make_metadata
from shared.events.outbox import outbox_table

SCHEMA = "intake"
metadata = make_metadata(SCHEMA)

submission = Table(
    "submission",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("reference", Text, nullable=False, unique=True),
    Column("channel", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("customer_key", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("subject", Text),
    Column("product", Text),
    Column("branch_code", Text),
    Column("region", Text),
    Column("occurred_at", DateTime(timezone=True)),
    Column("amount_minor", BigInteger),
    Column("currency", Text),
    Column("language", Text),
    Column("external_ref", Text),
    Column("attachments", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("content_hash", Text, nullable=False),
    Column("duplicate_of", UUID(as_uuid=False)),
    Column("status", Text, nullable=False, server_default=text("'received'")),
    Column("created_by", Text, nullable=False),
)
Index("submission_customer_key_idx", submission.c.customer_key, submission.c.received_at)

vault = Table(
    "vault",
    metadata,
    Column(
        "submission_id",
        UUID(as_uuid=False),
        ForeignKey(submission.c.id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key_id", Text, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

idempotency_key = Table(
    "idempotency_key",
    metadata,
    Column("client", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("status_code", Integer),
    Column("response", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("client", "key"),
)
Index("idempotency_key_expires_at_idx", idempotency_key.c.expires_at)

outbox = outbox_table(metadata)
audit_log = audit_table(metadata)
