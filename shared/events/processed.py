"""Processed-events table: what makes a consumer idempotent (STYLE.md §5).

The consumer wrapper inserts ``(consumer, event_id)`` in the same transaction as the
handler's writes; a conflict means the event was handled before and the redelivery is a
no-op.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, PrimaryKeyConstraint, Table, Text, func


def processed_events_table(metadata: MetaData) -> Table:
    """Declare ``<schema>.processed_events`` (consumer, event_id, event_type, processed_at)."""
    return Table(
        "processed_events",
        metadata,
        Column("consumer", Text, nullable=False),
        Column("event_id", Text, nullable=False),
        Column("event_type", Text, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "event_id"),
    )
