"""Event handlers of tracking: routed complaints, screened suggestions, follow-up results."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.tracking import tables
from services.tracking.domain import actions as case_actions
from services.tracking.domain import lifecycle
from services.tracking.domain import service as case_service
from services.tracking.domain import suggestions as suggestion_service
from services.tracking.domain.calendar import CalendarHolder
from services.tracking.settings import TrackingSettings
from shared.auth import Principal
from shared.events import registry
from shared.events.contracts.complaints import (
    COMPLAINT_REROUTED_V1,
    COMPLAINT_ROUTED_V1,
    SUGGESTION_SCREENED_V1,
    ComplaintRerouted,
    ComplaintRouted,
    SuggestionScreened,
)
from shared.events.contracts.followups import FOLLOWUP_COMPLETED_V1, FollowupCompleted
from shared.events.envelope import Envelope
from shared.kafka.consumer import HandlerRegistry, PermanentError
from shared.logging import get_logger

log = get_logger(__name__)

FOLLOWUP_ACTOR = Principal(subject="system:followup", roles=frozenset({"system"}))


def build_handlers(settings: TrackingSettings, holder: CalendarHolder) -> HandlerRegistry:
    """Return tracking's handler registry.

    Args:
        settings: the service's settings.
        holder: the process's calendar (refreshed at the start of each event's transaction).
    """
    handlers = HandlerRegistry()

    @handlers.on(registry.COMPLAINTS_ROUTED, COMPLAINT_ROUTED_V1, ComplaintRouted)
    async def on_complaint_routed(
        event: Envelope[ComplaintRouted], *, session: AsyncSession
    ) -> None:
        calendar = await holder.refresh(session)
        try:
            await case_service.open_case(
                session=session,
                calendar=calendar,
                settings=settings,
                routed=event.data,
                now=datetime.now(UTC),
            )
        except ValueError as exc:  # e.g. a receipt instant outside the supported years
            raise PermanentError(f"cannot compute the deadline: {exc}") from exc

    @handlers.on(registry.COMPLAINTS_REROUTED, COMPLAINT_REROUTED_V1, ComplaintRerouted)
    async def on_complaint_rerouted(
        event: Envelope[ComplaintRerouted], *, session: AsyncSession
    ) -> None:
        await apply_reroute(session=session, rerouted=event.data)

    @handlers.on(registry.SUGGESTIONS_SCREENED, SUGGESTION_SCREENED_V1, SuggestionScreened)
    async def on_suggestion_screened(
        event: Envelope[SuggestionScreened], *, session: AsyncSession
    ) -> None:
        await suggestion_service.receive(
            session=session, screened=event.data, now=datetime.now(UTC)
        )

    @handlers.on(registry.FOLLOWUPS_COMPLETED, FOLLOWUP_COMPLETED_V1, FollowupCompleted)
    async def on_followup_completed(
        event: Envelope[FollowupCompleted], *, session: AsyncSession
    ) -> None:
        await handle_followup(
            session=session, holder=holder, settings=settings, done=event.data, now=None
        )

    return handlers


class CaseNotOpenedYet(Exception):
    """A reroute arrived before the case was opened (another topic): retried, then DLQ."""


async def apply_reroute(*, session: AsyncSession, rerouted: ComplaintRerouted) -> bool:
    """Apply a supervisor's override from routing to the case (issue 4 §6).

    The case takes the new category, product line, priority and department and leaves the
    triage queue; the timeline records the change. A case that already ended (closed,
    withdrawn, merged) keeps its values: the override is only logged.

    Returns:
        True when the case changed.

    Raises:
        CaseNotOpenedYet: no case yet (the consumer retries with backoff, then dead-letters).
    """
    c = tables.case
    row = (
        await session.execute(
            select(c.c.status, c.c.department, c.c.category, c.c.priority)
            .where(c.c.id == rerouted.complaint_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise CaseNotOpenedYet(f"case {rerouted.complaint_id} not opened yet")
    if row.status in lifecycle.TERMINAL:
        log.info("tracking.reroute_ignored", case_id=rerouted.complaint_id, status=row.status)
        return False
    await session.execute(
        update(c)
        .where(c.c.id == rerouted.complaint_id)
        .values(
            category=rerouted.category,
            product_line=rerouted.product_line,
            priority=rerouted.priority,
            department=rerouted.department,
            needs_triage=False,
            version=c.c.version + 1,
            updated_at=datetime.now(UTC),
        )
    )
    await session.execute(
        insert(tables.case_event).values(
            case_id=rerouted.complaint_id,
            action="reroute",
            from_status=row.status,
            to_status=row.status,
            actor=f"system:routing ({rerouted.rerouted_by})",
            details={
                "department": [row.department, rerouted.department],
                "category": [row.category, rerouted.category],
                "priority": [row.priority, rerouted.priority],
                "rule_version": rerouted.rule_version,
            },
        )
    )
    return True


async def handle_followup(
    *,
    session: AsyncSession,
    holder: CalendarHolder,
    settings: TrackingSettings,
    done: FollowupCompleted,
    now: datetime | None,
) -> str | None:
    """Apply a follow-up result to its case (issue 5, ARCHITECTURE.md §1 "follow-up visit").

    - ``unsatisfied``: reopen with a new resolution clock from now and a higher priority;
    - ``satisfied``: close (outcome ``satisfied``);
    - ``unreachable``: close (outcome ``unreachable``).

    A visit about a suggestion, or about an earlier round than the case's current one, or a
    case no longer in ``result_notified``/``closed`` (someone acted meanwhile) changes
    nothing and is logged.

    Args:
        session: the consumer's transaction.
        holder: the process's calendar.
        settings: tracking settings.
        done: the follow-up result.
        now: the instant to apply (tests); None means the current time.

    Returns:
        The case's new status, or None when nothing changed.

    Raises:
        PermanentError: the case does not exist (the event goes to the DLQ).
    """
    if done.subject_kind != "case":
        return None
    at = now or datetime.now(UTC)
    c, k = tables.case, tables.case_clock
    row = (
        (await session.execute(select(c.c.status).where(c.c.id == done.subject_id))).first()
        if case_service.valid_uuid(done.subject_id)
        else None
    )
    if row is None:
        raise PermanentError(f"followup for unknown case {done.subject_id}")
    current_round = await session.scalar(
        select(k.c.round)
        .where(k.c.case_id == done.subject_id, k.c.kind == "resolution")
        .order_by(k.c.round.desc())
        .limit(1)
    )
    if current_round is not None and done.round < current_round:
        log.info("followup.stale_round", case_round=current_round, event_round=done.round)
        return None
    calendar = await holder.refresh(session)
    if done.outcome == "unsatisfied":
        if lifecycle.target("reopen", row.status) is None:
            log.info("followup.reopen_skipped", status=row.status)
            return None
        action: case_actions.Reopen | case_actions.Close = case_actions.Reopen(
            action="reopen", reason="customer_request"
        )
        reason = "followup_unsatisfied"
    else:
        if row.status == lifecycle.CLOSED or lifecycle.target("close", row.status) is None:
            log.info("followup.close_skipped", status=row.status)
            return None
        action = case_actions.Close(action="close")
        reason = done.outcome
    return await case_actions.apply_action(
        session=session,
        calendar=calendar,
        settings=settings,
        case_id=done.subject_id,
        action=action,
        actor=FOLLOWUP_ACTOR,
        now=at,
        system_reason=reason,
    )
