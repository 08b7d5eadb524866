"""Follow-up visits end to end on real Kafka and PostgreSQL (issue 6 "Tests").

The tests play tracking's part: they produce ``cases.*`` and ``suggestions.*`` events on
this run's topics, let the followup app (its real consumer, outbox relay and API) act, and
check the database, the API answers and the ``followups.*`` events it publishes.

The app runs with ``delay_working_days=0`` and ``retry_spacing_working_days=0`` so that a
visit is due at once and retries need no waiting; the working-day rules themselves are
covered by the unit tests (test_followup_policy.py) and by ``test_retry_not_due_yet``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI
from httpx import AsyncClient
from pydantic import BaseModel
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from services.followup import metrics, tables
from services.followup.main import create_app
from services.followup.settings import FollowupSettings
from shared.events.contracts.cases import (
    CASE_CLOSED_V1,
    CASE_REOPENED_V1,
    CASE_RESULT_NOTIFIED_V1,
    CaseClosed,
    CaseReopened,
    CaseResultNotified,
)
from shared.events.contracts.suggestions import (
    SUGGESTION_DECIDED_V1,
    SUGGESTION_IMPLEMENTED_V1,
    SuggestionDecided,
    SuggestionImplemented,
)
from shared.events.envelope import Envelope, new_event, to_wire
from shared.events.registry import (
    CASES_CLOSED,
    CASES_REOPENED,
    CASES_RESULT_NOTIFIED,
    FOLLOWUPS_COMPLETED,
    FOLLOWUPS_SCHEDULED,
    SUGGESTIONS_DECIDED,
    SUGGESTIONS_IMPLEMENTED,
    dlq_topic,
)
from tests.conftest import app_client

v = tables.visit
WAIT_SECONDS = 30.0


# -- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture(scope="module")
def settings(platform_env: dict[str, str]) -> FollowupSettings:
    return FollowupSettings(
        database_url=platform_env["DATABASE_URL"],
        kafka_bootstrap_servers=platform_env["KAFKA_BOOTSTRAP_SERVERS"],
        kafka_topic_prefix=platform_env["KAFKA_TOPIC_PREFIX"],
        delay_working_days=0,
        retry_spacing_working_days=0,
        max_attempts=3,
        metrics_refresh_seconds=0.3,
    )


@pytest.fixture(scope="module")
async def app(settings: FollowupSettings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with asynccontextmanager(app_client)(application) as client:
        application.state.test_client = client
        yield application


@pytest.fixture
def client(app: FastAPI) -> AsyncClient:
    c: AsyncClient = app.state.test_client
    return c


@pytest.fixture(scope="module")
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await p.start()
    yield p
    await p.stop()


Send = Callable[[str, Envelope[Any]], Awaitable[None]]


@pytest.fixture
def send(producer: AIOKafkaProducer, topic_prefix: str) -> Send:
    async def _send(topic: str, envelope: Envelope[Any]) -> None:
        key, value, headers = to_wire(envelope)
        await producer.send_and_wait(topic_prefix + topic, value=value, key=key, headers=headers)

    return _send


def _event(type_: str, subject: str, data: BaseModel) -> Envelope[Any]:
    return new_event(source="tracking", type_=type_, subject=subject, data=data)


def notified(case_id: str, round_: int = 1, channel: str = "phone") -> Envelope[Any]:
    return _event(
        CASE_RESULT_NOTIFIED_V1,
        case_id,
        CaseResultNotified(
            case_id=case_id,
            round=round_,
            notified_at=datetime.now(UTC),
            channel=channel,
            customer_key="ck_" + case_id[:8],
            department="retail_banking",
            category="fees_and_charges",
            on_time=True,
        ),
    )


def closed(case_id: str, round_: int = 1, outcome: str = "satisfied") -> Envelope[Any]:
    return _event(
        CASE_CLOSED_V1,
        case_id,
        CaseClosed(
            case_id=case_id,
            closed_at=datetime.now(UTC),
            outcome=outcome,
            round=round_,
            department="retail_banking",
            category="fees_and_charges",
        ),
    )


def reopened(case_id: str, round_: int) -> Envelope[Any]:
    now = datetime.now(UTC)
    return _event(
        CASE_REOPENED_V1,
        case_id,
        CaseReopened(
            case_id=case_id,
            round=round_,
            reopened_at=now,
            reason="followup_unsatisfied",
            priority="high",
            due_at=now + timedelta(days=7),
            due_date=(now + timedelta(days=7)).date(),
            department="retail_banking",
            category="fees_and_charges",
        ),
    )


def again(envelope: Envelope[Any]) -> Envelope[Any]:
    """The same fact as a new event (new id): tracking re-emitting it."""
    return _event(envelope.type, envelope.subject, envelope.data)


async def wait_processed(app: FastAPI, *events: Envelope[Any]) -> None:
    """Wait until the consumer has handled (or deduplicated) every event."""
    ids = {e.id for e in events}
    p = tables.processed_events
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while True:
        async with app.state.sessionmaker() as session:
            done = set(
                (
                    await session.scalars(
                        select(p.c.event_id).where(
                            p.c.consumer == "followup", p.c.event_id.in_(ids)
                        )
                    )
                ).all()
            )
        if done == ids:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"events not processed in time: {sorted(ids - done)}")
        await asyncio.sleep(0.1)


async def visits(app: FastAPI, subject_id: str) -> list[Any]:
    async with app.state.sessionmaker() as session:
        return list(
            (
                await session.execute(
                    select(v).where(v.c.subject_id == subject_id).order_by(v.c.round)
                )
            ).all()
        )


async def active_visits(app: FastAPI, subject_id: str) -> list[Any]:
    return [r for r in await visits(app, subject_id) if r.status == "active"]


async def read_events(
    bootstrap: str, topic: str, subject: str, count: int, wait: float = WAIT_SECONDS
) -> list[dict[str, Any]]:
    """Read at least ``count`` events about ``subject`` from ``topic`` (from the start)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[dict[str, Any]] = []
    try:
        deadline = asyncio.get_running_loop().time() + wait
        while len(got) < count and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                for r in records:
                    if r.key == subject.encode():
                        got.append({"headers": dict(r.headers), **json.loads(r.value)})
    finally:
        await consumer.stop()
    return got


