"""read model facts: case rounds, clock alerts, transitions, visits, suggestions, derived columns

Rows that existed before this revision get ``received_day`` from ``received_at`` in
``CFP_TIMEZONE`` (Asia/Shanghai by default); run ``cfp analytics-rebuild`` afterwards to fill
the derived case columns from the topics.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 21:31:32.326564
"""

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_round_fact",
        sa.Column("case_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("round", sa.SmallInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reopen_reason", sa.Text(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("responsibility", sa.Text(), nullable=True),
        sa.Column("remedy", sa.Text(), nullable=True),
        sa.Column("compensation_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.Text(), nullable=True),
        sa.Column("resolved_on_time", sa.Boolean(), nullable=True),
        sa.Column("working_days_taken", sa.Float(), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notified_on_time", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("case_id", "round", name=op.f("case_round_fact_pkey")),
        schema="analytics",
    )
    op.create_table(
        "case_transition_fact",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("case_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=True),
        sa.Column("to_status", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("case_transition_fact_pkey")),
        schema="analytics",
    )
    op.create_index(
        "case_transition_fact_case_idx",
        "case_transition_fact",
        ["case_id"],
        unique=False,
        schema="analytics",
    )
    op.create_table(
        "clock_alert_fact",
        sa.Column("case_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("clock", sa.Text(), nullable=False),
        sa.Column("round", sa.SmallInteger(), nullable=False),
        sa.Column("alert", sa.Text(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn", sa.Boolean(), server_default="false", nullable=False),
        sa.PrimaryKeyConstraint(
            "case_id", "clock", "round", "alert", "due_at", name=op.f("clock_alert_fact_pkey")
        ),
        schema="analytics",
    )
    op.create_table(
        "followup_fact",
        sa.Column("visit_id", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=True),
        sa.Column("subject_kind", sa.Text(), nullable=True),
        sa.Column("round", sa.SmallInteger(), nullable=True),
        sa.Column("channel", sa.Text(), nullable=True),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("score", sa.SmallInteger(), nullable=True),
        sa.Column("reason_code", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("department", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("visit_id", name=op.f("followup_fact_pkey")),
        schema="analytics",
    )
    op.create_index(
        "followup_fact_subject_idx",
        "followup_fact",
        ["subject_id"],
        unique=False,
        schema="analytics",
    )
    op.create_table(
        "suggestion_fact",
        sa.Column("suggestion_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("channel", sa.Text(), nullable=True),
        sa.Column("customer_key", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_day", sa.Date(), nullable=True),
        sa.Column("branch_code", sa.Text(), nullable=True),
        sa.Column("product", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("product_line", sa.Text(), nullable=True),
        sa.Column("department", sa.Text(), nullable=True),
        sa.Column("screened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("near_duplicate_of", sa.Text(), nullable=True),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluation_score", sa.Float(), nullable=True),
        sa.Column("implemented_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("planned_due_date", sa.Text(), nullable=True),
        sa.Column("implemented_on_time", sa.Boolean(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("suggestion_id", name=op.f("suggestion_fact_pkey")),
        schema="analytics",
    )
    op.create_index(
        "suggestion_fact_day_idx",
        "suggestion_fact",
        ["received_day"],
        unique=False,
        schema="analytics",
    )
    op.create_table(
        "suggestion_reward_fact",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("suggestion_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("reward_type", sa.Text(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("currency", sa.Text(), nullable=True),
        sa.Column("rewarded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("suggestion_reward_fact_pkey")),
        schema="analytics",
    )
    op.create_index(
        "suggestion_reward_fact_suggestion_idx",
        "suggestion_reward_fact",
        ["suggestion_id"],
        unique=False,
        schema="analytics",
    )
    op.add_column(
        "complaint_fact", sa.Column("received_day", sa.Date(), nullable=True), schema="analytics"
    )
    op.add_column(
        "complaint_fact", sa.Column("currency", sa.Text(), nullable=True), schema="analytics"
    )
    op.add_column(
        "complaint_fact", sa.Column("product", sa.Text(), nullable=True), schema="analytics"
    )
    op.add_column(
        "complaint_fact",
        sa.Column("vulnerable_customer", sa.Boolean(), nullable=True),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("routed_at", sa.DateTime(timezone=True), nullable=True),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact", sa.Column("provisional", sa.Boolean(), nullable=True), schema="analytics"
    )
    op.add_column(
        "complaint_fact", sa.Column("status", sa.Text(), nullable=True), schema="analytics"
    )
    op.add_column(
        "complaint_fact",
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact", sa.Column("ack_seconds", sa.Float(), nullable=True), schema="analytics"
    )
    op.add_column(
        "complaint_fact",
        sa.Column("escalation_count", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("extension_count", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("reopen_count", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("resolution_working_days", sa.Float(), nullable=True),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("resolution_seconds", sa.Float(), nullable=True),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("result_notified_at", sa.DateTime(timezone=True), nullable=True),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("res_clocks_done", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("res_clocks_on_time", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("ack_clock_done", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("ack_clock_on_time", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("breaches_resolution", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("breaches_acknowledgement", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("breaches_regulatory", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact", sa.Column("responsibility", sa.Text(), nullable=True), schema="analytics"
    )
    op.add_column(
        "complaint_fact", sa.Column("remedy", sa.Text(), nullable=True), schema="analytics"
    )
    op.add_column(
        "complaint_fact",
        sa.Column("compensation_minor", sa.BigInteger(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact", sa.Column("close_outcome", sa.Text(), nullable=True), schema="analytics"
    )
    op.add_column(
        "complaint_fact",
        sa.Column("visits_done", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("visits_unreachable", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("visits_unsatisfied", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("score_n", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("score_sum", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("score_1", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("score_2", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("score_3", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("score_4", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column("score_5", sa.Integer(), server_default="0", nullable=False),
        schema="analytics",
    )
    op.add_column(
        "complaint_fact",
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        schema="analytics",
    )
    tz = os.environ.get("CFP_TIMEZONE", "Asia/Shanghai")
    op.execute(
        sa.text(
            "UPDATE analytics.complaint_fact"
            " SET received_day = (received_at AT TIME ZONE :tz)::date"
        ).bindparams(tz=tz)
    )
    op.create_index(
        "complaint_fact_branch_idx",
        "complaint_fact",
        ["branch_code", "received_day"],
        unique=False,
        schema="analytics",
    )
    op.create_index(
        "complaint_fact_customer_idx",
        "complaint_fact",
        ["customer_key", "received_day"],
        unique=False,
        schema="analytics",
    )
    op.create_index(
        "complaint_fact_day_idx",
        "complaint_fact",
        ["received_day"],
        unique=False,
        schema="analytics",
    )
    op.create_index(
        "complaint_fact_open_idx",
        "complaint_fact",
        ["status"],
        unique=False,
        schema="analytics",
        postgresql_where=sa.text("closed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "complaint_fact_open_idx",
        table_name="complaint_fact",
        schema="analytics",
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.drop_index("complaint_fact_day_idx", table_name="complaint_fact", schema="analytics")
    op.drop_index("complaint_fact_customer_idx", table_name="complaint_fact", schema="analytics")
    op.drop_index("complaint_fact_branch_idx", table_name="complaint_fact", schema="analytics")
    op.drop_column("complaint_fact", "updated_at", schema="analytics")
    op.drop_column("complaint_fact", "score_5", schema="analytics")
    op.drop_column("complaint_fact", "score_4", schema="analytics")
    op.drop_column("complaint_fact", "score_3", schema="analytics")
    op.drop_column("complaint_fact", "score_2", schema="analytics")
    op.drop_column("complaint_fact", "score_1", schema="analytics")
    op.drop_column("complaint_fact", "score_sum", schema="analytics")
    op.drop_column("complaint_fact", "score_n", schema="analytics")
    op.drop_column("complaint_fact", "visits_unsatisfied", schema="analytics")
    op.drop_column("complaint_fact", "visits_unreachable", schema="analytics")
    op.drop_column("complaint_fact", "visits_done", schema="analytics")
    op.drop_column("complaint_fact", "close_outcome", schema="analytics")
    op.drop_column("complaint_fact", "closed_at", schema="analytics")
    op.drop_column("complaint_fact", "compensation_minor", schema="analytics")
    op.drop_column("complaint_fact", "remedy", schema="analytics")
    op.drop_column("complaint_fact", "responsibility", schema="analytics")
    op.drop_column("complaint_fact", "breaches_regulatory", schema="analytics")
    op.drop_column("complaint_fact", "breaches_acknowledgement", schema="analytics")
    op.drop_column("complaint_fact", "breaches_resolution", schema="analytics")
    op.drop_column("complaint_fact", "ack_clock_on_time", schema="analytics")
    op.drop_column("complaint_fact", "ack_clock_done", schema="analytics")
    op.drop_column("complaint_fact", "res_clocks_on_time", schema="analytics")
    op.drop_column("complaint_fact", "res_clocks_done", schema="analytics")
    op.drop_column("complaint_fact", "result_notified_at", schema="analytics")
    op.drop_column("complaint_fact", "resolution_seconds", schema="analytics")
    op.drop_column("complaint_fact", "resolution_working_days", schema="analytics")
    op.drop_column("complaint_fact", "resolved_at", schema="analytics")
    op.drop_column("complaint_fact", "reopen_count", schema="analytics")
    op.drop_column("complaint_fact", "extension_count", schema="analytics")
    op.drop_column("complaint_fact", "escalation_count", schema="analytics")
    op.drop_column("complaint_fact", "ack_seconds", schema="analytics")
    op.drop_column("complaint_fact", "acknowledged_at", schema="analytics")
    op.drop_column("complaint_fact", "status_at", schema="analytics")
    op.drop_column("complaint_fact", "status", schema="analytics")
    op.drop_column("complaint_fact", "provisional", schema="analytics")
    op.drop_column("complaint_fact", "routed_at", schema="analytics")
    op.drop_column("complaint_fact", "vulnerable_customer", schema="analytics")
    op.drop_column("complaint_fact", "product", schema="analytics")
    op.drop_column("complaint_fact", "currency", schema="analytics")
    op.drop_column("complaint_fact", "received_day", schema="analytics")
    op.drop_index(
        "suggestion_reward_fact_suggestion_idx",
        table_name="suggestion_reward_fact",
        schema="analytics",
    )
    op.drop_table("suggestion_reward_fact", schema="analytics")
    op.drop_index("suggestion_fact_day_idx", table_name="suggestion_fact", schema="analytics")
    op.drop_table("suggestion_fact", schema="analytics")
    op.drop_index("followup_fact_subject_idx", table_name="followup_fact", schema="analytics")
    op.drop_table("followup_fact", schema="analytics")
    op.drop_table("clock_alert_fact", schema="analytics")
    op.drop_index(
        "case_transition_fact_case_idx", table_name="case_transition_fact", schema="analytics"
    )
    op.drop_table("case_transition_fact", schema="analytics")
    op.drop_table("case_round_fact", schema="analytics")
