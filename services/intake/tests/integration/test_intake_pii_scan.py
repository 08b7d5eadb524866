"""After seeding personal data through every intake path, no topic, log line, metric or
non-vault table holds any of it in clear (issue 3 §3).

Seeds: customer fields (name, phone, e-mail, resident ID, card and account numbers) and the
same data, formatted in several ways, inside descriptions and subjects of complaints and
suggestions; replays, key conflicts and rejected requests too. Then every message on every
topic of this run and every log line written meanwhile are scanned.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from intake_samples import complaint_body
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake import tables

NAME = "欧阳秘密"
PHONE = "13612345678"
EMAIL = "secret.person@example.org"
RESIDENT_ID = "11010519491231002X"
CARD = "6222020200112233"  # not Luhn-valid on purpose: redacted as an account number
VISA = "4111111111111111"
ACCOUNT = "6217000010012345678"
LANDLINE = "010-87654321"
INTL = "+44 20 7946 0958"
SEEDS = [NAME, PHONE, EMAIL, RESIDENT_ID, CARD, VISA, ACCOUNT, "87654321", "79460958"]


def _digits_view(text_: str) -> str:
    return re.sub(r"[\s\-()]", "", text_)


def find_leaks(haystack: str) -> list[str]:
    """Return the seeds found in ``haystack`` (also with separators removed)."""
    squeezed = _digits_view(haystack)
    return [s for s in SEEDS if s in haystack or _digits_view(s) in squeezed]


class _Collect(logging.Handler):
    def __init__(self, formatter: logging.Formatter | None) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        if formatter is not None:
            self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def read_every_topic(bootstrap: str, prefix: str) -> list[bytes]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(prefix)]
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    out: list[bytes] = []
    try:
        parts = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        if not parts:
            await consumer._client.force_metadata_update()
            parts = [
                TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
            ]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        pending = {tp for tp, end in ends.items() if end > 0}
        deadline = asyncio.get_running_loop().time() + 30
        while pending and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for r in records:
                    out.append((r.key or b"") + b" " + (r.value or b""))
                    out.extend(v for _, v in r.headers or ())
                if records and records[-1].offset + 1 >= ends[tp]:
                    pending.discard(tp)
        assert not pending, f"could not read to the end of {pending}"
    finally:
        await consumer.stop()
    return out


async def test_no_seeded_personal_data_in_topics_logs_metrics_or_tables(
    intake_client: Any, token_for: Any, db: AsyncEngine, kafka_bootstrap: str, topic_prefix: str
) -> None:
    root = logging.getLogger()
    collect: _Collect | None = None
    previous_level = root.level
    customer = {
        "customer_number": CARD,
        "name": NAME,
        "phone": PHONE,
        "email": EMAIL,
        "id_number": RESIDENT_ID,
        "account_number": ACCOUNT,
    }
    descriptions = [
        f"姓名见客户资料。手机{PHONE}，邮箱{EMAIL}，身份证{RESIDENT_ID}。",
        f"卡号 {CARD[:4]} {CARD[4:8]} {CARD[8:12]} {CARD[12:]}，Visa {VISA}，账户{ACCOUNT}",
        f"Call me at {INTL} or {LANDLINE}, mobile +86 136-1234-5678, mail {EMAIL.upper()}",
        "全角号码１３６１２３４５６７８ 和 ｓｅｃｒｅｔ．ｐｅｒｓｏｎ＠ｅｘａｍｐｌｅ．ｏｒｇ",
    ]
    ids: list[str] = []
    try:
        async with intake_client() as client:
            # the app configured logging (root handlers replaced): copy its JSON lines
            collect = _Collect(root.handlers[0].formatter if root.handlers else None)
            root.addHandler(collect)
            root.setLevel(logging.DEBUG)
            logging.getLogger("services").info("pii_scan.started")
            headers = token_for("intake_client", subject="pii-seeder")
            for i, description in enumerate(descriptions):
                for kind in ("complaints", "suggestions"):
                    body = complaint_body(
                        customer=customer, description=description, subject=f"电话{PHONE}"
                    )
                    if kind == "suggestions":
                        body.pop("product")
                    key = {"Idempotency-Key": f"pii-{i}-{kind}-{uuid.uuid4()}"}
                    r = await client.post(f"/v1/{kind}", json=body, headers={**headers, **key})
                    assert r.status_code == 201, r.text
                    assert not find_leaks(r.text)
                    ids.append(r.json()["id"])
                    again = await client.post(f"/v1/{kind}", json=body, headers={**headers, **key})
                    assert again.json()["id"] == r.json()["id"]
                    clash = await client.post(
                        f"/v1/{kind}",
                        json={**body, "description": description + "!"},
                        headers={**headers, **key},
                    )
                    assert clash.status_code == 409
                    assert not find_leaks(clash.text)
            # rejected requests carrying personal data: the problem must not echo it
            bad = await client.post(
                "/v1/complaints",
                json=complaint_body(customer=customer, description=f"{PHONE}\x00"),
                headers=headers,
            )
            assert bad.status_code == 422
            assert not find_leaks(bad.text)
            for cid in ids[0:4:2]:  # complaints: masked reads, then an audited read in clear
                kind = "complaints"
                masked = await client.get(f"/v1/{kind}/{cid}", headers=token_for("auditor"))
                assert not find_leaks(masked.text)
                clear = await client.get(f"/v1/{kind}/{cid}", headers=token_for("agent"))
                assert PHONE in clear.text
            audit = await client.get("/v1/audit", headers=token_for("auditor"))
            assert not find_leaks(audit.text)
            metrics_text = (await client.get("/metrics")).text
            assert not find_leaks(metrics_text)
            # let the relay publish every seeded event
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                async with db.connect() as conn:
                    pending = await conn.scalar(
                        select(func.count())
                        .select_from(tables.outbox)
                        .where(tables.outbox.c.key.in_(ids), tables.outbox.c.published_at.is_(None))
                    )
                if pending == 0:
                    break
                assert asyncio.get_running_loop().time() < deadline, "relay did not publish"
                await asyncio.sleep(0.2)
    finally:
        if collect is not None:
            root.removeHandler(collect)
        root.setLevel(previous_level)

    messages = await read_every_topic(kafka_bootstrap, topic_prefix)
    ours = [m for m in messages if any(i.encode() in m for i in ids)]
    assert len(ours) >= len(ids)
    leaks = {
        m.decode(errors="replace")[:200]: find_leaks(m.decode(errors="replace")) for m in messages
    }
    assert not {k: v for k, v in leaks.items() if v}
    assert collect is not None
    assert len(collect.lines) > 1, "no log lines were captured"
    log_leaks = [line for line in collect.lines if find_leaks(line)]
    assert not log_leaks

    # Only the vault holds personal data: every other intake table is clean.
    async with db.connect() as conn:
        for table in ("submission", "outbox", "idempotency_key", "audit_log"):
            rows = (await conn.execute(text(f"SELECT t::text FROM intake.{table} t"))).scalars()
            dirty = [r for r in rows if find_leaks(r)]
            assert not dirty, (table, dirty[:1])
        vault_text = (
            await conn.execute(text("SELECT ciphertext FROM intake.vault LIMIT 50"))
        ).scalars()
        assert all(PHONE.encode() not in blob for blob in vault_text)
