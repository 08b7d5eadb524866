"""The bank's working-day calendar: overrides stored in tracking, and their effect on clocks.

The ``holidays`` package supplies China's public holidays and make-up working days (State
Council General Office notices); the bank adds corrections (``calendar_override``: a day
made a holiday or a working day, with a reason) and declares years official
(``calendar_official_year``) once it has entered a new notice (docs/deadlines.md §5).

Every change bumps ``calendar_version``; each replica's :class:`CalendarHolder` compares
that number at the start of a unit of work and rebuilds its
:class:`~shared.workcalendar.WorkingDayCalendar` when it moved. A change then recomputes
the due times of the open clocks it can affect and withdraws warnings and breaches that no
longer hold (``cases.sla-withdrawn.v1`` on the alert's topic, and a metric).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.tracking import metrics as tracking_metrics
from services.tracking import tables
from services.tracking.domain import clocks
from services.tracking.domain.exceptions import CalendarConflict, InvalidAction
from services.tracking.settings import TrackingSettings
from shared import audit
from shared.auth import Principal
from shared.events import outbox, registry
from shared.events.contracts.cases import CASE_SLA_WITHDRAWN_V1, CaseSlaWithdrawn
from shared.events.envelope import Envelope, new_event
from shared.workcalendar import (
    FIRST_SUPPORTED_YEAR,
    LAST_SUPPORTED_YEAR,
    CalendarOverride,
    WorkingDayCalendar,
)

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class CalendarHolder:
    """The current calendar of one process, rebuilt when ``calendar_version`` moves.

    Args:
        tz: the bank's zone (``TrackingSettings.timezone``).
    """

    def __init__(self, tz: str) -> None:
        self.tz = tz
        self.calendar = WorkingDayCalendar(tz=tz)
        self.version: int | None = None

    async def refresh(self, session: AsyncSession) -> WorkingDayCalendar:
        """Return the current calendar, rebuilding it if another change was committed.

        One indexed single-row read per call; the rebuild (a few ms) only after a change.
        """
        version = await session.scalar(
            select(tables.calendar_version.c.version).where(tables.calendar_version.c.id == 1)
        )
        version = int(version or 0)
        if version != self.version:
            self.calendar = await build_calendar(session, self.tz)
            self.version = version
        return self.calendar


async def build_calendar(session: AsyncSession, tz: str) -> WorkingDayCalendar:
    """Build a calendar from the package plus the stored active overrides and official years."""
    o = tables.calendar_override
    rows = (await session.execute(select(o).where(o.c.removed_at.is_(None)))).all()
    years = (await session.execute(select(tables.calendar_official_year.c.year))).scalars().all()
    return WorkingDayCalendar(
        tz=tz,
        overrides=[CalendarOverride(day=r.day, kind=r.kind, reason=r.reason) for r in rows],
        official_years=years,
    )


class OverrideCreate(BaseModel):
    """Make one local date a holiday (rest day) or a working day, with a reason."""

    day: date
    kind: Literal["holiday", "working_day"]
    reason: Reason


class OverrideRemove(BaseModel):
    """Remove the active override of one local date, with a reason."""

    day: date
    reason: Reason


class OfficialYearCreate(BaseModel):
    """Declare a year official: its State Council notice has been entered as overrides."""

    year: int = Field(ge=FIRST_SUPPORTED_YEAR, le=LAST_SUPPORTED_YEAR)
    reason: Reason


class OverrideRead(BaseModel):
    """One stored override (active unless ``removed_at`` is set)."""

    id: int
    day: date
    year: int
    kind: str
    reason: str
    created_by: str
    created_at: datetime
    removed_by: str | None
    removed_at: datetime | None
    removal_reason: str | None


class CalendarYearRead(BaseModel):
    """The working-day calendar of one year as the service uses it.

    Attributes:
        provisional: no official State Council schedule known for the year.
        rest_days_on_weekdays: Monday-Friday dates that are not working days.
        working_weekend_days: Saturday/Sunday dates that are working days (make-up days).
    """

    year: int
    provisional: bool
    working_days: int
    rest_days_on_weekdays: list[date]
    working_weekend_days: list[date]
    overrides: list[OverrideRead]


class RecomputeResult(BaseModel):
    """Effect of a calendar change on open clocks."""

    clocks_examined: int
    due_dates_changed: int
    warnings_withdrawn: int
    breaches_withdrawn: int


class CalendarChangeRead(BaseModel):
    """Answer of a calendar change: what changed and its effect on open cases."""

    version: int
    override: OverrideRead | None = None
    official_year: int | None = None
    recompute: RecomputeResult


def _override_read(row: Any) -> OverrideRead:
    return OverrideRead(
        id=row.id,
        day=row.day,
        year=row.day.year,
        kind=row.kind,
        reason=row.reason,
        created_by=row.created_by,
        created_at=row.created_at,
        removed_by=row.removed_by,
        removed_at=row.removed_at,
        removal_reason=row.removal_reason,
    )


async def list_overrides(
    *, session: AsyncSession, year: int | None, include_removed: bool
) -> list[OverrideRead]:
    """Return overrides, by day, optionally of one year and including removed ones."""
    o = tables.calendar_override
    stmt = select(o).order_by(o.c.day, o.c.id)
    if year is not None:
        stmt = stmt.where(and_(o.c.day >= date(year, 1, 1), o.c.day <= date(year, 12, 31)))
    if not include_removed:
        stmt = stmt.where(o.c.removed_at.is_(None))
    return [_override_read(r) for r in (await session.execute(stmt)).all()]


async def year_view(
    *, session: AsyncSession, calendar: WorkingDayCalendar, year: int
) -> CalendarYearRead:
    """Return the calendar of ``year`` (working days, exceptions, overrides).

    Raises:
        InvalidAction: a year outside the supported range.
    """
    if not FIRST_SUPPORTED_YEAR <= year <= LAST_SUPPORTED_YEAR:
        raise InvalidAction(
            f"year must be within {FIRST_SUPPORTED_YEAR}..{LAST_SUPPORTED_YEAR}", year=year
        )
    first = date(year, 1, 1)
    days = [date.fromordinal(first.toordinal() + i) for i in range(366)]
    days = [d for d in days if d.year == year]
    rest = [d for d in days if d.weekday() < 5 and not calendar.is_working_day(d)]
    made_up = [d for d in days if d.weekday() >= 5 and calendar.is_working_day(d)]
    return CalendarYearRead(
        year=year,
        provisional=calendar.is_provisional(year),
        working_days=sum(1 for d in days if calendar.is_working_day(d)),
        rest_days_on_weekdays=rest,
        working_weekend_days=made_up,
        overrides=await list_overrides(session=session, year=year, include_removed=False),
    )


async def _bump_version(session: AsyncSession) -> int:
    v = tables.calendar_version
    version = await session.scalar(
        update(v).where(v.c.id == 1).values(version=v.c.version + 1).returning(v.c.version)
    )
    return int(version or 0)


def _midnight(calendar: WorkingDayCalendar, day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=calendar.tz).astimezone(UTC)


async def recompute_open_clocks(
    *,
    session: AsyncSession,
    calendar: WorkingDayCalendar,
    settings: TrackingSettings,
    now: datetime,
    first_day: date,
    last_day: date,
) -> RecomputeResult:
    """Recompute running clocks whose counted days touch ``first_day..last_day``.

    A clock counts the local days after its start date up to its due date, so only clocks
    with ``start date < last_day`` and ``due_date >= first_day`` can change. A breach whose
    new due time is still ahead is withdrawn; so is a warning whose new warning point is
    still ahead (event ``cases.sla-withdrawn.v1`` and ``tracking_sla_alerts_withdrawn_total``).
    The sweep then handles the clock afresh against its new times.
    """
    k, c = tables.case_clock, tables.case
    rows = (
        await session.execute(
            select(k, c.c.department, c.c.category, c.c.priority, c.c.status)
            .join(c, c.c.id == k.c.case_id)
            .where(
                and_(
                    k.c.stopped_at.is_(None),
                    k.c.due_date >= first_day,
                    k.c.started_at < _midnight(calendar, last_day),
                )
            )
            .with_for_update(of=k)
        )
    ).all()
    result = RecomputeResult(
        clocks_examined=len(rows), due_dates_changed=0, warnings_withdrawn=0, breaches_withdrawn=0
    )
    events: list[tuple[Envelope[Any], str]] = []
    for row in rows:
        clock = dict(row._mapping)
        values = clocks.recomputed(calendar, settings, clock)
        changed = any(values[f] != clock[f] for f in ("due_at", "warn_at", "provisional"))
        if not changed:
            continue
        result.due_dates_changed += 1
        withdrawn: list[str] = []
        if clock["breached_at"] is not None and now < values["due_at"]:
            values["breached_at"] = None
            withdrawn.append("breach")
        if clock["warned_at"] is not None and (
            values["warn_at"] is None or now < values["warn_at"]
        ):
            values["warned_at"] = None
            withdrawn.append("warning")
        values["next_check_at"] = clocks.next_check({**clock, **values})
        await session.execute(
            update(k)
            .where(
                and_(
                    k.c.case_id == clock["case_id"],
                    k.c.kind == clock["kind"],
                    k.c.round == clock["round"],
                )
            )
            .values(values)
        )
        for alert in withdrawn:
            tracking_metrics.SLA_ALERTS_WITHDRAWN.labels(alert, clock["kind"]).inc()
            if alert == "breach":
                result.breaches_withdrawn += 1
            else:
                result.warnings_withdrawn += 1
            events.append(
                (
                    new_event(
                        source="tracking",
                        type_=CASE_SLA_WITHDRAWN_V1,
                        subject=clock["case_id"],
                        data=CaseSlaWithdrawn(
                            case_id=clock["case_id"],
                            clock=clock["kind"],
                            round=clock["round"],
                            alert=alert,  # type: ignore[arg-type]
                            previous_due_at=clock["due_at"],
                            due_at=values["due_at"],
                            at=now,
                            department=clock["department"],
                            category=clock["category"],
                            priority=clock["priority"],
                        ),
                    ),
                    registry.CASES_SLA_BREACHED
                    if alert == "breach"
                    else registry.CASES_SLA_WARNING,
                )
            )
        await session.execute(
            insert(tables.case_event).values(
                case_id=clock["case_id"],
                at=now,
                action="due_recomputed",
                from_status=clock["status"],
                to_status=clock["status"],
                actor="system:calendar",
                details={
                    "clock": clock["kind"],
                    "round": clock["round"],
                    "previous_due_date": clock["due_date"].isoformat(),
                    "due_date": values["due_date"].isoformat(),
                    "provisional": values["provisional"],
                    "withdrawn": withdrawn,
                },
            )
        )
    tracking_metrics.DUE_DATES_RECOMPUTED.inc(result.due_dates_changed)
    await outbox.add_many(session, tables.outbox, events)
    return result


async def add_override(
    *,
    session: AsyncSession,
    holder: CalendarHolder,
    settings: TrackingSettings,
    body: OverrideCreate,
    actor: Principal,
    now: datetime,
) -> CalendarChangeRead:
    """Store an override, rebuild the calendar, recompute affected open clocks; audited.

    Raises:
        CalendarConflict: the day already has an active override (remove it first).
        InvalidAction: a day outside the supported years.
    """
    if not FIRST_SUPPORTED_YEAR <= body.day.year <= LAST_SUPPORTED_YEAR:
        raise InvalidAction(f"day must be within {FIRST_SUPPORTED_YEAR}..{LAST_SUPPORTED_YEAR}")
    await holder.refresh(session)
    # Serialise calendar changes: the version row is the lock.
    await session.execute(
        select(tables.calendar_version).where(tables.calendar_version.c.id == 1).with_for_update()
    )
    o = tables.calendar_override
    existing = (
        await session.execute(select(o).where(and_(o.c.day == body.day, o.c.removed_at.is_(None))))
    ).first()
    if existing is not None:
        raise CalendarConflict(
            f"{body.day.isoformat()} already has an active {existing.kind} override; remove it "
            "first",
            existing_override_id=existing.id,
        )
    row = (
        await session.execute(
            insert(o)
            .values(day=body.day, kind=body.kind, reason=body.reason, created_by=actor.subject)
            .returning(o)
        )
    ).one()
    return await _after_change(
        session=session,
        holder=holder,
        settings=settings,
        actor=actor,
        now=now,
        audit_action="calendar.override_add",
        audit_details={"day": body.day.isoformat(), "kind": body.kind, "reason": body.reason},
        first_day=body.day,
        last_day=body.day,
        override=_override_read(row),
    )


async def remove_override(
    *,
    session: AsyncSession,
    holder: CalendarHolder,
    settings: TrackingSettings,
    body: OverrideRemove,
    actor: Principal,
    now: datetime,
) -> CalendarChangeRead:
    """Remove the active override of a day (kept as history), recompute; audited.

    Raises:
        CalendarConflict: the day has no active override.
    """
    await session.execute(
        select(tables.calendar_version).where(tables.calendar_version.c.id == 1).with_for_update()
    )
    o = tables.calendar_override
    row = (
        await session.execute(
            update(o)
            .where(and_(o.c.day == body.day, o.c.removed_at.is_(None)))
            .values(removed_at=now, removed_by=actor.subject, removal_reason=body.reason)
            .returning(o)
        )
    ).first()
    if row is None:
        raise CalendarConflict(f"{body.day.isoformat()} has no active override to remove")
    return await _after_change(
        session=session,
        holder=holder,
        settings=settings,
        actor=actor,
        now=now,
        audit_action="calendar.override_remove",
        audit_details={"day": body.day.isoformat(), "kind": row.kind, "reason": body.reason},
        first_day=body.day,
        last_day=body.day,
        override=_override_read(row),
    )


async def declare_official_year(
    *,
    session: AsyncSession,
    holder: CalendarHolder,
    settings: TrackingSettings,
    body: OfficialYearCreate,
    actor: Principal,
    now: datetime,
) -> CalendarChangeRead:
    """Declare a year official (its due dates stop being provisional), recompute; audited.

    Raises:
        CalendarConflict: the year is already declared.
    """
    await session.execute(
        select(tables.calendar_version).where(tables.calendar_version.c.id == 1).with_for_update()
    )
    y = tables.calendar_official_year
    if await session.scalar(select(y.c.year).where(y.c.year == body.year)) is not None:
        raise CalendarConflict(f"{body.year} is already declared official")
    await session.execute(
        insert(y).values(year=body.year, reason=body.reason, declared_by=actor.subject)
    )
    return await _after_change(
        session=session,
        holder=holder,
        settings=settings,
        actor=actor,
        now=now,
        audit_action="calendar.official_year_add",
        audit_details={"year": body.year, "reason": body.reason},
        first_day=date(body.year, 1, 1),
        last_day=date(body.year, 12, 31),
        official_year=body.year,
    )


async def _after_change(
    *,
    session: AsyncSession,
    holder: CalendarHolder,
    settings: TrackingSettings,
    actor: Principal,
    now: datetime,
    audit_action: str,
    audit_details: dict[str, Any],
    first_day: date,
    last_day: date,
    override: OverrideRead | None = None,
    official_year: int | None = None,
) -> CalendarChangeRead:
    version = await _bump_version(session)
    calendar = await build_calendar(session, holder.tz)
    result = await recompute_open_clocks(
        session=session,
        calendar=calendar,
        settings=settings,
        now=now,
        first_day=first_day,
        last_day=last_day,
    )
    await audit.record(
        session,
        tables.audit_log,
        actor=actor,
        action=audit_action,
        subject_type="calendar",
        subject_id=first_day.isoformat() if official_year is None else str(official_year),
        details={**audit_details, "version": version, **result.model_dump()},
    )
    # Every replica (this one included) installs the new calendar at its next unit of work,
    # when CalendarHolder.refresh sees the committed version.
    return CalendarChangeRead(
        version=version, override=override, official_year=official_year, recompute=result
    )
