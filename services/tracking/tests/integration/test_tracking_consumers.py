"""Tracking's consumers on real Kafka: routed complaints, screened suggestions, follow-ups."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from httpx import AsyncClient
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tracking.tests.tracking_helpers import open_case, outbox_payloads, routed
from shared.events import registry
from shared.events.contracts.complaints import (
    COMPLAINT_ROUTED_V1,
    SUGGESTION_SCREENED_V1,
    SuggestionScreened,
)
from shared.events.contracts.followups import FOLLOWUP_COMPLETED_V1, FollowupCompleted
from shared.events.envelope import new_event, to_wire


@pytest.fixture(scope="module")
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await p.start()
    yield p
    await p.stop()


async def publish(
    producer: AIOKafkaProducer, prefix: str, topic: str, type_: str, subject: str, data: BaseModel
) -> None:
    key, value, headers = to_wire(new_event(source="test", type_=type_, subject=subject, data=data))
    await producer.send_and_wait(prefix + topic, value=value, key=key, headers=headers)


async def eventually(check: Callable[[], Any], seconds: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            return await check()
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def get_case(client: AsyncClient, case_id: str, headers: dict[str, str]) -> dict[str, Any]:
    r = await client.get(f"/v1/cases/{case_id}", headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def notified_case(
    client: AsyncClient, tsm: async_sessionmaker[AsyncSession], sup: dict[str, str]
) -> str:
    case_id = await open_case(tsm, datetime.now(UTC) - timedelta(days=1), priority="P3")
    for body in (
        {"action": "assign", "handler": "agent-f"},
        {"action": "start_investigation"},
        {"action": "determine_responsibility", "responsibility": "customer"},
        {"action": "resolve", "remedy": "explanation", "summary": "how the fee works"},
        {"action": "notify_customer", "channel": "phone"},
    ):
        r = await client.post(f"/v1/cases/{case_id}/actions", json=body, headers=sup)
        assert r.status_code == 200, r.text
    return case_id


def completed(case_id: str, outcome: str, round_: int = 1) -> FollowupCompleted:
    return FollowupCompleted(
        visit_id=str(uuid.uuid4()),
        subject_id=case_id,
        subject_kind="case",
        round=round_,
        outcome=outcome,  # type: ignore[arg-type]
        score=2 if outcome == "unsatisfied" else (5 if outcome == "satisfied" else None),
        attempts=1 if outcome != "unreachable" else 3,
        completed_at=datetime.now(UTC),
    )


async def test_routed_complaint_opens_a_case_once(
    tracking_client: AsyncClient, producer: AIOKafkaProducer, topic_prefix: str, token_for: Any
) -> None:
    event = routed(received_at=datetime(2026, 9, 30, 2, 0, tzinfo=UTC))
    key, value, headers = to_wire(
        new_event(
            source="routing", type_=COMPLAINT_ROUTED_V1, subject=event.complaint_id, data=event
        )
    )
    for _ in range(2):  # a redelivery is a no-op
        await producer.send_and_wait(
            topic_prefix + registry.COMPLAINTS_ROUTED, value=value, key=key, headers=headers
        )
    agent = token_for("agent")

    async def opened() -> dict[str, Any]:
        return await get_case(tracking_client, event.complaint_id, agent)

    case = await eventually(opened)
    assert case["due_date"] == "2026-10-13"
    tl = (
        await tracking_client.get(f"/v1/cases/{event.complaint_id}/timeline", headers=agent)
    ).json()
    assert [e["action"] for e in tl] == ["open"]


async def test_followup_outcomes_reopen_or_close(
    tracking_client: AsyncClient,
    tsm: async_sessionmaker[AsyncSession],
    producer: AIOKafkaProducer,
    topic_prefix: str,
    token_for: Any,
) -> None:
    sup = token_for("supervisor", subject="sup-f")
    unhappy, happy, unreachable = [await notified_case(tracking_client, tsm, sup) for _ in range(3)]
    for case_id, outcome in (
        (unhappy, "unsatisfied"),
        (happy, "satisfied"),
        (unreachable, "unreachable"),
    ):
        await publish(
            producer,
            topic_prefix,
            registry.FOLLOWUPS_COMPLETED,
            FOLLOWUP_COMPLETED_V1,
            case_id,
            completed(case_id, outcome),
        )

    async def applied() -> None:
        a = await get_case(tracking_client, unhappy, sup)
        b = await get_case(tracking_client, happy, sup)
        c = await get_case(tracking_client, unreachable, sup)
        assert (a["status"], b["status"], c["status"]) == ("reopened", "closed", "closed")

    await eventually(applied)
    a = await get_case(tracking_client, unhappy, sup)
    assert a["priority"] == "P2"
    assert a["reopen_count"] == 1
    current = max((c for c in a["clocks"] if c["kind"] == "resolution"), key=lambda c: c["round"])
    assert current["round"] == 2
    assert current["state"] == "on_track"
    assert (await outbox_payloads(tsm, unhappy, "cases.reopened.v1"))[0]["reason"] == (
        "followup_unsatisfied"
    )
    assert (await outbox_payloads(tsm, happy, "cases.closed.v1"))[0]["outcome"] == "satisfied"
    assert (await outbox_payloads(tsm, unreachable, "cases.closed.v1"))[0]["outcome"] == (
        "unreachable"
    )
    # a stale visit about round 1 no longer touches the reopened case
    await publish(
        producer,
        topic_prefix,
        registry.FOLLOWUPS_COMPLETED,
        FOLLOWUP_COMPLETED_V1,
        unhappy,
        completed(unhappy, "satisfied", round_=1),
    )
    await asyncio.sleep(1.5)
    assert (await get_case(tracking_client, unhappy, sup))["status"] == "reopened"


async def test_followup_for_an_unknown_case_goes_to_the_dlq(
    tracking_client: AsyncClient,
    producer: AIOKafkaProducer,
    topic_prefix: str,
    kafka_bootstrap: str,
) -> None:
    ghost = str(uuid.uuid4())
    await publish(
        producer,
        topic_prefix,
        registry.FOLLOWUPS_COMPLETED,
        FOLLOWUP_COMPLETED_V1,
        ghost,
        completed(ghost, "satisfied"),
    )
    consumer = AIOKafkaConsumer(
        topic_prefix + registry.dlq_topic(registry.FOLLOWUPS_COMPLETED),
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    found = False
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while not found and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            found = any(r.key.decode() == ghost for rs in batch.values() for r in rs)
    finally:
        await consumer.stop()
    assert found


async def test_screened_suggestion_is_received(
    tracking_client: AsyncClient, producer: AIOKafkaProducer, topic_prefix: str, token_for: Any
) -> None:
    sid = str(uuid.uuid4())
    data = SuggestionScreened(
        suggestion_id=sid,
        reference=f"S-{sid[:8]}",
        channel="web",
        received_at=datetime.now(UTC),
        customer_key="cus_" + sid[:10],
        category="digital_channels",
        product_line="mobile_banking",
        department="digital",
        confidence=0.8,
    )
    await publish(
        producer, topic_prefix, registry.SUGGESTIONS_SCREENED, SUGGESTION_SCREENED_V1, sid, data
    )
    agent = token_for("agent")

    async def received() -> dict[str, Any]:
        r = await tracking_client.get(f"/v1/suggestions/{sid}", headers=agent)
        assert r.status_code == 200
        return dict(r.json())

    sug = await eventually(received)
    assert sug["status"] == "received"
    assert sug["allowed_actions"] == ["screen"]
