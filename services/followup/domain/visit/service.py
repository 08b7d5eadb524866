"""Follow-up visits: scheduling from tracking's events, attempts, outcomes, work lists.

Rules (plan §7.1.4; ARCHITECTURE §1 "follow-up visit"; issue 6):

* ``cases.result-notified`` (round r) schedules one visit for the case round r, unless the
  case was already closed at round >= r or a later round is known (the event is stale), or
  round r already has a visit (a second delivery or a second notice of the same round).
* ``cases.reopened`` (round r) cancels an active visit of an earlier round (the case is
  being handled again; the visit follows the next result) and marks the last completed
  visit as followed by a reopen (the reopen-after-visit figure).
* ``cases.closed`` (round r) cancels an active visit of round <= r and remembers the closed
  round, so that a ``cases.result-notified`` of that round arriving later (topics are not
  ordered with each other) schedules nothing.
* ``suggestions.decided`` (``declined`` or ``rejected``) and ``suggestions.implemented``
  schedule one visit per suggestion (satisfaction with the response).
* An attempt is reached (satisfied or not, score 1-5, optional redacted comment, a reason
  code when unsatisfied) or unreachable. Reached ends the visit; unreachable schedules the
  next try ``retry_spacing_working_days`` later, and after ``max_attempts`` tries ends the
  visit ``unreachable``. An ended visit emits ``followups.completed``; tracking closes the
  case (satisfied, unreachable) or reopens it (unsatisfied).

Every handler of one subject first locks the subject's row, so events of one case are
applied one at a time whichever replica consumes them; the partial unique index
``visit_one_active_idx`` and ``visit_subject_round_key`` are the last guard.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Row, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup import tables
from services.followup.domain.visit import exceptions, policy
from services.followup.domain.visit.schemas import (
    AttemptCreate,
    AttemptRead,
    AttemptRecorded,
    VisitPage,
    VisitRead,
)
from services.followup.settings import FollowupSettings
from shared import audit
from shared.auth import Principal
from shared.events import outbox, registry
from shared.events.contracts.followups import (
    FOLLOWUP_COMPLETED_V1,
    FOLLOWUP_SCHEDULED_V1,
    FollowupCompleted,
    FollowupScheduled,
)
from shared.events.envelope import new_event
from shared.logging import get_logger
from shared.privacy import redact
from shared.workcalendar import WorkingDayCalendar

log = get_logger(__name__)

SERVICE = "followup"
SubjectKind = Literal["case", "suggestion"]
Trigger = Literal[
    "result_notified", "suggestion_implemented", "suggestion_declined", "suggestion_rejected"
]
ListStatus = Literal["due", "overdue", "scheduled", "active", "completed", "cancelled"]

v = tables.visit
a = tables.attempt
s = tables.subject


# -- subjects --------------------------------------------------------------------------


async def _lock_subject(session: AsyncSession, *, kind: SubjectKind, subject_id: str) -> Row[Any]:
    """Create the subject's row if needed and lock it for this transaction.

    Returns:
        The row (``latest_round``, ``closed_round``), locked ``FOR UPDATE``.
    """
    await session.execute(
        pg_insert(s).values(subject_kind=kind, subject_id=subject_id).on_conflict_do_nothing()
    )
    return (
        await session.execute(
            select(s)
            .where(s.c.subject_kind == kind, s.c.subject_id == subject_id)
            .with_for_update()
        )
    ).one()


async def _set_rounds(
    session: AsyncSession,
    *,
    kind: SubjectKind,
    subject_id: str,
    latest: int,
    closed: int | None = None,
) -> None:
    """Raise the subject's known rounds (never lowers them)."""
    values: dict[str, Any] = {
        "latest_round": func.greatest(s.c.latest_round, latest),
        "updated_at": func.now(),
    }
    if closed is not None:
        values["closed_round"] = func.greatest(s.c.closed_round, closed)
    await session.execute(
        update(s).where(s.c.subject_kind == kind, s.c.subject_id == subject_id).values(**values)
    )


async def _active_visit(
    session: AsyncSession, *, kind: SubjectKind, subject_id: str
) -> Row[Any] | None:
    """Return the subject's active visit, locked, or None."""
    return (
        await session.execute(
            select(v)
            .where(v.c.subject_kind == kind, v.c.subject_id == subject_id, v.c.status == "active")
            .with_for_update()
        )
    ).first()


