"""One batch, one statement: ``service.record_batch`` over ``intake.record_batch`` (0003, 0004).

The API tests reach batches of one or two; here one batch mixes what a busy replica
sees: equal submissions without a key (linked to the first), a key repeated in the batch
with the same body (replayed) and with another body (409), and later batches reusing a
key (the stored reply, ``duplicate_of`` included) or an equal text (linked across
batches). Run on the real database, as the group committer runs it: one autocommitted
statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from intake_samples import complaint_body
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake import tables
from services.intake.domain.submission import exceptions, service
from services.intake.domain.submission.schemas import ComplaintCreate
from services.intake.settings import IntakeSettings
from shared.auth import Principal
from shared.privacy import Vault


async def test_one_batch_links_duplicates_replays_followers_and_refuses_reused_keys(
    intake_settings: Callable[..., IntakeSettings], db: AsyncEngine
) -> None:
    settings = intake_settings()
    vault = Vault(settings.vault_keys.get_secret_value())
    principal = Principal(subject=f"batch-{uuid.uuid4().hex[:8]}", roles=frozenset({"agent"}))
    customer = f"B-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)

    def prepared(text: str, key: str | None = None) -> service.Prepared:
        body = ComplaintCreate.model_validate(
            complaint_body(customer={"customer_number": customer, "name": "李四"}, description=text)
        )
        return service.prepare(
            kind="complaint",
            body=body,
            principal=principal,
            settings=settings,
            vault=vault,
            now=now,
            idempotency_key=key,
        )

    async def record(items: list[service.Prepared]) -> list[service.Outcome]:
        async with db.connect() as conn:
            raw = await conn.get_raw_connection()
            return await service.record_batch(
                connection=raw.driver_connection,  # type: ignore[arg-type]
                items=items,
                settings=settings,
                now=datetime.now(UTC),
            )

    key = uuid.uuid4().hex
    batch = [
        prepared("卡被吞了 A"),  # 0: first of its text
        prepared("卡被吞了   a"),  # 1: same text after folding: linked to 0
        prepared("另一件事", key),  # 2: keyed leader, no earlier equal text
        prepared("另一件事", key),  # 3: same key and body: 2's reply, replayed
        prepared("别的内容", key),  # 4: same key, other body: 409
    ]
    out = await record(batch)
    assert len(out) == 5
    first, second, leader, follower, reused = out
    assert isinstance(first, tuple)
    assert isinstance(second, tuple)
    assert first[0].duplicate_of is None
    assert second[0].duplicate_of == first[0].id
    assert first[1] is False
    assert second[1] is False
    assert isinstance(leader, tuple)
    assert leader == (leader[0], False)
    assert leader[0].duplicate_of is None
    assert follower == (leader[0], True)
    assert isinstance(reused, exceptions.IdempotencyKeyReused)

    # Later batches: the key replays the stored reply; an equal text is linked to the first.
    again = prepared("另一件事", key)
    later = prepared("卡被吞了 a")
    out2 = await record([again, later])
    assert out2[0] == (leader[0], True)
    assert isinstance(out2[1], tuple)
    assert out2[1][0].duplicate_of == first[0].id

    # Four submissions recorded (0, 1, 2, later), each with its vault, outbox and audit row;
    # the key's stored reply is the 201 body.
    ids = [first[0].id, second[0].id, leader[0].id, out2[1][0].id]
    async with db.connect() as conn:
        s, v, o, a, k = (
            tables.submission,
            tables.vault,
            tables.outbox,
            tables.audit_log,
            tables.idempotency_key,
        )
        assert await conn.scalar(select(func.count()).where(s.c.id.in_(ids))) == 4
        assert await conn.scalar(select(func.count()).where(v.c.submission_id.in_(ids))) == 4
        assert await conn.scalar(select(func.count()).where(o.c.key.in_(ids))) == 4
        assert await conn.scalar(select(func.count()).where(a.c.subject_id.in_(ids))) == 4
        stored: Any = (
            await conn.execute(
                select(k.c.status_code, k.c.response).where(
                    k.c.client == principal.subject, k.c.key == key
                )
            )
        ).one()
    assert stored.status_code == 201
    assert stored.response["id"] == leader[0].id
    assert stored.response["duplicate_of"] is None

    # A keyed submission that is a probable duplicate: its stored reply carries the link
    # (the key is claimed with the reply before the duplicate is found: migration 0004).
    dup_key = uuid.uuid4().hex
    (dup,) = await record([prepared("卡被吞了 A", dup_key)])
    assert isinstance(dup, tuple)
    assert dup[0].duplicate_of == first[0].id
    (replayed,) = await record([prepared("卡被吞了 A", dup_key)])
    assert replayed == (dup[0], True)
    async with db.connect() as conn:
        stored = (
            await conn.execute(
                select(k.c.status_code, k.c.response).where(
                    k.c.client == principal.subject, k.c.key == dup_key
                )
            )
        ).one()
    assert stored.status_code == 201
    assert stored.response["duplicate_of"] == first[0].id


async def test_duplicate_window_bounds_the_link_and_zero_turns_it_off(
    intake_settings: Callable[..., IntakeSettings], db: AsyncEngine
) -> None:
    customer = f"W-{uuid.uuid4().hex[:8]}"
    principal = Principal(subject="window", roles=frozenset({"agent"}))
    now = datetime.now(UTC)

    async def one(settings: IntakeSettings, at: datetime) -> Any:
        body = ComplaintCreate.model_validate(
            complaint_body(customer={"customer_number": customer}, received_at=at.isoformat())
        )
        item = service.prepare(
            kind="complaint",
            body=body,
            principal=principal,
            settings=settings,
            vault=Vault(settings.vault_keys.get_secret_value()),
            now=now,
        )
        async with db.connect() as conn:
            raw = await conn.get_raw_connection()
            (outcome,) = await service.record_batch(
                connection=raw.driver_connection,  # type: ignore[arg-type]
                items=[item],
                settings=settings,
                now=now,
            )
        return outcome[0]

    windowed = intake_settings(duplicate_window_seconds=600)
    old = await one(windowed, now - timedelta(seconds=900))
    first = await one(windowed, now - timedelta(seconds=60))
    assert first.duplicate_of is None  # 840 s after `old`: outside the window
    assert (await one(windowed, now)).duplicate_of == first.id
    assert old.duplicate_of is None
    assert (await one(intake_settings(duplicate_window_seconds=0), now)).duplicate_of is None
