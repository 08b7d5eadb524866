"""Rebuild the analytics read model by replaying every topic from the start.

``cfp analytics-rebuild`` (or ``python -m services.analytics.rebuild``):

1. empties the model tables and analytics' processed-event ids in the target database
   (``--database-url``, default ``DATABASE_URL``; it must be migrated);
2. notes the end offset of every partition of every topic analytics handles;
3. reads each partition from offset 0 with a new consumer group
   (``analytics-rebuild-<UTC timestamp>``; the live group ``analytics`` and its offsets are
   untouched) and runs the same handlers as the live consumer, ``batch_size`` events per
   transaction, until every partition reached the offset noted in step 2.

With ``--defer-summaries`` the row triggers that keep the summaries, cells and links
(``tables.SUMMARY_TRIGGERS``) are off during the replay and the tables are recomputed once at
the end by the backfill functions (about 1.6 times the events per second on the
benchmark). Meant for a fresh database nothing else writes: the triggers are off for every
writer meanwhile, and if the process is killed (not an error, which still recomputes) they
stay off until a rebuild with the option is run again.

Events the live consumer handles meanwhile are not lost: both record processed ids under
the consumer name ``analytics``, so each event is applied once by whichever sees it first,
and the handlers do not depend on order. An event that does not validate (the live
consumer dead-lettered it) is skipped and counted. Reports read while a rebuild runs in
place show partial figures; rebuild into a fresh database and switch ``DATABASE_URL`` to
avoid that.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import ValidationError
from sqlalchemy import delete, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.analytics import model, tables
from services.analytics.handlers import handlers
from services.analytics.settings import AnalyticsSettings
from shared.db import make_engine, make_sessionmaker
from shared.events.envelope import Envelope, parse_raw
from shared.kafka.consumer import HandlerRegistry, Registration
from shared.logging import get_logger

log = get_logger(__name__)

#: Consumer name under which processed event ids are recorded (the live consumer's).
CONSUMER_NAME = "analytics"


@dataclass
class RebuildSummary:
    """What a rebuild did.

    Attributes:
        group: the Kafka consumer group used.
        events: records read.
        applied: events applied to the model.
        duplicates: events already applied (by the live consumer or a redelivery).
        ignored: types analytics has no handler for.
        invalid: records that do not parse or validate (skipped).
        failed: events whose handler failed twice (skipped; see the log).
        seconds: wall time of the replay phase (with ``defer_summaries``, including the
            recomputation at its end).
        backfill_seconds: wall time of the recomputation after a replay with the summary
            triggers off (0.0 without ``defer_summaries``).
    """

    group: str
    events: int = 0
    applied: int = 0
    duplicates: int = 0
    ignored: int = 0
    invalid: int = 0
    failed: int = 0
    seconds: float = 0.0
    backfill_seconds: float = 0.0
    end_offsets: dict[str, int] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        """Records read per second of replay."""
        return self.events / self.seconds if self.seconds else 0.0


async def reset_model(*, session: AsyncSession) -> None:
    """Empty every model table and analytics' processed-event ids (not committed here)."""
    names = ", ".join(f"analytics.{t.name}" for t in tables.MODEL_TABLES)
    await session.execute(text(f"TRUNCATE {names}"))
    await session.execute(
        delete(tables.processed_events).where(tables.processed_events.c.consumer == CONSUMER_NAME)
    )


