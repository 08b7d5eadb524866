"""audit log, labelled examples, suggestion minhash

``audit_log`` refuses UPDATE and DELETE (the trigger SQL of
``shared.audit.append_only_trigger_sql``, copied here because revisions never import app
code). ``labelled_example`` keeps supervisors' overrides as training examples;
``suggestion_minhash`` holds MinHash LSH band keys of suggestion texts; ``classification``
gains the near-duplicate columns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 21:36:05.009408
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_UP = """
DO $do$
BEGIN
  CREATE OR REPLACE FUNCTION "routing".audit_log_append_only() RETURNS trigger
  LANGUAGE plpgsql AS $fn$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $fn$;
  CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON "routing".audit_log
  FOR EACH ROW EXECUTE FUNCTION "routing".audit_log_append_only();
END $do$;
"""
APPEND_ONLY_DOWN = """
DO $do$
BEGIN
  DROP TRIGGER IF EXISTS audit_log_append_only ON "routing".audit_log;
  DROP FUNCTION IF EXISTS "routing".audit_log_append_only();
END $do$;
"""


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
        schema="routing",
    )
    op.create_index(
        "routing_audit_actor_idx", "audit_log", ["actor", "at"], unique=False, schema="routing"
    )
    op.create_index(
        "routing_audit_subject_idx",
        "audit_log",
        ["subject_id", "at"],
        unique=False,
        schema="routing",
    )
    op.execute(APPEND_ONLY_UP)
    op.create_table(
        "labelled_example",
        sa.Column("complaint_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("language", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("product_line", sa.Text(), nullable=False),
        sa.Column("priority", sa.Text(), nullable=False),
        sa.Column("department", sa.Text(), nullable=False),
        sa.Column("previous_category", sa.Text(), nullable=False),
        sa.Column("previous_product_line", sa.Text(), nullable=False),
        sa.Column("classifier_version", sa.Text(), nullable=False),
        sa.Column("labelled_by", sa.Text(), nullable=False),
        sa.Column(
            "labelled_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("complaint_id", name=op.f("labelled_example_pkey")),
        schema="routing",
    )
    op.create_table(
        "suggestion_minhash",
        sa.Column("band", sa.SmallInteger(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("suggestion_id", sa.UUID(as_uuid=False), nullable=False),
        sa.PrimaryKeyConstraint(
            "band", "bucket", "suggestion_id", name=op.f("suggestion_minhash_pkey")
        ),
        schema="routing",
    )
    op.add_column(
        "classification",
        sa.Column("near_duplicate_of", sa.UUID(as_uuid=False), nullable=True),
        schema="routing",
    )
    op.add_column(
        "classification",
        sa.Column("near_duplicate_similarity", sa.Float(), nullable=True),
        schema="routing",
    )


def downgrade() -> None:
    op.drop_column("classification", "near_duplicate_similarity", schema="routing")
    op.drop_column("classification", "near_duplicate_of", schema="routing")
    op.drop_table("suggestion_minhash", schema="routing")
    op.drop_table("labelled_example", schema="routing")
    op.execute(APPEND_ONLY_DOWN)
    op.drop_index("routing_audit_subject_idx", table_name="audit_log", schema="routing")
    op.drop_index("routing_audit_actor_idx", table_name="audit_log", schema="routing")
    op.drop_table("audit_log", schema="routing")
