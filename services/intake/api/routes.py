"""HTTP routes of intake: ``/v1/complaints``, ``/v1/suggestions`` (ARCHITECTURE.md §5).

``GET /v1/audit`` (the audit log, for auditors) is mounted from :mod:`shared.audit` in
:mod:`services.intake.main`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response

from services.intake import metrics
from services.intake.domain.submission import exceptions
from services.intake.domain.submission import service as submission_service
from services.intake.domain.submission.schemas import (
    ComplaintCreate,
    SubmissionAccepted,
    SubmissionRead,
    SuggestionCreate,
)
from services.intake.ratelimit import RateLimit
from services.intake.settings import IntakeSettings
from shared.app import SessionDep
from shared.auth import Principal, require_roles

router = APIRouter(prefix="/v1", tags=["intake"])

#: Roles that may read personal data unmasked (each such read is audited); admin too.
UNMASKED_ROLES = ("agent", "supervisor")
_PROBLEM = {"content": {"application/problem+json": {}}}
WRITE_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "invalid Idempotency-Key", **_PROBLEM},
    401: {"description": "missing or invalid bearer token", **_PROBLEM},
    403: {"description": "role not allowed", **_PROBLEM},
    409: {"description": "Idempotency-Key reused with another body", **_PROBLEM},
    413: {"description": "body too large", **_PROBLEM},
    422: {"description": "invalid field (the problem names it)", **_PROBLEM},
    429: {"description": "rate limit; see Retry-After", **_PROBLEM},
}
READ_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: WRITE_PROBLEMS[401],
    403: WRITE_PROBLEMS[403],
    404: {"description": "no such submission", **_PROBLEM},
    429: WRITE_PROBLEMS[429],
}
IDEMPOTENCY_KEY_DOC = (
    "Client-chosen key (1..200 characters) that makes a retry safe: the same key with the "
    "same body returns the first answer (header Idempotent-Replayed: true); with another "
    "body, 409. Remembered for INTAKE_IDEMPOTENCY_TTL_SECONDS."
)


def _check_size(request: Request, settings: IntakeSettings) -> None:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > settings.max_body_bytes:
        raise exceptions.PayloadTooLarge(
            f"request body of {length} bytes exceeds {settings.max_body_bytes} bytes"
        )


async def _submit(
    request: Request,
    response: Response,
    principal: Principal,
    kind: submission_service.Kind,
    body: ComplaintCreate | SuggestionCreate,
    idempotency_key: str | None,
) -> SubmissionAccepted:
    settings: IntakeSettings = request.app.state.settings
    _check_size(request, settings)
    prepared = submission_service.prepare(
        kind=kind,
        body=body,
        principal=principal,
        settings=settings,
        vault=request.app.state.vault,
        now=datetime.now(UTC),
        idempotency_key=idempotency_key,
    )
    reply, replayed = await request.app.state.committer.submit(prepared)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
        outcome = "replayed"
    else:
        outcome = "probable_duplicate" if reply.duplicate_of else "recorded"
    metrics.SUBMISSIONS.labels(kind, outcome).inc()
    response.headers["Location"] = f"/v1/{kind}s/{reply.id}"
    return reply


@router.post(
    "/complaints",
    status_code=201,
    response_model=SubmissionAccepted,
    responses=WRITE_PROBLEMS,
    summary="Record a complaint from any channel",
)
async def create_complaint(
    body: ComplaintCreate,
    request: Request,
    response: Response,
    principal: Annotated[Principal, require_roles("intake_client", "agent", "supervisor")],
    _: Annotated[Principal, RateLimit],
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description=IDEMPOTENCY_KEY_DOC)
    ] = None,
) -> SubmissionAccepted:
    """Record a complaint at once and publish ``complaints.received`` through the outbox.

    Personal data (customer fields, the original text) is stored only encrypted; the
    event carries the pseudonymous customer key and the redacted text. A submission equal
    to one from the same customer within the duplicate window is recorded with
    ``duplicate_of`` set.
    """
    return await _submit(request, response, principal, "complaint", body, idempotency_key)


@router.post(
    "/suggestions",
    status_code=201,
    response_model=SubmissionAccepted,
    responses=WRITE_PROBLEMS,
    summary="Record a suggestion",
)
async def create_suggestion(
    body: SuggestionCreate,
    request: Request,
    response: Response,
    principal: Annotated[Principal, require_roles("intake_client", "agent", "supervisor")],
    _: Annotated[Principal, RateLimit],
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description=IDEMPOTENCY_KEY_DOC)
    ] = None,
) -> SubmissionAccepted:
    """Record a suggestion and publish ``suggestions.received`` (rules as complaints)."""
    return await _submit(request, response, principal, "suggestion", body, idempotency_key)


async def _read(
    request: Request,
    session: SessionDep,
    principal: Principal,
    kind: submission_service.Kind,
    submission_id: str,
) -> SubmissionRead:
    settings: IntakeSettings = request.app.state.settings
    async with session.begin():
        return await submission_service.get(
            session=session,
            submission_id=submission_id,
            kind=kind,
            vault=request.app.state.vault,
            principal=principal,
            unmasked=principal.has_any(*UNMASKED_ROLES),
            preview_chars=settings.preview_chars,
        )


@router.get(
    "/complaints/{complaint_id}",
    response_model=SubmissionRead,
    responses=READ_PROBLEMS,
    summary="Read a complaint (personal data masked unless the role may see it)",
)
async def read_complaint(
    complaint_id: str,
    request: Request,
    session: SessionDep,
    principal: Annotated[
        Principal, require_roles("intake_client", "agent", "supervisor", "auditor")
    ],
    _: Annotated[Principal, RateLimit],
) -> SubmissionRead:
    """Return the complaint; agents, supervisors and admins see personal data in clear.

    Each read in clear is written to the audit log (``personal_data.read``).
    """
    return await _read(request, session, principal, "complaint", complaint_id)


@router.get(
    "/suggestions/{suggestion_id}",
    response_model=SubmissionRead,
    responses=READ_PROBLEMS,
    summary="Read a suggestion (personal data masked unless the role may see it)",
)
async def read_suggestion(
    suggestion_id: str,
    request: Request,
    session: SessionDep,
    principal: Annotated[
        Principal, require_roles("intake_client", "agent", "supervisor", "auditor")
    ],
    _: Annotated[Principal, RateLimit],
) -> SubmissionRead:
    """Return the suggestion; agents, supervisors and admins see personal data in clear."""
    return await _read(request, session, principal, "suggestion", suggestion_id)