async def _cancel(session: AsyncSession, *, visit_id: str, reason: str, now: datetime) -> None:
    """Cancel an active visit (the case was closed or reopened before it ended)."""
    await session.execute(
        update(v)
        .where(v.c.id == visit_id, v.c.status == "active")
        .values(
            status="cancelled",
            cancel_reason=reason,
            cancelled_at=now,
            next_attempt_at=None,
            clock_check_at=None,
            updated_at=now,
        )
    )
    log.info("followup.visit_cancelled", visit_id=visit_id, reason=reason)


# -- scheduling ------------------------------------------------------------------------


async def _create_visit(
    session: AsyncSession,
    *,
    calendar: WorkingDayCalendar,
    settings: FollowupSettings,
    kind: SubjectKind,
    subject_id: str,
    round_: int,
    trigger: Trigger,
    triggered_at: datetime,
    customer_key: str,
    department: str | None,
    category: str | None,
    notice_channel: str | None,
    source_event_id: str,
    now: datetime,
) -> str:
    """Insert an active visit and stage ``followups.scheduled``; return the visit id."""
    plan = policy.plan_visit(calendar, settings, triggered_at)
    channel = policy.choose_channel(
        settings, subject_kind=kind, round_=round_, notice_channel=notice_channel
    )
    visit_id = str(uuid.uuid4())
    await session.execute(
        v.insert().values(
            id=visit_id,
            subject_kind=kind,
            subject_id=subject_id,
            round=round_,
            status="active",
            trigger=trigger,
            channel=channel,
            department=department,
            category=category,
            customer_key=customer_key,
            triggered_at=triggered_at,
            first_attempt_at=plan.first_attempt_at,
            next_attempt_at=plan.first_attempt_at,
            due_at=plan.due_at,
            due_date=plan.due_date,
            provisional=plan.provisional,
            max_attempts=settings.max_attempts,
            clock_check_at=policy.next_clock_check(
                calendar, settings, now=now, due_at=plan.due_at, warned_at=None, overdue_at=None
            ),
            source_event_id=source_event_id,
            created_at=now,
            updated_at=now,
        )
    )
    event = new_event(
        source=SERVICE,
        type_=FOLLOWUP_SCHEDULED_V1,
        subject=subject_id,
        data=FollowupScheduled(
            visit_id=visit_id,
            subject_id=subject_id,
            subject_kind=kind,
            round=round_,
            channel=channel,
            due_at=plan.due_at,
            department=department,
        ),
    )
    await outbox.add(session, tables.outbox, event, topic=registry.FOLLOWUPS_SCHEDULED)
    log.info(
        "followup.visit_scheduled",
        visit_id=visit_id,
        subject_kind=kind,
        round=round_,
        channel=channel,
    )
    return visit_id


async def on_result_notified(
    *,
    session: AsyncSession,
    calendar: WorkingDayCalendar,
    settings: FollowupSettings,
    event_id: str,
    case_id: str,
    round_: int,
    notified_at: datetime,
    channel: str,
    customer_key: str,
    department: str,
    category: str,
    now: datetime,
) -> str | None:
    """Schedule the visit of case round ``round_`` (``cases.result-notified``).

    Args:
        session: the consumer's unit of work (not committed here).
        calendar: the bank's working-day calendar.
        settings: delay, window, attempts and channel policy.
        event_id: the triggering event's id (kept on the visit).
        case_id: the case (= complaint) id.
        round_: the case round the result belongs to, >= 1.
        notified_at: when the customer was told the result (aware).
        channel: how the customer was told (drives the channel policy).
        customer_key: pseudonymous customer key.
        department: the handling department (work lists, metrics).
        category: the complaint category.
        now: current instant (aware).

    Returns:
        The new visit's id, or None when nothing was scheduled (the round was closed, a
        later round is known, or the round already has a visit).
    """
    subj = await _lock_subject(session, kind="case", subject_id=case_id)
    if round_ <= subj.closed_round or round_ < subj.latest_round:
        log.info(
            "followup.result_ignored",
            case_round=round_,
            closed_round=subj.closed_round,
            latest_round=subj.latest_round,
        )
        return None
    existing = await session.scalar(
        select(v.c.id).where(
            v.c.subject_kind == "case", v.c.subject_id == case_id, v.c.round == round_
        )
    )
    if existing is not None:
        log.info("followup.result_duplicate", visit_id=existing, case_round=round_)
        return None
    active = await _active_visit(session, kind="case", subject_id=case_id)
    if active is not None:  # of an earlier round: that handling is over
        await _cancel(session, visit_id=active.id, reason="superseded", now=now)
    visit_id = await _create_visit(
        session,
        calendar=calendar,
        settings=settings,
        kind="case",
        subject_id=case_id,
        round_=round_,
        trigger="result_notified",
        triggered_at=notified_at,
        customer_key=customer_key,
        department=department,
        category=category,
        notice_channel=channel,
        source_event_id=event_id,
        now=now,
    )
    await _set_rounds(session, kind="case", subject_id=case_id, latest=round_)
    return visit_id


