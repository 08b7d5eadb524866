"""Idempotent Kafka consumer with bounded retries and a dead-letter queue (STYLE.md §5).

Handlers are typed async functions registered per event ``type``::

    handlers = HandlerRegistry()

    @handlers.on(COMPLAINTS_RECEIVED, "complaints.received.v1", ComplaintReceived)
    async def on_complaint_received(
        event: Envelope[ComplaintReceived], *, session: AsyncSession
    ) -> None: ...

For each message the wrapper opens a transaction, inserts ``(consumer, event_id)`` into
the service's ``processed_events`` table (a conflict means a redelivery: skip), runs the
handler, and commits; offsets are committed only after the database commit (auto-commit
off). A handler failure is retried with exponential backoff up to ``max_attempts``; an
invalid payload (or exhausted retries) goes to ``<topic>.dlq`` with the error and the
consumer group in headers, and the consumer moves on. A ``type`` with no handler is
skipped and counted (``outcome="ignored"``), not dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from pydantic import BaseModel, ValidationError
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import context, metrics
from shared.events.envelope import Envelope, header, parse_raw
from shared.events.registry import dlq_topic
from shared.kafka.producer import make_producer
from shared.logging import get_logger

log = get_logger(__name__)

Handler = Callable[..., Awaitable[None]]
Prepare = Callable[[list[Envelope[Any]]], Awaitable[None]]


class PermanentError(Exception):
    """A handler error that retrying cannot fix: the event goes to the DLQ at once."""


@dataclass(frozen=True)
class Registration:
    """One handler: the logical topic it listens on, the event type, the payload model.

    ``prepare``, when set, receives the valid events of this type in each polled batch
    before they are handled one by one, so CPU-heavy work (a classifier) can run once per
    batch; it must not write to the database, and its failure only costs that speed-up.
    """

    topic: str
    event_type: str
    payload: type[BaseModel]
    handler: Handler
    prepare: Prepare | None = None


class HandlerRegistry:
    """Maps event types to typed handlers for one service."""

    def __init__(self) -> None:
        self.by_type: dict[str, Registration] = {}

    def on(
        self,
        topic: str,
        event_type: str,
        payload: type[BaseModel],
        *,
        prepare: Prepare | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register the decorated function for ``event_type`` arriving on ``topic``.

        Args:
            topic: logical topic (from :mod:`shared.events.registry`).
            event_type: versioned type, e.g. ``complaints.received.v1``.
            payload: the payload model the envelope's ``data`` is validated against.
            prepare: optional batch hook (see :class:`Registration`).
        """

        def register(fn: Handler) -> Handler:
            self.by_type[event_type] = Registration(topic, event_type, payload, fn, prepare)
            return fn

        return register

    @property
    def topics(self) -> list[str]:
        """Logical topics the registered handlers listen on, sorted."""
        return sorted({r.topic for r in self.by_type.values()})


