"""The visit clock's alerts on real Kafka and PostgreSQL (issue 6 §4: warnings like cases).

The tests play tracking's part (``cases.result-notified``, ``cases.closed`` on this run's
topics), let the followup apps (real consumer, relay, sweep loop) act, move a visit's clock
in the database to put it in its warning window or past its end, and read the
``followups.visit-warning`` / ``followups.visit-overdue`` events the apps publish.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update

from services.followup import tables
from services.followup.main import create_app
from services.followup.settings import FollowupSettings
from shared.db import make_engine, make_sessionmaker
from shared.events.contracts.cases import (
    CASE_CLOSED_V1,
    CASE_RESULT_NOTIFIED_V1,
    CaseClosed,
    CaseResultNotified,
)
from shared.events.envelope import Envelope, new_event, to_wire
from shared.events.registry import (
    CASES_CLOSED,
    CASES_RESULT_NOTIFIED,
    FOLLOWUPS_VISIT_OVERDUE,
    FOLLOWUPS_VISIT_WARNING,
)
from tests.conftest import app_client

v = tables.visit
WAIT_SECONDS = 30.0


def _settings(platform_env: dict[str, str]) -> FollowupSettings:
    return FollowupSettings(
        database_url=platform_env["DATABASE_URL"],
        kafka_bootstrap_servers=platform_env["KAFKA_BOOTSTRAP_SERVERS"],
        kafka_topic_prefix=platform_env["KAFKA_TOPIC_PREFIX"],
        delay_working_days=0,
        retry_spacing_working_days=0,
        metrics_refresh_seconds=5,
        sweep_interval_seconds=0.2,
        sweep_batch_size=3,
    )


@asynccontextmanager
async def running(count: int, platform_env: dict[str, str]) -> AsyncIterator[list[FastAPI]]:
    """Run ``count`` followup apps on the same database and topics (replicas)."""
    async with AsyncExitStack() as stack:
        apps: list[FastAPI] = []
        for _ in range(count):
            application = create_app(_settings(platform_env))
            client = await stack.enter_async_context(asynccontextmanager(app_client)(application))
            application.state.test_client = client
            apps.append(application)
        yield apps


@pytest.fixture(scope="module")
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await p.start()
    yield p
    await p.stop()


async def send(producer: AIOKafkaProducer, prefix: str, topic: str, ev: Envelope[Any]) -> None:
    key, value, headers = to_wire(ev)
    await producer.send_and_wait(prefix + topic, value=value, key=key, headers=headers)


def notified(case_id: str) -> Envelope[Any]:
    return new_event(
        source="tracking",
        type_=CASE_RESULT_NOTIFIED_V1,
        subject=case_id,
        data=CaseResultNotified(
            case_id=case_id,
            round=1,
            notified_at=datetime.now(UTC),
            channel="phone",
            customer_key="ck_" + case_id[:8],
            department="retail_banking",
            category="fees_and_charges",
            on_time=True,
        ),
    )


def closed(case_id: str) -> Envelope[Any]:
    return new_event(
        source="tracking",
        type_=CASE_CLOSED_V1,
        subject=case_id,
        data=CaseClosed(
            case_id=case_id,
            closed_at=datetime.now(UTC),
            outcome="withdrawn",
            round=1,
            department="retail_banking",
            category="fees_and_charges",
        ),
    )


async def visit_of(app: FastAPI, case_id: str, status: str | None = None) -> Any:
    """Wait until the case has a visit (in ``status`` if given) and return its row."""
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while True:
        async with app.state.sessionmaker() as session:
            row = (await session.execute(select(v).where(v.c.subject_id == case_id))).first()
        if row is not None and (status is None or row.status == status):
            return row
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no {status or ''} visit for {case_id} in time")
        await asyncio.sleep(0.1)


async def move_clock(app: FastAPI, case_ids: list[str], due_in: timedelta) -> None:
    """Put the visits' clock end ``due_in`` from now and let the sweep look at them now."""
    now = datetime.now(UTC)
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(v)
            .where(v.c.subject_id.in_(case_ids))
            .values(due_at=now + due_in, clock_check_at=now)
        )


