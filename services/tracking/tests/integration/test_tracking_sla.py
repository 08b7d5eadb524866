"""SLA warnings and breaches: exactly once per clock and round, with two tracking replicas and
across restarts, on real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tracking import tables
from services.tracking.domain import sla
from services.tracking.main import create_app
from services.tracking.settings import TrackingSettings
from services.tracking.tests.tracking_helpers import open_case
from shared.db import make_engine, make_sessionmaker
from shared.events import registry

OVERDUE = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # every clock of such a case is past due


async def alert_counts(
    sm: async_sessionmaker[AsyncSession], case_ids: list[str]
) -> Counter[tuple[str, str]]:
    ob = tables.outbox
    async with sm() as session:
        rows = await session.execute(
            select(ob.c.key, ob.c.type).where(
                ob.c.key.in_(case_ids),
                ob.c.type.in_(["cases.sla-warning.v1", "cases.sla-breached.v1"]),
            )
        )
        return Counter((r.key, r.type) for r in rows)


async def wait_until(predicate: Callable[[], Any], seconds: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def test_concurrent_sweeps_breach_each_clock_once(
    tsm: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    ids = [await open_case(tsm, OVERDUE) for _ in range(60)]
    engines = [make_engine(database_url, pool_size=2) for _ in range(2)]
    try:
        makers = [make_sessionmaker(e) for e in engines]
        results = await asyncio.gather(
            *(sla.sweep_once(sessionmaker=m, batch_size=7) for m in makers for _ in range(2))
        )
    finally:
        for e in engines:
            await e.dispose()
    assert sum(r.breaches for r in results) >= 180  # other tests' overdue clocks may add
    counts = await alert_counts(tsm, ids)
    assert all(counts[(i, "cases.sla-breached.v1")] == 3 for i in ids)
    # past due without a warning: only the breach, never a late warning
    assert all(counts[(i, "cases.sla-warning.v1")] == 0 for i in ids)
    async with tsm() as session:
        k = tables.case_clock
        pending = await session.scalar(
            select(func.count())
            .select_from(k)
            .where(and_(k.c.case_id.in_(ids), k.c.next_check_at.is_not(None)))
        )
    assert pending == 0
    again = await sla.sweep_once(sessionmaker=tsm)
    assert again.claimed == 0 or again.breaches == 0


async def test_two_app_replicas_breach_once_and_publish_to_kafka(
    tsm: async_sessionmaker[AsyncSession],
    tracking_settings_for: Callable[..., TrackingSettings],
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    ids = [await open_case(tsm, OVERDUE) for _ in range(20)]
    settings = tracking_settings_for(sweep_enabled=True, sweep_interval_seconds=0.1)
    apps = [create_app(settings), create_app(settings)]
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]):

        async def all_breached() -> bool:
            counts = await alert_counts(tsm, ids)
            return sum(counts.values()) >= 60

        await wait_until(all_breached)
        sweeps = [a.state.sweeper.sweeps for a in apps]
        await wait_until(
            lambda: _async_true(
                all(a.state.sweeper.sweeps >= s + 3 for a, s in zip(apps, sweeps, strict=True))
            )
        )
    counts = await alert_counts(tsm, ids)
    assert {counts[(i, "cases.sla-breached.v1")] for i in ids} == {3}
    wire = await read_keys(
        kafka_bootstrap, topic_prefix + registry.CASES_SLA_BREACHED, set(ids), 60
    )
    assert Counter(wire) == dict.fromkeys(ids, 3)


async def _async_true(value: bool) -> bool:
    return value


async def read_keys(bootstrap: str, topic: str, keys: set[str], count: int) -> list[str]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[str] = []
    try:
        deadline = asyncio.get_running_loop().time() + 20
        idle = 0
        while asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            records = [r for rs in batch.values() for r in rs]
            got.extend(r.key.decode() for r in records if r.key.decode() in keys)
            idle = idle + 1 if not records else 0
            if len(got) >= count and idle >= 2:
                break
    finally:
        await consumer.stop()
    for key in got:
        assert json.dumps(key)
    return got


async def _set_clock(
    sm: async_sessionmaker[AsyncSession], case_id: str, warn_at: datetime, due_at: datetime
) -> None:
    k = tables.case_clock
    async with sm() as session, session.begin():
        await session.execute(
            update(k)
            .where(and_(k.c.case_id == case_id, k.c.kind == "resolution"))
            .values(warn_at=warn_at, due_at=due_at, next_check_at=warn_at)
        )
        await session.execute(
            update(k)
            .where(and_(k.c.case_id == case_id, k.c.kind != "resolution"))
            .values(next_check_at=None, stopped_at=datetime.now(UTC))
        )


async def test_restart_in_warning_window_neither_loses_nor_repeats(
    tsm: async_sessionmaker[AsyncSession],
    tracking_settings_for: Callable[..., TrackingSettings],
) -> None:
    now = datetime.now(UTC)
    first = await open_case(tsm, now)
    await _set_clock(tsm, first, now - timedelta(seconds=1), now + timedelta(hours=3))
    settings = tracking_settings_for(sweep_enabled=True, sweep_interval_seconds=0.1)

    app = create_app(settings)
    async with app.router.lifespan_context(app):

        async def warned() -> bool:
            return (await alert_counts(tsm, [first]))[(first, "cases.sla-warning.v1")] == 1

        await wait_until(warned)
    # while no replica runs, a second case enters its warning window
    second = await open_case(tsm, now)
    await _set_clock(
        tsm, second, datetime.now(UTC) - timedelta(seconds=1), now + timedelta(hours=3)
    )
    # a sweep that dies before committing leaves nothing behind
    claimed: list[sla.SweepResult] = []

    async def crashing_sweep() -> None:
        async with tsm() as session, session.begin():
            claimed.append(
                await sla.sweep_batch(session=session, now=datetime.now(UTC), batch_size=1000)
            )
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        await crashing_sweep()
    assert claimed[0].warnings >= 1
    assert (await alert_counts(tsm, [second]))[(second, "cases.sla-warning.v1")] == 0

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        start = app.state.sweeper.sweeps

        async def swept_a_few() -> bool:
            return app.state.sweeper.sweeps >= start + 3

        await wait_until(swept_a_few)
    counts = await alert_counts(tsm, [first, second])
    assert counts == {(first, "cases.sla-warning.v1"): 1, (second, "cases.sla-warning.v1"): 1}
    async with tsm() as session:
        k = tables.case_clock
        row = (
            await session.execute(
                select(k.c.warned_at, k.c.breached_at, k.c.next_check_at).where(
                    and_(k.c.case_id == first, k.c.kind == "resolution")
                )
            )
        ).one()
    assert row.warned_at is not None
    assert row.breached_at is None
    assert row.next_check_at == now + timedelta(hours=3)  # next: the breach at due_at


async def test_provisional_calendar_gauges(tsm: async_sessionmaker[AsyncSession]) -> None:
    from prometheus_client import REGISTRY

    from services.tracking.domain.calendar import CalendarHolder

    await open_case(tsm, datetime(2028, 3, 1, 2, 0, tzinfo=UTC))  # 2028: no official schedule
    holder = CalendarHolder("Asia/Shanghai")
    async with tsm() as session, session.begin():
        await holder.refresh(session)
        running = await sla.refresh_calendar_metrics(
            session=session, holder=holder, now=datetime(2027, 12, 1, tzinfo=UTC)
        )
    assert running >= 1
    assert (REGISTRY.get_sample_value("tracking_calendar_provisional_years") or 0) >= 1
    assert REGISTRY.get_sample_value("tracking_provisional_open_clocks") == running
    assert REGISTRY.get_sample_value("tracking_calendar_year_provisional", {"year": "2028"}) == 1
