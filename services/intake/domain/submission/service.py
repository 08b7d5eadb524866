"""Recording complaints and suggestions (plan §7.1.1: received and recorded at once).

A submission is recorded in two steps:

1. :func:`prepare` (no database): validate-time facts are turned into rows. The receipt
   instant, reference, pseudonymous customer key, redacted text, detected language, the
   AES-256-GCM vault blob and the ``*.received`` event are computed on the request's task.
2. :func:`record_batch`: one unit of work for one or many prepared submissions. It claims
   the idempotency keys, links probable duplicates, and writes the submission rows, the
   vault rows, the outbox events, the audit rows and the remembered replies, all in one
   SQL statement (the caller decides whether that statement runs in a transaction of its
   own, as the group committer does, or in a wider one; it never commits; STYLE.md §3).

Grouping concurrent requests into one transaction (group commit,
:mod:`services.intake.domain.submission.committer`) turns one round trip and one commit
per request into one round trip and one commit per batch.

The batch is one call of the PL/pgSQL function ``intake.record_batch`` (migrations 0003-0005),
run on an asyncpg connection of the service's engine: the whole batch is one JSON array
parameter whose per-submission part is built on the request's task by
:meth:`Prepared.record_json`. Before, the same work was six round trips per batch
(``BEGIN``, key claim, advisory locks, duplicate candidates, write, ``COMMIT``), and in this
VM every socket write costs the service 0.1-0.2 ms of CPU. The SQL text is the same
whatever the batch size, so asyncpg prepares it once per connection. Through SQLAlchemy
Core the same work cost several times more CPU per row (statement compilation and
per-row parameter processing), and so did asyncpg's encoding of one array per column;
CPU in the service process is what limits intake's throughput (docs/intake.md,
"Benchmark").
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import asyncpg
import pydantic_core
import uuid_utils
from sqlalchemy import bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import tables
from services.intake.domain.submission import exceptions
from services.intake.domain.submission.schemas import (
    AmountIn,
    AttachmentIn,
    CustomerRead,
    SubmissionAccepted,
    SubmissionCreate,
    SubmissionRead,
)
from services.intake.settings import IntakeSettings
from shared import context
from shared.auth import Principal
from shared.events import registry
from shared.events.contracts.complaints import (
    COMPLAINT_RECEIVED_V1,
    SUGGESTION_RECEIVED_V1,
    ComplaintReceived,
    SuggestionReceived,
)
from shared.events.envelope import Envelope, new_event, wire_headers
from shared.privacy import Vault, preview, pseudonymous_key, redact

Kind = Literal["complaint", "suggestion"]
#: Crockford base32 without I, L, O, U: unambiguous when read over the phone.
_REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# --- SQL of the batch write path (asyncpg, $n parameters; see the module docstring) -----

#: Records a whole batch in one statement: the PL/pgSQL function ``intake.record_batch``
#: (migrations 0003-0005) claims the keys, takes the per-customer locks, links duplicates and
#: writes every row. $1 a JSON array, one object per submission (:meth:`Prepared.record_json`);
#: $2 now; $3 expiry of new key claims; $4 the duplicate window (interval). One row per
#: item, in order: ``recorded`` and ``duplicate_of``, or the ``request_hash`` and
#: ``response`` of the request that holds its key.
_RECORD_BATCH = """
SELECT o_recorded AS recorded, o_duplicate_of AS duplicate_of,
       o_request_hash AS request_hash, o_response AS response
