"""audit log (append-only) and idempotency key expiry index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Same SQL as shared.audit.append_only_trigger_sql("intake"), inlined: revisions never
# import app code. One statement per op.execute: asyncpg prepares each one.
APPEND_ONLY_UP = (
    """CREATE OR REPLACE FUNCTION "intake".audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only';
END $$""",
    """CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON "intake".audit_log
FOR EACH ROW EXECUTE FUNCTION "intake".audit_log_append_only()""",
    # TRUNCATE bypasses row triggers; refuse it too.
    """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON "intake".audit_log
FOR EACH STATEMENT EXECUTE FUNCTION "intake".audit_log_append_only()""",
)
APPEND_ONLY_DOWN = (
    'DROP TRIGGER IF EXISTS audit_log_no_truncate ON "intake".audit_log',
    'DROP TRIGGER IF EXISTS audit_log_append_only ON "intake".audit_log',
    'DROP FUNCTION IF EXISTS "intake".audit_log_append_only()',
)


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("actor_roles", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("subject_type", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=False),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("correlation_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("audit_log_pkey")),
        schema="intake",
    )
    op.create_index("intake_audit_subject_idx", "audit_log", ["subject_id", "at"], schema="intake")
    op.create_index("intake_audit_actor_idx", "audit_log", ["actor", "at"], schema="intake")
    for statement in APPEND_ONLY_UP:
        op.execute(statement)
    op.create_index(
        "idempotency_key_expires_at_idx", "idempotency_key", ["expires_at"], schema="intake"
    )


def downgrade() -> None:
    op.drop_index("idempotency_key_expires_at_idx", table_name="idempotency_key", schema="intake")
    for statement in APPEND_ONLY_DOWN:
        op.execute(statement)
    op.drop_index("intake_audit_actor_idx", table_name="audit_log", schema="intake")
    op.drop_index("intake_audit_subject_idx", table_name="audit_log", schema="intake")
    op.drop_table("audit_log", schema="intake")