async def on_case_reopened(
    *,
    session: AsyncSession,
    case_id: str,
    round_: int,
    reopened_at: datetime,
    now: datetime,
) -> None:
    """Apply ``cases.reopened`` (round ``round_``, >= 2).

    Cancels an active visit of an earlier round (reason ``case_reopened``), and marks the
    latest completed visit of an earlier round as followed by this reopen (once).
    """
    subj = await _lock_subject(session, kind="case", subject_id=case_id)
    if round_ < subj.latest_round:
        log.info("followup.reopen_stale", case_round=round_, latest_round=subj.latest_round)
        return
    active = await _active_visit(session, kind="case", subject_id=case_id)
    if active is not None and active.round < round_:
        await _cancel(session, visit_id=active.id, reason="case_reopened", now=now)
    last_completed = await session.scalar(
        select(v.c.id)
        .where(
            v.c.subject_kind == "case",
            v.c.subject_id == case_id,
            v.c.status == "completed",
            v.c.round < round_,
        )
        .order_by(v.c.round.desc())
        .limit(1)
    )
    if last_completed is not None:
        await session.execute(
            update(v)
            .where(v.c.id == last_completed, v.c.reopened_at.is_(None))
            .values(reopened_at=reopened_at, reopened_round=round_, updated_at=now)
        )
    await _set_rounds(session, kind="case", subject_id=case_id, latest=round_)


async def on_case_closed(
    *, session: AsyncSession, case_id: str, round_: int, outcome: str, now: datetime
) -> None:
    """Apply ``cases.closed`` (round ``round_``): no visit stays active for a closed round.

    A visit of a later round (the close is stale) is left alone.
    """
    await _lock_subject(session, kind="case", subject_id=case_id)
    active = await _active_visit(session, kind="case", subject_id=case_id)
    if active is not None and active.round <= round_:
        await _cancel(session, visit_id=active.id, reason="case_closed", now=now)
    log.info("followup.case_closed", case_round=round_, outcome=outcome)
    await _set_rounds(session, kind="case", subject_id=case_id, latest=round_, closed=round_)


async def on_suggestion_answered(
    *,
    session: AsyncSession,
    calendar: WorkingDayCalendar,
    settings: FollowupSettings,
    event_id: str,
    suggestion_id: str,
    trigger: Trigger,
    answered_at: datetime,
    customer_key: str,
    department: str | None,
    category: str | None,
    now: datetime,
) -> str | None:
    """Schedule the one follow-up of a suggestion (declined, rejected or implemented).

    Returns:
        The new visit's id, or None when the suggestion already has one.
    """
    await _lock_subject(session, kind="suggestion", subject_id=suggestion_id)
    existing = await session.scalar(
        select(v.c.id).where(v.c.subject_kind == "suggestion", v.c.subject_id == suggestion_id)
    )
    if existing is not None:
        return None
    visit_id = await _create_visit(
        session,
        calendar=calendar,
        settings=settings,
        kind="suggestion",
        subject_id=suggestion_id,
        round_=1,
        trigger=trigger,
        triggered_at=answered_at,
        customer_key=customer_key,
        department=department,
        category=category,
        notice_channel=None,
        source_event_id=event_id,
        now=now,
    )
    await _set_rounds(session, kind="suggestion", subject_id=suggestion_id, latest=1)
    return visit_id


# -- attempts --------------------------------------------------------------------------


def _clean_comment(comment: str | None) -> str | None:
    """Return the comment redacted and stripped, or None when empty."""
    if comment is None:
        return None
    cleaned = redact(comment).strip()
    return cleaned or None