async def settle(bootstrap: str, topic: str, subject: str, expected: int) -> list[dict[str, Any]]:
    """Read ``subject``'s events once ``expected`` arrived, plus a short grace for extras."""
    await read_events(bootstrap, topic, subject, expected)
    return await read_events(bootstrap, topic, subject, expected + 1, wait=1.5)


async def attempt(client: AsyncClient, headers: dict[str, str], visit_id: str, **body: Any) -> Any:
    return await client.post(f"/v1/followups/{visit_id}/attempts", json=body, headers=headers)


# -- paths ------------------------------------------------------------------------------


async def test_satisfied_path(
    app: FastAPI,
    client: AsyncClient,
    send: Send,
    token_for: Any,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    case_id = str(uuid.uuid4())
    ev = notified(case_id, channel="mobile_app")
    await send(CASES_RESULT_NOTIFIED, ev)
    await wait_processed(app, ev)

    agent = token_for("agent", subject="agent-7")
    page = (
        await client.get(
            "/v1/followups",
            params={
                "status": "due",
                "subject_id": case_id,
                "channel": "app_survey",
                "department": "retail_banking",
            },
            headers=agent,
        )
    ).json()
    assert page["total"] == 1
    item = page["items"][0]
    assert item["state"] == "due"
    assert item["channel"] == "app_survey"
    assert item["round"] == 1
    assert item["clock_state"] in {"on_track", "warning"}
    assert item["working_days_left"] > 0
    other = await client.get(
        "/v1/followups",
        params={"status": "due", "subject_id": case_id, "channel": "call"},
        headers=agent,
    )
    assert other.json()["total"] == 0

    scheduled = await settle(kafka_bootstrap, topic_prefix + FOLLOWUPS_SCHEDULED, case_id, 1)
    assert len(scheduled) == 1
    assert scheduled[0]["type"] == "followups.scheduled.v1"
    assert scheduled[0]["data"]["visit_id"] == item["id"]
    assert scheduled[0]["data"]["subject_kind"] == "case"

    r = await attempt(
        client,
        agent,
        item["id"],
        result="reached",
        satisfied=True,
        score=5,
        comment="很满意, call me on 13812345678 or a@b.cn",
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["visit"]["status"] == "completed"
    assert body["visit"]["outcome"] == "satisfied"
    assert body["visit"]["clock_state"] == "stopped"
    assert body["attempt"]["recorded_by"] == "agent-7"
    assert "13812345678" not in body["visit"]["comment"]
    assert "[PHONE]" in body["visit"]["comment"]
    assert "[EMAIL]" in body["visit"]["comment"]

    completed = await settle(kafka_bootstrap, topic_prefix + FOLLOWUPS_COMPLETED, case_id, 1)
    assert len(completed) == 1
    data = completed[0]["data"]
    assert data["outcome"] == "satisfied"
    assert data["score"] == 5
    assert data["attempts"] == 1
    assert data["round"] == 1
    assert data["channel"] == "app_survey"
    assert "13812345678" not in json.dumps(completed[0]["data"], ensure_ascii=False)
    assert "[PHONE]" in data["comment"]

    # tracking closes the case: the completed visit stays as it is
    close = closed(case_id, 1, "satisfied")
    await send(CASES_CLOSED, close)
    await wait_processed(app, close)
    rows = await visits(app, case_id)
    assert [(row.status, row.outcome) for row in rows] == [("completed", "satisfied")]

    detail = (await client.get(f"/v1/followups/{item['id']}", headers=token_for("analyst"))).json()
    assert [a["result"] for a in detail["attempts"]] == ["reached"]
    audit = (
        await client.get(
            "/v1/audit", params={"subject_id": item["id"]}, headers=token_for("auditor")
        )
    ).json()
    assert audit["total"] == 1
    entry = audit["items"][0]
    assert entry["action"] == "followup.attempt"
    assert entry["actor"] == "agent-7"
    assert entry["details"]["outcome"] == "satisfied"
    assert "comment" not in entry["details"]


async def test_unsatisfied_path_reopen_and_second_visit(
    app: FastAPI,
    client: AsyncClient,
    send: Send,
    token_for: Any,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    case_id = str(uuid.uuid4())
    agent = token_for("agent")
    first = notified(case_id, 1, channel="web")
    await send(CASES_RESULT_NOTIFIED, first)
    await wait_processed(app, first)
    (v1,) = await active_visits(app, case_id)
    assert v1.channel == "sms"

    r = await attempt(
        client,
        agent,
        v1.id,
        result="reached",
        satisfied=False,
        score=2,
        reason_code="remedy_insufficient",
        comment="退款不够",
    )
    assert r.status_code == 201, r.text
    assert r.json()["visit"]["outcome"] == "unsatisfied"
    done = await settle(kafka_bootstrap, topic_prefix + FOLLOWUPS_COMPLETED, case_id, 1)
    assert [e["data"]["outcome"] for e in done] == ["unsatisfied"]
    assert done[0]["data"]["reason_code"] == "remedy_insufficient"
    assert done[0]["data"]["score"] == 2

    # tracking reopens (round 2, new clock, higher priority), handles, and tells the result
    reopen = reopened(case_id, 2)
    await send(CASES_REOPENED, reopen)
    await wait_processed(app, reopen)
    assert await active_visits(app, case_id) == []
    second = notified(case_id, 2, channel="web")
    await send(CASES_RESULT_NOTIFIED, second)
    await wait_processed(app, second)

    rows = await visits(app, case_id)
    assert [(row.round, row.status) for row in rows] == [(1, "completed"), (2, "active")]
    assert rows[0].reopened_at is not None
    assert rows[0].reopened_round == 2
    v2 = rows[1]
    assert v2.channel == "call"  # after a reopen a person calls
    scheduled = await settle(kafka_bootstrap, topic_prefix + FOLLOWUPS_SCHEDULED, case_id, 2)
    assert [e["data"]["round"] for e in scheduled] == [1, 2]

    r = await attempt(client, agent, v2.id, result="reached", satisfied=True, score=4)
    assert r.status_code == 201, r.text
    done = await settle(kafka_bootstrap, topic_prefix + FOLLOWUPS_COMPLETED, case_id, 2)
    assert [(e["data"]["round"], e["data"]["outcome"]) for e in done] == [
        (1, "unsatisfied"),
        (2, "satisfied"),
    ]


async def test_unreachable_path(
    app: FastAPI,
    client: AsyncClient,
    send: Send,
    token_for: Any,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    case_id = str(uuid.uuid4())
    agent = token_for("agent")
    ev = notified(case_id)
    await send(CASES_RESULT_NOTIFIED, ev)
    await wait_processed(app, ev)
    (visit,) = await active_visits(app, case_id)
    assert visit.channel == "call"

    for n in (1, 2):
        r = await attempt(client, agent, visit.id, result="unreachable", comment="no answer")
        assert r.status_code == 201, r.text
        assert r.json()["visit"]["status"] == "active"
        assert r.json()["visit"]["attempts_count"] == n
    r = await attempt(client, agent, visit.id, result="unreachable")
    assert r.status_code == 201, r.text
    assert r.json()["visit"]["outcome"] == "unreachable"
    assert r.json()["visit"]["next_attempt_at"] is None

    done = await settle(kafka_bootstrap, topic_prefix + FOLLOWUPS_COMPLETED, case_id, 1)
    assert len(done) == 1
    assert done[0]["data"]["outcome"] == "unreachable"
    assert done[0]["data"]["attempts"] == 3
    assert done[0]["data"]["score"] is None

    # a fourth attempt is refused and changes nothing
    r = await attempt(client, agent, visit.id, result="unreachable")
    assert r.status_code == 409
    assert r.json()["code"] == "visit_not_active"
    detail = (await client.get(f"/v1/followups/{visit.id}", headers=agent)).json()
    assert [a["number"] for a in detail["attempts"]] == [1, 2, 3]


# -- duplicates, order, close-reopen-close ------------------------------------------------


async def test_duplicate_and_out_of_order_events(
    app: FastAPI, send: Send, kafka_bootstrap: str, topic_prefix: str
) -> None:
    # the same event twice, and the same fact re-emitted with a new id: one visit
    dup_case = str(uuid.uuid4())
    ev = notified(dup_case)
    re_emitted = again(ev)
    for e in (ev, ev, re_emitted):
        await send(CASES_RESULT_NOTIFIED, e)
    await wait_processed(app, ev, re_emitted)
    assert len(await visits(app, dup_case)) == 1
    scheduled = await settle(kafka_bootstrap, topic_prefix + FOLLOWUPS_SCHEDULED, dup_case, 1)
    assert len(scheduled) == 1

    # cases.closed of round 1 handled before cases.result-notified of round 1: no visit
    early_close = str(uuid.uuid4())
    close = closed(early_close, 1, "closed_without_followup")
    await send(CASES_CLOSED, close)
    await wait_processed(app, close)
    late = notified(early_close, 1)
    await send(CASES_RESULT_NOTIFIED, late)
    await wait_processed(app, late)
    assert await visits(app, early_close) == []

    # a reopen (round 2) handled before the round-1 result: round 1 is stale, round 2 counts
    stale_case = str(uuid.uuid4())
    reopen = reopened(stale_case, 2)
    await send(CASES_REOPENED, reopen)
    await wait_processed(app, reopen)
    stale = notified(stale_case, 1)
    await send(CASES_RESULT_NOTIFIED, stale)
    await wait_processed(app, stale)
    assert await visits(app, stale_case) == []
    current = notified(stale_case, 2)
    await send(CASES_RESULT_NOTIFIED, current)
    await wait_processed(app, current)
    assert [(r.round, r.status) for r in await visits(app, stale_case)] == [(2, "active")]

    # the round-2 result handled before the round-2 reopen: the reopen keeps that visit
    swapped = str(uuid.uuid4())
    result_2 = notified(swapped, 2)
    await send(CASES_RESULT_NOTIFIED, result_2)
    await wait_processed(app, result_2)
    reopen_2 = reopened(swapped, 2)
    await send(CASES_REOPENED, reopen_2)
    await wait_processed(app, reopen_2)
    assert [(r.round, r.status) for r in await visits(app, swapped)] == [(2, "active")]

    # a stale close (round 1) after the round-2 visit exists leaves that visit alone
    stale_close = closed(stale_case, 1)
    await send(CASES_CLOSED, stale_close)
    await wait_processed(app, stale_close)
    assert [(r.round, r.status) for r in await visits(app, stale_case)] == [(2, "active")]


async def test_close_reopen_close_keeps_at_most_one_active_visit(app: FastAPI, send: Send) -> None:
    case_id = str(uuid.uuid4())
    history: list[tuple[str, Envelope[Any]]] = []

    async def step(topic: str, envelope: Envelope[Any]) -> None:
        history.append((topic, envelope))
        await send(topic, envelope)
        await wait_processed(app, envelope)
        assert len(await active_visits(app, case_id)) <= 1

    await step(CASES_RESULT_NOTIFIED, notified(case_id, 1))
    assert len(await active_visits(app, case_id)) == 1
    await step(CASES_CLOSED, closed(case_id, 1, "closed_without_followup"))
    assert await active_visits(app, case_id) == []
    await step(CASES_REOPENED, reopened(case_id, 2))
    await step(CASES_RESULT_NOTIFIED, notified(case_id, 2))
    await step(CASES_CLOSED, closed(case_id, 2, "closed_without_followup"))
    assert await active_visits(app, case_id) == []
    await step(CASES_REOPENED, reopened(case_id, 3))
    await step(CASES_RESULT_NOTIFIED, notified(case_id, 3))
    (active,) = await active_visits(app, case_id)
    assert active.round == 3

    # the whole history again: redelivered (same ids) and re-emitted (new ids), reversed
    replay = [(t, e) for t, e in history] + [(t, again(e)) for t, e in reversed(history)]
    for topic, envelope in replay:
        await send(topic, envelope)
    await wait_processed(app, *[e for _, e in replay])
    rows = await visits(app, case_id)
    assert [(r.round, r.status, r.cancel_reason) for r in rows] == [
        (1, "cancelled", "case_closed"),
        (2, "cancelled", "case_closed"),
        (3, "active", None),
    ]

    # and the database itself refuses a second active visit of the case
    async with app.state.sessionmaker() as session:
        with pytest.raises(IntegrityError, match="visit_one_active_idx"):
            async with session.begin():
                await session.execute(
                    v.insert().values(
                        {
                            **{k: getattr(active, k) for k in active._fields},
                            "id": str(uuid.uuid4()),
                            "round": 99,
                        }
                    )
                )


async def test_suggestion_followups(app: FastAPI, send: Send) -> None:
    declined_id, adopted_id = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(UTC)

    def decided(sid: str, decision: Literal["declined", "adopted"]) -> Envelope[Any]:
        return _event(
            SUGGESTION_DECIDED_V1,
            sid,
            SuggestionDecided(
                suggestion_id=sid,
                reference="S-1",
                customer_key="ck_s",
                decision=decision,
                decided_at=now,
                department="digital_channels",
            ),
        )

    implemented = _event(
        SUGGESTION_IMPLEMENTED_V1,
        adopted_id,
        SuggestionImplemented(
            suggestion_id=adopted_id,
            reference="S-2",
            customer_key="ck_s",
            implemented_at=now,
            department="digital_channels",
        ),
    )
    events = [
        (SUGGESTIONS_DECIDED, decided(declined_id, "declined")),
        (SUGGESTIONS_DECIDED, decided(declined_id, "declined")),  # re-emitted
        (SUGGESTIONS_DECIDED, decided(adopted_id, "adopted")),
    ]
    for topic, e in events:
        await send(topic, e)
    await wait_processed(app, *[e for _, e in events])
    (declined_visit,) = await visits(app, declined_id)
    assert declined_visit.subject_kind == "suggestion"
    assert declined_visit.trigger == "suggestion_declined"
    assert declined_visit.channel == "app_survey"
    assert await visits(app, adopted_id) == []  # adopted: followed up once implemented

    await send(SUGGESTIONS_IMPLEMENTED, implemented)
    await wait_processed(app, implemented)
    (impl_visit,) = await visits(app, adopted_id)
    assert impl_visit.trigger == "suggestion_implemented"
    assert impl_visit.status == "active"


async def test_poison_event_goes_to_the_dlq(
    app: FastAPI, send: Send, kafka_bootstrap: str, topic_prefix: str
) -> None:
    case_id = str(uuid.uuid4())
    bad = notified(case_id, 0)  # round 0 does not exist
    await send(CASES_RESULT_NOTIFIED, bad)
    dead = await read_events(
        kafka_bootstrap, topic_prefix + dlq_topic(CASES_RESULT_NOTIFIED), case_id, 1
    )
    assert [d["id"] for d in dead] == [bad.id]
    assert b"round must be >= 1" in dead[0]["headers"]["x-error"]
    assert await visits(app, case_id) == []


# -- bad input ----------------------------------------------------------------------------


async def _snapshot(app: FastAPI, visit_id: str) -> tuple[Any, ...]:
    async with app.state.sessionmaker() as session:
        row = (await session.execute(select(v).where(v.c.id == visit_id))).one()
        counts = []
        for table in (tables.attempt, tables.outbox, tables.audit_log):
            counts.append(await session.scalar(select(func.count()).select_from(table)))
    return (tuple(row), *counts)


async def test_bad_input_gets_4xx_and_changes_nothing(
    app: FastAPI, client: AsyncClient, send: Send, token_for: Any
) -> None:
    case_id = str(uuid.uuid4())
    ev = notified(case_id)
    await send(CASES_RESULT_NOTIFIED, ev)
    await wait_processed(app, ev)
    (visit,) = await active_visits(app, case_id)
    agent = token_for("agent")
    before = await _snapshot(app, visit.id)

    cases: list[tuple[dict[str, str], str, dict[str, Any], int, str]] = [
        (
            agent,
            visit.id,
            {"result": "reached", "satisfied": True, "score": 7},
            422,
            "validation_error",
        ),
        (
            agent,
            visit.id,
            {"result": "reached", "satisfied": False, "score": 2},
            422,
            "validation_error",
        ),
        (agent, visit.id, {"result": "unreachable", "score": 3}, 422, "validation_error"),
        (agent, str(uuid.uuid4()), {"result": "unreachable"}, 404, "visit_not_found"),
        (agent, "not-a-uuid", {"result": "unreachable"}, 404, "visit_not_found"),
        (token_for("analyst"), visit.id, {"result": "unreachable"}, 403, "http_403"),
        (token_for("supervisor"), visit.id, {"result": "unreachable"}, 403, "http_403"),
        ({}, visit.id, {"result": "unreachable"}, 401, "http_401"),
    ]
    for headers, vid, body, status, code in cases:
        r = await client.post(f"/v1/followups/{vid}/attempts", json=body, headers=headers)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == code
    assert await _snapshot(app, visit.id) == before

    r = await client.get("/v1/followups", params={"status": "nope"}, headers=agent)
    assert r.status_code == 422
    r = await client.get(
        "/v1/followups", params={"due_before": "2026-10-14T00:00:00"}, headers=agent
    )
    assert r.status_code == 422
    assert r.json()["code"] == "naive_datetime"
    r = await client.get(f"/v1/followups/{uuid.uuid4()}", headers=agent)
    assert r.status_code == 404
    assert (
        await client.get("/v1/followups", headers=token_for("intake_client"))
    ).status_code == 403
    assert (await client.get("/v1/audit", headers=agent)).status_code == 403

    # an attempt on a completed visit
    ok = await attempt(client, agent, visit.id, result="reached", satisfied=True, score=3)
    assert ok.status_code == 201
    after_completion = await _snapshot(app, visit.id)
    r = await attempt(client, agent, visit.id, result="reached", satisfied=True, score=5)
    assert r.status_code == 409
    assert r.json()["code"] == "visit_not_active"
    assert await _snapshot(app, visit.id) == after_completion


async def test_retry_not_due_yet(
    app: FastAPI, client: AsyncClient, send: Send, token_for: Any
) -> None:
    case_id = str(uuid.uuid4())
    ev = notified(case_id)
    await send(CASES_RESULT_NOTIFIED, ev)
    await wait_processed(app, ev)
    (visit,) = await active_visits(app, case_id)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    async with app.state.sessionmaker() as session, session.begin():  # as after a spaced retry
        await session.execute(update(v).where(v.c.id == visit.id).values(next_attempt_at=tomorrow))
    agent = token_for("agent")
    listed = await client.get(
        "/v1/followups", params={"status": "scheduled", "subject_id": case_id}, headers=agent
    )
    assert listed.json()["items"][0]["state"] == "scheduled"
    due = await client.get(
        "/v1/followups", params={"status": "due", "subject_id": case_id}, headers=agent
    )
    assert due.json()["total"] == 0
    before = await _snapshot(app, visit.id)
    r = await attempt(client, agent, visit.id, result="unreachable")
    assert r.status_code == 409
    assert r.json()["code"] == "attempt_not_due"
    assert await _snapshot(app, visit.id) == before
    # the customer answering early is recorded
    r = await attempt(client, agent, visit.id, result="reached", satisfied=True, score=4)
    assert r.status_code == 201


# -- metrics ------------------------------------------------------------------------------


def _samples(body: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in body.splitlines():
        if line.startswith("followup_") and " " in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


async def _expected(app: FastAPI) -> dict[str, float]:
    async with app.state.sessionmaker() as session:
        q = await session.execute(
            text(
                "SELECT"
                " count(*) FILTER (WHERE status='completed' AND outcome='satisfied'"
                "   AND subject_kind='case') AS satisfied,"
                " count(*) FILTER (WHERE status='completed' AND outcome='unreachable'"
                "   AND subject_kind='case') AS unreachable,"
                " count(*) FILTER (WHERE reopened_at IS NOT NULL AND outcome='unsatisfied')"
                "   AS reopened,"
                " count(*) FILTER (WHERE status='active' AND channel='call'"
                "   AND subject_kind='case' AND next_attempt_at <= now()) AS due_call,"
                " count(*) FILTER (WHERE score IS NOT NULL AND status='completed') AS scored"
                " FROM followup.visit"
            )
        )
        row = q.one()
    return {
        'followup_visits_completed_total{outcome="satisfied",subject_kind="case"}': row.satisfied,
        'followup_visits_completed_total{outcome="unreachable",subject_kind="case"}': (
            row.unreachable
        ),
        'followup_reopens_after_visit_total{visit_outcome="unsatisfied"}': row.reopened,
        'followup_visits_due{channel="call",subject_kind="case"}': row.due_call,
        "followup_satisfaction_score_count": row.scored,
    }


async def test_metrics_are_counted_from_the_database_and_survive_a_restart(
    app: FastAPI, client: AsyncClient, settings: FollowupSettings
) -> None:
    await metrics.refresh(app)
    expected = await _expected(app)
    assert expected['followup_visits_completed_total{outcome="satisfied",subject_kind="case"}'] >= 1
    assert expected['followup_reopens_after_visit_total{visit_outcome="unsatisfied"}'] >= 1
    got = _samples((await client.get("/metrics")).text)
    for name, value in expected.items():
        assert got[name] == value, name
    assert 0.0 <= got["followup_visit_completion_ratio"] <= 1.0
    assert 'followup_satisfaction_score_bucket{le="5.0"}' in got

    # a restarted replica (nothing in memory; this app's refresh task stopped meanwhile)
    # reports the same figures once its start-up refresh has run
    await metrics.stop(app)
    metrics.COLLECTOR.snapshot = None
    try:
        restarted = create_app(settings)
        async with asynccontextmanager(app_client)(restarted) as other:
            deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
            while True:
                got = _samples((await other.get("/metrics")).text)
                if "followup_metrics_refreshed_timestamp_seconds" in got:
                    break
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.1)
    finally:
        await metrics.start(app)
    for name, value in expected.items():
        assert got[name] == value, name
