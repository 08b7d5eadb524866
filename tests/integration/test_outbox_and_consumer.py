"""Outbox, relay and idempotent consumer on real PostgreSQL and Kafka (STYLE.md §10 must-haves).

A throw-away schema ``plumbing_<run>`` holds an outbox, a processed-events table and a
``seen`` table that the test handler writes to.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner
from sqlalchemy import Column, Integer, Table, Text, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.db import make_engine, make_metadata, make_sessionmaker
from shared.events import outbox
from shared.events.envelope import Envelope, Payload, new_event, to_wire
from shared.events.outbox import outbox_table
from shared.events.processed import processed_events_table
from shared.events.registry import COMPLAINTS_RECEIVED, dlq_topic
from shared.kafka.consumer import EventConsumer, HandlerRegistry, PermanentError
from shared.kafka.relay import OutboxRelay


class Ping(Payload):
    n: int


class Big(Payload):
    text: str


SCHEMA = f"plumbing_{uuid.uuid4().hex[:6]}"
metadata = make_metadata(SCHEMA)
ob = outbox_table(metadata)
processed = processed_events_table(metadata)
seen = Table("seen", metadata, Column("event_id", Text, primary_key=True), Column("n", Integer))


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(database_url, pool_size=4)
    async with eng.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
        await conn.run_sync(metadata.create_all)
    yield eng
    async with eng.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{SCHEMA}" CASCADE'))
    await eng.dispose()


@pytest.fixture
async def sm(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    async with engine.begin() as conn:
        for t in (ob, processed, seen):
            await conn.execute(t.delete())
    return make_sessionmaker(engine)


def ping(n: int, subject: str | None = None) -> Envelope[Ping]:
    return new_event(
        source="test", type_="pings.sent.v1", subject=subject or str(uuid.uuid4()), data=Ping(n=n)
    )


async def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 20.0) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(got) < count and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                got.extend(records)
    finally:
        await consumer.stop()
    return got


async def test_rollback_leaves_no_outbox_row(sm: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(RuntimeError):
        async with sm() as session, session.begin():
            await outbox.add(session, ob, ping(1), topic=COMPLAINTS_RECEIVED)
            raise RuntimeError("state change failed")
    async with sm() as session:
        assert await session.scalar(select(func.count()).select_from(ob)) == 0


async def test_relay_publishes_in_order_with_cloudevents_headers(
    sm: async_sessionmaker[AsyncSession], kafka_bootstrap: str
) -> None:
    prefix = f"relay{uuid.uuid4().hex[:6]}."
    from shared import devinfra

    await asyncio.to_thread(
        devinfra.create_topics, kafka_bootstrap, {COMPLAINTS_RECEIVED: 3}, prefix=prefix
    )
    subject = str(uuid.uuid4())
    events = [ping(i, subject) for i in range(5)]
    async with sm() as session, session.begin():
        await outbox.add_many(session, ob, [(e, COMPLAINTS_RECEIVED) for e in events])
    relay = OutboxRelay(
        table=ob,
        sessionmaker=sm,
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
        client_id="test",
    )
    try:
        assert await relay.relay_once() == 5
        assert await relay.relay_once() == 0
    finally:
        await relay.stop()
    async with sm() as session:
        pending = await session.scalar(
            select(func.count()).select_from(ob).where(ob.c.published_at.is_(None))
        )
    assert pending == 0
    records = await read_topic(kafka_bootstrap, prefix + COMPLAINTS_RECEIVED, 5)
    assert [json.loads(r.value)["data"]["n"] for r in records] == [0, 1, 2, 3, 4]
    first = records[0]
    headers = dict(first.headers)
    assert headers["ce_type"] == b"pings.sent.v1"
    assert headers["ce_id"].decode() == events[0].id
    assert headers["content-type"] == b"application/cloudevents+json"
    assert first.key.decode() == subject
    assert json.loads(first.value)["specversion"] == "1.0"


async def test_relay_batches_keep_each_subject_on_its_partition_in_order(
    sm: async_sessionmaker[AsyncSession], kafka_bootstrap: str
) -> None:
    """One pass of 600 rows over 40 subjects and two topics: the relay's record batches
    (several per partition, each up to the producer's 16 kB) deliver every row exactly once,
    on the partition Kafka's default partitioner gives its key, each subject's events in
    ``seq`` order, value and headers byte for byte as stored."""
    prefix = f"relay{uuid.uuid4().hex[:6]}."
    from shared import devinfra
    from shared.events.registry import SUGGESTIONS_RECEIVED

    await asyncio.to_thread(
        devinfra.create_topics,
        kafka_bootstrap,
        {COMPLAINTS_RECEIVED: 3, SUGGESTIONS_RECEIVED: 2},
        prefix=prefix,
    )
    subjects = [str(uuid.uuid4()) for _ in range(40)]
    staged = [
        (
            new_event(
                source="test",
                type_="pings.sent.v1",
                subject=subjects[i % 40],
                data=Big(text=f"{i}:" + "投诉 complaint 🙂 " * 40),
            ),
            COMPLAINTS_RECEIVED if i % 3 else SUGGESTIONS_RECEIVED,
        )
        for i in range(600)
    ]
    async with sm() as session, session.begin():
        await outbox.add_many(session, ob, staged)
    relay = OutboxRelay(
        table=ob,
        sessionmaker=sm,
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
        client_id="test",
        batch_size=1000,
    )
    try:
        assert await relay.relay_once() == 600
        assert await relay.relay_once() == 0
    finally:
        await relay.stop()
    async with sm() as session:
        stored = {
            r.id: r
            for r in (await session.execute(select(ob.c.id, ob.c.payload, ob.c.headers))).all()
        }
    for topic, count, partitions in (
        (COMPLAINTS_RECEIVED, 400, [0, 1, 2]),
        (SUGGESTIONS_RECEIVED, 200, [0, 1]),
    ):
        records = await read_topic(kafka_bootstrap, prefix + topic, count + 1, timeout=4)
        assert len(records) == count
        ids = [dict(r.headers)["ce_id"].decode() for r in records]
        assert len(set(ids)) == count  # each row once
        by_subject: dict[str, list[int]] = {}
        for record, event_id in zip(records, ids, strict=True):
            # Where aiokafka's default partitioner (the Java client's rule) puts the key.
            assert record.partition == DefaultPartitioner()(record.key, partitions, partitions)
            assert json.loads(record.value) == stored[event_id].payload
            assert [[k, v.decode()] for k, v in record.headers] == stored[event_id].headers
            n = int(json.loads(record.value)["data"]["text"].split(":")[0])
            by_subject.setdefault(record.key.decode(), []).append(n)
        for subject, ns in by_subject.items():
            assert ns == sorted(ns), subject  # a subject's events in the order written
        assert len({r.partition for r in records}) == len(partitions)


async def test_relay_keeps_rows_when_kafka_is_unreachable(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    async with sm() as session, session.begin():
        await outbox.add(session, ob, ping(7), topic=COMPLAINTS_RECEIVED)
    relay = OutboxRelay(
        table=ob, sessionmaker=sm, bootstrap_servers="127.0.0.1:1", client_id="test"
    )
    with pytest.raises(Exception):  # noqa: B017, PT011 - any connection error
        await relay.relay_once()
    async with sm() as session:
        row = (await session.execute(select(ob.c.published_at))).one()
    assert row.published_at is None


async def _stage_subject(sm: async_sessionmaker[AsyncSession], texts: list[str]) -> None:
    """Stage one event per text, all of one subject, in this order."""
    subject = str(uuid.uuid4())
    events = [
        new_event(source="test", type_="pings.sent.v1", subject=subject, data=Big(text=text))
        for text in texts
    ]
    async with sm() as session, session.begin():
        await outbox.add_many(session, ob, [(e, COMPLAINTS_RECEIVED) for e in events])


async def _pending_rows(sm: async_sessionmaker[AsyncSession]) -> list[Any]:
    async with sm() as session:
        return (
            await session.execute(
                select(ob.c.published_at, ob.c.attempts, ob.c.last_error).order_by(ob.c.seq)
            )
        ).all()


async def _pass_fails_too_large(
    sm: async_sessionmaker[AsyncSession], kafka_bootstrap: str, prefix: str
) -> None:
    """Run one relay pass that must fail with ``MessageSizeTooLargeError``, then stop it."""
    relay = OutboxRelay(
        table=ob,
        sessionmaker=sm,
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
        client_id="test",
    )
    try:
        with pytest.raises(MessageSizeTooLargeError):
            await asyncio.wait_for(relay.relay_once(), timeout=30)
    finally:
        await relay.stop()


async def test_a_row_over_the_request_limit_stops_the_pass_before_anything_is_sent(
    sm: async_sessionmaker[AsyncSession], kafka_bootstrap: str
) -> None:
    """A row over the producer's 1 MiB request limit fails the pass on the relay's side,
    before any of the pass's batches is handed over: the rows stay unsent with ``attempts``
    and ``last_error`` recorded (in a transaction of its own while the pass's transaction is
    still open: the pass must not hold row locks that this update would wait for), and
    nothing of the subject reaches the topic, the row after it included."""
    prefix = f"relay{uuid.uuid4().hex[:6]}."
    from shared import devinfra

    await asyncio.to_thread(
        devinfra.create_topics, kafka_bootstrap, {COMPLAINTS_RECEIVED: 1}, prefix=prefix
    )
    await _stage_subject(sm, ["0:small", "1:" + "x" * 1_100_000, "2:small"])
    await _pass_fails_too_large(sm, kafka_bootstrap, prefix)
    rows = await _pending_rows(sm)
    assert [(r.published_at, r.attempts) for r in rows] == [(None, 1)] * 3
    assert all("max_request_size" in r.last_error for r in rows)
    assert await read_topic(kafka_bootstrap, prefix + COMPLAINTS_RECEIVED, 1, timeout=3) == []


async def test_a_batch_the_broker_refuses_holds_back_the_partitions_later_rows(
    sm: async_sessionmaker[AsyncSession], kafka_bootstrap: str
) -> None:
    """The topic takes records of at most 20,000 bytes (``max.message.bytes``); a subject's
    first event is 30,000 bytes (under the producer's limit, so the broker refuses it), its
    second is small. The second must not be published (it would overtake the refused one:
    a fresh idempotent producer has no sequence on the partition yet, so the broker would
    take its next batch whatever its sequence number; it did when the relay handed a
    partition's batches over all at once), and the pass leaves both rows unsent."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    prefix = f"relay{uuid.uuid4().hex[:6]}."
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    prefix + COMPLAINTS_RECEIVED,
                    num_partitions=1,
                    replication_factor=1,
                    topic_configs={"max.message.bytes": "20000"},
                )
            ]
        )
    finally:
        await admin.close()
    await _stage_subject(sm, ["0:" + "x" * 30_000, "1:small"])
    await _pass_fails_too_large(sm, kafka_bootstrap, prefix)
    assert [(r.published_at, r.attempts) for r in await _pending_rows(sm)] == [(None, 1)] * 2
    assert await read_topic(kafka_bootstrap, prefix + COMPLAINTS_RECEIVED, 1, timeout=4) == []