async def record_attempt(
    *,
    session: AsyncSession,
    calendar: WorkingDayCalendar,
    settings: FollowupSettings,
    visit_id: str,
    attempt: AttemptCreate,
    actor: Principal,
    now: datetime,
) -> AttemptRecorded:
    """Record one attempt of an active visit, and end the visit when it is decided.

    Args:
        session: the request's unit of work (the route commits).
        calendar: the bank's working-day calendar.
        settings: retry spacing, attempts.
        visit_id: the visit.
        attempt: the validated attempt.
        actor: the agent recording it (audited).
        now: current instant (aware); the attempt's time.

    Returns:
        The attempt and the visit after it.

    Raises:
        VisitNotFound: no such visit (404).
        VisitNotActive: the visit was completed or cancelled (409).
        AttemptNotDue: an unreachable attempt before ``next_attempt_at`` (409): tries are
            spaced by working days (plan §7.1.4).
    """
    row = await _load(session, visit_id=visit_id, lock=True)
    if row.status != "active":
        raise exceptions.VisitNotActive(
            f"visit {visit_id} is {row.status}; no further attempt is recorded",
            visit_status=row.status,
        )
    if attempt.result == "unreachable" and now < row.next_attempt_at:
        raise exceptions.AttemptNotDue(
            f"the next attempt of visit {visit_id} is due from {row.next_attempt_at.isoformat()}",
            next_attempt_at=row.next_attempt_at.isoformat(),
        )
    number = row.attempts_count + 1
    comment = _clean_comment(attempt.comment)
    channel = attempt.channel or row.channel
    await session.execute(
        a.insert().values(
            visit_id=visit_id,
            number=number,
            result=attempt.result,
            channel=channel,
            satisfied=attempt.satisfied,
            score=attempt.score,
            reason_code=attempt.reason_code,
            comment=comment,
            recorded_by=actor.subject,
            attempted_at=now,
        )
    )
    values: dict[str, Any] = {"attempts_count": number, "updated_at": now}
    outcome: str | None = None
    if attempt.result == "reached":
        outcome = "satisfied" if attempt.satisfied else "unsatisfied"
        values.update(
            satisfied=attempt.satisfied,
            score=attempt.score,
            reason_code=attempt.reason_code,
            comment=comment,
        )
    elif number >= row.max_attempts:
        outcome = "unreachable"
    else:
        next_at, due_at, due_date = policy.plan_retry(
            calendar, settings, now=now, due_at=row.due_at, due_date=row.due_date
        )
        values.update(next_attempt_at=next_at, due_at=due_at, due_date=due_date)
        if due_at != row.due_at and row.overdue_at is None:
            # The clock was extended: the sweep looks again (each alert stays once per visit).
            values["clock_check_at"] = policy.next_clock_check(
                calendar,
                settings,
                now=now,
                due_at=due_at,
                warned_at=row.warned_at,
                overdue_at=None,
            )
    if outcome is not None:
        values.update(
            status="completed",
            outcome=outcome,
            completed_at=now,
            next_attempt_at=None,
            clock_check_at=None,
        )
    await session.execute(update(v).where(v.c.id == visit_id).values(**values))
    await audit.record(
        session,
        tables.audit_log,
        actor=actor,
        action="followup.attempt",
        subject_type="followup_visit",
        subject_id=visit_id,
        details={
            "subject_kind": row.subject_kind,
            "subject_id": row.subject_id,
            "round": row.round,
            "number": number,
            "result": attempt.result,
            "channel": channel,
            "satisfied": attempt.satisfied,
            "score": attempt.score,
            "reason_code": attempt.reason_code,
            "outcome": outcome,
        },
    )
    if outcome is not None:
        event = new_event(
            source=SERVICE,
            type_=FOLLOWUP_COMPLETED_V1,
            subject=row.subject_id,
            time=now,
            data=FollowupCompleted(
                visit_id=visit_id,
                subject_id=row.subject_id,
                subject_kind=row.subject_kind,
                round=row.round,
                outcome=outcome,
                score=attempt.score,
                reason_code=attempt.reason_code,
                comment=comment if attempt.result == "reached" else None,
                attempts=number,
                completed_at=now,
                department=row.department,
                channel=row.channel,
            ),
        )
        await outbox.add(session, tables.outbox, event, topic=registry.FOLLOWUPS_COMPLETED)
        log.info(
            "followup.visit_completed",
            visit_id=visit_id,
            outcome=outcome,
            attempts=number,
            subject_kind=row.subject_kind,
        )
    visit = await get_visit(
        session=session, calendar=calendar, settings=settings, visit_id=visit_id, now=now
    )
    assert visit.attempts  # the attempt just recorded
    return AttemptRecorded(attempt=visit.attempts[-1], visit=visit)


# -- reads -----------------------------------------------------------------------------


async def _load(session: AsyncSession, *, visit_id: str, lock: bool = False) -> Row[Any]:
    """Return the visit row.

    Raises:
        VisitNotFound: no visit with that id (also for ids that are not UUIDs).
    """
    try:
        key = str(uuid.UUID(visit_id))
    except ValueError as exc:
        raise exceptions.VisitNotFound(f"no follow-up visit {visit_id!r}") from exc
    query = select(v).where(v.c.id == key)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    if row is None:
        raise exceptions.VisitNotFound(f"no follow-up visit {visit_id!r}")
    return row


