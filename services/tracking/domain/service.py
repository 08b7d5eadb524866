"""Opening cases and reading them with their clocks (ARCHITECTURE.md §4).

A case opens when routing reports a complaint. Its clocks start from the complaint's
receipt instant (not from when the case opened: a slow pipeline never buys time):

- ``resolution``: 5 working days (plan §7.1.3 (3); Civil Code arts. 201 and 203);
- ``acknowledgement``: 1 working day (first response);
- ``regulatory``: 15 calendar days, running on even when the internal clock pauses.

Functions here never commit (STYLE.md §3).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Select, and_, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.tracking import tables
from services.tracking.settings import TrackingSettings
from shared.errors import NotFound
from shared.events import outbox, registry
from shared.events.contracts.cases import CASE_OPENED_V1, CaseOpened
from shared.events.contracts.complaints import ComplaintRouted
from shared.events.envelope import new_event
from shared.workcalendar import WorkingDayCalendar

ClockState = Literal["on_track", "at_risk", "breached", "met", "missed"]


class ClockRead(BaseModel):
    """One clock of a case.

    Attributes:
        due_at: end of the period (UTC instant).
        due_date: last day of the period (bank's local date).
        state: on_track, at_risk (warning point passed), breached (running past due),
            met (stopped in time), missed (stopped late).
        working_days_left: working days from now to ``due_at`` (negative when overdue);
            None once the clock stopped.
    """

    kind: str
    round: int
    started_at: datetime
    due_at: datetime
    due_date: date
    provisional: bool
    stopped_at: datetime | None
    state: ClockState
    working_days_left: float | None


class CaseRead(BaseModel):
    """A case with its clocks; ``due_at``/``due_date``/``sla_state`` repeat the current
    resolution clock for convenience (ARCHITECTURE.md §5).
    """

    id: str
    complaint_id: str
    reference: str
    status: str
    category: str
    product_line: str
    priority: str
    department: str
    handler: str | None
    channel: str
    customer_key: str
    branch_code: str | None
    needs_triage: bool
    received_at: datetime
    opened_at: datetime
    reopen_count: int
    due_at: datetime
    due_date: date
    provisional: bool
    sla_state: ClockState
    working_days_left: float | None
    clocks: list[ClockRead]


class CasePage(BaseModel):
    """A page of cases ordered by resolution due time."""

    total: int
    items: list[CaseRead]


def clock_state(
    *, now: datetime, due_at: datetime, warn_at: datetime | None, stopped_at: datetime | None
) -> ClockState:
    """Return the state of a clock at ``now``."""
    if stopped_at is not None:
        return "met" if stopped_at <= due_at else "missed"
    if now >= due_at:
        return "breached"
    if warn_at is not None and now >= warn_at:
        return "at_risk"
    return "on_track"


def warn_instant(calendar: WorkingDayCalendar, due_at: datetime, days_left: float) -> datetime:
    """Return when a clock enters its warning window: ``days_left`` working days before due.

    Walks back whole working days from the due date; the warning starts at the local
    midnight that begins that window (for 1 day left: the start of the last working day).
    """
    from datetime import timedelta

    local_due_end = due_at.astimezone(calendar.tz)
    day = (local_due_end - timedelta(microseconds=1)).date()
    whole = int(days_left)
    counted = 0
    while counted < whole:
        if calendar.is_working_day(day):
            counted += 1
            if counted == whole:
                break
        day -= timedelta(days=1)
    start = datetime.combine(day, datetime.min.time(), tzinfo=calendar.tz)
    return start.astimezone(UTC)


async def open_case(
    *,
    session: AsyncSession,
    calendar: WorkingDayCalendar,
    settings: TrackingSettings,
    routed: ComplaintRouted,
    now: datetime,
) -> bool:
    """Open the case of a routed complaint with its three clocks; stage ``cases.opened``.

    Returns:
        False when the case already existed (a replayed event): nothing changes.
    """
    created = await session.execute(
        pg_insert(tables.case)
        .values(
            id=routed.complaint_id,
            reference=routed.reference,
            status="opened",
            category=routed.category,
            product_line=routed.product_line,
            priority=routed.priority,
            department=routed.department,
            channel=routed.channel,
            customer_key=routed.customer_key,
            branch_code=routed.branch_code,
            region=routed.region,
            needs_triage=routed.needs_triage,
            received_at=routed.received_at,
            opened_at=now,
        )
        .on_conflict_do_nothing()
        .returning(tables.case.c.id)
    )
    if created.first() is None:
        return False
    resolution = calendar.deadline(routed.received_at, settings.resolution_working_days)
    ack = calendar.deadline(routed.received_at, settings.acknowledgement_working_days)
    regulatory = calendar.calendar_deadline(routed.received_at, settings.regulatory_calendar_days)
    rows: list[dict[str, Any]] = []
    for kind, dl in (
        ("resolution", resolution),
        ("acknowledgement", ack),
        ("regulatory", regulatory),
    ):
        warn_at = (
            warn_instant(calendar, dl.due_at, settings.warning_working_days_left)
            if kind == "resolution"
            else None
        )
        rows.append(
            {
                "case_id": routed.complaint_id,
                "kind": kind,
                "round": 1,
                "started_at": routed.received_at,
                "due_at": dl.due_at,
                "due_date": dl.due_date,
                "provisional": dl.provisional,
                "warn_at": warn_at,
                "next_check_at": min(warn_at, dl.due_at) if warn_at else dl.due_at,
            }
        )
    await session.execute(insert(tables.case_clock), rows)
    await session.execute(
        insert(tables.case_event),
        [
            {
                "case_id": routed.complaint_id,
                "action": "open",
                "from_status": None,
                "to_status": "opened",
                "actor": "system:routing",
                "details": {
                    "department": routed.department,
                    "category": routed.category,
                    "priority": routed.priority,
                    "needs_triage": routed.needs_triage,
                },
            }
        ],
    )
    await outbox.add(
        session,
        tables.outbox,
        new_event(
            source="tracking",
            type_=CASE_OPENED_V1,
            subject=routed.complaint_id,
            data=CaseOpened(
                case_id=routed.complaint_id,
                complaint_id=routed.complaint_id,
                reference=routed.reference,
                channel=routed.channel,
                category=routed.category,
                product_line=routed.product_line,
                priority=routed.priority,
                department=routed.department,
                received_at=routed.received_at,
                opened_at=now,
                due_at=resolution.due_at,
                due_date=resolution.due_date,
                provisional=resolution.provisional,
                customer_key=routed.customer_key,
                branch_code=routed.branch_code,
                region=routed.region,
            ),
        ),
        topic=registry.CASES_OPENED,
    )
    return True


def _clock_read(row: Any, calendar: WorkingDayCalendar, now: datetime) -> ClockRead:
    return ClockRead(
        kind=row.kind,
        round=row.round,
        started_at=row.started_at,
        due_at=row.due_at,
        due_date=row.due_date,
        provisional=row.provisional,
        stopped_at=row.stopped_at,
        state=clock_state(
            now=now, due_at=row.due_at, warn_at=row.warn_at, stopped_at=row.stopped_at
        ),
        working_days_left=None
        if row.stopped_at
        else round(calendar.working_days_left(now, row.due_at), 3),
    )


def _case_read(row: Any, clocks: list[ClockRead]) -> CaseRead:
    current = max((c for c in clocks if c.kind == "resolution"), key=lambda c: c.round)
    return CaseRead(
        id=row.id,
        complaint_id=row.id,
        reference=row.reference,
        status=row.status,
        category=row.category,
        product_line=row.product_line,
        priority=row.priority,
        department=row.department,
        handler=row.handler,
        channel=row.channel,
        customer_key=row.customer_key,
        branch_code=row.branch_code,
        needs_triage=row.needs_triage,
        received_at=row.received_at,
        opened_at=row.opened_at,
        reopen_count=row.reopen_count,
        due_at=current.due_at,
        due_date=current.due_date,
        provisional=current.provisional,
        sla_state=current.state,
        working_days_left=current.working_days_left,
        clocks=clocks,
    )


async def get_case(
    *, session: AsyncSession, calendar: WorkingDayCalendar, case_id: str, now: datetime
) -> CaseRead:
    """Load a case with its clocks.

    Raises:
        NotFound: no case with that id.
    """
    import uuid

    try:
        uuid.UUID(case_id)
    except ValueError as exc:
        raise NotFound(f"no case {case_id}") from exc
    row = (await session.execute(select(tables.case).where(tables.case.c.id == case_id))).first()
    if row is None:
        raise NotFound(f"no case {case_id}")
    clocks = (
        await session.execute(
            select(tables.case_clock)
            .where(tables.case_clock.c.case_id == case_id)
            .order_by(tables.case_clock.c.kind, tables.case_clock.c.round)
        )
    ).all()
    return _case_read(row, [_clock_read(c, calendar, now) for c in clocks])


async def list_cases(
    *,
    session: AsyncSession,
    calendar: WorkingDayCalendar,
    now: datetime,
    filters: dict[str, Any],
    due_before: datetime | None,
    limit: int,
    offset: int,
) -> CasePage:
    """Return cases matching ``filters`` (column equality), ordered by resolution due time."""
    c, k = tables.case, tables.case_clock
    latest = (
        select(k.c.case_id, func.max(k.c.round).label("round"))
        .where(k.c.kind == "resolution")
        .group_by(k.c.case_id)
        .subquery()
    )
    base: Select[Any] = (
        select(c, k.c.due_at.label("res_due_at"))
        .join(latest, latest.c.case_id == c.c.id)
        .join(k, and_(k.c.case_id == c.c.id, k.c.kind == "resolution", k.c.round == latest.c.round))
    )
    for name, value in filters.items():
        if value is not None:
            base = base.where(c.c[name] == value)
    if due_before is not None:
        base = base.where(k.c.due_at < due_before)
    total = await session.scalar(select(func.count()).select_from(base.subquery()))
    rows = (
        await session.execute(base.order_by(k.c.due_at, c.c.id).limit(limit).offset(offset))
    ).all()
    ids = [r.id for r in rows]
    clocks_by_case: dict[str, list[ClockRead]] = {i: [] for i in ids}
    if ids:
        for clk in (
            await session.execute(
                select(k).where(k.c.case_id.in_(ids)).order_by(k.c.kind, k.c.round)
            )
        ).all():
            clocks_by_case[clk.case_id].append(_clock_read(clk, calendar, now))
    return CasePage(
        total=int(total or 0), items=[_case_read(r, clocks_by_case[r.id]) for r in rows]
    )
