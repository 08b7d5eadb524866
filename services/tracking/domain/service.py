"""Opening cases and reading them with their clocks (ARCHITECTURE.md §4).

A case opens when routing reports a complaint. Its clocks start from the complaint's
receipt instant (not from when the case opened: a slow pipeline never buys time):

- ``resolution``: 5 working days (plan §7.1.3 (3); Civil Code arts. 201 and 203);
- ``acknowledgement``: 1 working day (first response);
- ``regulatory``: 15 calendar days, running on even when the internal clock pauses.

Functions here never commit (STYLE.md §3).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, and_, case, func, insert, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.tracking import metrics as tracking_metrics
from services.tracking import tables
from services.tracking.domain import clocks
from services.tracking.domain.clocks import ClockState
from services.tracking.domain.exceptions import CaseNotFound
from services.tracking.settings import TrackingSettings
from shared.events import outbox, registry
from shared.events.contracts.cases import CASE_OPENED_V1, CaseOpened
from shared.events.contracts.complaints import ComplaintRouted
from shared.events.envelope import new_event
from shared.workcalendar import WorkingDayCalendar

__all__ = [
    "CasePage",
    "CaseRead",
    "ClockRead",
    "ClockState",
    "TimelineEntry",
    "get_case",
    "list_cases",
    "open_case",
    "timeline",
]


class ClockRead(BaseModel):
    """One clock of a case.

    Attributes:
        due_at: end of the period (UTC instant), extensions and pause credit included.
        due_date: last day of the period (bank's local date).
        original_due_at / original_due_date: the due time before extensions (None when
            the clock was never extended); on-time figures use it.
        state: on_track, at_risk (warning point passed), breached (running past due),
            met (stopped in time), missed (stopped late).
        working_days_left: working days from now to ``due_at`` (negative when overdue);
            None once the clock stopped.
        paused: True while the clock is paused (awaiting the customer, if enabled).
        paused_working_days: working days credited for closed pauses.
        extension_working_days: working days added by approved extensions.
    """

    kind: str
    round: int
    started_at: datetime
    due_at: datetime
    due_date: date
    provisional: bool
    warn_at: datetime | None
    stopped_at: datetime | None
    warned_at: datetime | None
    breached_at: datetime | None
    state: ClockState
    working_days_left: float | None
    paused: bool
    paused_working_days: int
    extension_working_days: int
    original_due_at: datetime | None
    original_due_date: date | None


class CaseRead(BaseModel):
    """A case with its clocks.

    ``due_at``/``due_date``/``sla_state``/``working_days_left`` repeat the current resolution
    clock for convenience (ARCHITECTURE.md §5).
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
    updated_at: datetime
    reopen_count: int
    version: int
    responsibility: str | None
    at_fault_unit: str | None
    remedy: str | None
    compensation_minor: int | None
    currency: str | None
    notified_channel: str | None
    merged_into: str | None
    closed_outcome: str | None
    involved_staff: list[str]
    due_at: datetime
    due_date: date
    provisional: bool
    sla_state: ClockState
    working_days_left: float | None
    clocks: list[ClockRead]


class CasePage(BaseModel):
    """A page of cases ordered by resolution due time, with the total that matched."""

    total: int
    items: list[CaseRead]


class TimelineEntry(BaseModel):
    """One entry of a case's timeline (``tracking.case_event``)."""

    id: int
    at: datetime
    action: str
    from_status: str | None
    to_status: str
    actor: str
    details: dict[str, Any]


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
            updated_at=now,
            details={"language": routed.language} if routed.language else {},
        )
        .on_conflict_do_nothing()
        .returning(tables.case.c.id)
    )
    if created.first() is None:
        return False
    rows = [
        clocks.new_clock(
            calendar,
            settings,
            case_id=routed.complaint_id,
            kind=kind,
            round_=1,
            started_at=routed.received_at,
        )
        for kind in clocks.KINDS
    ]
    await session.execute(insert(tables.case_clock), rows)
    resolution = rows[0]
    if resolution["provisional"]:
        tracking_metrics.PROVISIONAL_DUE_DATES.inc()
    await session.execute(
        insert(tables.case_event),
        [
            {
                "case_id": routed.complaint_id,
                "at": now,
                "action": "open",
                "from_status": None,
                "to_status": "opened",
                "actor": "system:routing",
                "details": {
                    "department": routed.department,
                    "category": routed.category,
                    "priority": routed.priority,
                    "needs_triage": routed.needs_triage,
                    "due_date": resolution["due_date"].isoformat(),
                    "provisional": resolution["provisional"],
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
                due_at=resolution["due_at"],
                due_date=resolution["due_date"],
                provisional=resolution["provisional"],
                customer_key=routed.customer_key,
                branch_code=routed.branch_code,
                region=routed.region,
            ),
        ),
        topic=registry.CASES_OPENED,
    )
    return True


def clock_read(row: Any, calendar: WorkingDayCalendar, now: datetime) -> ClockRead:
    """Return the API view of a clock row at ``now``."""
    m = row._mapping
    return ClockRead(
        kind=m["kind"],
        round=m["round"],
        started_at=m["started_at"],
        due_at=m["due_at"],
        due_date=m["due_date"],
        provisional=m["provisional"],
        warn_at=m["warn_at"],
        stopped_at=m["stopped_at"],
        warned_at=m["warned_at"],
        breached_at=m["breached_at"],
        state=clocks.state(m, now),
        working_days_left=None
        if m["stopped_at"]
        else round(calendar.working_days_left(now, m["due_at"]), 3),
        paused=m["paused_at"] is not None,
        paused_working_days=m["paused_working_days"],
        extension_working_days=m["extension_working_days"],
        original_due_at=m["original_due_at"],
        original_due_date=m["original_due_date"],
    )


def _case_read(row: Any, clock_list: list[ClockRead]) -> CaseRead:
    current = max((c for c in clock_list if c.kind == "resolution"), key=lambda c: c.round)
    m = row._mapping
    return CaseRead(
        id=m["id"],
        complaint_id=m["id"],
        reference=m["reference"],
        status=m["status"],
        category=m["category"],
        product_line=m["product_line"],
        priority=m["priority"],
        department=m["department"],
        handler=m["handler"],
        channel=m["channel"],
        customer_key=m["customer_key"],
        branch_code=m["branch_code"],
        needs_triage=m["needs_triage"],
        received_at=m["received_at"],
        opened_at=m["opened_at"],
        updated_at=m["updated_at"],
        reopen_count=m["reopen_count"],
        version=m["version"],
        responsibility=m["responsibility"],
        at_fault_unit=m["at_fault_unit"],
        remedy=m["remedy"],
        compensation_minor=m["compensation_minor"],
        currency=m["currency"],
        notified_channel=m["notified_channel"],
        merged_into=m["merged_into"],
        closed_outcome=m["closed_outcome"],
        involved_staff=list(m["involved_staff"] or []),
        due_at=current.due_at,
        due_date=current.due_date,
        provisional=current.provisional,
        sla_state=current.state,
        working_days_left=current.working_days_left,
        clocks=clock_list,
    )


def valid_uuid(value: str) -> bool:
    """Tell whether ``value`` is a UUID string."""
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


async def get_case(
    *, session: AsyncSession, calendar: WorkingDayCalendar, case_id: str, now: datetime
) -> CaseRead:
    """Load a case with its clocks.

    Raises:
        CaseNotFound: no case with that id.
    """
    if not valid_uuid(case_id):
        raise CaseNotFound(f"no case {case_id}")
    row = (await session.execute(select(tables.case).where(tables.case.c.id == case_id))).first()
    if row is None:
        raise CaseNotFound(f"no case {case_id}")
    clock_rows = (
        await session.execute(
            select(tables.case_clock)
            .where(tables.case_clock.c.case_id == case_id)
            .order_by(tables.case_clock.c.kind, tables.case_clock.c.round)
        )
    ).all()
    return _case_read(row, [clock_read(c, calendar, now) for c in clock_rows])


async def timeline(*, session: AsyncSession, case_id: str) -> list[TimelineEntry]:
    """Return the timeline of a case, oldest first.

    Raises:
        CaseNotFound: no case with that id.
    """
    if not valid_uuid(case_id):
        raise CaseNotFound(f"no case {case_id}")
    exists = await session.scalar(select(tables.case.c.id).where(tables.case.c.id == case_id))
    if exists is None:
        raise CaseNotFound(f"no case {case_id}")
    e = tables.case_event
    rows = (await session.execute(select(e).where(e.c.case_id == case_id).order_by(e.c.id))).all()
    return [
        TimelineEntry(
            id=r.id,
            at=r.at,
            action=r.action,
            from_status=r.from_status,
            to_status=r.to_status,
            actor=r.actor,
            details=r.details,
        )
        for r in rows
    ]


def _state_sql(k: Any, now: datetime) -> Any:
    """SQL expression of :func:`clocks.state` on clock table alias ``k``."""
    return case(
        (
            k.c.stopped_at.is_not(None),
            case((k.c.stopped_at <= k.c.due_at, literal("met")), else_=literal("missed")),
        ),
        (k.c.due_at <= now, literal("breached")),
        (and_(k.c.warn_at.is_not(None), k.c.warn_at <= now), literal("at_risk")),
        else_=literal("on_track"),
    )


async def list_cases(
    *,
    session: AsyncSession,
    calendar: WorkingDayCalendar,
    now: datetime,
    filters: dict[str, Any],
    due_before: datetime | None,
    limit: int,
    offset: int,
    sla_state: str | None = None,
) -> CasePage:
    """Return cases matching ``filters``, ordered by the current resolution due time.

    Args:
        session: the unit of work.
        calendar: for working days left.
        now: the instant clock states are judged at.
        limit: page size.
        offset: rows to skip.
        filters: column name -> value (equality) on ``tracking.case``; None values ignored.
        due_before: only cases whose current resolution clock is due before this instant.
        sla_state: only cases whose current resolution clock is in this state at ``now``.
    """
    c, k = tables.case, tables.case_clock
    later = k.alias("later")
    # The current resolution clock: no later round exists (an anti-join on the primary key).
    # Measured on 1,000,000 cases it beats a LATERAL per-case lookup for unselective filters.
    base: Select[Any] = (
        select(c, k.c.due_at.label("res_due_at"))
        .join(k, and_(k.c.case_id == c.c.id, k.c.kind == "resolution"))
        .where(
            ~select(later.c.round)
            .where(
                and_(
                    later.c.case_id == k.c.case_id,
                    later.c.kind == "resolution",
                    later.c.round > k.c.round,
                )
            )
            .exists()
        )
    )
    for name, value in filters.items():
        if value is not None:
            base = base.where(c.c[name] == value)
    if due_before is not None:
        base = base.where(k.c.due_at < due_before)
    if sla_state is not None:
        base = base.where(_state_sql(k, now) == sla_state)
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
            clocks_by_case[clk.case_id].append(clock_read(clk, calendar, now))
    return CasePage(
        total=int(total or 0), items=[_case_read(r, clocks_by_case[r.id]) for r in rows]
    )