@asynccontextmanager
async def summaries_deferred(
    sessionmaker: async_sessionmaker[AsyncSession], summary: RebuildSummary | None = None
) -> AsyncIterator[None]:
    """Run the block with the summary triggers off, then turn them on and recompute.

    The triggers (:data:`tables.SUMMARY_TRIGGERS`) go off in a committed transaction of
    their own (``ALTER TABLE ... DISABLE TRIGGER``: for every session, not only this one).
    After the block, also when it raises, one transaction turns them on again (the ``ALTER
    TABLE`` locks make writers of the fact tables wait until it commits, so no write falls
    between the recomputation and the triggers) and runs :data:`tables.SUMMARY_BACKFILLS`.
    The summary tables are therefore a function of the facts again when this returns,
    whatever the block did to the facts.

    Args:
        sessionmaker: sessions on the target database (migrated to analytics' head).
        summary: where to record ``backfill_seconds`` (optional).
    """

    async def switch(action: str) -> None:
        async with sessionmaker() as session, session.begin():
            for table, names in tables.SUMMARY_TRIGGERS.items():
                for name in names:
                    await session.execute(
                        text(f"ALTER TABLE analytics.{table} {action} TRIGGER {name}")
                    )
            if action == "ENABLE":
                for backfill in tables.SUMMARY_BACKFILLS:
                    await session.execute(text(f"SELECT {backfill}"))

    await switch("DISABLE")
    try:
        yield
    finally:
        started = time.perf_counter()
        await switch("ENABLE")
        if summary is not None:
            summary.backfill_seconds = time.perf_counter() - started
        log.info("rebuild.summaries_recomputed", seconds=round(time.perf_counter() - started, 2))


def _decode(
    record: ConsumerRecord[bytes, bytes], registry: HandlerRegistry
) -> tuple[str, Envelope[Any] | None, Registration | None]:
    """Return ``(outcome, envelope, registration)``; outcome ``ok``, ``ignored``, ``invalid``."""
    try:
        raw = parse_raw(record.value or b"")
    except ValueError:
        return "invalid", None, None
    registration = registry.by_type.get(str(raw["type"]))
    if registration is None:
        return "ignored", None, None
    try:
        envelope = Envelope[registration.payload].model_validate(raw)  # type: ignore[name-defined]
    except ValidationError:
        return "invalid", None, None
    return "ok", envelope, registration


async def _apply(
    session: AsyncSession, envelope: Envelope[Any], registration: Registration
) -> bool:
    inserted = await session.execute(
        insert(tables.processed_events)
        .values(consumer=CONSUMER_NAME, event_id=envelope.id, event_type=envelope.type)
        .on_conflict_do_nothing()
        .returning(tables.processed_events.c.event_id)
    )
    if inserted.first() is None:
        return False
    await registration.handler(envelope, session=session)
    return True


async def apply_batch(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    records: list[ConsumerRecord[bytes, bytes]],
    summary: RebuildSummary,
    registry: HandlerRegistry = handlers,
) -> None:
    """Apply records in one transaction; on failure, one transaction per record.

    Counts every record in ``summary``.
    """
    decoded = []
    for record in records:
        outcome, envelope, registration = _decode(record, registry)
        summary.events += 1
        if outcome == "ignored":
            summary.ignored += 1
        elif outcome == "invalid":
            summary.invalid += 1
        else:
            decoded.append((envelope, registration))
    try:
        applied = 0
        async with sessionmaker() as session, session.begin():
            # Each complaint's derived columns are recomputed once per batch, not per event.
            model.defer_refreshes(session)
            for envelope, registration in decoded:
                applied += await _apply(session, envelope, registration)  # type: ignore[arg-type]
            await model.flush_refreshes(session=session)
        summary.applied += applied
        summary.duplicates += len(decoded) - applied
        return
    except Exception as exc:
        log.warning("rebuild.batch_failed", error=str(exc)[:300], events=len(decoded))
    for envelope, registration in decoded:
        try:
            async with sessionmaker() as session, session.begin():
                ok = await _apply(session, envelope, registration)  # type: ignore[arg-type]
        except Exception as exc:
            summary.failed += 1
            log.error(
                "rebuild.event_failed",
                event_id=envelope.id,  # type: ignore[union-attr]
                event_type=envelope.type,  # type: ignore[union-attr]
                error=str(exc)[:300],
            )
            continue
        if ok:
            summary.applied += 1
        else:
            summary.duplicates += 1


