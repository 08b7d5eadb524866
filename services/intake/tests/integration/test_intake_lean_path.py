"""Intake's lean request path and one-statement batch write (docs/intake.md, "Benchmark").

- ``LeanSubmit``'s lean path (``Content-Type: application/json``) answers exactly as
  FastAPI's own handler (any other JSON content type) for good and bad requests.
- A batch of concurrent submissions, written with one JSON-array statement, leaves the
  same rows an older per-column write left: submission, vault, outbox (a valid
  ``complaints.received`` envelope), audit and the remembered reply.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from intake_samples import complaint_body
from sqlalchemy import Text, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake import metrics, tables
from services.intake.api.routes import LeanSubmit, router
from services.intake.domain.submission.schemas import SubmissionAccepted
from shared.events.contracts.complaints import COMPLAINT_RECEIVED_V1, ComplaintReceived
from shared.events.envelope import CONTENT_TYPE, Envelope
from shared.events.registry import COMPLAINTS_RECEIVED
from shared.privacy import Vault

LEAN = "application/json"
STANDARD = "application/json; charset=utf-8"  # not the lean path: FastAPI's handler


def test_only_the_post_routes_take_the_lean_path() -> None:
    lean = LeanSubmit(app=None, routes=[router])  # type: ignore[arg-type]
    assert sorted(lean._lean) == ["/v1/complaints", "/v1/suggestions"]
    for path, (route, kind, _model) in lean._lean.items():
        assert route.path == path
        assert "POST" in route.methods
        assert path == f"/v1/{kind}s"


def _comparable(r: Any) -> tuple[int, str, Any]:
    """Status, content type and body without the per-request fields."""
    try:
        body = r.json()
    except ValueError:
        body = r.text
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("correlation_id", "id", "reference")}
        body.pop("received_at", None)
    return r.status_code, r.headers.get("content-type", ""), body


def _other(body: str, n: int) -> str:
    """Return ``body`` from another customer (so that it is not a probable duplicate)."""
    return body.replace("L-", f"L-{n}-")


def _add(body: str, member: str) -> bytes:
    """Return the JSON object ``body`` with ``member`` (raw JSON text) appended."""
    return (body[:-1] + ", " + member + "}").encode()


async def test_lean_and_standard_paths_answer_alike(
    intake_client: Any, token_for: Any, db: AsyncEngine
) -> None:
    good = json.dumps(complaint_body(customer={"customer_number": f"L-{uuid.uuid4().hex}"}))
    bad_field = json.dumps({**json.loads(good), "channel": "pigeon"}).encode()
    cases: list[tuple[str, bytes, dict[str, str]]] = [
        ("201", good.encode(), token_for("intake_client")),
        ("401 no token", good.encode(), {}),
        ("401 bad token", good.encode(), {"Authorization": "Bearer nope"}),
        ("403 role", good.encode(), token_for("analyst")),
        ("422 bad JSON before auth", b'{"channel": ', {}),
        ("422 bad JSON", b'{"channel": ', token_for("intake_client")),
        ("401 bad field without token", bad_field, {}),
        ("422 bad field", bad_field, token_for("agent")),
        ("422 empty body", b"", token_for("intake_client")),
        ("422 not an object", b"[1, 2]", token_for("intake_client")),
        ("400 empty key", good.encode(), {**token_for("intake_client"), "Idempotency-Key": ""}),
        # Where a JSON parser could differ from json.loads + validation:
        ("422 lone surrogate", _add(good, '"subject": "a\\ud800b"'), token_for("agent")),
        (
            "201 surrogate pair",
            _add(_other(good, 1), '"subject": "a\\ud83d\\ude00b"'),
            token_for("agent"),
        ),
        (
            "201 repeated member",
            ('{"channel": "pigeon", ' + _other(good, 2)[1:]).encode(),
            token_for("agent"),
        ),
        ("422 repeated member", _add(good, '"channel": "pigeon"'), token_for("agent")),
        (
            "201 whole float",
            _add(_other(good, 3), '"amount": {"value": 100.0, "currency": "CNY"}'),
            token_for("agent"),
        ),
        ("422 NaN", _add(good, '"amount": {"value": NaN, "currency": "CNY"}'), token_for("agent")),
        ("201 byte order mark", "\ufeff".encode() + _other(good, 4).encode(), token_for("agent")),
    ]
    async with intake_client() as client:
        for name, content, headers in cases:
            answers = []
            for content_type in (LEAN, STANDARD):
                fresh = content.replace(b"L-", f"L-{content_type[-1]}".encode())
                r = await client.post(
                    "/v1/complaints",
                    content=fresh,
                    headers={**headers, "Content-Type": content_type},
                )
                answers.append(r)
            lean, standard = answers
            assert _comparable(lean) == _comparable(standard), name
            assert lean.status_code == int(name[:3]), (name, lean.text)
        # Keyed: the replay and the 409 are the same on both paths.
        key = f"lean-{uuid.uuid4()}"
        headers = {**token_for("intake_client", subject="lean-app"), "Idempotency-Key": key}
        first = await client.post(
            "/v1/complaints", content=good, headers={**headers, "Content-Type": LEAN}
        )
        again = await client.post(
            "/v1/complaints", content=good, headers={**headers, "Content-Type": STANDARD}
        )
        third = await client.post(
            "/v1/complaints", content=good, headers={**headers, "Content-Type": LEAN}
        )
        assert first.status_code == again.status_code == third.status_code == 201
        assert first.json() == again.json() == third.json()
        assert first.headers["location"] == again.headers["location"] == third.headers["location"]
        assert "idempotent-replayed" not in first.headers
        assert again.headers["idempotent-replayed"] == third.headers["idempotent-replayed"]
        other = json.dumps({**json.loads(good), "description": "另一件事"})
        conflicts = [
            await client.post(
                "/v1/complaints", content=other, headers={**headers, "Content-Type": ct}
            )
            for ct in (LEAN, STANDARD)
        ]
        assert _comparable(conflicts[0]) == _comparable(conflicts[1])
        assert conflicts[0].status_code == 409
    s = tables.submission
    async with db.connect() as conn:
        ids = (await conn.execute(select(s.c.id).where(s.c.created_by == "lean-app"))).all()
    assert [str(r.id) for r in ids] == [first.json()["id"]]


def _batches() -> float:
    """Transactions the group committer has run in this process so far."""
    return next(
        sample.value
        for family in metrics.BATCH_SIZE.collect()
        for sample in family.samples
        if sample.name.endswith("_count")
    )


async def test_a_concurrent_batch_leaves_every_row_of_every_submission(
    intake_client: Any, token_for: Any, db: AsyncEngine, intake_settings: Any
) -> None:
    bodies = [
        complaint_body(
            customer={"customer_number": f"B-{uuid.uuid4().hex}", "name": "赵六"},
            description=f"第{n}件：ATM吞卡，电话13912345678，卡号6222020200112233。",
            subject="吞卡" if n % 2 else None,
            occurred_at="2026-01-02T03:04:05+08:00" if n % 3 == 0 else None,
            amount={"value": 1000 + n, "currency": "CNY"},
            attachments=[
                {
                    "name": f"照片{n}.jpg",
                    "content_type": "image/jpeg",
                    "size_bytes": n,
                    "sha256": "b" * 64,
                }
            ],
        )
        for n in range(24)
    ]
    bodies = [{k: v for k, v in b.items() if v is not None} for b in bodies]
    headers = token_for("intake_client", subject="batch-app")
    batches_before = _batches()
    async with intake_client() as client:
        replies = await asyncio.gather(
            *(
                client.post(
                    "/v1/complaints",
                    json=body,
                    headers={**headers, "Idempotency-Key": f"batch-{n}-{uuid.uuid4()}"}
                    if n % 2
                    else headers,
                )
                for n, body in enumerate(bodies)
            )
        )
    assert [r.status_code for r in replies] == [201] * len(bodies)
    assert _batches() - batches_before < len(bodies)  # some transactions held several
    vault = Vault(intake_settings().vault_keys.get_secret_value())
    s, v, o, a, k = (
        tables.submission,
        tables.vault,
        tables.outbox,
        tables.audit_log,
        tables.idempotency_key,
    )
    async with db.connect() as conn:
        for n, (body, reply) in enumerate(zip(bodies, replies, strict=True)):
            accepted = SubmissionAccepted.model_validate(reply.json())
            sid = accepted.id
            row = (await conn.execute(select(s).where(s.c.id == sid))).one()
            assert row.reference == accepted.reference
            assert row.received_at == accepted.received_at
            assert row.duplicate_of is None
            assert row.amount_minor == 1000 + n
            assert row.currency == "CNY"
            assert row.attachments == body["attachments"]
            assert "13912345678" not in row.description
            assert "[PHONE]" in row.description
            assert row.subject == body.get("subject")
            assert (row.occurred_at is None) == ("occurred_at" not in body)
            secret = (await conn.execute(select(v).where(v.c.submission_id == sid))).one()
            personal = vault.decrypt(secret.key_id, secret.ciphertext, aad=sid)
            assert personal["customer_number"] == body["customer"]["customer_number"]
            assert personal["description"] == body["description"]
            event = (await conn.execute(select(o).where(o.c.key == sid))).one()
            assert (event.topic, event.type) == (COMPLAINTS_RECEIVED, COMPLAINT_RECEIVED_V1)
            envelope = Envelope[ComplaintReceived].model_validate(event.payload)
            assert envelope.id == str(event.id)
            assert envelope.subject == sid
            assert envelope.data.reference == row.reference
            assert envelope.data.description == row.description
            assert envelope.data.received_at == row.received_at
            assert envelope.data.amount_minor == 1000 + n
            assert envelope.data.attachment_count == 1
            assert event.headers == [
                ["content-type", CONTENT_TYPE],
                ["ce_type", COMPLAINT_RECEIVED_V1],
                ["ce_id", envelope.id],
            ]
            audit = (await conn.execute(select(a).where(a.c.subject_id == sid))).one()
            assert (audit.actor, audit.actor_roles, audit.action, audit.subject_type) == (
                "batch-app",
                "intake_client",
                "complaint.create",
                "complaint",
            )
            assert audit.details == {"channel": "mobile_app", "reference": row.reference}
            assert audit.correlation_id == reply.headers["x-correlation-id"]
            if n % 2:
                key = reply.request.headers["idempotency-key"]
                stored = (
                    await conn.execute(select(k).where(k.c.client == "batch-app", k.c.key == key))
                ).one()
                assert stored.status_code == 201
                assert SubmissionAccepted.model_validate(stored.response) == accepted
        # Outbox and audit rows follow the order of the submissions' rows.
        seqs = (
            await conn.execute(
                select(o.c.seq, s.c.recorded_at, s.c.id)
                .join(s, o.c.key == s.c.id.cast(Text))
                .where(s.c.created_by == "batch-app")
                .order_by(o.c.seq)
            )
        ).all()
    assert len(seqs) == len(bodies)
    assert [r.recorded_at for r in seqs] == sorted(r.recorded_at for r in seqs)