def _to_read(
    row: Row[Any],
    *,
    calendar: WorkingDayCalendar,
    settings: FollowupSettings,
    now: datetime,
    attempts: list[AttemptRead] | None = None,
) -> VisitRead:
    """Build the API view of a visit row, with its clock at ``now``."""
    state, left = policy.clock_state(
        calendar, settings, now=now, due_at=row.due_at, active=row.status == "active"
    )
    return VisitRead(
        id=str(row.id),
        subject_kind=row.subject_kind,
        subject_id=row.subject_id,
        round=row.round,
        status=row.status,
        state=policy.visit_state(
            status=row.status, now=now, next_attempt_at=row.next_attempt_at, due_at=row.due_at
        ),
        trigger=row.trigger,
        channel=row.channel,
        department=row.department,
        category=row.category,
        customer_key=row.customer_key,
        triggered_at=row.triggered_at,
        first_attempt_at=row.first_attempt_at,
        next_attempt_at=row.next_attempt_at,
        due_at=row.due_at,
        due_date=row.due_date,
        provisional=row.provisional,
        clock_state=state,
        working_days_left=None if left is None else round(left, 3),
        attempts_count=row.attempts_count,
        max_attempts=row.max_attempts,
        outcome=row.outcome,
        satisfied=row.satisfied,
        score=row.score,
        reason_code=row.reason_code,
        comment=row.comment,
        completed_at=row.completed_at,
        cancelled_at=row.cancelled_at,
        cancel_reason=row.cancel_reason,
        reopened_at=row.reopened_at,
        created_at=row.created_at,
        attempts=attempts,
    )


async def get_visit(
    *,
    session: AsyncSession,
    calendar: WorkingDayCalendar,
    settings: FollowupSettings,
    visit_id: str,
    now: datetime,
) -> VisitRead:
    """Return one visit with its attempts (oldest first) and its clock at ``now``.

    Raises:
        VisitNotFound: no such visit (404).
    """
    row = await _load(session, visit_id=visit_id)
    attempt_rows = (
        await session.execute(select(a).where(a.c.visit_id == row.id).order_by(a.c.number))
    ).all()
    attempts = [AttemptRead.model_validate(r._mapping) for r in attempt_rows]
    return _to_read(row, calendar=calendar, settings=settings, now=now, attempts=attempts)


async def list_visits(
    *,
    session: AsyncSession,
    calendar: WorkingDayCalendar,
    settings: FollowupSettings,
    now: datetime,
    status: ListStatus | None = None,
    department: str | None = None,
    channel: str | None = None,
    subject_kind: SubjectKind | None = None,
    subject_id: str | None = None,
    due_before: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> VisitPage:
    """Return visits for a work list, ordered by due time (earliest clock end first).

    Args:
        session: a unit of work.
        calendar: the bank's working-day calendar.
        settings: the warning rule.
        now: aware current instant.
        status: ``due`` (active and its next attempt time has come, overdue ones included:
            everything a caller can work on now), ``overdue`` (active, clock ended),
            ``scheduled`` (active, not due yet), ``active``, ``completed``, ``cancelled``;
            None for all.
        department: exact department.
        channel: ``call``, ``sms`` or ``app_survey``.
        subject_kind: ``case`` or ``suggestion``.
        subject_id: one case or suggestion.
        due_before: only visits whose clock ends before this instant (aware).
        limit: page size, 1..500.
        offset: rows skipped.

    Returns:
        The page with the total that matched.
    """
    conditions: list[Any] = []
    if status == "due":
        conditions += [v.c.status == "active", v.c.next_attempt_at <= now]
    elif status == "overdue":
        conditions += [v.c.status == "active", v.c.due_at <= now]
    elif status == "scheduled":
        conditions += [v.c.status == "active", v.c.next_attempt_at > now, v.c.due_at > now]
    elif status is not None:
        conditions.append(v.c.status == status)
    if department is not None:
        conditions.append(v.c.department == department)
    if channel is not None:
        conditions.append(v.c.channel == channel)
    if subject_kind is not None:
        conditions.append(v.c.subject_kind == subject_kind)
    if subject_id is not None:
        conditions.append(v.c.subject_id == subject_id)
    if due_before is not None:
        conditions.append(v.c.due_at < due_before)
    total = await session.scalar(select(func.count()).select_from(v).where(*conditions))
    rows = (
        await session.execute(
            select(v)
            .where(*conditions)
            .order_by(v.c.due_at, v.c.next_attempt_at, v.c.id)
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return VisitPage(
        total=int(total or 0),
        limit=limit,
        offset=offset,
        items=[_to_read(r, calendar=calendar, settings=settings, now=now) for r in rows],
    )
