"""Routing end to end on real Kafka and PostgreSQL (issue 4 "Tests").

The tests play intake's part: they produce ``complaints.received`` and
``suggestions.received`` events on this run's topics, let the routing app (its real
consumer, outbox relay and HTTP API, in process) act, and read what it publishes on
``complaints.routed``, ``complaints.rerouted``, ``suggestions.screened`` and the DLQ.

Tests that change the routing rules put the default rules back at the end, as a new
version, because the database is shared by the whole pytest run.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import DBAPIError

from services.routing import tables
from services.routing.domain import examples
from services.routing.domain.rules import DEFAULT_RULES
from services.routing.main import create_app
from services.routing.settings import RoutingSettings
from shared.events.contracts.complaints import (
    COMPLAINT_RECEIVED_V1,
    SUGGESTION_RECEIVED_V1,
    ComplaintReceived,
    SuggestionReceived,
)
from shared.events.envelope import Envelope, Payload, new_event, to_wire
from shared.events.registry import (
    COMPLAINTS_RECEIVED,
    COMPLAINTS_REROUTED,
    COMPLAINTS_ROUTED,
    SUGGESTIONS_RECEIVED,
    SUGGESTIONS_SCREENED,
    dlq_topic,
)
from tests.conftest import app_client

WAIT_SECONDS = 30.0
OUT_TOPICS = (
    COMPLAINTS_ROUTED,
    COMPLAINTS_REROUTED,
    SUGGESTIONS_SCREENED,
    dlq_topic(COMPLAINTS_RECEIVED),
)


# -- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture(scope="module")
def settings(platform_env: dict[str, str]) -> RoutingSettings:
    return RoutingSettings(
        database_url=platform_env["DATABASE_URL"],
        kafka_bootstrap_servers=platform_env["KAFKA_BOOTSTRAP_SERVERS"],
        kafka_topic_prefix=platform_env["KAFKA_TOPIC_PREFIX"],
    )


@pytest.fixture(scope="module")
async def app(settings: RoutingSettings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with asynccontextmanager(app_client)(application) as client:
        application.state.test_client = client
        yield application


@pytest.fixture
def client(app: FastAPI) -> AsyncClient:
    c: AsyncClient = app.state.test_client
    return c


class Collector:
    """Reads the routing output topics of this run from the start, by topic and key."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.prefix = prefix
        self.consumer = AIOKafkaConsumer(
            *(prefix + t for t in OUT_TOPICS),
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        self.records: dict[str, dict[str, list[ConsumerRecord[bytes, bytes]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    topic = r.topic.removeprefix(self.prefix)
                    self.records[topic][(r.key or b"").decode()].append(r)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.consumer.stop()

    async def wait(self, topic: str, key: str, count: int = 1) -> list[dict[str, Any]]:
        """Wait until ``count`` messages with ``key`` are on ``topic``; return their JSON."""
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while len(self.records[topic][key]) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no {count} message(s) for {key} on {topic}")
            await asyncio.sleep(0.05)
        return [json.loads(r.value) for r in self.records[topic][key]]

    def count(self, topic: str, key: str) -> int:
        return len(self.records[topic][key])


@pytest.fixture(scope="module")
async def collector(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[Collector]:
    c = Collector(kafka_bootstrap, topic_prefix)
    await c.start()
    yield c
    await c.stop()


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


def complaint(
    text: str,
    *,
    complaint_id: str | None = None,
    key: str | None = None,
    channel: str = "web",
    product: str | None = None,
) -> Envelope[ComplaintReceived]:
    """A ``complaints.received`` event; ``key`` overrides the Kafka key (default: the id)."""
    cid = complaint_id or str(uuid.uuid4())
    return new_event(
        source="intake",
        type_=COMPLAINT_RECEIVED_V1,
        subject=key or cid,
        data=ComplaintReceived(
            complaint_id=cid,
            reference="C-261129-" + cid[:6].upper(),
            channel=channel,
            received_at=datetime.now(UTC),
            customer_key="cus_" + uuid.uuid4().hex[:16],
            description=text,
            product=product,
        ),
    )


def suggestion(text: str) -> Envelope[SuggestionReceived]:
    sid = str(uuid.uuid4())
    return new_event(
        source="intake",
        type_=SUGGESTION_RECEIVED_V1,
        subject=sid,
        data=SuggestionReceived(
            suggestion_id=sid,
            reference="S-261129-" + sid[:6].upper(),
            channel="mobile_app",
            received_at=datetime.now(UTC),
            customer_key="cus_" + uuid.uuid4().hex[:16],
            description=text,
        ),
    )


async def count_rows(app: FastAPI, table: Any, *where: Any) -> int:
    async with app.state.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(table).where(*where)))


async def rule_version(client: AsyncClient, token_for: Any) -> int:
    r = await client.get("/v1/rules", headers=token_for("agent"))
    assert r.status_code == 200
    return int(r.json()["version"])


async def restore_default_rules(client: AsyncClient, token_for: Any) -> None:
    r = await client.put(
        "/v1/rules",
        json={**DEFAULT_RULES, "comment": "test: back to the default rules"},
        headers=token_for("supervisor", subject="sup-restore"),
    )
    assert r.status_code == 200, r.text


# -- complaints in, routed out ----------------------------------------------------------


async def test_complaint_in_routed_event_out(
    app: FastAPI, client: AsyncClient, collector: Collector, send: Send, token_for: Any
) -> None:
    text = (
        "My debit card was stolen and the thief made fraudulent purchases; the bank says it is "
        "not fraud."
    )
    env = complaint(text)
    await send(COMPLAINTS_RECEIVED, env)
    [routed] = await collector.wait(COMPLAINTS_ROUTED, env.subject)

    assert routed["type"] == "complaints.routed.v1"
    assert routed["subject"] == env.subject
    data = routed["data"]
    assert data["complaint_id"] == env.data.complaint_id
    assert data["reference"] == env.data.reference
    assert data["category"] == "fraud_security"
    assert data["priority"] == "P1"
    assert data["department"] == "fraud_investigations"
    assert data["needs_triage"] is False
    assert data["classifier_version"] == app.state.runtime.classifier.version
    assert data["rule_version"] >= 1
    assert "description" not in data  # the routed event carries no free text

    r = await client.get(f"/v1/classifications/{env.data.complaint_id}", headers=token_for("agent"))
    assert r.status_code == 200
    body = r.json()
    assert (body["category"], body["department"]) == ("fraud_security", "fraud_investigations")
    assert "unauthorised_transaction" in body["explanation"]["priority_rules"]
    assert body["explanation"]["routing_rule"] == "fraud"

    # The dry run gives the same answer and stores nothing.
    dry = await client.post("/v1/classify", json={"text": text}, headers=token_for("agent"))
    assert dry.status_code == 200
    assert {k: dry.json()[k] for k in ("category", "product_line", "priority", "department")} == {
        k: data[k] for k in ("category", "product_line", "priority", "department")
    }


async def test_redelivery_changes_nothing(app: FastAPI, collector: Collector, send: Send) -> None:
    env = complaint("The mobile app crashes every time I log in to check my balance.")
    await send(COMPLAINTS_RECEIVED, env)
    await collector.wait(COMPLAINTS_ROUTED, env.subject)
    await send(COMPLAINTS_RECEIVED, env)  # redelivery: same event id
    # A marker with the same Kafka key lands on the same partition after the duplicate: when
    # its routed event is out, the duplicate has been handled.
    marker = complaint("The app logs me out constantly.", key=env.subject)
    await send(COMPLAINTS_RECEIVED, marker)
    await collector.wait(COMPLAINTS_ROUTED, marker.data.complaint_id)

    cid = env.data.complaint_id
    assert collector.count(COMPLAINTS_ROUTED, cid) == 1
    assert (
        await count_rows(app, tables.classification, tables.classification.c.subject_id == cid) == 1
    )
    assert await count_rows(app, tables.outbox, tables.outbox.c.key == cid) == 1
    assert (
        await count_rows(app, tables.processed_events, tables.processed_events.c.event_id == env.id)
        == 1
    )


async def test_low_confidence_complaint_lands_in_triage(
    client: AsyncClient, collector: Collector, send: Send, token_for: Any
) -> None:
    env = complaint("🙂🙂🙂 ??? 12345")
    await send(COMPLAINTS_RECEIVED, env)
    [routed] = await collector.wait(COMPLAINTS_ROUTED, env.subject)
    assert routed["data"]["needs_triage"] is True
    assert routed["data"]["confidence"] < 0.45
    assert routed["data"]["department"]  # routed all the same: the clock must not wait

    r = await client.get("/v1/triage", params={"limit": 500}, headers=token_for("agent"))
    assert r.status_code == 200
    assert env.data.complaint_id in {i["subject_id"] for i in r.json()["items"]}
    assert (await client.get("/v1/triage", headers=token_for("analyst"))).status_code == 403


async def test_unroutable_complaint_lands_in_triage(
    app: FastAPI, client: AsyncClient, collector: Collector, send: Send, token_for: Any
) -> None:
    # A rule set that reaches no department for most complaints cannot pass PUT /v1/rules;
    # store one behind the API's back to prove the consumer still keeps the complaint.
    t = tables.routing_rule_set
    only_fraud = {"rules": [DEFAULT_RULES["rules"][0]]}
    async with app.state.sessionmaker() as session, session.begin():
        newest = int(await session.scalar(select(func.max(t.c.version))) or 0)
        await session.execute(
            insert(t).values(
                version=newest + 1, rules=only_fraud, comment="test: broken", created_by="test"
            )
        )
    try:
        env = complaint("I was charged a monthly maintenance fee on my savings account.")
        await send(COMPLAINTS_RECEIVED, env)
        [routed] = await collector.wait(COMPLAINTS_ROUTED, env.subject)
        assert routed["data"]["needs_triage"] is True
        assert routed["data"]["department"] == "complaints_desk"
        assert routed["data"]["rule_version"] == newest + 1
        r = await client.get("/v1/triage", params={"limit": 500}, headers=token_for("agent"))
        assert env.data.complaint_id in {i["subject_id"] for i in r.json()["items"]}
    finally:
        await restore_default_rules(client, token_for)


async def test_poison_event_goes_to_the_dlq(app: FastAPI, collector: Collector, send: Send) -> None:
    class NotAComplaint(Payload):
        text: str

    bad = new_event(
        source="intake",
        type_=COMPLAINT_RECEIVED_V1,
        subject=str(uuid.uuid4()),
        data=NotAComplaint(text="no complaint fields"),
    )
    await send(COMPLAINTS_RECEIVED, bad)
    [dead] = await collector.wait(dlq_topic(COMPLAINTS_RECEIVED), bad.subject)
    assert dead["id"] == bad.id
    assert (
        await count_rows(
            app, tables.classification, tables.classification.c.subject_id == bad.subject
        )
        == 0
    )


# -- rules ------------------------------------------------------------------------------


async def test_put_rules_then_a_new_complaint_uses_the_new_version(
    app: FastAPI, client: AsyncClient, collector: Collector, send: Send, token_for: Any
) -> None:
    before = await rule_version(client, token_for)
    fees_first = {
        "rules": [
            {
                "id": "fees_desk",
                "department": "fees_desk",
                "when": {
                    "all": [
                        {"field": "category", "in": ["fees_charges"]},
                        {"not": {"field": "channel", "equals": "regulator_referral"}},
                    ]
                },
            },
            *DEFAULT_RULES["rules"],
        ],
        "comment": "fees go to the new fees desk",
        "base_version": before,
    }
    try:
        r = await client.put(
            "/v1/rules", json=fees_first, headers=token_for("supervisor", subject="sup-1")
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"version": before + 1, "previous_version": before}
        got = (await client.get("/v1/rules", headers=token_for("agent"))).json()
        assert got["version"] == before + 1
        assert got["rules"][0]["id"] == "fees_desk"

        env = complaint(
            "The bank charged me an overdraft fee of $35 three times in one day and refuses to "
            "refund the fees."
        )
        await send(COMPLAINTS_RECEIVED, env)
        [routed] = await collector.wait(COMPLAINTS_ROUTED, env.subject)
        assert routed["data"]["category"] == "fees_charges"
        assert routed["data"]["rule_version"] == before + 1
        assert routed["data"]["department"] == "fees_desk"

        audit = await client.get(
            "/v1/audit",
            params={"action": "rules.replace", "subject_id": str(before + 1)},
            headers=token_for("auditor"),
        )
        assert audit.status_code == 200
        [row] = audit.json()["items"]
        assert row["actor"] == "sup-1"
        assert row["details"]["added"] == ["fees_desk"]
        assert row["details"]["previous_version"] == before
    finally:
        await restore_default_rules(client, token_for)


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        ({"rules": DEFAULT_RULES["rules"][:-1]}, "reach no department"),
        (
            {
                "rules": [
                    {"id": "x", "department": "d", "when": {"field": "category", "in": ["nope"]}},
                    *DEFAULT_RULES["rules"],
                ]
            },
            "unknown category ['nope']",
        ),
        (
            {"rules": [DEFAULT_RULES["rules"][-1], DEFAULT_RULES["rules"][-1]]},
            "rule ids must be unique",
        ),
    ],
)
async def test_bad_rule_sets_get_422_and_nothing_is_stored(
    app: FastAPI, client: AsyncClient, token_for: Any, rules: dict[str, Any], problem: str
) -> None:
    before = await rule_version(client, token_for)
    audits = await count_rows(app, tables.audit_log)
    r = await client.put(
        "/v1/rules", json={**rules, "comment": "bad"}, headers=token_for("supervisor")
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "invalid_rule_set"
    assert any(problem in p for p in body["problems"])
    assert await rule_version(client, token_for) == before
    assert await count_rows(app, tables.audit_log) == audits


async def test_rules_put_refuses_malformed_stale_and_unauthorised(
    app: FastAPI, client: AsyncClient, token_for: Any
) -> None:
    before = await rule_version(client, token_for)
    audits = await count_rows(app, tables.audit_log)
    sup = token_for("supervisor")
    malformed = {"rules": [{"id": "a", "department": "d"}], "comment": "no condition"}
    r = await client.put("/v1/rules", json=malformed, headers=sup)
    assert (r.status_code, r.json()["code"]) == (422, "validation_error")
    nested_typo = {
        "rules": [{"id": "a", "department": "d", "when": {"any": [{"feld": "category"}]}}],
        "comment": "typo",
    }
    assert (await client.put("/v1/rules", json=nested_typo, headers=sup)).status_code == 422
    stale = {**DEFAULT_RULES, "comment": "stale", "base_version": before - 1}
    r = await client.put("/v1/rules", json=stale, headers=sup)
    assert (r.status_code, r.json()["code"]) == (409, "rule_set_version_conflict")
    ok = {**DEFAULT_RULES, "comment": "agents may not"}
    assert (await client.put("/v1/rules", json=ok, headers=token_for("agent"))).status_code == 403
    assert (await client.put("/v1/rules", json=ok)).status_code == 401
    assert await rule_version(client, token_for) == before
    assert await count_rows(app, tables.audit_log) == audits


# -- overrides --------------------------------------------------------------------------


async def test_override_reroutes_audits_leaves_triage_and_keeps_the_example(
    app: FastAPI,
    client: AsyncClient,
    collector: Collector,
    send: Send,
    token_for: Any,
    tmp_path: Path,
) -> None:
    env = complaint("zzz qqq 🙂")
    cid = env.data.complaint_id
    await send(COMPLAINTS_RECEIVED, env)
    [routed] = await collector.wait(COMPLAINTS_ROUTED, cid)
    assert routed["data"]["needs_triage"] is True
    sup = token_for("supervisor", subject="sup-7")
    url = f"/v1/classifications/{cid}/override"

    bad = {"category": "nope", "reason": "wrong code"}
    r = await client.post(url, json=bad, headers=sup)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_override")
    fix = {
        "category": "fees_charges",
        "product_line": "cards",
        "reason": "customer disputes an annual card fee; call 13812345678 back",
    }
    assert (await client.post(url, json=fix, headers=token_for("agent"))).status_code == 403
    missing = f"/v1/classifications/{uuid.uuid4()}/override"
    assert (await client.post(missing, json=fix, headers=sup)).status_code == 404
    assert await count_rows(app, tables.audit_log, tables.audit_log.c.subject_id == cid) == 0

    r = await client.post(url, json=fix, headers=sup)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["rerouted"] is True
    assert (out["category"], out["product_line"]) == ("fees_charges", "cards")
    assert out["department"] == "card_services"  # chosen by the rules in force
    assert out["previous_category"] == routed["data"]["category"]

    [rerouted] = await collector.wait(COMPLAINTS_REROUTED, cid)
    assert rerouted["type"] == "complaints.rerouted.v1"
    assert rerouted["data"]["department"] == "card_services"
    assert rerouted["data"]["previous_department"] == routed["data"]["department"]
    assert rerouted["data"]["rerouted_by"] == "sup-7"
    assert "reason" not in rerouted["data"]

    triage = await client.get("/v1/triage", params={"limit": 500}, headers=sup)
    assert cid not in {i["subject_id"] for i in triage.json()["items"]}
    got = (await client.get(f"/v1/classifications/{cid}", headers=sup)).json()
    assert (got["needs_triage"], got["overridden_by"]) == (False, "sup-7")

    audit = await client.get("/v1/audit", params={"subject_id": cid}, headers=token_for("auditor"))
    [row] = audit.json()["items"]
    assert row["action"] == "classification.override"
    assert row["details"]["to"]["department"] == "card_services"
    assert "13812345678" not in row["details"]["reason"]  # redacted

    a = tables.audit_log
    for change in (a.update().values(actor="someone else"), delete(a)):
        async with app.state.sessionmaker() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                async with session.begin():
                    await session.execute(change.where(a.c.subject_id == cid))

    # Confirming the corrected classification reroutes nothing but is audited.
    again = await client.post(url, json={"reason": "checked again"}, headers=sup)
    assert again.json()["rerouted"] is False
    assert await count_rows(app, tables.audit_log, tables.audit_log.c.subject_id == cid) == 2

    csv_path = tmp_path / "extra.csv"
    exported = await examples.export_csv(app.state.settings.database_url, csv_path)
    assert (env.data.description, "fees_charges", "cards") in exported
    assert (env.data.description, "fees_charges", "cards") in examples.read_csv(csv_path)
    await asyncio.sleep(0.5)
    assert collector.count(COMPLAINTS_REROUTED, cid) == 1


# -- suggestions ------------------------------------------------------------------------


async def test_suggestions_flag_near_duplicates(
    app: FastAPI, client: AsyncClient, collector: Collector, send: Send, token_for: Any
) -> None:
    marker = uuid.uuid4().hex[:8]  # keeps texts of other runs of this test apart
    first = suggestion(f"Please add fingerprint login to the mobile banking app {marker}.")
    await send(SUGGESTIONS_RECEIVED, first)
    [a] = await collector.wait(SUGGESTIONS_SCREENED, first.subject)
    assert a["data"]["near_duplicate_of"] is None

    near = suggestion(f"please add fingerprint log-in to the mobile banking app! {marker}")
    other = suggestion(f"Open the branch on Saturday mornings for working people {marker}.")
    zh_first = suggestion(f"希望手機銀行增加指紋登錄功能{marker}")
    await send(SUGGESTIONS_RECEIVED, near)
    await send(SUGGESTIONS_RECEIVED, other)
    [b] = await collector.wait(SUGGESTIONS_SCREENED, near.subject)
    [c] = await collector.wait(SUGGESTIONS_SCREENED, other.subject)
    assert b["data"]["near_duplicate_of"] == first.subject
    assert b["data"]["near_duplicate_similarity"] >= 0.7
    assert c["data"]["near_duplicate_of"] is None
    assert b["data"]["department"]

    await send(SUGGESTIONS_RECEIVED, zh_first)
    await collector.wait(SUGGESTIONS_SCREENED, zh_first.subject)
    zh_near = suggestion(f"希望手机银行增加指纹登录功能。{marker}")  # simplified, same request
    await send(SUGGESTIONS_RECEIVED, zh_near)
    [z] = await collector.wait(SUGGESTIONS_SCREENED, zh_near.subject)
    assert z["data"]["near_duplicate_of"] == zh_first.subject

    r = await client.get(f"/v1/classifications/{near.subject}", headers=token_for("agent"))
    assert r.json()["near_duplicate_of"] == first.subject
