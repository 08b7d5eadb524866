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


async def test_batches_find_keys_through_the_index_however_many_keys_are_stored(
    intake_settings: Callable[..., IntakeSettings], db: AsyncEngine
) -> None:
    """No statement of ``record_batch`` reads ``idempotency_key`` sequentially (0005).

    0004 joined the key table in two places where PostgreSQL, with thousands of live keys
    (a day of submissions), chose a sequential scan of the whole table per batch (seen in
    ``pg_stat_user_tables`` during the benchmark: two scans per batch, PostgreSQL CPU per
    submission doubled). Batches of keyed and unkeyed items, with probable duplicates and
    replays, are recorded over 20,000 stored keys; the transaction's own statistics must show
    index scans only. Ten batches on one connection, so PL/pgSQL's cached generic plans are
    in use, not just the first five custom ones.
    """
    settings = intake_settings()
    vault = Vault(settings.vault_keys.get_secret_value())
    client = f"scan-{uuid.uuid4().hex[:8]}"
    principal = Principal(subject=client, roles=frozenset({"agent"}))
    now = datetime.now(UTC)
    async with db.begin() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO intake.idempotency_key (client, key, request_hash, expires_at, "
            "status_code, response) SELECT 'filler-' || (g % 50), md5(g::text), 'h', "
            "now() + interval '1 day', 201, '{}'::jsonb FROM generate_series(1, 20000) g "
            "ON CONFLICT DO NOTHING"
        )
        await conn.exec_driver_sql("ANALYZE intake.idempotency_key")

    def prepared(n: int, key: str | None) -> service.Prepared:
        customer = f"S-{client}-{n % 3}"  # with the text: equal bodies every 12 items
        body = ComplaintCreate.model_validate(
            complaint_body(customer={"customer_number": customer}, description=f"扫描 {n % 4}")
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

    async with db.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        scans = (
            "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables "
            "WHERE schemaname = 'intake' AND relname = 'idempotency_key'"
        )
        async with raw.transaction():
            # Differences, not the figures: on a pooled connection PostgreSQL may still hold
            # unflushed counts of earlier transactions in these "this transaction" figures.
            seq_before, idx_before = await raw.fetchrow(scans)
            keys = [uuid.uuid4().hex for _ in range(60)]
            recorded = 0
            for b in range(10):
                items = [prepared(b * 12 + i, keys[(b * 12 + i) % 60] if i % 2 else None)
                         for i in range(12)]  # fmt: skip
                out = await service.record_batch(
                    connection=raw, items=items, settings=settings, now=now
                )
                recorded += sum(1 for o in out if isinstance(o, tuple) and not o[1])
            seq_after, idx_after = await raw.fetchrow(scans)
    async with db.begin() as conn:  # the filler keys are this test's own
        await conn.exec_driver_sql(
            "DELETE FROM intake.idempotency_key WHERE client LIKE 'filler-%'"
        )
    assert recorded > 0
    assert idx_after > idx_before
    assert seq_after == seq_before
