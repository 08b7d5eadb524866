"""HTTP routes of intake: ``/v1/complaints``, ``/v1/suggestions`` (ARCHITECTURE.md §5).

``GET /v1/audit`` (the audit log, for auditors) is mounted from :mod:`shared.audit` in
:mod:`services.intake.main`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.intake import metrics
from services.intake.domain.submission import exceptions
from services.intake.domain.submission import service as submission_service
from services.intake.domain.submission.schemas import (
    ComplaintCreate,
    SubmissionAccepted,
    SubmissionCreate,
    SubmissionRead,
    SuggestionCreate,
)
from services.intake.ratelimit import RateLimit, rate_limited_principal
from services.intake.settings import IntakeSettings
from shared.app import SessionDep
from shared.auth import Principal, current_principal, require_roles
from shared.errors import AppError

#: The roles that may submit (declared on both POST routes, checked by the lean path too).
SUBMIT_ROLES = require_roles("intake_client", "agent", "supervisor")


class LeanSubmit:
    """Pure-ASGI middleware of intake: a lean request path for the two POST routes.

    FastAPI's generic request handling (routing over every route, dependency solving, error
    collection, re-validation and re-encoding of the response model) cost about as much
    CPU per request as recording the submission itself (profiles in docs/intake.md,
    "Benchmark"). This middleware runs inside the platform's (observability, body limit:
    :class:`shared.app.ServiceSpec` ``middleware``) and answers ``POST`` on the paths of
    endpoints marked with :func:`lean_submit` itself when the request has
    ``Content-Type: application/json`` and at most one ``Idempotency-Key`` header and its
    body, token and role pass: the same steps in FastAPI's order (the body model's
    validation straight from the JSON, which accepts and rejects the same bodies as FastAPI's
    ``json.loads`` and validation in one pass instead of two, :func:`current_principal`,
    the role check of :data:`SUBMIT_ROLES`,
    :func:`rate_limited_principal`), then :func:`_submit`, and the reply model written once
    as JSON. An :class:`~shared.errors.AppError` raised after those checks (429, 413, 400,
    409) is answered by the app's own handler for it. Every other request, and every
    request that fails one of the pure checks (JSON, body, token, role), goes on to FastAPI
    with its body replayed, so those answers are exactly FastAPI's
    (``test_intake_lean_path.py`` compares both paths).

    Args:
        app: the next ASGI app (FastAPI's exception middleware and router).
        routes: the routers whose marked endpoints take the lean path.
    """

    def __init__(self, app: ASGIApp, routes: list[APIRouter]) -> None:
        self.app = app
        self._lean: dict[str, tuple[APIRoute, submission_service.Kind, type[SubmissionCreate]]]
        self._lean = {}
        for r in routes:
            for route in r.routes:
                marked = getattr(getattr(route, "endpoint", None), "_lean_submit", None)
                if marked is not None and isinstance(route, APIRoute) and "POST" in route.methods:
                    self._lean[route.path] = (route, *marked)
        self._check_roles = SUBMIT_ROLES.dependency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a lean request here; pass every other request on (see the class)."""
        lean = (
            self._lean.get(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path")
            else None
        )
        if lean is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        headers = request.headers
        if (
            headers.get("content-type") != "application/json"
            or len(headers.getlist("idempotency-key")) > 1
        ):
            await self.app(scope, receive, send)
            return
        route, kind, model = lean
        raw = await request.body()
        try:
            body = model.model_validate_json(raw)
            principal = await self._check_roles(await current_principal(request))
        except Exception:  # bad JSON or body, no or bad token, role not allowed, ...
            await self.app(scope, _replay(raw, receive), send)  # ... FastAPI's exact answer
            return
        scope["route"] = route  # the route template for the duration metric
        try:
            await rate_limited_principal(request, principal)
            reply, extra = await _submit(
                request, principal, kind, body, headers.get("idempotency-key")
            )
            response: Response = Response(
                reply.model_dump_json(),
                status_code=201,
                headers=extra,
                media_type="application/json",
            )
        except AppError as exc:
            handler = request.app.exception_handlers[AppError]
            response = await handler(request, exc)
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """Return a ``receive`` that yields ``body`` once, then what ``receive`` yields."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def lean_submit(
    kind: submission_service.Kind, model: type[SubmissionCreate]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a POST endpoint for :class:`LeanSubmit`'s lean path (``kind``, body ``model``)."""

    def mark(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        endpoint._lean_submit = (kind, model)  # type: ignore[attr-defined]
        return endpoint

    return mark


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
    principal: Principal,
    kind: submission_service.Kind,
    body: SubmissionCreate,
    idempotency_key: str | None,
) -> tuple[SubmissionAccepted, dict[str, str]]:
    """Record one submission; return the reply and the headers to add to the 201.

    Raises:
        AppError: 413 body too large, 400 invalid key, 409 key reused with another body.
    """
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
    headers = {"Location": f"/v1/{kind}s/{reply.id}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
        outcome = "replayed"
    else:
        outcome = "probable_duplicate" if reply.duplicate_of else "recorded"
    metrics.submissions(kind, outcome).inc()
    return reply, headers


async def _submit_standard(
    request: Request,
    response: Response,
    principal: Principal,
    kind: submission_service.Kind,
    body: SubmissionCreate,
    idempotency_key: str | None,
) -> SubmissionAccepted:
    reply, headers = await _submit(request, principal, kind, body, idempotency_key)
    response.headers.update(headers)
    return reply


@router.post(
    "/complaints",
    status_code=201,
    response_model=SubmissionAccepted,
    responses=WRITE_PROBLEMS,
    summary="Record a complaint from any channel",
)
@lean_submit("complaint", ComplaintCreate)
async def create_complaint(
    body: ComplaintCreate,
    request: Request,
    response: Response,
    principal: Annotated[Principal, SUBMIT_ROLES],
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
    return await _submit_standard(request, response, principal, "complaint", body, idempotency_key)


@router.post(
    "/suggestions",
    status_code=201,
    response_model=SubmissionAccepted,
    responses=WRITE_PROBLEMS,
    summary="Record a suggestion",
)
@lean_submit("suggestion", SuggestionCreate)
async def create_suggestion(
    body: SuggestionCreate,
    request: Request,
    response: Response,
    principal: Annotated[Principal, SUBMIT_ROLES],
    _: Annotated[Principal, RateLimit],
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description=IDEMPOTENCY_KEY_DOC)
    ] = None,
) -> SubmissionAccepted:
    """Record a suggestion and publish ``suggestions.received`` (rules as complaints)."""
    return await _submit_standard(request, response, principal, "suggestion", body, idempotency_key)


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
