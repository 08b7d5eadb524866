"""Recording complaints and suggestions (plan §7.1.1: received and recorded at once).

One unit of work per submission: the idempotency key (when given), the submission row
(free text redacted), the encrypted personal data and the ``*.received`` event in the
outbox are written in the caller's transaction, which the route commits. Functions here
never commit (STYLE.md §3).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import tables
from services.intake.domain.submission import exceptions
from services.intake.domain.submission.schemas import (
    AmountIn,
    AttachmentIn,
    ComplaintCreate,
    CustomerRead,
    SubmissionAccepted,
    SubmissionCreate,
    SubmissionRead,
)
from services.intake.settings import IntakeSettings
from shared.events import outbox, registry
from shared.events.contracts.complaints import (
    COMPLAINT_RECEIVED_V1,
    SUGGESTION_RECEIVED_V1,
    ComplaintReceived,
    SuggestionReceived,
)
from shared.events.envelope import new_event
from shared.privacy import Vault, pseudonymous_key, redact

Kind = Literal["complaint", "suggestion"]
#: Crockford base32 without I, L, O, U: unambiguous when read over the phone.
_REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_reference(kind: Kind, received_at: datetime, tz: str) -> str:
    """Return a customer-facing reference such as ``C-260930-7K3QX9``.

    ``C`` complaint / ``S`` suggestion, the local receipt date (YYMMDD), six Crockford
    base32 characters (about 10^9 per day). Uniqueness is enforced by the database.
    """
    day = received_at.astimezone(ZoneInfo(tz)).strftime("%y%m%d")
    tail = "".join(secrets.choice(_REF_ALPHABET) for _ in range(6))
    return f"{'C' if kind == 'complaint' else 'S'}-{day}-{tail}"


def detect_language(text: str) -> str:
    """Guess ``zh`` or ``en`` from the share of CJK characters (>= 20 % of letters: zh)."""
    cjk = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf")
    letters = sum(1 for ch in text if ch.isalpha())
    return "zh" if letters and cjk / letters >= 0.2 else "en"


def request_hash(kind: Kind, body: SubmissionCreate) -> str:
    """Return the SHA-256 of the canonical request (kind + body JSON)."""
    return hashlib.sha256((kind + body.model_dump_json()).encode()).hexdigest()


def content_hash(kind: Kind, customer_key: str, description: str) -> str:
    """Return the hash that links probable duplicates: same customer, kind and text."""
    normal = " ".join(description.split()).casefold()
    return hashlib.sha256(f"{kind}|{customer_key}|{normal}".encode()).hexdigest()


async def claim_idempotency_key(
    *,
    session: AsyncSession,
    client: str,
    key: str,
    req_hash: str,
    now: datetime,
    ttl_seconds: int,
) -> SubmissionAccepted | None:
    """Claim ``key`` for this request, or return the reply remembered for it.

    Concurrent requests with the same key serialise on the primary key: the second waits
    for the first to commit and then sees its reply.

    Returns:
        None when this request owns the key and must do the work; otherwise the original
        reply.

    Raises:
        IdempotencyKeyInvalid: empty or longer than 200 characters.
        IdempotencyKeyReused: the key was used with a different body (409).
    """
    if not key or len(key) > 200:
        raise exceptions.IdempotencyKeyInvalid("Idempotency-Key must be 1..200 characters")
    t = tables.idempotency_key
    await session.execute(
        delete(t).where(t.c.client == client, t.c.key == key, t.c.expires_at < now)
    )
    claimed = await session.execute(
        pg_insert(t)
        .values(
            client=client,
            key=key,
            request_hash=req_hash,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
        .on_conflict_do_nothing()
        .returning(t.c.key)
    )
    if claimed.first() is not None:
        return None
    row = (
        await session.execute(
            select(t.c.request_hash, t.c.response).where(t.c.client == client, t.c.key == key)
        )
    ).one()
    if row.request_hash != req_hash:
        raise exceptions.IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request body"
        )
    if row.response is None:
        raise exceptions.IdempotencyKeyReused("the first request with this key is still running")
    return SubmissionAccepted.model_validate(row.response)


async def record(
    *,
    session: AsyncSession,
    kind: Kind,
    body: SubmissionCreate,
    client: str,
    settings: IntakeSettings,
    vault: Vault,
    now: datetime,
    idempotency_key: str | None = None,
) -> tuple[SubmissionAccepted, bool]:
    """Record a complaint or suggestion and stage its ``*.received`` event.

    Args:
        session: the unit of work (committed by the caller).
        kind: ``complaint`` or ``suggestion``.
        body: the validated request.
        client: the calling principal (scopes idempotency keys).
        settings: intake settings (time zone, keys, windows).
        vault: personal-data encryption.
        now: the receipt instant (UTC) when the body gives no ``received_at``.
        idempotency_key: the ``Idempotency-Key`` header, if any.

    Returns:
        ``(reply, replayed)``: replayed is True when the reply is the remembered answer to
        an earlier request with the same key.

    Raises:
        IdempotencyKeyReused, IdempotencyKeyInvalid: see :func:`claim_idempotency_key`.
    """
    req_hash = request_hash(kind, body)
    if idempotency_key is not None:
        earlier = await claim_idempotency_key(
            session=session,
            client=client,
            key=idempotency_key,
            req_hash=req_hash,
            now=now,
            ttl_seconds=settings.idempotency_ttl_seconds,
        )
        if earlier is not None:
            return earlier, True

    submission_id = str(uuid.uuid4())
    received_at = (body.received_at or now).astimezone(UTC)
    reference = new_reference(kind, received_at, settings.timezone)
    customer_key = pseudonymous_key(
        settings.pseudonym_key.get_secret_value(), body.customer.customer_number
    )
    description = redact(body.description)
    subject = redact(body.subject) if body.subject else None
    language = body.language or detect_language(body.description)
    c_hash = content_hash(kind, customer_key, body.description)
    s = tables.submission

    duplicate_of = None
    if settings.duplicate_window_seconds:
        duplicate_of = await session.scalar(
            select(s.c.id)
            .where(
                s.c.customer_key == customer_key,
                s.c.content_hash == c_hash,
                s.c.received_at
                >= received_at - timedelta(seconds=settings.duplicate_window_seconds),
            )
            .order_by(s.c.received_at)
            .limit(1)
        )

    amount: AmountIn | None = getattr(body, "amount", None)
    occurred_at: datetime | None = getattr(body, "occurred_at", None)
    await session.execute(
        insert(s),
        [
            {
                "id": submission_id,
                "kind": kind,
                "reference": reference,
                "channel": body.channel,
                "received_at": received_at,
                "customer_key": customer_key,
                "description": description,
                "subject": subject,
                "product": body.product,
                "branch_code": body.branch_code,
                "region": body.region,
                "occurred_at": occurred_at,
                "amount_minor": amount.value if amount else None,
                "currency": amount.currency if amount else None,
                "language": language,
                "external_ref": body.external_ref,
                "attachments": [a.model_dump() for a in body.attachments],
                "content_hash": c_hash,
                "duplicate_of": duplicate_of,
                "created_by": client,
            }
        ],
    )
    personal = body.customer.model_dump(exclude_none=True)
    personal["description"] = body.description
    if body.subject:
        personal["subject"] = body.subject
    key_id, blob = vault.encrypt(personal, aad=submission_id)
    await session.execute(
        insert(tables.vault),
        [{"submission_id": submission_id, "key_id": key_id, "ciphertext": blob}],
    )

    if kind == "complaint":
        event = new_event(
            source="intake",
            type_=COMPLAINT_RECEIVED_V1,
            subject=submission_id,
            time=received_at,
            data=ComplaintReceived(
                complaint_id=submission_id,
                reference=reference,
                channel=body.channel,
                received_at=received_at,
                customer_key=customer_key,
                description=description,
                subject=subject,
                product=body.product,
                branch_code=body.branch_code,
                region=body.region,
                occurred_at=occurred_at,
                amount_minor=amount.value if amount else None,
                currency=amount.currency if amount else None,
                language=language,
                external_ref=body.external_ref,
                attachment_count=len(body.attachments),
                vulnerable_customer=body.customer.vulnerable,
            ),
        )
        await outbox.add(session, tables.outbox, event, topic=registry.COMPLAINTS_RECEIVED)
    else:
        event = new_event(
            source="intake",
            type_=SUGGESTION_RECEIVED_V1,
            subject=submission_id,
            time=received_at,
            data=SuggestionReceived(
                suggestion_id=submission_id,
                reference=reference,
                channel=body.channel,
                received_at=received_at,
                customer_key=customer_key,
                description=description,
                subject=subject,
                product=body.product,
                branch_code=body.branch_code,
                language=language,
            ),
        )
        await outbox.add(session, tables.outbox, event, topic=registry.SUGGESTIONS_RECEIVED)

    reply = SubmissionAccepted(
        id=submission_id, reference=reference, received_at=received_at, duplicate_of=duplicate_of
    )
    if idempotency_key is not None:
        t = tables.idempotency_key
        await session.execute(
            update(t)
            .where(t.c.client == client, t.c.key == idempotency_key)
            .values(status_code=201, response=reply.model_dump(mode="json"))
        )
    return reply, False


def _mask(value: str | None, keep: int = 2) -> str | None:
    if value is None:
        return None
    if len(value) <= keep * 2:
        return "*" * len(value)
    return value[:keep] + "*" * (len(value) - keep * 2) + value[-keep:]


async def get(
    *, session: AsyncSession, submission_id: str, kind: Kind, vault: Vault, unmasked: bool
) -> SubmissionRead:
    """Load one submission with its customer, masked unless ``unmasked``.

    Raises:
        SubmissionNotFound: no submission of that kind with that id.
    """
    s = tables.submission
    try:
        uuid.UUID(submission_id)
    except ValueError as exc:
        raise exceptions.SubmissionNotFound(f"no {kind} {submission_id}") from exc
    row = (
        await session.execute(
            select(s, tables.vault.c.key_id, tables.vault.c.ciphertext)
            .join(tables.vault, tables.vault.c.submission_id == s.c.id)
            .where(s.c.id == submission_id, s.c.kind == kind)
        )
    ).first()
    if row is None:
        raise exceptions.SubmissionNotFound(f"no {kind} {submission_id}")
    personal: dict[str, Any] = vault.decrypt(row.key_id, row.ciphertext, aad=submission_id)
    fields = ("customer_number", "name", "phone", "email", "id_number", "account_number")
    if unmasked:
        customer = CustomerRead(
            customer_key=row.customer_key, masked=False, **{f: personal.get(f) for f in fields}
        )
    else:
        customer = CustomerRead(
            customer_key=row.customer_key,
            masked=True,
            **{f: _mask(personal.get(f)) for f in fields},
        )
    return SubmissionRead(
        id=row.id,
        kind=row.kind,
        reference=row.reference,
        channel=row.channel,
        status=row.status,
        received_at=row.received_at,
        recorded_at=row.recorded_at,
        description=personal["description"] if unmasked else row.description,
        subject=(personal.get("subject") if unmasked else row.subject),
        product=row.product,
        branch_code=row.branch_code,
        region=row.region,
        language=row.language,
        external_ref=row.external_ref,
        occurred_at=row.occurred_at,
        amount=AmountIn(value=row.amount_minor, currency=row.currency)
        if row.amount_minor is not None and row.currency
        else None,
        attachments=[AttachmentIn.model_validate(a) for a in row.attachments],
        duplicate_of=row.duplicate_of,
        customer=customer,
    )


__all__ = ["ComplaintCreate", "get", "record"]