async def rebuild(
    *,
    database_url: str,
    bootstrap_servers: str,
    topic_prefix: str = "",
    batch_size: int = 500,
    reset: bool = True,
    group: str | None = None,
    defer_summaries: bool = False,
) -> RebuildSummary:
    """Replay every analytics topic from offset 0 into the model at ``database_url``.

    Args:
        database_url: the target database (migrated to analytics' head).
        bootstrap_servers: Kafka bootstrap list.
        topic_prefix: wire prefix of the topics (``KAFKA_TOPIC_PREFIX``).
        batch_size: events per transaction, >= 1.
        reset: empty the model first (False only to top up a model, e.g. in tests).
        group: consumer group id; default ``analytics-rebuild-<UTC timestamp>``.
        defer_summaries: replay with the summary triggers off and recompute the summaries
            once at the end (:func:`summaries_deferred`; for a database nothing else
            writes meanwhile).

    Returns:
        The summary; the model holds every event up to the end offsets seen at the start.
    """
    group = group or "analytics-rebuild-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    summary = RebuildSummary(group=group)
    engine = make_engine(database_url, pool_size=2, application_name="analytics-rebuild")
    sessionmaker = make_sessionmaker(engine)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group,
        client_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=batch_size,
    )
    await consumer.start()
    try:
        if reset:
            async with sessionmaker() as session, session.begin():
                await reset_model(session=session)
        # What consumer.topics() does, keeping the metadata: partitions_for_topic() only
        # knows the topics of the consumer's own (here: empty) subscription.
        cluster = await consumer._client.fetch_all_metadata()
        partitions: list[TopicPartition] = []
        for topic in handlers.topics:
            wire = topic_prefix + topic
            for p in sorted(cluster.partitions_for_topic(wire) or ()):
                partitions.append(TopicPartition(wire, p))
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        summary.end_offsets = {f"{tp.topic}:{tp.partition}": off for tp, off in ends.items()}
        pending = {tp for tp, end in ends.items() if end > 0}
        for tp in set(partitions) - pending:
            consumer.pause(tp)
        started = time.perf_counter()
        deferred = summaries_deferred(sessionmaker, summary) if defer_summaries else nullcontext()
        async with deferred:
            while pending:
                batch = await consumer.getmany(timeout_ms=1000, max_records=batch_size)
                records = [
                    r for tp, rs in batch.items() for r in rs if r.offset < ends[tp]
                ]  # later events belong to the live consumer
                if records:
                    await apply_batch(sessionmaker=sessionmaker, records=records, summary=summary)
                for tp in list(pending):
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
                        consumer.pause(tp)
        summary.seconds = time.perf_counter() - started
        if ends:
            await consumer.commit({tp: off for tp, off in ends.items() if off > 0})
    finally:
        await consumer.stop()
        await engine.dispose()
    log.info(
        "rebuild.done",
        group=group,
        events=summary.events,
        applied=summary.applied,
        seconds=round(summary.seconds, 2),
        backfill_seconds=round(summary.backfill_seconds, 2),
    )
    return summary


def run(
    database_url: str | None = None,
    batch_size: int | None = None,
    defer_summaries: bool = False,
) -> RebuildSummary:
    """Rebuild with the process settings (``DATABASE_URL``, ``KAFKA_*``); blocking."""
    settings = AnalyticsSettings()
    return asyncio.run(
        rebuild(
            database_url=database_url or settings.database_url,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topic_prefix=settings.kafka_topic_prefix,
            batch_size=batch_size or settings.rebuild_batch_size,
            defer_summaries=defer_summaries,
        )
    )


def format_summary(summary: RebuildSummary) -> str:
    """Return a one-line human summary of a rebuild."""
    return (
        f"rebuilt with group {summary.group}: {summary.events} events "
        f"({summary.applied} applied, {summary.duplicates} duplicates, {summary.ignored} "
        f"ignored, {summary.invalid} invalid, {summary.failed} failed) in "
        f"{summary.seconds:.1f}s = {summary.events_per_second:.0f} events/s"
        + (
            f" (summaries recomputed at the end in {summary.backfill_seconds:.1f}s)"
            if summary.backfill_seconds
            else ""
        )
    )


def main() -> None:
    """Entry point of ``python -m services.analytics.rebuild``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="target; default DATABASE_URL")
    parser.add_argument("--batch-size", type=int, default=None, help="events per transaction")
    parser.add_argument(
        "--defer-summaries",
        action="store_true",
        help="summary triggers off during the replay, one recomputation at the end "
        "(for a fresh database nothing else writes)",
    )
    args = parser.parse_args()
    summary = run(args.database_url, args.batch_size, args.defer_summaries)
    print(format_summary(summary))  # noqa: T201 - command output


if __name__ == "__main__":
    main()