FROM intake.record_batch($1::jsonb, $2, $3, $4)
"""

#: Personal fields of the customer, as stored in the vault.
PERSONAL_FIELDS = ("customer_number", "name", "phone", "email", "id_number", "account_number")


@functools.cache
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def new_reference(kind: Kind, received_at: datetime, tz: str) -> str:
    """Return a customer-facing reference such as ``C-260930-7K3QX9``.

    ``C`` complaint / ``S`` suggestion, the local receipt date (YYMMDD), six Crockford
    base32 characters (32^6, about 10^9 per day and kind). Uniqueness is enforced by the
    database; a collision makes the batch draw new references and retry.
    """
    local = received_at.astimezone(_zone(tz))
    bits = secrets.randbits(30)  # one draw from the OS generator: 6 x 5 bits
    tail = "".join([_REF_ALPHABET[(bits >> shift) & 31] for shift in (25, 20, 15, 10, 5, 0)])
    prefix = "C" if kind == "complaint" else "S"
    return f"{prefix}-{local.year % 100:02d}{local.month:02d}{local.day:02d}-{tail}"


#: Characters of a text that :func:`detect_language` looks at.
LANGUAGE_SAMPLE = 500


def detect_language(text: str) -> str:
    """Guess the language of ``text`` from its script (BCP 47 primary tag).

    Kana: ``ja``; Hangul: ``ko``; Han >= 20 % of letters: ``zh``; Arabic: ``ar``; Hebrew:
    ``he``; Cyrillic: ``ru``; otherwise ``en``. Good enough for routing by script; a client
    that knows the language sends it. Only the first :data:`LANGUAGE_SAMPLE` characters
    are looked at (a long text's script is clear long before its end).
    """
    counts = {"han": 0, "kana": 0, "hangul": 0, "arabic": 0, "hebrew": 0, "cyrillic": 0}
    letters = 0
    for ch in text[:LANGUAGE_SAMPLE]:
        if not ch.isalpha():
            continue
        letters += 1
        cp = ord(ch)
        if 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2FA1F:
            counts["han"] += 1
        elif 0x3040 <= cp <= 0x30FF:
            counts["kana"] += 1
        elif 0xAC00 <= cp <= 0xD7AF or 0x1100 <= cp <= 0x11FF:
            counts["hangul"] += 1
        elif 0x0600 <= cp <= 0x06FF:
            counts["arabic"] += 1
        elif 0x0590 <= cp <= 0x05FF:
            counts["hebrew"] += 1
        elif 0x0400 <= cp <= 0x04FF:
            counts["cyrillic"] += 1
    if not letters:
        return "en"
    if counts["kana"] >= 0.1 * letters:
        return "ja"
    if counts["hangul"] >= 0.2 * letters:
        return "ko"
    if counts["han"] >= 0.2 * letters:
        return "zh"
    for script, tag in (("arabic", "ar"), ("hebrew", "he"), ("cyrillic", "ru")):
        if counts[script] >= 0.5 * letters:
            return tag
    return "en"


def request_hash(kind: Kind, body: SubmissionCreate) -> str:
    """Return the SHA-256 (hex) of the canonical request (kind + body JSON)."""
    return hashlib.sha256((kind + body.model_dump_json()).encode()).hexdigest()


def content_hash(kind: Kind, customer_key: str, description: str) -> str:
    """Return the hash that links probable duplicates: same customer, kind and text."""
    normal = " ".join(description.split()).casefold()
    return hashlib.sha256(f"{kind}|{customer_key}|{normal}".encode()).hexdigest()


@dataclass
class Prepared:
    """One submission ready to be written (everything but the database work).

    Attributes:
        principal: the caller; ``principal.subject`` scopes idempotency keys.
        idempotency_key: the ``Idempotency-Key`` header, or None.
        req_hash: SHA-256 of the request, compared when a key is reused.
        row: values of the ``submission`` row (``duplicate_of`` filled by the batch).
        vault_row: values of the ``vault`` row (ciphertext bound to the submission id).
        event: the ``*.received`` envelope; topic: its logical topic.
        correlation_id: of the request, for the audit row.
    """

    kind: Kind
    principal: Principal
    idempotency_key: str | None
    req_hash: str
    row: dict[str, Any]
    vault_row: dict[str, Any]
    event: Envelope[Any]
    topic: str
    correlation_id: str | None = None
    reply: SubmissionAccepted | None = field(default=None)
    _record: str | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        """The submission id."""
        return str(self.row["id"])

    def redraw_reference(self, tz: str) -> None:
        """Draw a new reference (after a collision), in the row and in the event."""
        reference = new_reference(self.kind, self.row["received_at"], tz)
        self.row["reference"] = reference
        data = self.event.data.model_copy(update={"reference": reference})
        self.event = self.event.model_copy(update={"data": data})
        self._record = None

    def record_json(self) -> str:
        """Return this submission's object of the batch statement (one JSON object).

        Holds the submission row (but ``duplicate_of``, found by the batch), the vault row
        (ciphertext in base64), the outbox row (the envelope serialised by pydantic, as
        ``shared.events.outbox.outbox_row`` stores it), the audit and idempotency fields
        (``idempotency_key``, ``req_hash``) and ``response``, the reply to remember for a
        keyed request with ``duplicate_of`` null (the batch sets it). Built once (on the
        request's task, see :func:`prepare`) and rebuilt after :meth:`redraw_reference`.
        """
        if self._record is None:
            row = self.row
            envelope = self.event
            fields = {
                **row,
                "received_at": row["received_at"].isoformat(),
                "occurred_at": row["occurred_at"].isoformat() if row["occurred_at"] else None,
                "actor_roles": ",".join(sorted(self.principal.roles)),
                "correlation_id": self.correlation_id,
                "key_id": self.vault_row["key_id"],
                "ciphertext": binascii.b2a_base64(
                    self.vault_row["ciphertext"], newline=False
                ).decode(),
                "event_id": envelope.id,
                "topic": self.topic,
                "event_key": envelope.subject,
                "event_type": envelope.type,
                "headers": [[k, v.decode()] for k, v in wire_headers(envelope.type, envelope.id)],
                "idempotency_key": self.idempotency_key,
                "req_hash": self.req_hash,
            }
            del fields["duplicate_of"]
            reply = SubmissionAccepted(
                id=self.id, reference=row["reference"], received_at=row["received_at"]
            )
            self._record = (
                pydantic_core.to_json(fields).decode()[:-1]
                + ',"payload":'
                + envelope.model_dump_json()
                + ',"response":'
                + reply.model_dump_json()
                + "}"
            )
        return self._record


def prepare(
    *,
    kind: Kind,
    body: SubmissionCreate,
    principal: Principal,
    settings: IntakeSettings,
    vault: Vault,
    now: datetime,
    idempotency_key: str | None = None,
) -> Prepared:
    """Turn a validated request into the rows and the event to write.

    Args:
        kind: ``complaint`` or ``suggestion``.
        body: the validated request.
        principal: the caller (``created_by``, idempotency scope, audit actor).
        settings: intake settings (time zone, pseudonym key).
        vault: personal-data encryption (AES-256-GCM, current key).
        now: the receipt instant (aware) used when the body gives no ``received_at``.
        idempotency_key: the ``Idempotency-Key`` header, if any.

    Returns:
        The prepared submission.

    Raises:
        IdempotencyKeyInvalid: the key is empty or longer than 200 characters.
    """
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
        raise exceptions.IdempotencyKeyInvalid("Idempotency-Key must be 1..200 characters")
    submission_id = str(uuid_utils.uuid4())  # random (v4); Rust, no syscall per id
    received_at = (body.received_at or now).astimezone(UTC)
    reference = new_reference(kind, received_at, settings.timezone)
    customer_key = pseudonymous_key(
        settings.pseudonym_key.get_secret_value(), body.customer.customer_number
    )
    description = redact(body.description)
    subject = redact(body.subject) if body.subject else None
    language = body.language or detect_language(body.description)
    amount: AmountIn | None = getattr(body, "amount", None)
    occurred_at: datetime | None = getattr(body, "occurred_at", None)
    row: dict[str, Any] = {
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
        "content_hash": content_hash(kind, customer_key, body.description),
        "duplicate_of": None,
        "created_by": principal.subject,
    }
    personal = body.customer.model_dump(exclude_none=True)
    personal["description"] = body.description
    if body.subject:
        personal["subject"] = body.subject
    key_id, blob = vault.encrypt(personal, aad=submission_id)
    vault_row = {"submission_id": submission_id, "key_id": key_id, "ciphertext": blob}
    event: Envelope[Any]
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
        topic = registry.COMPLAINTS_RECEIVED
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
        topic = registry.SUGGESTIONS_RECEIVED
    prepared = Prepared(
        kind=kind,
        principal=principal,
        idempotency_key=idempotency_key,
        req_hash=request_hash(kind, body),
        row=row,
        vault_row=vault_row,
        event=event,
        topic=topic,
        correlation_id=context.correlation_id.get(),
    )
    prepared.record_json()  # on the request's task, not in the batch's transaction
    return prepared


#: The outcome of one prepared submission: ``(reply, replayed)`` or a domain error.
Outcome = tuple[SubmissionAccepted, bool] | exceptions.AppError


def _remembered(stored_hash: str | None, response: Any, item: Prepared) -> Outcome:
    if stored_hash is None:  # pragma: no cover - the key row was purged meanwhile
        return exceptions.IdempotencyKeyReused("the first request with this key is still running")
    if stored_hash != item.req_hash:
        return exceptions.IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request body"
        )
    if response is None:  # pragma: no cover - only while another replica's request runs
        return exceptions.IdempotencyKeyReused("the first request with this key is still running")
    return SubmissionAccepted.model_validate(response), True


async def record_batch(
    *,
    connection: asyncpg.Connection,
    items: Sequence[Prepared],
    settings: IntakeSettings,
    now: datetime,
) -> list[Outcome]:
    """Record prepared submissions with one SQL statement (not committed here).

    Takes the asyncpg connection rather than a session (STYLE.md §3 otherwise): the batch
    is one call of the PL/pgSQL function ``intake.record_batch`` (module docstring). Run
    outside a transaction, the statement is its own atomic, durable transaction (what the
    group committer does: one round trip per batch); inside one, the caller commits.

    Idempotency (issue 3 §2): the first request with a ``(client, key)`` claims it with
    ``INSERT .. ON CONFLICT`` (a concurrent transaction with the same key waits on the
    primary key until the first commits, then sees its reply); later requests with the
    same key and body get the remembered reply, with another body a 409. An expired key
    is claimed anew as if it did not exist. Keys are claimed in sorted order so that two
    batches never deadlock on each other. Requests of this batch that repeat a key used
    earlier in the batch (followers) are not sent; they take their leader's outcome.

    Probable duplicates: without a key, a submission of the same kind, customer and
    normalised text received within ``duplicate_window_seconds`` of an earlier one (in the
    database or earlier in the batch) is recorded with ``duplicate_of`` set, never
    dropped. Submissions of one customer are serialised across transactions by an advisory
    lock taken before the earlier ones are read.

    Args:
        connection: an asyncpg connection (in a transaction or not, see above).
        items: prepared submissions, in arrival order.
        settings: intake settings (key TTL in seconds, duplicate window in seconds).
        now: the current instant (aware), for key expiry.

    Returns:
        One outcome per item, in order.

    Raises:
        asyncpg.PostgresError: the statement failed (nothing of the batch was written when
            it ran as its own transaction); a reference collision is a unique violation
            of ``submission_reference_key``.
    """
    outcomes: list[Outcome | None] = [None] * len(items)

    # Leaders (first per key in the batch, and every request without a key) are sent;
    # followers take their leader's outcome below.
    leaders: dict[tuple[str, str], int] = {}
    followers: list[tuple[int, int]] = []  # (item index, leader index)
    sent: list[int] = []
    for i, item in enumerate(items):
        if item.idempotency_key is not None:
            k = (item.principal.subject, item.idempotency_key)
            if k in leaders:
                followers.append((i, leaders[k]))
                continue
            leaders[k] = i
        sent.append(i)

    rows = await connection.fetch(
        _RECORD_BATCH,
        "[" + ",".join([items[i].record_json() for i in sent]) + "]",
        now,
        now + timedelta(seconds=settings.idempotency_ttl_seconds),
        timedelta(seconds=settings.duplicate_window_seconds),
    )
    for i, r in zip(sent, rows, strict=True):
        p = items[i]
        if r["recorded"]:
            p.row["duplicate_of"] = r["duplicate_of"]
            reply = SubmissionAccepted(
                id=p.id,
                reference=p.row["reference"],
                received_at=p.row["received_at"],
                duplicate_of=r["duplicate_of"],
            )
            outcomes[i] = (reply, False)
        else:
            outcomes[i] = _remembered(r["request_hash"], r["response"], p)

    for i, lead in followers:
        prior = outcomes[lead]
        if items[lead].req_hash != items[i].req_hash:
            outcomes[i] = exceptions.IdempotencyKeyReused(
                "this Idempotency-Key was used with a different request body"
            )
        elif isinstance(prior, tuple):
            outcomes[i] = (prior[0], True)
        else:
            outcomes[i] = prior
    return [o for o in outcomes if o is not None]


async def purge_expired_keys(*, session: AsyncSession, now: datetime, limit: int = 5000) -> int:
    """Delete up to ``limit`` idempotency keys that expired before ``now``.

    Returns:
        The number of keys deleted.
    """
    t = tables.idempotency_key
    doomed = select(t.c.client, t.c.key).where(t.c.expires_at < now).limit(limit)
    result = await session.execute(delete(t).where(tuple_(t.c.client, t.c.key).in_(doomed)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _mask(value: str | None, keep: int = 2) -> str | None:
    if value is None:
        return None
    if len(value) <= keep * 2:
        return "*" * len(value)
    return value[:keep] + "*" * (len(value) - keep * 2) + value[-keep:]


async def get(
    *,
    session: AsyncSession,
    submission_id: str,
    kind: Kind,
    vault: Vault,
    principal: Principal,
    unmasked: bool,
    preview_chars: int = 120,
) -> SubmissionRead:
    """Load one submission with its customer, masked unless ``unmasked``.

    An unmasked read writes a ``personal_data.read`` audit row in the same transaction
    (plan §9.1; issue 3 §4), so the data cannot be returned without its audit row.

    Args:
        session: the unit of work (committed by the caller, with the audit row).
        submission_id: the id from the URL (any string; not a UUID means not found).
        kind: ``complaint`` or ``suggestion``.
        vault: decrypts the personal data.
        principal: the caller, written to the audit row of an unmasked read.
        unmasked: whether the caller's role may see personal data in clear.
        preview_chars: length of ``preview`` in code points; it never splits a character.

    Raises:
        SubmissionNotFound: no submission of that kind with that id.
    """
    s = tables.submission
    try:
        uuid.UUID(submission_id)
    except ValueError as exc:
        raise exceptions.SubmissionNotFound(f"no {kind} with that id") from exc
    row = (
        await session.execute(
            select(s, tables.vault.c.key_id, tables.vault.c.ciphertext)
            .join(tables.vault, tables.vault.c.submission_id == s.c.id)
            .where(s.c.id == submission_id, s.c.kind == kind)
        )
    ).first()
    if row is None:
        raise exceptions.SubmissionNotFound(f"no {kind} with that id")
    personal: dict[str, Any] = vault.decrypt(row.key_id, row.ciphertext, aad=submission_id)
    if unmasked:
        customer = CustomerRead(
            customer_key=row.customer_key,
            masked=False,
            **{f: personal.get(f) for f in PERSONAL_FIELDS},
        )
        await session.execute(
            insert(tables.audit_log).values(
                actor=principal.subject,
                actor_roles=",".join(sorted(principal.roles)),
                action="personal_data.read",
                subject_type=kind,
                subject_id=submission_id,
                details={"fields": sorted(f for f in PERSONAL_FIELDS if personal.get(f))},
                correlation_id=context.correlation_id.get(),
            )
        )
    else:
        customer = CustomerRead(
            customer_key=row.customer_key,
            masked=True,
            **{f: _mask(personal.get(f)) for f in PERSONAL_FIELDS},
        )
    description = personal["description"] if unmasked else row.description
    return SubmissionRead(
        id=row.id,
        kind=row.kind,
        reference=row.reference,
        channel=row.channel,
        status=row.status,
        received_at=row.received_at,
        recorded_at=row.recorded_at,
        description=description,
        preview=preview(description, preview_chars),
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


async def rotate_vault_keys(
    *, session: AsyncSession, vault: Vault, batch_size: int = 500
) -> tuple[int, dict[str, int]]:
    """Re-encrypt up to ``batch_size`` vault rows not under the current key.

    Rows are claimed with ``FOR UPDATE SKIP LOCKED``, decrypted with their own key and
    encrypted with ``vault.current`` (same AAD: the submission id). Call repeatedly until
    it returns 0; each call is one transaction of the caller.

    Returns:
        ``(rows re-encrypted, rows per old key id)``.

    Raises:
        KeyError: a row's key id is not among the configured keys (configure every old key
            until rotation is done).
    """
    v = tables.vault
    rows = (
        await session.execute(
            select(v.c.submission_id, v.c.key_id, v.c.ciphertext)
            .where(v.c.key_id != vault.current)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not rows:
        return 0, {}
    by_key: dict[str, int] = {}
    params = []
    for r in rows:
        plain = vault.decrypt(r.key_id, r.ciphertext, aad=r.submission_id)
        key_id, blob = vault.encrypt(plain, aad=r.submission_id)
        by_key[r.key_id] = by_key.get(r.key_id, 0) + 1
        params.append({"b_id": r.submission_id, "b_key": key_id, "b_blob": blob})
    await session.execute(
        update(v)
        .where(v.c.submission_id == bindparam("b_id"))
        .values(key_id=bindparam("b_key"), ciphertext=bindparam("b_blob")),
        params,
    )
    return len(rows), by_key


async def count_by_key(*, session: AsyncSession) -> dict[str, int]:
    """Return the number of vault rows per key id."""
    v = tables.vault
    rows = await session.execute(select(v.c.key_id, func.count()).group_by(v.c.key_id))
    return {r[0]: int(r[1]) for r in rows}
