"""Transactional outbox (ARCHITECTURE.md §3, STYLE.md §5).

A service publishes by adding a row to its own ``<schema>.outbox`` table in the same
transaction as the state change: ``await outbox.add(session, table, envelope, topic=...)``.
The relay (:mod:`shared.kafka.relay`) sends unsent rows to Kafka and marks them. Nothing a
request handler commits can be lost when Kafka is down, and nothing is published for a
transaction that rolled back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    insert,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.envelope import Envelope, wire_headers


def outbox_table(metadata: MetaData) -> Table:
    """Declare the outbox table on a service's metadata.

    Columns: ``seq`` (publication order), ``id`` (event id), ``topic`` (logical name),
    ``key``, ``type``, ``payload`` (the envelope, jsonb), ``headers`` (jsonb list of
    ``[name, value]``), ``created_at``, ``published_at`` (NULL until sent), ``attempts``,
    ``last_error``.
    """
    table = Table(
        "outbox",
        metadata,
        Column("seq", BigInteger, Identity(always=True), primary_key=True),
        Column("id", UUID(as_uuid=False), nullable=False, unique=True),
        Column("topic", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("type", Text, nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("headers", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("last_error", Text),
    )
    Index(
        "outbox_pending_idx",
        table.c.seq,
        postgresql_where=table.c.published_at.is_(None),
    )
    return table


def outbox_row(envelope: Envelope[Any], *, topic: str) -> dict[str, Any]:
    """Return the outbox row values for ``envelope`` on logical topic ``topic``."""
    return {
        "id": envelope.id,
        "topic": topic,
        "key": envelope.subject,
        "type": envelope.type,
        "payload": envelope.model_dump(mode="json"),
        "headers": [[k, v.decode()] for k, v in wire_headers(envelope.type, envelope.id)],
    }


async def add(session: AsyncSession, table: Table, envelope: Envelope[Any], *, topic: str) -> None:
    """Stage ``envelope`` for publication on ``topic`` in the session's transaction.

    Args:
        session: the unit of work that also carries the state change; not committed here.
        table: the service's outbox table (from :func:`outbox_table`).
        envelope: the event.
        topic: logical topic name from :mod:`shared.events.registry`.
    """
    await session.execute(insert(table), [outbox_row(envelope, topic=topic)])
    session.info["outbox_dirty"] = True


async def add_many(
    session: AsyncSession, table: Table, items: list[tuple[Envelope[Any], str]]
) -> None:
    """Stage several ``(envelope, topic)`` pairs in one statement, in order."""
    if items:
        await session.execute(insert(table), [outbox_row(e, topic=t) for e, t in items])
        session.info["outbox_dirty"] = True