class EventConsumer:
    """Consumes a service's topics and runs its handlers exactly once in effect.

    Args:
        group: consumer group id (the service name).
        registry: the service's handlers.
        sessionmaker: the service's session factory.
        processed_table: the service's ``processed_events`` table.
        bootstrap_servers: Kafka bootstrap list.
        topic_prefix: prepended to topic names on the wire.
        max_attempts: tries per event before the DLQ, >= 1.
        backoff_seconds: first retry delay; doubles per attempt (capped at 5 s).
        after_commit: optional callback run after each successful handler commit (used to
            wake the outbox relay).
    """

    def __init__(
        self,
        *,
        group: str,
        registry: HandlerRegistry,
        sessionmaker: async_sessionmaker[AsyncSession],
        processed_table: Table,
        bootstrap_servers: str,
        topic_prefix: str = "",
        max_attempts: int = 5,
        backoff_seconds: float = 0.2,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self.group = group
        self.registry = registry
        self.sessionmaker = sessionmaker
        self.processed = processed_table
        self.bootstrap_servers = bootstrap_servers
        self.prefix = topic_prefix
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.after_commit = after_commit
        self.consumer: AIOKafkaConsumer | None = None
        self.assigned = False
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._dlq_producer: Any = None

    def start(self) -> None:
        """Start consuming in a background task (connects with retries)."""
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.group}")

    async def stop(self) -> None:
        """Finish the in-flight message, commit, and leave the group."""
        self._stopping = True
        if self._task:
            try:
                await asyncio.wait_for(self._task, timeout=15)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        await self._close()

    async def _close(self) -> None:
        if self.consumer is not None:
            consumer, self.consumer = self.consumer, None
            try:
                await consumer.stop()
            except Exception:
                log.warning("consumer.stop_failed")
        if self._dlq_producer is not None:
            producer, self._dlq_producer = self._dlq_producer, None
            with contextlib.suppress(Exception):
                await producer.stop()
        self.assigned = False

    def _logical(self, wire_topic: str) -> str:
        return wire_topic[len(self.prefix) :] if wire_topic.startswith(self.prefix) else wire_topic

    async def _connect(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            *[self.prefix + t for t in self.registry.topics],
            bootstrap_servers=self.bootstrap_servers,
            # The topic prefix also scopes the group, so test runs that share a broker never
            # rebalance each other; the processed-events table keeps the plain name.
            group_id=self.prefix + self.group,
            client_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=200,
        )
        try:
            await consumer.start()
        except Exception:
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise
        self._dlq_producer = make_producer(self.bootstrap_servers, client_id=f"{self.group}-dlq")
        await self._dlq_producer.start()
        return consumer

    async def _run(self) -> None:
        backoff = 0.5
        while not self._stopping:
            try:
                if self.consumer is None:
                    self.consumer = await self._connect()
                    log.info("consumer.started", group=self.group, topics=self.registry.topics)
                    backoff = 0.5
                batch = await self.consumer.getmany(timeout_ms=500, max_records=200)
                self.assigned = bool(self.consumer.assignment())
                for tp, records in batch.items():
                    await self._prepare(records)
                    for record in records:
                        await self.handle_record(record)
                    await self.consumer.commit({tp: records[-1].offset + 1})
                await self._update_lag()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer.loop_failed", error=str(exc)[:300], retry_in_seconds=backoff)
                await self._close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
        await self._close()

    async def _update_lag(self) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        lag: dict[str, int] = {}
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            position = await consumer.position(tp)
            topic = self._logical(tp.topic)
            lag[topic] = lag.get(topic, 0) + max(high - position, 0)
        for topic, value in lag.items():
            metrics.CONSUMER_LAG.labels(topic).set(value)

    async def _prepare(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Give each registration with a ``prepare`` hook its valid events of this batch."""
        groups: dict[str, list[Envelope[Any]]] = {}
        for record in records:
            event_type = header(record.headers, "ce_type")
            registration = self.registry.by_type.get(event_type or "")
            if registration is None or registration.prepare is None:
                continue
            try:
                raw = parse_raw(record.value or b"")
                envelope = Envelope[registration.payload].model_validate(raw)  # type: ignore[name-defined]
            except (ValueError, ValidationError):
                continue  # handle_record dead-letters it
            groups.setdefault(registration.event_type, []).append(envelope)
        for event_type, envelopes in groups.items():
            prepare = self.registry.by_type[event_type].prepare
            assert prepare is not None
            try:
                await prepare(envelopes)
            except Exception as exc:
                log.warning("consumer.prepare_failed", event_type=event_type, error=str(exc)[:300])

    async def handle_record(self, record: ConsumerRecord[bytes, bytes]) -> str:
        """Handle one Kafka record; never raises for a bad event.

        Returns:
            The outcome: ``ok``, ``duplicate``, ``ignored`` or ``dlq``.

        Raises:
            Exception: only when the DLQ itself cannot be written (the offset then stays
                uncommitted and the record is redelivered).
        """
        topic = self._logical(record.topic)
        event_type = header(record.headers, "ce_type")
        try:
            raw = parse_raw(record.value or b"")
            event_type = str(raw["type"])
        except ValueError as exc:
            return await self._dead_letter(record, topic, event_type or "unknown", exc, 1)
        registration = self.registry.by_type.get(event_type)
        if registration is None:
            metrics.EVENTS_CONSUMED.labels(topic, event_type, "ignored").inc()
            return "ignored"
        try:
            envelope = Envelope[registration.payload].model_validate(raw)  # type: ignore[name-defined]
        except ValidationError as exc:
            return await self._dead_letter(record, topic, event_type, exc, 1)

        token = context.correlation_id.set(envelope.correlationid)
        try:
            attempt = 0
            while True:
                attempt += 1
                started = time.perf_counter()
                try:
                    outcome = await self._process(envelope, registration)
                except PermanentError as exc:
                    return await self._dead_letter(record, topic, event_type, exc, attempt)
                except Exception as exc:
                    if attempt >= self.max_attempts:
                        return await self._dead_letter(record, topic, event_type, exc, attempt)
                    metrics.EVENTS_CONSUMED.labels(topic, event_type, "retry").inc()
                    delay = min(self.backoff_seconds * 2 ** (attempt - 1), 5.0)
                    log.warning(
                        "consumer.retry",
                        event_id=envelope.id,
                        event_type=event_type,
                        attempt=attempt,
                        error=str(exc)[:300],
                    )
                    await asyncio.sleep(delay)
                    continue
                metrics.EVENT_HANDLING_DURATION.labels(topic, event_type).observe(
                    time.perf_counter() - started
                )
                metrics.EVENTS_CONSUMED.labels(topic, event_type, outcome).inc()
                if outcome == "ok" and self.after_commit:
                    self.after_commit()
                return outcome
        finally:
            context.correlation_id.reset(token)

    async def _process(self, envelope: Envelope[Any], registration: Registration) -> str:
        async with self.sessionmaker() as session, session.begin():
            inserted = await session.execute(
                insert(self.processed)
                .values(consumer=self.group, event_id=envelope.id, event_type=envelope.type)
                .on_conflict_do_nothing()
                .returning(self.processed.c.event_id)
            )
            if inserted.first() is None:
                return "duplicate"
            await registration.handler(envelope, session=session)
        return "ok"

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        topic: str,
        event_type: str,
        exc: BaseException,
        attempts: int,
    ) -> str:
        headers = [
            *list(record.headers or ()),
            ("x-error", f"{type(exc).__name__}: {exc}"[:2000].encode()),
            ("x-consumer-group", self.group.encode()),
            ("x-original-topic", record.topic.encode()),
            ("x-original-partition", str(record.partition).encode()),
            ("x-original-offset", str(record.offset).encode()),
            ("x-attempts", str(attempts).encode()),
        ]
        await self._dlq_producer.send_and_wait(
            self.prefix + dlq_topic(topic), value=record.value, key=record.key, headers=headers
        )
        metrics.EVENTS_CONSUMED.labels(topic, event_type, "dlq").inc()
        metrics.EVENTS_DEAD_LETTERED.labels(topic).inc()
        log.error(
            "consumer.dead_lettered",
            topic=topic,
            event_type=event_type,
            attempts=attempts,
            error=f"{type(exc).__name__}: {str(exc)[:300]}",
        )
        return "dlq"