def _registry(fail_first: dict[str, int]) -> HandlerRegistry:
    registry = HandlerRegistry()

    @registry.on(COMPLAINTS_RECEIVED, "pings.sent.v1", Ping)
    async def on_ping(event: Envelope[Ping], *, session: AsyncSession) -> None:
        if event.data.n < 0:
            raise PermanentError("negative pings are poison")
        if fail_first.get(event.id, 0) > 0:
            fail_first[event.id] -= 1
            raise ConnectionError("transient")
        await session.execute(insert(seen).values(event_id=event.id, n=event.data.n))

    return registry


async def test_consumer_is_idempotent_retries_and_dead_letters(
    sm: async_sessionmaker[AsyncSession], kafka_bootstrap: str
) -> None:
    from shared import devinfra

    prefix = f"cons{uuid.uuid4().hex[:6]}."
    await asyncio.to_thread(
        devinfra.create_topics,
        kafka_bootstrap,
        {COMPLAINTS_RECEIVED: 1, dlq_topic(COMPLAINTS_RECEIVED): 1},
        prefix=prefix,
    )
    good, flaky, poison, after = ping(1), ping(2), ping(-1), ping(3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for env in (good, good, flaky, poison, after):  # `good` is delivered twice
            key, value, headers = to_wire(env)
            await producer.send_and_wait(
                prefix + COMPLAINTS_RECEIVED, value=value, key=key, headers=headers
            )
        await producer.send_and_wait(prefix + COMPLAINTS_RECEIVED, value=b"not json", key=b"x")
    finally:
        await producer.stop()

    consumer = EventConsumer(
        group=f"g{uuid.uuid4().hex[:6]}",
        registry=_registry({flaky.id: 2}),
        sessionmaker=sm,
        processed_table=processed,
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
        backoff_seconds=0.01,
    )
    consumer.start()
    try:
        for _ in range(200):
            async with sm() as session:
                if await session.scalar(select(func.count()).select_from(seen)) >= 3:
                    break
            await asyncio.sleep(0.1)
    finally:
        await consumer.stop()

    async with sm() as session:
        rows = dict((await session.execute(select(seen.c.event_id, seen.c.n))).all())
    assert rows == {good.id: 1, flaky.id: 2, after.id: 3}
    dead = await read_topic(kafka_bootstrap, prefix + dlq_topic(COMPLAINTS_RECEIVED), 2)
    assert len(dead) == 2
    assert dict(dead[0].headers)["ce_id"].decode() == poison.id
    assert b"negative pings" in dict(dead[0].headers)["x-error"]
    assert dead[1].value == b"not json"
    for record in dead:
        assert dict(record.headers)["x-consumer-group"] == consumer.group.encode()


async def test_prepare_hook_sees_the_batch_and_its_failure_costs_nothing(
    sm: async_sessionmaker[AsyncSession], kafka_bootstrap: str
) -> None:
    from shared import devinfra

    prefix = f"prep{uuid.uuid4().hex[:6]}."
    await asyncio.to_thread(
        devinfra.create_topics,
        kafka_bootstrap,
        {COMPLAINTS_RECEIVED: 1, dlq_topic(COMPLAINTS_RECEIVED): 1},
        prefix=prefix,
    )
    events = [ping(i) for i in range(1, 6)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for env in events:
            key, value, headers = to_wire(env)
            await producer.send_and_wait(
                prefix + COMPLAINTS_RECEIVED, value=value, key=key, headers=headers
            )
    finally:
        await producer.stop()

    prepared: list[list[int]] = []

    async def prepare(batch: list[Envelope[Ping]]) -> None:
        prepared.append([e.data.n for e in batch])
        raise RuntimeError("a failing prepare must not stop the handlers")

    registry = HandlerRegistry()

    @registry.on(COMPLAINTS_RECEIVED, "pings.sent.v1", Ping, prepare=prepare)
    async def on_ping(event: Envelope[Ping], *, session: AsyncSession) -> None:
        await session.execute(insert(seen).values(event_id=event.id, n=event.data.n))

    consumer = EventConsumer(
        group=f"g{uuid.uuid4().hex[:6]}",
        registry=registry,
        sessionmaker=sm,
        processed_table=processed,
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
    )
    consumer.start()
    try:
        for _ in range(200):
            async with sm() as session:
                if await session.scalar(select(func.count()).select_from(seen)) >= 5:
                    break
            await asyncio.sleep(0.1)
    finally:
        await consumer.stop()
    async with sm() as session:
        assert sorted((await session.execute(select(seen.c.n))).scalars()) == [1, 2, 3, 4, 5]
    assert sorted(n for batch in prepared for n in batch) == [1, 2, 3, 4, 5]


async def test_published_rows_older_than_the_retention_are_pruned_and_nothing_else(
    sm: async_sessionmaker[AsyncSession], kafka_bootstrap: str
) -> None:
    """``OutboxRelay.prune_once`` (CFP_OUTBOX_RETENTION_HOURS): old *published* rows only.

    Rows in ``seq`` order: 7 old published, 1 old pending (a row Kafka keeps refusing),
    1 old row published just now (after an outage: kept, retention counts from publication),
    5 old published, 4 recent published, 2 recent pending. With windows of 3 rows the prune
    must delete the 12 old published rows (passing the pending one), keep the rest, and a
    second prune must find nothing. A prune while another replica holds the outbox's lock
    deletes nothing, even with a row due. Then the relay's own loop prunes: it publishes
    the pending rows and, with a retention of 0.5 s, deletes everything once it is old enough.
    """
    ages = ["old"] * 7 + ["old-pending", "late"] + ["old"] * 5 + ["new"] * 4 + ["new-pending"] * 2
    async with sm() as session, session.begin():
        await outbox.add_many(session, ob, [(ping(i), COMPLAINTS_RECEIVED) for i in range(20)])
    async with sm() as session, session.begin():
        seqs = (await session.execute(select(ob.c.seq).order_by(ob.c.seq))).scalars().all()
        for seq, age in zip(seqs, ages, strict=True):
            old = age.startswith("old") or age == "late"
            created = "now() - interval '9 days'" if old else "now()"
            published = {"old": created + " + interval '1 second'", "late": "now()"}.get(
                age, "NULL" if age.endswith("pending") else "now()"
            )
            await session.execute(
                text(
                    f'UPDATE "{SCHEMA}".outbox SET created_at = {created}, '
                    f"published_at = {published} WHERE seq = :s"
                ),
                {"s": seq},
            )
    relay = OutboxRelay(
        table=ob,
        sessionmaker=sm,
        bootstrap_servers=kafka_bootstrap,
        client_id="test",
        retention_seconds=7 * 86400,
    )
    assert await relay.prune_once(window=3) == 12
    assert await relay.prune_once(window=3) == 0
    async with sm() as session:
        left = (await session.execute(select(ob.c.seq).order_by(ob.c.seq))).scalars().all()
    kept = [seq for seq, age in zip(seqs, ages, strict=True) if age != "old"]
    assert left == kept

    # A relay with another replica's lock held prunes nothing, not even a row that is due.
    due = kept[-3]  # a recent published row, now made old
    async with sm() as session, session.begin():
        await session.execute(
            text(
                f"UPDATE \"{SCHEMA}\".outbox SET published_at = now() - interval '8 days' "
                "WHERE seq = :s"
            ),
            {"s": due},
        )
    async with sm() as session, session.begin():
        await session.execute(select(func.pg_advisory_xact_lock(relay._lock_key)))
        assert await relay.prune_once() == 0
        assert await session.scalar(select(func.count()).select_from(ob).where(ob.c.seq == due))
    assert await relay.prune_once() == 1
    kept.remove(due)

    # The loop: publish what is pending, then prune what is past a short retention.
    prefix = f"prune{uuid.uuid4().hex[:6]}."
    from shared import devinfra

    await asyncio.to_thread(
        devinfra.create_topics, kafka_bootstrap, {COMPLAINTS_RECEIVED: 1}, prefix=prefix
    )
    looping = OutboxRelay(
        table=ob,
        sessionmaker=sm,
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
        client_id="test",
        idle_seconds=0.1,
        retention_seconds=0.5,
        prune_every_seconds=0.2,
    )
    looping.start()
    try:
        deadline = asyncio.get_running_loop().time() + 20
        remaining = len(kept)
        while remaining and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
            async with sm() as session:
                remaining = await session.scalar(select(func.count()).select_from(ob))
    finally:
        await looping.stop()
    assert remaining == 0
    published = await read_topic(kafka_bootstrap, prefix + COMPLAINTS_RECEIVED, 3)
    assert len(published) == 3  # the three pending rows went out before being pruned
