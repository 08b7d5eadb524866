"""HTTP routes of tracking (ARCHITECTURE.md §5): cases, their clocks, the due-date calculator."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from services.tracking.domain import service as case_service
from shared.app import SessionDep
from shared.auth import Principal, require_roles
from shared.errors import AppError

router = APIRouter(prefix="/v1", tags=["tracking"])
Staff = Annotated[Principal, require_roles("agent", "supervisor", "analyst", "auditor")]


class DueDateRead(BaseModel):
    """The deadline of a complaint received at ``received_at``."""

    received_at: datetime
    working_days: int
    due_date: date
    due_at: datetime
    provisional: bool


class NaiveDateTime(AppError):
    """A date-time without a UTC offset."""

    code = "naive_datetime"
    status = 422
    title = "Date-time needs a UTC offset"


@router.get("/cases", response_model=case_service.CasePage, summary="Cases, by due time")
async def list_cases(
    request: Request,
    session: SessionDep,
    _: Staff,
    status: str | None = None,
    department: str | None = None,
    category: str | None = None,
    priority: str | None = None,
    handler: str | None = None,
    due_before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> case_service.CasePage:
    """Return cases filtered by status, department, category, priority, handler, due time."""
    if due_before is not None and due_before.tzinfo is None:
        raise NaiveDateTime("due_before must carry a UTC offset")
    async with session.begin():
        return await case_service.list_cases(
            session=session,
            calendar=request.app.state.calendar,
            now=datetime.now(UTC),
            filters={
                "status": status,
                "department": department,
                "category": category,
                "priority": priority,
                "handler": handler,
            },
            due_before=due_before,
            limit=limit,
            offset=offset,
        )


@router.get("/cases/{case_id}", response_model=case_service.CaseRead, summary="One case")
async def get_case(
    case_id: str, request: Request, session: SessionDep, _: Staff
) -> case_service.CaseRead:
    """Return the case with due_at, due_date, sla_state and working_days_left per clock."""
    async with session.begin():
        return await case_service.get_case(
            session=session,
            calendar=request.app.state.calendar,
            case_id=case_id,
            now=datetime.now(UTC),
        )


@router.get("/sla/due-date", response_model=DueDateRead, summary="Due-date calculator")
async def due_date(
    request: Request,
    _: Staff,
    received_at: datetime,
    working_days: Annotated[int, Query(ge=1, le=60)] = 5,
) -> DueDateRead:
    """Return the due date of a complaint received at ``received_at`` (with offset)."""
    if received_at.tzinfo is None:
        raise NaiveDateTime("received_at must carry a UTC offset, e.g. 2026-09-30T10:00:00+08:00")
    dl = request.app.state.calendar.deadline(received_at, working_days)
    return DueDateRead(
        received_at=received_at,
        working_days=working_days,
        due_date=dl.due_date,
        due_at=dl.due_at,
        provisional=dl.provisional,
    )
