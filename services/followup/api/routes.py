"""HTTP routes of followup (ARCHITECTURE.md §5): the callers' work list and attempts.

Roles: agents (the callers) read the work list and record attempts; supervisors and
analysts read; auditors read ``GET /v1/audit``; ``admin`` is admitted everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.followup.domain.visit import service as visit_service
from services.followup.domain.visit.schemas import (
    AttemptCreate,
    AttemptRecorded,
    VisitPage,
    VisitRead,
)
from services.followup.settings import VisitChannel
from shared.app import SessionDep
from shared.auth import Principal, require_roles
from shared.errors import AppError

router = APIRouter(prefix="/v1", tags=["followup"])
Readers = Annotated[Principal, require_roles("agent", "supervisor", "analyst")]
Callers = Annotated[Principal, require_roles("agent")]


class NaiveDateTime(AppError):
    """A date-time without a UTC offset."""

    code = "naive_datetime"
    status = 422
    title = "Date-time needs a UTC offset"


@router.get("/followups", response_model=VisitPage, summary="Visits, by due time (work list)")
async def list_followups(
    request: Request,
    session: SessionDep,
    _: Readers,
    status: visit_service.ListStatus | None = None,
    department: str | None = None,
    channel: VisitChannel | None = None,
    subject_kind: visit_service.SubjectKind | None = None,
    subject_id: str | None = None,
    due_before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> VisitPage:
    """Return visits ordered by the end of their clock.

    ``status=due`` is the callers' list: active visits whose next attempt time has come,
    overdue ones included. Other values: ``overdue``, ``scheduled``, ``active``,
    ``completed``, ``cancelled``. ``due_before`` keeps visits whose clock ends before it.
    """
    if due_before is not None and due_before.tzinfo is None:
        raise NaiveDateTime("due_before must carry a UTC offset, e.g. 2026-10-14T00:00:00+08:00")
    async with session.begin():
        return await visit_service.list_visits(
            session=session,
            calendar=request.app.state.calendar,
            settings=request.app.state.settings,
            now=datetime.now(UTC),
            status=status,
            department=department,
            channel=channel,
            subject_kind=subject_kind,
            subject_id=subject_id,
            due_before=due_before,
            limit=limit,
            offset=offset,
        )


@router.get("/followups/{visit_id}", response_model=VisitRead, summary="One visit")
async def get_followup(
    visit_id: str, request: Request, session: SessionDep, _: Readers
) -> VisitRead:
    """Return the visit with its attempts, clock state and working days left."""
    async with session.begin():
        return await visit_service.get_visit(
            session=session,
            calendar=request.app.state.calendar,
            settings=request.app.state.settings,
            visit_id=visit_id,
            now=datetime.now(UTC),
        )


@router.post(
    "/followups/{visit_id}/attempts",
    response_model=AttemptRecorded,
    status_code=201,
    summary="Record an attempt to reach the customer",
)
async def record_attempt(
    visit_id: str,
    body: AttemptCreate,
    request: Request,
    session: SessionDep,
    principal: Callers,
) -> AttemptRecorded:
    """Record a reached or unreachable attempt (audited).

    Reached: satisfied or not, score 1-5, a reason code when unsatisfied. 404 for an
    unknown visit, 409 when the visit ended or the next try is not due yet.
    """
    async with session.begin():
        return await visit_service.record_attempt(
            session=session,
            calendar=request.app.state.calendar,
            settings=request.app.state.settings,
            visit_id=visit_id,
            attempt=body,
            actor=principal,
            now=datetime.now(UTC),
        )
