"""Intake keeps accepting while Kafka is down and publishes everything once it is back
(issue 3 §5; ARCHITECTURE.md §3).

Runs a private broker (own ports, own data dir under tmp_path), never the shared one on
59092: start it, post a few complaints, stop it, post 500, start it again, and check that
all of them reach ``complaints.received`` and that an idempotent downstream consumer
handles each exactly once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from intake_samples import complaint_body
from sqlalchemy import Column, Table, Text, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.intake import tables
from shared import devinfra
from shared.db import make_metadata, make_sessionmaker
from shared.events.contracts.complaints import COMPLAINT_RECEIVED_V1, ComplaintReceived
from shared.events.envelope import Envelope
from shared.events.processed import processed_events_table
from shared.events.registry import COMPLAINTS_RECEIVED
from shared.kafka.consumer import EventConsumer, HandlerRegistry
from shared.runner import free_ports

OUTAGE_POSTS = 500


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[devinfra.PrivateKafka]:
    broker = devinfra.PrivateKafka(tmp_path / "kafka", *free_ports(2))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def _wait_published(db: AsyncEngine, ids: list[str], within_seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + within_seconds
    while True:
        async with db.connect() as conn:
            pending = await conn.scalar(
                select(func.count())
                .select_from(tables.outbox)
                .where(tables.outbox.c.key.in_(ids), tables.outbox.c.published_at.is_(None))
            )
        if pending == 0:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{pending} events still pending"
        await asyncio.sleep(0.25)


async def test_500_complaints_during_an_outage_are_published_once_it_is_back(
    private_kafka: devinfra.PrivateKafka, intake_client: Any, token_for: Any, db: AsyncEngine
) -> None:
    prefix = f"outage{uuid.uuid4().hex[:6]}."
    devinfra.create_topics(private_kafka.bootstrap, {COMPLAINTS_RECEIVED: 6}, prefix=prefix)
    headers = token_for("intake_client", subject="call-centre")

    async def post_many(client: Any, n: int) -> list[str]:
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> str:
            async with sem:
                body = complaint_body(
                    customer={"customer_number": f"OUT-{uuid.uuid4().hex[:12]}"},
                    description=f"停机期间的投诉 #{i}：转账一直处理中。",
                )
                r = await client.post("/v1/complaints", json=body, headers=headers)
                assert r.status_code == 201, r.text
                return str(r.json()["id"])

        return list(await asyncio.gather(*(one(i) for i in range(n))))

    async with intake_client(
        kafka_bootstrap_servers=private_kafka.bootstrap, kafka_topic_prefix=prefix
    ) as client:
        before = await post_many(client, 5)
        await _wait_published(db, before, within_seconds=60)

        private_kafka.stop()
        during = await post_many(client, OUTAGE_POSTS)
        ready = await client.get("/readyz")
        assert ready.status_code == 200  # intake stays ready: the outbox holds the events
        async with db.connect() as conn:
            held = await conn.scalar(
                select(func.count())
                .select_from(tables.outbox)
                .where(tables.outbox.c.key.in_(during), tables.outbox.c.published_at.is_(None))
            )
        assert held == OUTAGE_POSTS

        private_kafka.start()
        await _wait_published(db, before + during, within_seconds=120)

    # Downstream: an idempotent consumer (processed-events table) sees each exactly once.
    ids = set(before + during)
    schema = f"outage_{uuid.uuid4().hex[:6]}"
    metadata = make_metadata(schema)
    processed = processed_events_table(metadata)
    seen = Table("seen", metadata, Column("complaint_id", Text, nullable=False))
    async with db.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(metadata.create_all)
    calls = 0
    handlers = HandlerRegistry()

    @handlers.on(COMPLAINTS_RECEIVED, COMPLAINT_RECEIVED_V1, ComplaintReceived)
    async def on_received(event: Envelope[ComplaintReceived], *, session: AsyncSession) -> None:
        nonlocal calls
        calls += 1
        await session.execute(insert(seen).values(complaint_id=event.data.complaint_id))

    consumer = EventConsumer(
        group=f"outage-check-{uuid.uuid4().hex[:6]}",
        registry=handlers,
        sessionmaker=make_sessionmaker(db),
        processed_table=processed,
        bootstrap_servers=private_kafka.bootstrap,
        topic_prefix=prefix,
    )
    consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + 90
        while True:
            async with db.connect() as conn:
                got = set((await conn.execute(select(seen.c.complaint_id))).scalars()) & ids
            if got == ids:
                break
            assert asyncio.get_running_loop().time() < deadline, f"{len(ids - got)} missing"
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)  # any redelivery would show up now
    finally:
        await consumer.stop()
    async with db.connect() as conn:
        rows = list((await conn.execute(select(seen.c.complaint_id))).scalars())
    assert len(rows) == len(set(rows)) == OUTAGE_POSTS + 5
    assert calls == OUTAGE_POSTS + 5
    async with db.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
