"""Intake over HTTP on real PostgreSQL: recording, idempotency, duplicates, masking, audit,
roles, rate limits, text handling and vault key rotation (issue 3)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from intake_samples import complaint_body
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake import metrics, tables
from services.intake.domain.submission import service as submission_service
from shared.db import make_sessionmaker
from shared.events.contracts.complaints import CHANNELS
from shared.privacy import Vault

REF = re.compile(r"^C-\d{6}-[0-9A-HJKMNP-TV-Z]{6}$")


def unique_customer() -> dict[str, Any]:
    return {"customer_number": f"CUST-{uuid.uuid4().hex[:10]}", "name": "李四"}


async def count(db: AsyncEngine, table: Any, *where: Any) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def test_complaint_from_every_channel_with_all_fields(
    intake_client: Any, token_for: Any, db: AsyncEngine
) -> None:
    async with intake_client() as client:
        for channel in CHANNELS:
            body = complaint_body(
                channel=channel,
                customer=unique_customer(),
                subject="扣款未到账",
                branch_code="BJ-001",
                region="北京",
                occurred_at="2026-01-02T03:04:05+08:00",
                amount={"value": 123456, "currency": "CNY"},
                language="zh",
                external_ref="CC-778899",
                attachments=[
                    {
                        "name": "回单.pdf",
                        "content_type": "application/pdf",
                        "size_bytes": 2048,
                        "sha256": "a" * 64,
                    }
                ],
            )
            r = await client.post("/v1/complaints", json=body, headers=token_for("intake_client"))
            assert r.status_code == 201, r.text
            reply = r.json()
            assert REF.match(reply["reference"])
            assert r.headers["location"] == f"/v1/complaints/{reply['id']}"
            got = await client.get(r.headers["location"], headers=token_for("intake_client"))
            assert got.status_code == 200
            read = got.json()
            assert read["channel"] == channel
            assert read["amount"] == {"value": 123456, "currency": "CNY"}
            assert read["attachments"][0]["name"] == "回单.pdf"
            assert read["customer"]["masked"] is True
            assert read["customer"]["name"] != "李四"
    assert await count(db, tables.outbox, tables.outbox.c.key == reply["id"]) == 1


async def test_back_dated_letter_keeps_received_at_and_future_is_refused(
    intake_client: Any, token_for: Any
) -> None:
    async with intake_client() as client:
        ok = await client.post(
            "/v1/complaints",
            json=complaint_body(
                channel="letter",
                customer=unique_customer(),
                received_at="2026-09-30T10:00:00+08:00",
            ),
            headers=token_for("agent"),
        )
        assert ok.status_code == 201
        assert ok.json()["received_at"] == "2026-09-30T02:00:00Z"
        assert ok.json()["reference"].startswith("C-260930-")
        future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        bad = await client.post(
            "/v1/complaints",
            json=complaint_body(customer=unique_customer(), received_at=future),
            headers=token_for("agent"),
        )
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"
        assert "received_at" in bad.json()["detail"]


async def test_roles_are_enforced(intake_client: Any, token_for: Any) -> None:
    async with intake_client() as client:
        assert (await client.post("/v1/complaints", json=complaint_body())).status_code == 401
        r = await client.post("/v1/complaints", json=complaint_body(), headers=token_for("analyst"))
        assert r.status_code == 403
        assert (await client.get("/v1/audit", headers=token_for("agent"))).status_code == 403


async def test_same_key_same_body_replays_and_other_body_conflicts_even_after_restart(
    intake_client: Any, token_for: Any, db: AsyncEngine
) -> None:
    key = f"k-{uuid.uuid4()}"
    body = complaint_body(customer=unique_customer())
    headers = {**token_for("intake_client", subject="app-1"), "Idempotency-Key": key}
    async with intake_client() as client:
        first = await client.post("/v1/complaints", json=body, headers=headers)
        again = await client.post("/v1/complaints", json=body, headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        other = await client.post(
            "/v1/complaints", json={**body, "description": "另一件事"}, headers=headers
        )
        assert other.status_code == 409
        assert other.json()["code"] == "idempotency_key_reused"
    async with intake_client() as restarted:
        after = await restarted.post("/v1/complaints", json=body, headers=headers)
        assert after.status_code == 201
        assert after.json() == first.json()
    # the key is scoped to the client: another client may use the same key
    async with intake_client() as client:
        other_client = await client.post(
            "/v1/complaints",
            json=body,
            headers={**token_for("intake_client", subject="app-2"), "Idempotency-Key": key},
        )
        assert other_client.json()["id"] != first.json()["id"]
    assert await count(db, tables.outbox, tables.outbox.c.key == first.json()["id"]) == 1


async def test_double_tapped_submit_gives_one_complaint_one_event_one_increment(
    intake_client: Any, token_for: Any, db: AsyncEngine
) -> None:
    key = f"tap-{uuid.uuid4()}"
    customer = unique_customer()
    body = complaint_body(customer=customer)
    headers = {**token_for("intake_client", subject="mobile"), "Idempotency-Key": key}
    recorded = metrics.SUBMISSIONS.labels("complaint", "recorded")
    before = recorded._value.get()
    async with intake_client() as client:
        replies = await asyncio.gather(
            *(client.post("/v1/complaints", json=body, headers=headers) for _ in range(3))
        )
    assert [r.status_code for r in replies] == [201, 201, 201]
    assert len({r.json()["id"] for r in replies}) == 1
    assert sorted(r.headers.get("idempotent-replayed", "false") for r in replies) == [
        "false",
        "true",
        "true",
    ]
    complaint_id = replies[0].json()["id"]
    assert await count(db, tables.outbox, tables.outbox.c.key == complaint_id) == 1
    s = tables.submission
    async with db.connect() as conn:
        customer_key = await conn.scalar(select(s.c.customer_key).where(s.c.id == complaint_id))
    assert await count(db, s, s.c.customer_key == customer_key) == 1
    assert recorded._value.get() - before == 1


async def test_same_key_concurrently_across_two_app_instances(
    intake_client: Any, token_for: Any, db: AsyncEngine
) -> None:
    key = f"two-{uuid.uuid4()}"
    body = complaint_body(customer=unique_customer())
    headers = {**token_for("intake_client", subject="mobile"), "Idempotency-Key": key}
    async with intake_client() as a, intake_client() as b:
        replies = await asyncio.gather(
            *(c.post("/v1/complaints", json=body, headers=headers) for c in (a, b, a, b))
        )
    assert {r.status_code for r in replies} == {201}
    assert len({r.json()["id"] for r in replies}) == 1
    assert await count(db, tables.outbox, tables.outbox.c.key == replies[0].json()["id"]) == 1


async def test_keys_expire(intake_client: Any, token_for: Any, db: AsyncEngine) -> None:
    key = f"exp-{uuid.uuid4()}"
    body = complaint_body(customer=unique_customer())
    headers = {**token_for("intake_client"), "Idempotency-Key": key}
    t = tables.idempotency_key
    async with intake_client() as client:
        first = await client.post("/v1/complaints", json=body, headers=headers)
        async with db.begin() as conn:
            await conn.execute(
                update(t)
                .where(t.c.key == key)
                .values(expires_at=func.now() - text("interval '1s'"))
            )
        # an expired key is forgotten: a different body is now a new submission
        second = await client.post(
            "/v1/complaints", json={**body, "description": "新的投诉内容"}, headers=headers
        )
        assert second.status_code == 201
        assert second.json()["id"] != first.json()["id"]
        async with db.begin() as conn:
            await conn.execute(
                update(t)
                .where(t.c.key == key)
                .values(expires_at=func.now() - text("interval '1s'"))
            )
        sm = make_sessionmaker(db)
        async with sm() as session, session.begin():
            purged = await submission_service.purge_expired_keys(
                session=session, now=datetime.now(UTC)
            )
        assert purged >= 1
        assert await count(db, t, t.c.key == key) == 0
    bad = await _post_with_key(intake_client, token_for, "x" * 201)
    assert bad.status_code == 400


async def _post_with_key(intake_client: Any, token_for: Any, key: str) -> Any:
    async with intake_client() as client:
        return await client.post(
            "/v1/complaints",
            json=complaint_body(customer=unique_customer()),
            headers={**token_for("intake_client"), "Idempotency-Key": key},
        )


async def test_probable_duplicate_is_linked_not_dropped(
    intake_client: Any, token_for: Any, db: AsyncEngine
) -> None:
    body = complaint_body(customer=unique_customer(), description="ATM吞卡了，  请处理")
    same_text = {**body, "description": "atm吞卡了， 请处理"}  # whitespace and case differ
    async with intake_client() as client:
        first = await client.post("/v1/complaints", json=body, headers=token_for("agent"))
        second = await client.post("/v1/complaints", json=same_text, headers=token_for("agent"))
        # concurrently: both in one batch
        c1, c2 = await asyncio.gather(
            *(
                client.post("/v1/complaints", json=b, headers=token_for("agent"))
                for b in (complaint_body(customer={"customer_number": "DUP-" + uuid.uuid4().hex}),)
                * 2
            )
        )
    assert first.json()["duplicate_of"] is None
    assert second.json()["duplicate_of"] == first.json()["id"]
    assert second.json()["id"] != first.json()["id"]
    assert {c1.json()["duplicate_of"], c2.json()["duplicate_of"]} == {None, c1.json()["id"]} or {
        c1.json()["duplicate_of"],
        c2.json()["duplicate_of"],
    } == {None, c2.json()["id"]}
    assert await count(db, tables.outbox, tables.outbox.c.key == second.json()["id"]) == 1


async def test_masking_audit_and_append_only(
    intake_client: Any, token_for: Any, db: AsyncEngine
) -> None:
    body = complaint_body(
        customer={
            "customer_number": "6222020200112233",
            "name": "王小明",
            "phone": "13912345678",
            "email": "wxm@example.com",
            "id_number": "11010519491231002X",
        },
        description="我的卡6222020200112233被盗刷，电话13912345678",
    )
    async with intake_client() as client:
        r = await client.post("/v1/complaints", json=body, headers=token_for("intake_client"))
        cid = r.json()["id"]
        masked = (await client.get(f"/v1/complaints/{cid}", headers=token_for("auditor"))).json()
        assert masked["customer"]["masked"] is True
        assert masked["customer"]["phone"] == "13*******78"
        assert "13912345678" not in json.dumps(masked, ensure_ascii=False)
        assert "[PHONE]" in masked["description"]
        agent = token_for("agent", subject="agent-007")
        clear = (await client.get(f"/v1/complaints/{cid}", headers=agent)).json()
        assert clear["customer"]["masked"] is False
        assert clear["customer"]["id_number"] == "11010519491231002X"
        assert clear["description"] == body["description"]
        audit = await client.get(
            "/v1/audit", params={"subject_id": cid}, headers=token_for("auditor")
        )
        assert audit.status_code == 200
        actions = [(e["action"], e["actor"]) for e in audit.json()["items"]]
        assert ("personal_data.read", "agent-007") in actions
        assert ("complaint.create", "tester") in actions
        assert len([a for a in actions if a[0] == "personal_data.read"]) == 1
        by_actor = await client.get(
            "/v1/audit",
            params={"actor": "agent-007", "from": "2000-01-01T00:00:00Z"},
            headers=token_for("auditor"),
        )
        assert by_actor.json()["total"] >= 1
        assert all(e["actor"] == "agent-007" for e in by_actor.json()["items"])
        assert "13912345678" not in audit.text
        missing = await client.get(f"/v1/complaints/{uuid.uuid4()}", headers=agent)
        assert missing.status_code == 404
        assert (await client.get("/v1/complaints/not-a-uuid", headers=agent)).status_code == 404
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.begin() as conn:
            await conn.execute(tables.audit_log.update().values(actor="someone-else"))
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.begin() as conn:
            await conn.execute(tables.audit_log.delete())
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.begin() as conn:
            await conn.execute(text("TRUNCATE intake.audit_log"))


async def test_rate_limit_answers_429_with_retry_after(intake_client: Any, token_for: Any) -> None:
    async with intake_client(rate_limit_per_second=0.5, rate_limit_burst=2) as client:
        headers = token_for("intake_client", subject="chatty")
        codes = []
        for _ in range(3):
            r = await client.post(
                "/v1/complaints", json=complaint_body(customer=unique_customer()), headers=headers
            )
            codes.append(r.status_code)
        assert codes == [201, 201, 429]
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "rate_limited"
        assert int(r.headers["retry-after"]) >= 1
        # another client has its own bucket
        other = await client.post(
            "/v1/complaints",
            json=complaint_body(customer=unique_customer()),
            headers=token_for("intake_client", subject="quiet"),
        )
        assert other.status_code == 201


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("description", complaint_body(description="a\x00b")),
        ("description", complaint_body(description="bell\x07")),
        ("description", complaint_body(description="c1\x85control")),
        ("customer.name", complaint_body(customer={"customer_number": "1", "name": "a\x00"})),
        ("customer.customer_number", complaint_body(customer={"customer_number": "a\nb"})),
        ("subject", complaint_body(subject="tab\there")),
        (
            "attachments.0.name",
            complaint_body(
                attachments=[
                    {
                        "name": "x\x1f",
                        "content_type": "text/plain",
                        "size_bytes": 1,
                        "sha256": "0" * 64,
                    }
                ]
            ),
        ),
    ],
)
async def test_control_characters_get_422_naming_the_field(
    intake_client: Any, token_for: Any, field: str, body: dict[str, Any], db: AsyncEngine
) -> None:
    before = await count(db, tables.submission)
    async with intake_client() as client:
        r = await client.post("/v1/complaints", json=body, headers=token_for("agent"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in r.json()["errors"]]
    assert field in r.json()["detail"]
    assert await count(db, tables.submission) == before


async def test_lone_surrogate_and_bad_json_are_4xx(intake_client: Any, token_for: Any) -> None:
    headers = {**token_for("agent"), "content-type": "application/json"}
    raw = json.dumps(complaint_body(), ensure_ascii=False).replace("转账", "\\ud800")
    async with intake_client() as client:
        r = await client.post("/v1/complaints", content=raw.encode(), headers=headers)
        assert r.status_code == 422
        assert "description" in r.json()["detail"]
        r = await client.post("/v1/complaints", content=b"\xff\xfe{", headers=headers)
        assert 400 <= r.status_code < 500


async def test_unicode_survives_byte_for_byte(
    intake_client: Any, token_for: Any, db: AsyncEngine
) -> None:
    texts = [
        "工商银行手机银行转账失败，Transfer failed 两次！",
        "👨‍👩‍👧‍👦 家庭账户 🇨🇳 👍🏽 emoji 测试 \ue421",
        "مرحبا، لم يصل التحويل ‏(RTL)‏ שלום עולם",
        "e\u0301 combining, 𠀋 CJK ext B, 〇 and \u200d joiner\tand tab",
    ]
    async with intake_client() as client:
        for description in texts:
            r = await client.post(
                "/v1/complaints",
                json=complaint_body(customer=unique_customer(), description=description),
                headers=token_for("intake_client"),
            )
            assert r.status_code == 201, r.text
            cid = r.json()["id"]
            read = (await client.get(f"/v1/complaints/{cid}", headers=token_for("agent"))).json()
            assert read["description"].encode() == description.encode()
            async with db.connect() as conn:
                stored = await conn.scalar(
                    select(tables.submission.c.description).where(tables.submission.c.id == cid)
                )
                payload = await conn.scalar(
                    select(tables.outbox.c.payload).where(tables.outbox.c.key == cid)
                )
            assert stored.encode() == description.encode()
            assert payload["data"]["description"].encode() == description.encode()


async def test_preview_never_cuts_a_character(intake_client: Any, token_for: Any) -> None:
    description = "投诉" * 5 + "👨‍👩‍👧‍👦" * 20
    async with intake_client(preview_chars=20) as client:
        r = await client.post(
            "/v1/complaints",
            json=complaint_body(customer=unique_customer(), description=description),
            headers=token_for("intake_client"),
        )
        read = (
            await client.get(f"/v1/complaints/{r.json()['id']}", headers=token_for("auditor"))
        ).json()
    assert read["preview"].endswith("…")
    assert len(read["preview"]) <= 20
    body = read["preview"][:-1]
    assert description.startswith(body)
    assert body.endswith("👨‍👩‍👧‍👦")  # whole family emoji, not a dangling joiner


async def test_vault_key_rotation_reencrypts_and_reads_still_work(
    intake_client: Any,
    token_for: Any,
    db: AsyncEngine,
    intake_settings: Any,
    database_url: str,
) -> None:
    old = intake_settings().vault_keys.get_secret_value()
    new_keys = "k2:" + "bmV3LWtleS1mb3Itcm90YXRpb24tdGVzdC0zMi1ieXQ=" + "," + old
    assert len(Vault(new_keys).keys) == 2
    async with intake_client() as client:
        r = await client.post(
            "/v1/complaints",
            json=complaint_body(customer={"customer_number": "ROT-1", "phone": "13700000001"}),
            headers=token_for("intake_client"),
        )
        cid = r.json()["id"]
    # the operator's command, as a process: new key first, old key kept for decryption
    env = {**os.environ, "DATABASE_URL": database_url, "CFP_VAULT_KEYS": new_keys}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.cli",
        "rotate-vault-keys",
        "--batch-size",
        "50",
        "--actor",
        "test-rotator",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    assert "'reencrypted'" in out.decode()
    sm = make_sessionmaker(db)
    async with sm() as session:
        assert set((await submission_service.count_by_key(session=session)).keys()) == {"k2"}
    async with db.connect() as conn:
        audit = (
            await conn.execute(
                select(tables.audit_log.c.details).where(
                    tables.audit_log.c.action == "vault.rotate",
                    tables.audit_log.c.actor == "test-rotator",
                )
            )
        ).scalar_one()
    assert audit["reencrypted"] >= 1
    async with intake_client(vault_keys=new_keys) as client:
        read = await client.get(f"/v1/complaints/{cid}", headers=token_for("supervisor"))
        assert read.json()["customer"]["phone"] == "13700000001"
