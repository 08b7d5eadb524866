"""HTTP routes of intake: ``/v1/complaints`` and ``/v1/suggestions`` (ARCHITECTURE.md §5)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from sqlalchemy.exc import IntegrityError

from services.intake.domain.submission import exceptions
from services.intake.domain.submission import service as submission_service
from services.intake.domain.submission.schemas import (
    ComplaintCreate,
    SubmissionAccepted,
    SubmissionRead,
    SuggestionCreate,
)
from services.intake.settings import IntakeSettings
from shared.app import SessionDep
from shared.auth import Principal, require_roles

router = APIRouter(prefix="/v1", tags=["intake"])

#: Roles that may read personal data unmasked (each such read is audited).
UNMASKED_ROLES = ("agent", "supervisor")
PROBLEMS = {
    401: {"description": "missing or invalid bearer token"},
    403: {"description": "role not allowed"},
    409: {"description": "Idempotency-Key reused with another body"},
    413: {"description": "body too large"},
    422: {"description": "invalid field (problem+json names it)"},
}


def _check_size(request: Request, settings: IntakeSettings) -> None:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > settings.max_body_bytes:
        raise exceptions.PayloadTooLarge(
            f"request body of {length} bytes exceeds {settings.max_body_bytes} bytes"
        )


async def _submit(
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Principal,
    kind: submission_service.Kind,
    body: ComplaintCreate | SuggestionCreate,
    idempotency_key: str | None,
) -> SubmissionAccepted:
    settings: IntakeSettings = request.app.state.settings
    _check_size(request, settings)
    for attempt in range(3):
        try:
            async with session.begin():
                reply, replayed = await submission_service.record(
                    session=session,
                    kind=kind,
                    body=body,
                    client=principal.subject,
                    settings=settings,
                    vault=request.app.state.vault,
                    now=datetime.now(UTC),
                    idempotency_key=idempotency_key,
                )
            break
        except IntegrityError as exc:  # a reference collision: draw a new one
            if "reference" not in str(exc.orig) or attempt == 2:
                raise
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/v1/{kind}s/{reply.id}"
    return reply


@router.post(
    "/complaints",
    status_code=201,
    response_model=SubmissionAccepted,
    responses=PROBLEMS,
    summary="Record a complaint from any channel",
)
async def create_complaint(
    body: ComplaintCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, require_roles("intake_client", "agent", "supervisor")],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> SubmissionAccepted:
    """Record a complaint at once and publish ``complaints.received`` through the outbox.

    The same ``Idempotency-Key`` with the same body returns the original answer; with a
    different body, 409.
    """
    return await _submit(request, response, session, principal, "complaint", body, idempotency_key)


@router.post(
    "/suggestions",
    status_code=201,
    response_model=SubmissionAccepted,
    responses=PROBLEMS,
    summary="Record a suggestion",
)
async def create_suggestion(
    body: SuggestionCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, require_roles("intake_client", "agent", "supervisor")],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> SubmissionAccepted:
    """Record a suggestion and publish ``suggestions.received``."""
    return await _submit(request, response, session, principal, "suggestion", body, idempotency_key)


@router.get(
    "/complaints/{complaint_id}",
    response_model=SubmissionRead,
    summary="Read a complaint (personal data masked unless the role may see it)",
)
async def read_complaint(
    complaint_id: str,
    request: Request,
    session: SessionDep,
    principal: Annotated[
        Principal, require_roles("intake_client", "agent", "supervisor", "auditor")
    ],
) -> SubmissionRead:
    """Return the complaint; agents and supervisors see personal data in clear."""
    async with session.begin():
        return await submission_service.get(
            session=session,
            submission_id=complaint_id,
            kind="complaint",
            vault=request.app.state.vault,
            unmasked=principal.has_any(*UNMASKED_ROLES),
        )


@router.get(
    "/suggestions/{suggestion_id}",
    response_model=SubmissionRead,
    summary="Read a suggestion (personal data masked unless the role may see it)",
)
async def read_suggestion(
    suggestion_id: str,
    request: Request,
    session: SessionDep,
    principal: Annotated[
        Principal, require_roles("intake_client", "agent", "supervisor", "auditor")
    ],
) -> SubmissionRead:
    """Return the suggestion; agents and supervisors see personal data in clear."""
    async with session.begin():
        return await submission_service.get(
            session=session,
            submission_id=suggestion_id,
            kind="suggestion",
            vault=request.app.state.vault,
            unmasked=principal.has_any(*UNMASKED_ROLES),
        )
