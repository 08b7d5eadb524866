"""Outbox relay: publishes committed outbox rows to Kafka (STYLE.md §5).

One loop per service process. Each pass takes the advisory lock of the service's outbox
(so with several replicas exactly one relays at a time and per-key order is kept), reads
up to ``batch_size`` unsent rows in ``seq`` order, sends them with the idempotent
``acks=all`` producer (one record batch per topic partition, :meth:`OutboxRelay._publish`),
and marks them ``published_at``. The rows are not locked: the
advisory lock already keeps every other relay out, and a row lock costs PostgreSQL a write
and a WAL record per row (and made a failed pass wait forever on itself, below). A failed
send leaves the rows unsent with ``attempts`` and ``last_error`` bumped (in a transaction
of its own), and the loop backs off; nothing is dropped. The producer is (re)started inside
the loop, so the service starts and accepts work while Kafka is down. Published rows stay
for ``CFP_OUTBOX_RETENTION_HOURS`` (a week by default) and are then deleted by the same
loop (:meth:`OutboxRelay.prune_once`), so the table does not grow without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from sqlalchemy import (
    BigInteger,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import metrics
from shared.config import PlatformSettings
from shared.db import make_engine, make_sessionmaker
from shared.kafka.producer import MAX_REQUEST_BYTES, make_producer, partition_for
from shared.logging import get_logger

log = get_logger(__name__)


class OutboxRelay:
    """Background publisher of one service's outbox.

    Args:
        table: the service's outbox table.
        sessionmaker: the service's session factory.
        bootstrap_servers: Kafka bootstrap list.
        topic_prefix: prepended to logical topic names on the wire.
        client_id: producer client id.
        batch_size: rows per pass, 1..10000.
        idle_seconds: sleep between passes when nothing is pending (a :meth:`wake` cuts it
            short).
        linger_seconds: after a :meth:`wake`, wait this long before the next pass, so that
            rows committed meanwhile go in the same pass (fewer, larger passes under load,
            at the cost of this much publication delay); 0 (default) = pass at once.
        retention_seconds: rows published longer ago than this are deleted by
            :meth:`prune_once`, which the loop runs every ``prune_every_seconds``; 0
            (default here; services pass ``CFP_OUTBOX_RETENTION_HOURS``) keeps them.
        prune_every_seconds: seconds between two prunes.
    """

    def __init__(
        self,
        *,
        table: Table,
        sessionmaker: async_sessionmaker[AsyncSession],
        bootstrap_servers: str,
        topic_prefix: str = "",
        client_id: str,
        batch_size: int = 500,
        idle_seconds: float = 0.2,
        linger_seconds: float = 0.0,
        retention_seconds: float = 0.0,
        prune_every_seconds: float = 300.0,
    ) -> None:
        self.table = table
        self.sessionmaker = sessionmaker
        self.bootstrap_servers = bootstrap_servers
        self.topic_prefix = topic_prefix
        self.client_id = client_id
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self.linger_seconds = linger_seconds
        self.retention_seconds = retention_seconds
        self.prune_every_seconds = prune_every_seconds
        self._next_prune = 0.0  # loop time; the first prune comes with the first pass
        self.producer: AIOKafkaProducer | None = None
        self.connected = False
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._lock_key = zlib.crc32(f"outbox:{table.fullname}".encode())

    def wake(self) -> None:
        """Ask the loop to look for new rows now (call after a commit that added some)."""
        self._wake.set()

    def start(self) -> None:
        """Start the loop as a background task."""
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.client_id}")

    async def stop(self) -> None:
        """Publish what is pending (best effort, a few seconds), then stop and flush."""
        self._stopping = True
        self._wake.set()
        if self._task:
            try:
                await asyncio.wait_for(self._task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        if self.producer is not None:
            try:
                await self.producer.stop()
            except Exception:
                log.warning("outbox.producer_stop_failed")

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self.producer is None:
            self.producer = make_producer(self.bootstrap_servers, client_id=self.client_id)
            try:
                await self.producer.start()
            except Exception:
                producer, self.producer = self.producer, None
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self.connected = True
            log.info("outbox.producer_started")
        return self.producer

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                sent = await self.relay_once()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected = False
                log.warning("outbox.relay_failed", error=str(exc)[:300], retry_in_seconds=backoff)
                if self.producer is not None:
                    producer, self.producer = self.producer, None
                    with contextlib.suppress(Exception):
                        await producer.stop()
                if self._stopping:
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            if self._stopping and sent == 0:
                return
            due = asyncio.get_running_loop().time() >= self._next_prune
            if self.retention_seconds and due and not self._stopping:
                self._next_prune = asyncio.get_running_loop().time() + self.prune_every_seconds
                try:
                    await self.prune_once()
                except Exception as exc:  # a failed prune is retried next time, nothing lost
                    log.warning("outbox.prune_failed", error=str(exc)[:300])
            if sent < self.batch_size:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.idle_seconds)
                if self.linger_seconds and self._wake.is_set() and not self._stopping:
                    await asyncio.sleep(self.linger_seconds)

    async def relay_once(self) -> int:
        """Publish one batch.

        Returns:
            The number of rows published (0 when none were pending or another replica
            holds the lock).

        Raises:
            Exception: Kafka or database errors; the claimed rows stay unsent.
        """
        producer = await self._ensure_producer()
        t = self.table
        async with self.sessionmaker() as session, session.begin():
            got = await session.scalar(select(func.pg_try_advisory_xact_lock(self._lock_key)))
            if not got:
                return 0
            rows: Sequence[Any] = (
                await session.execute(
                    # The payload as stored (jsonb rendered as text by PostgreSQL) is sent as
                    # is: decoding it to a dict and encoding it again cost the service CPU.
                    select(
                        t.c.seq,
                        t.c.id,
                        t.c.topic,
                        t.c.key,
                        t.c.type,
                        cast(t.c.payload, Text).label("payload"),
                        t.c.headers,
                    )
                    .where(t.c.published_at.is_(None))
                    .order_by(t.c.seq)
                    .limit(self.batch_size)
                )
            ).all()
            if not rows:
                await self._update_gauges(session)
                return 0
            try:
                await self._publish(producer, rows)
            except Exception as exc:
                for row in rows:
                    metrics.EVENTS_PUBLISH_FAILURES.labels(row.topic).inc()
                await self._record_failure(rows, exc)
                raise
            seqs = bindparam("seqs", [row.seq for row in rows], ARRAY(BigInteger))
            await session.execute(
                update(t)
                .where(t.c.seq == any_(seqs))
                .values(published_at=func.now(), attempts=t.c.attempts + 1)
            )
            published: dict[tuple[str, str], int] = {}
            for row in rows:
                published[row.topic, row.type] = published.get((row.topic, row.type), 0) + 1
            for (topic, type_), count in published.items():
                metrics.EVENTS_PUBLISHED.labels(topic, type_).inc(count)
            await self._update_gauges(session)
        return len(rows)

    async def _publish(self, producer: AIOKafkaProducer, rows: Sequence[Any]) -> None:
        """Send ``rows`` (in ``seq`` order) and wait until Kafka acknowledged every one.

        The rows are appended to record batches per topic partition (a new batch when one
        is full) and each batch is handed to the producer whole (``send_batch``), so the
        per-message work of ``send`` (a future, the accumulator's lookup, aiokafka's
        pure-Python murmur2) is not done per event. The partition is Kafka's default one
        for the key (:func:`partition_for`). A partition's batches go one after another,
        each only once the previous one was acknowledged, so when the broker refuses a
        batch none of that partition's later rows is published: each subject's events
        keep their order, as with ``send``. The partitions proceed side by side.

        Raises:
            MessageSizeTooLargeError: a row is larger than the producer's request limit
                (:data:`MAX_REQUEST_BYTES`, as ``send`` checks); nothing of the pass is sent.
            Exception: other Kafka errors (a batch the broker refused, a timeout), raised
                once every partition has finished or failed; the pass marks none of the
                rows published (the ones acknowledged are sent again by the next pass,
                which the consumers' idempotency absorbs).
        """
        batches: dict[tuple[str, int], list[Any]] = {}
        partitions: dict[str, list[int]] = {}
        for row in rows:
            topic = self.topic_prefix + row.topic
            known = partitions.get(topic)
            if known is None:
                known = partitions[topic] = sorted(await producer.partitions_for(topic))
            key = row.key.encode()
            value = row.payload.encode()
            headers = [(k, v.encode()) for k, v in row.headers]
            tp = (topic, partition_for(key, known))
            queue = batches.setdefault(tp, [])
            if queue and (
                queue[-1].append(key=key, value=value, timestamp=None, headers=headers) is not None
            ):
                continue
            builder = producer.create_batch()
            # An empty batch takes any record, so check the size as ``send`` would.
            builder.append(key=key, value=value, timestamp=None, headers=headers)
            if builder.size() > MAX_REQUEST_BYTES:
                raise MessageSizeTooLargeError(
                    f"outbox row {row.seq} is {builder.size()} bytes as a record batch, "
                    f"over the producer's max_request_size of {MAX_REQUEST_BYTES}"
                )
            queue.append(builder)

        async def deliver(topic: str, partition: int, builders: list[Any]) -> None:
            for builder in builders:
                builder.close()
                await (await producer.send_batch(builder, topic, partition=partition))

        outcomes = await asyncio.gather(
            *(deliver(topic, partition, b) for (topic, partition), b in batches.items()),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def prune_once(self, window: int = 5000, max_windows: int = 20) -> int:
        """Delete rows published more than ``retention_seconds`` ago.

        Works on the oldest rows (``seq`` order) a window at a time, under the outbox's
        advisory lock (so never beside a publishing pass), until a window yields nothing:
        a call reads the old rows plus at most one window more, however large the table.
        An unpublished row (still pending, or failing) is never deleted, whatever its
        age; the rows behind it are (unless a whole window is unpublished). At most
        ``max_windows`` statements per call, so that a large first prune (a table that
        grew for months before this existed) is spread over several intervals instead of
        holding up publication.

        Args:
            window: rows looked at per statement.
            max_windows: statements per call at most.

        Returns:
            The number of rows deleted (0 when another replica holds the lock).

        Raises:
            Exception: database errors (the loop logs them and tries again later).
        """
        t = self.table
        cutoff = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, self.retention_seconds)
        deleted = 0
        for _ in range(max_windows):
            async with self.sessionmaker() as session, session.begin():
                got = await session.scalar(select(func.pg_try_advisory_xact_lock(self._lock_key)))
                if not got:
                    return deleted
                head = select(t.c.seq, t.c.published_at).order_by(t.c.seq).limit(window).cte("head")
                result = await session.execute(
                    delete(t).where(
                        t.c.seq == head.c.seq,
                        head.c.published_at < cutoff,  # NULL (unpublished): never
                    )
                )
                gone = int(result.rowcount)  # type: ignore[attr-defined]
            deleted += gone
            if not gone:
                break
        if deleted:
            log.info("outbox.pruned", rows=deleted)
        return deleted

    async def _record_failure(self, rows: Sequence[Any], exc: Exception) -> None:
        t = self.table
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(t)
                .where(t.c.seq.in_([r.seq for r in rows]))
                .values(attempts=t.c.attempts + 1, last_error=str(exc)[:1000])
            )

    async def _update_gauges(self, session: AsyncSession) -> None:
        t = self.table
        row = (
            await session.execute(
                select(
                    func.count(),
                    func.coalesce(func.extract("epoch", func.now() - func.min(t.c.created_at)), 0),
                ).where(t.c.published_at.is_(None))
            )
        ).one()
        metrics.OUTBOX_PENDING.set(row[0])
        metrics.OUTBOX_OLDEST_AGE.set(float(row[1]))


async def run_relay_process(
    *,
    table: Table,
    settings: PlatformSettings,
    client_id: str,
    stop: asyncio.Event,
    idle_seconds: float = 0.2,
) -> None:
    """Relay one service's outbox from a process of its own until ``stop`` is set.

    What ``cfp relay <service>`` runs, for a service started with
    ``CFP_RELAY_IN_PROCESS=false``: the same :class:`OutboxRelay` as inside the service (the
    advisory lock still lets only one relay of an outbox publish at a time, so an
    in-process relay left on by mistake is harmless), on an engine of two connections.
    Without a wake-up from the service's commits it looks for rows every ``idle_seconds``
    when the last pass was not full, which bounds the publication delay (intake's
    in-process relay lingers as long after a wake-up by default).

    Args:
        table: the service's outbox table.
        settings: the service's settings (database, Kafka, topic prefix).
        client_id: Kafka client id, e.g. ``intake-relay``.
        stop: set it to publish what is pending (a few seconds at most) and return.
        idle_seconds: polling interval when idle, seconds.
    """
    engine = make_engine(settings.database_url, pool_size=2, application_name=client_id)
    relay = OutboxRelay(
        table=table,
        sessionmaker=make_sessionmaker(engine),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic_prefix=settings.kafka_topic_prefix,
        client_id=client_id,
        idle_seconds=idle_seconds,
        retention_seconds=settings.outbox_retention_hours * 3600,
    )
    relay.start()
    log.info("outbox.relay_process_started", table=table.fullname)
    try:
        await stop.wait()
    finally:
        await relay.stop()
        await engine.dispose()
        log.info("outbox.relay_process_stopped", table=table.fullname)