async def read_events(
    bootstrap: str, topic: str, subjects: set[str], count: int, wait: float = WAIT_SECONDS
) -> list[dict[str, Any]]:
    """Read events about ``subjects`` from ``topic`` until ``count`` arrived or ``wait`` ends."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[dict[str, Any]] = []
    keys = {s.encode() for s in subjects}
    try:
        deadline = asyncio.get_running_loop().time() + wait
        while len(got) < count and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                got.extend(json.loads(r.value) for r in records if r.key in keys)
    finally:
        await consumer.stop()
    return got


async def settle(
    bootstrap: str, topic: str, subjects: set[str], expected: int
) -> list[dict[str, Any]]:
    """Read the events once ``expected`` arrived, plus a grace for any extra one."""
    await read_events(bootstrap, topic, subjects, expected)
    return await read_events(bootstrap, topic, subjects, expected + 1, wait=2.0)


async def test_warning_once_then_overdue_once(
    platform_env: dict[str, str],
    producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    topic_prefix: str,
    token_for: Any,
) -> None:
    case_id = str(uuid.uuid4())
    async with running(1, platform_env) as (app,):
        await send(producer, topic_prefix, CASES_RESULT_NOTIFIED, notified(case_id))
        row = await visit_of(app, case_id)
        assert row.clock_check_at is not None
        assert row.clock_check_at <= row.due_at
        assert row.warned_at is None
        assert row.overdue_at is None

        await move_clock(app, [case_id], timedelta(hours=1))
        warnings = await settle(
            kafka_bootstrap, topic_prefix + FOLLOWUPS_VISIT_WARNING, {case_id}, 1
        )
        assert len(warnings) == 1
        w = warnings[0]
        assert w["type"] == "followups.visit-warning.v1"
        assert w["source"].endswith("followup")
        assert w["data"]["visit_id"] == row.id
        assert w["data"]["subject_kind"] == "case"
        assert w["data"]["round"] == 1
        assert w["data"]["channel"] == row.channel
        assert w["data"]["department"] == "retail_banking"
        warned = await visit_of(app, case_id)
        assert warned.warned_at is not None
        assert warned.clock_check_at == warned.due_at  # next look: the end of the clock

        client: AsyncClient = app.state.test_client
        body = (await client.get(f"/v1/followups/{row.id}", headers=token_for("agent"))).json()
        assert body["clock_state"] == "warning"

        await move_clock(app, [case_id], timedelta(seconds=-1))
        overdue = await settle(
            kafka_bootstrap, topic_prefix + FOLLOWUPS_VISIT_OVERDUE, {case_id}, 1
        )
        assert len(overdue) == 1
        assert overdue[0]["type"] == "followups.visit-overdue.v1"
        assert overdue[0]["data"]["visit_id"] == row.id
        done = await visit_of(app, case_id)
        assert done.overdue_at is not None
        assert done.clock_check_at is None
        # The warning is not repeated by the later sweeps either.
        again = await read_events(
            kafka_bootstrap, topic_prefix + FOLLOWUPS_VISIT_WARNING, {case_id}, 2, wait=1.0
        )
        assert len(again) == 1


async def test_two_replicas_emit_each_alert_once(
    platform_env: dict[str, str],
    producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    case_ids = [str(uuid.uuid4()) for _ in range(12)]
    async with running(2, platform_env) as apps:
        for case_id in case_ids:
            await send(producer, topic_prefix, CASES_RESULT_NOTIFIED, notified(case_id))
        for case_id in case_ids:
            await visit_of(apps[0], case_id)
        sweeps_before = [a.state.clock_sweeper.sweeps for a in apps]

        await move_clock(apps[0], case_ids, timedelta(hours=1))
        warnings = await settle(
            kafka_bootstrap, topic_prefix + FOLLOWUPS_VISIT_WARNING, set(case_ids), 12
        )
        assert sorted(e["subject"] for e in warnings) == sorted(case_ids)

        await move_clock(apps[0], case_ids, timedelta(seconds=-1))
        overdue = await settle(
            kafka_bootstrap, topic_prefix + FOLLOWUPS_VISIT_OVERDUE, set(case_ids), 12
        )
        assert sorted(e["subject"] for e in overdue) == sorted(case_ids)
        assert len({e["id"] for e in overdue}) == 12
        # Both replicas were sweeping the whole time.
        assert all(
            a.state.clock_sweeper.sweeps > b for a, b in zip(apps, sweeps_before, strict=True)
        )
        async with apps[0].state.sessionmaker() as session:
            rows = (await session.execute(select(v).where(v.c.subject_id.in_(case_ids)))).all()
        assert all(r.warned_at is not None and r.overdue_at is not None for r in rows)
        assert all(r.clock_check_at is None for r in rows)


async def test_completed_or_cancelled_visits_never_warn(
    platform_env: dict[str, str],
    producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    topic_prefix: str,
    token_for: Any,
) -> None:
    completed_id, cancelled_id, control_id = (str(uuid.uuid4()) for _ in range(3))
    async with running(1, platform_env) as (app,):
        for case_id in (completed_id, cancelled_id, control_id):
            await send(producer, topic_prefix, CASES_RESULT_NOTIFIED, notified(case_id))
        done = await visit_of(app, completed_id)
        await visit_of(app, cancelled_id)
        await visit_of(app, control_id)

        client: AsyncClient = app.state.test_client
        r = await client.post(
            f"/v1/followups/{done.id}/attempts",
            json={"result": "reached", "satisfied": True, "score": 5},
            headers=token_for("agent"),
        )
        assert r.status_code == 201, r.text
        await send(producer, topic_prefix, CASES_CLOSED, closed(cancelled_id))
        assert (await visit_of(app, completed_id, "completed")).clock_check_at is None
        assert (await visit_of(app, cancelled_id, "cancelled")).clock_check_at is None

        # Even with a clock check forced on them, ended visits are never claimed.
        await move_clock(app, [completed_id, cancelled_id, control_id], timedelta(hours=1))
        await settle(kafka_bootstrap, topic_prefix + FOLLOWUPS_VISIT_WARNING, {control_id}, 1)
        await move_clock(app, [completed_id, cancelled_id, control_id], timedelta(seconds=-1))
        await settle(kafka_bootstrap, topic_prefix + FOLLOWUPS_VISIT_OVERDUE, {control_id}, 1)

        for topic in (FOLLOWUPS_VISIT_WARNING, FOLLOWUPS_VISIT_OVERDUE):
            events = await read_events(
                kafka_bootstrap,
                topic_prefix + topic,
                {completed_id, cancelled_id, control_id},
                3,
                wait=1.5,
            )
            assert [e["subject"] for e in events] == [control_id]
        for case_id in (completed_id, cancelled_id):
            row = await visit_of(app, case_id)
            assert row.warned_at is None
        assert row.overdue_at is None


async def test_overdue_while_down_is_sent_once_after_restart(
    platform_env: dict[str, str],
    producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    case_id = str(uuid.uuid4())
    async with running(1, platform_env) as (app,):
        await send(producer, topic_prefix, CASES_RESULT_NOTIFIED, notified(case_id))
        await visit_of(app, case_id)

    # No replica runs while the whole warning window and the clock's end pass.
    engine = make_engine(platform_env["DATABASE_URL"], pool_size=1)
    try:
        now = datetime.now(UTC)
        async with make_sessionmaker(engine)() as session, session.begin():
            await session.execute(
                update(v)
                .where(v.c.subject_id == case_id)
                .values(due_at=now - timedelta(seconds=1), clock_check_at=now)
            )
    finally:
        await engine.dispose()
    for topic in (FOLLOWUPS_VISIT_WARNING, FOLLOWUPS_VISIT_OVERDUE):
        assert await read_events(kafka_bootstrap, topic_prefix + topic, {case_id}, 1, 1.0) == []

    async with running(1, platform_env) as (app,):
        overdue = await settle(
            kafka_bootstrap, topic_prefix + FOLLOWUPS_VISIT_OVERDUE, {case_id}, 1
        )
        assert len(overdue) == 1
        # A warning after the fact would be noise: only the overdue alert is sent.
        warnings = await read_events(
            kafka_bootstrap, topic_prefix + FOLLOWUPS_VISIT_WARNING, {case_id}, 1, wait=1.0
        )
        assert warnings == []
        row = await visit_of(app, case_id)
        assert row.overdue_at is not None
        assert row.warned_at is None
