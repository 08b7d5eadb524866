"""Event handlers of followup: tracking's case and suggestion events schedule and end visits.

Consumed (contracts in ``shared.events.contracts``): ``cases.result-notified`` (schedule the
visit of that round), ``cases.reopened`` and ``cases.closed`` (no visit stays active for a
round that is over), ``suggestions.decided`` (declined or rejected: follow up the answer)
and ``suggestions.implemented``. The consumer wrapper runs each handler in one transaction
with the processed-events row, so a redelivered event is a no-op.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.domain.visit import service as visit_service
from services.followup.settings import FollowupSettings
from shared.events import registry
from shared.events.contracts.cases import (
    CASE_CLOSED_V1,
    CASE_REOPENED_V1,
    CASE_RESULT_NOTIFIED_V1,
    CaseClosed,
    CaseReopened,
    CaseResultNotified,
)
from shared.events.contracts.suggestions import (
    SUGGESTION_DECIDED_V1,
    SUGGESTION_IMPLEMENTED_V1,
    SuggestionDecided,
    SuggestionImplemented,
)
from shared.events.envelope import Envelope
from shared.kafka.consumer import HandlerRegistry, PermanentError
from shared.workcalendar import WorkingDayCalendar


def _aware(value: datetime, field: str) -> datetime:
    """Return ``value`` if it is timezone-aware.

    Raises:
        PermanentError: a naive instant (the event goes to the DLQ: retrying cannot fix it).
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise PermanentError(f"{field} has no UTC offset")
    return value


def _round(value: int) -> int:
    """Return a case round, >= 1.

    Raises:
        PermanentError: a round below 1.
    """
    if value < 1:
        raise PermanentError(f"round must be >= 1, got {value}")
    return value


def build_handlers(settings: FollowupSettings, calendar: WorkingDayCalendar) -> HandlerRegistry:
    """Return followup's handler registry.

    Args:
        settings: the visit policy.
        calendar: the bank's working-day calendar (settings.timezone).
    """
    handlers = HandlerRegistry()

    @handlers.on(registry.CASES_RESULT_NOTIFIED, CASE_RESULT_NOTIFIED_V1, CaseResultNotified)
    async def on_result_notified(
        event: Envelope[CaseResultNotified], *, session: AsyncSession
    ) -> None:
        data = event.data
        try:
            await visit_service.on_result_notified(
                session=session,
                calendar=calendar,
                settings=settings,
                event_id=event.id,
                case_id=data.case_id,
                round_=_round(data.round),
                notified_at=_aware(data.notified_at, "notified_at"),
                channel=data.channel,
                customer_key=data.customer_key,
                department=data.department,
                category=data.category,
                now=datetime.now(UTC),
            )
        except ValueError as exc:  # a date outside the calendar's supported years
            raise PermanentError(str(exc)) from exc

    @handlers.on(registry.CASES_REOPENED, CASE_REOPENED_V1, CaseReopened)
    async def on_case_reopened(event: Envelope[CaseReopened], *, session: AsyncSession) -> None:
        data = event.data
        await visit_service.on_case_reopened(
            session=session,
            case_id=data.case_id,
            round_=_round(data.round),
            reopened_at=_aware(data.reopened_at, "reopened_at"),
            now=datetime.now(UTC),
        )

    @handlers.on(registry.CASES_CLOSED, CASE_CLOSED_V1, CaseClosed)
    async def on_case_closed(event: Envelope[CaseClosed], *, session: AsyncSession) -> None:
        data = event.data
        await visit_service.on_case_closed(
            session=session,
            case_id=data.case_id,
            round_=_round(data.round),
            outcome=data.outcome,
            now=datetime.now(UTC),
        )

    @handlers.on(registry.SUGGESTIONS_DECIDED, SUGGESTION_DECIDED_V1, SuggestionDecided)
    async def on_suggestion_decided(
        event: Envelope[SuggestionDecided], *, session: AsyncSession
    ) -> None:
        data = event.data
        if data.decision == "adopted":  # followed up once implemented
            return
        try:
            await visit_service.on_suggestion_answered(
                session=session,
                calendar=calendar,
                settings=settings,
                event_id=event.id,
                suggestion_id=data.suggestion_id,
                trigger="suggestion_declined"
                if data.decision == "declined"
                else "suggestion_rejected",
                answered_at=_aware(data.decided_at, "decided_at"),
                customer_key=data.customer_key,
                department=data.department,
                category=data.category,
                now=datetime.now(UTC),
            )
        except ValueError as exc:
            raise PermanentError(str(exc)) from exc

    @handlers.on(registry.SUGGESTIONS_IMPLEMENTED, SUGGESTION_IMPLEMENTED_V1, SuggestionImplemented)
    async def on_suggestion_implemented(
        event: Envelope[SuggestionImplemented], *, session: AsyncSession
    ) -> None:
        data = event.data
        try:
            await visit_service.on_suggestion_answered(
                session=session,
                calendar=calendar,
                settings=settings,
                event_id=event.id,
                suggestion_id=data.suggestion_id,
                trigger="suggestion_implemented",
                answered_at=_aware(data.implemented_at, "implemented_at"),
                customer_key=data.customer_key,
                department=data.department,
                category=None,
                now=datetime.now(UTC),
            )
        except ValueError as exc:
            raise PermanentError(str(exc)) from exc

    return handlers
