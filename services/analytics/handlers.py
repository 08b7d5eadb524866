"""Event handlers of analytics: fold every platform event into the read model.

Each handler writes the detail rows its event knows with merging upserts
(:mod:`services.analytics.model`), then, for case and follow-up events, recomputes the
complaint's derived columns. The result depends only on the set of events seen: any order
of arrival and any redelivery end in the same rows (ARCHITECTURE.md §3, at-least-once).
The consumer wrapper records each event id in ``processed_events`` in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics import model, tables
from services.analytics.model import Merge
from services.analytics.settings import get_settings
from shared.events import registry
from shared.events.contracts.cases import (
    CASE_CLOSED_V1,
    CASE_OPENED_V1,
    CASE_REOPENED_V1,
    CASE_RESOLVED_V1,
    CASE_RESULT_NOTIFIED_V1,
    CASE_SLA_BREACHED_V1,
    CASE_SLA_WARNING_V1,
    CASE_STATUS_CHANGED_V1,
    CUSTOMER_NOTIFICATION_V1,
    CaseClosed,
    CaseOpened,
    CaseReopened,
    CaseResolved,
    CaseResultNotified,
    CaseSlaEvent,
    CaseStatusChanged,
    CustomerNotification,
)
from shared.events.contracts.complaints import (
    COMPLAINT_RECEIVED_V1,
    COMPLAINT_REROUTED_V1,
    COMPLAINT_ROUTED_V1,
    SUGGESTION_RECEIVED_V1,
    SUGGESTION_SCREENED_V1,
    ComplaintReceived,
    ComplaintRouted,
    SuggestionReceived,
    SuggestionScreened,
)
from shared.events.contracts.followups import (
    FOLLOWUP_COMPLETED_V1,
    FOLLOWUP_SCHEDULED_V1,
    FollowupCompleted,
    FollowupScheduled,
)
from shared.events.contracts.suggestions import (
    SUGGESTION_DECIDED_V1,
    SUGGESTION_IMPLEMENTED_V1,
    SUGGESTION_REWARDED_V1,
    SuggestionDecided,
    SuggestionImplemented,
    SuggestionRewarded,
)
from shared.events.envelope import Envelope, Payload
from shared.kafka.consumer import HandlerRegistry

handlers = HandlerRegistry()

#: Receipt columns are facts of the complaint that never change: the first value stays.
_FILL = Merge.FILL


def _tz() -> str:
    return get_settings().timezone


class ComplaintRerouted(Payload):
    """Tolerant reading of ``complaints.rerouted.v1`` (no payload class in the contracts yet).

    Only the complaint id is required; the new classification fields are taken when given.
    """

    complaint_id: str
    category: str | None = None
    product_line: str | None = None
    priority: str | None = None
    department: str | None = None


# --- complaints ----------------------------------------------------------------------------


@handlers.on(registry.COMPLAINTS_RECEIVED, COMPLAINT_RECEIVED_V1, ComplaintReceived)
async def on_complaint_received(
    event: Envelope[ComplaintReceived], *, session: AsyncSession
) -> None:
    """Record receipt facts: channel, receipt instant and local day, customer key, branch."""
    d = event.data
    await model.upsert(
        session=session,
        table=tables.complaint_fact,
        key={"complaint_id": d.complaint_id},
        values={
            "reference": d.reference,
            "channel": d.channel,
            "customer_key": d.customer_key,
            "received_at": d.received_at,
            "received_day": model.local_day(d.received_at, _tz()),
            "branch_code": d.branch_code,
            "region": d.region,
            "language": d.language,
            "amount_minor": d.amount_minor,
            "currency": d.currency,
            "product": d.product,
            "vulnerable_customer": d.vulnerable_customer,
        },
        default=Merge.NEW_OR_KEEP,
    )
    # Clock figures measured from receipt (acknowledgement, resolution time) need it.
    await model.refresh_complaint(session=session, complaint_id=d.complaint_id)


async def _record_routing(
    *, session: AsyncSession, complaint_id: str, values: dict[str, object], at: object
) -> None:
    """Apply a routing decision unless a later one (by event time) is already stored."""
    f = tables.complaint_fact
    await model.ensure_complaint(session=session, complaint_id=complaint_id)
    later = (f.c.routed_at.is_(None)) | (f.c.routed_at <= at)
    await session.execute(
        f.update()
        .where(f.c.complaint_id == complaint_id, later)
        .values(
            **{k: v for k, v in values.items() if v is not None},
            routed_at=at,
            updated_at=func.now(),
        )
    )


@handlers.on(registry.COMPLAINTS_ROUTED, COMPLAINT_ROUTED_V1, ComplaintRouted)
async def on_complaint_routed(event: Envelope[ComplaintRouted], *, session: AsyncSession) -> None:
    """Record the classification: category, product line, priority, department."""
    d = event.data
    await _record_routing(
        session=session,
        complaint_id=d.complaint_id,
        values={
            "category": d.category,
            "product_line": d.product_line,
            "priority": d.priority,
            "department": d.department,
            "needs_triage": d.needs_triage,
        },
        at=event.time,
    )
    # Receipt facts travel on the routed event too: fill them if it came first.
    await model.upsert(
        session=session,
        table=tables.complaint_fact,
        key={"complaint_id": d.complaint_id},
        values={
            "reference": d.reference,
            "channel": d.channel,
            "customer_key": d.customer_key,
            "received_at": d.received_at,
            "received_day": model.local_day(d.received_at, _tz()),
            "branch_code": d.branch_code,
            "region": d.region,
        },
        default=_FILL,
    )


@handlers.on(registry.COMPLAINTS_REROUTED, COMPLAINT_REROUTED_V1, ComplaintRerouted)
async def on_complaint_rerouted(
    event: Envelope[ComplaintRerouted], *, session: AsyncSession
) -> None:
    """Record a changed classification (a supervisor's override); the latest one wins."""
    d = event.data
    await _record_routing(
        session=session,
        complaint_id=d.complaint_id,
        values={
            "category": d.category,
            "product_line": d.product_line,
            "priority": d.priority,
            "department": d.department,
            "needs_triage": False,
        },
        at=event.time,
    )


# --- cases ---------------------------------------------------------------------------------


async def _transition(
    *,
    session: AsyncSession,
    event: Envelope[Any],
    case_id: str,
    at: object,
    kind: str,
    to_status: str | None,
    action: str | None = None,
) -> None:
    await model.upsert(
        session=session,
        table=tables.case_transition_fact,
        key={"event_id": event.id},
        values={
            "case_id": case_id,
            "at": at,
            "kind": kind,
            "to_status": to_status,
            "action": action,
        },
    )


@handlers.on(registry.CASES_OPENED, CASE_OPENED_V1, CaseOpened)
async def on_case_opened(event: Envelope[CaseOpened], *, session: AsyncSession) -> None:
    """Record the case: when it opened, its resolution due time, round 1."""
    d = event.data
    await model.upsert(
        session=session,
        table=tables.complaint_fact,
        key={"complaint_id": d.complaint_id},
        values={
            "opened_at": d.opened_at,
            "due_at": d.due_at,
            "due_date": d.due_date,
            "provisional": d.provisional,
            # Dimensions, in case the routed event has not arrived (routing's value wins).
            "reference": d.reference,
            "channel": d.channel,
            "customer_key": d.customer_key,
            "received_at": d.received_at,
            "received_day": model.local_day(d.received_at, _tz()),
            "branch_code": d.branch_code,
            "region": d.region,
            "category": d.category,
            "product_line": d.product_line,
            "priority": d.priority,
            "department": d.department,
        },
        rules={"opened_at": Merge.SET, "due_at": Merge.SET, "due_date": Merge.SET},
        default=_FILL,
    )
    await model.upsert(
        session=session,
        table=tables.case_round_fact,
        key={"case_id": d.case_id, "round": 1},
        values={"started_at": d.opened_at, "due_at": d.due_at},
    )
    await _transition(
        session=session, event=event, case_id=d.case_id, at=d.opened_at, kind="opened",
        to_status="opened",
    )  # fmt: skip
    await model.refresh_complaint(session=session, complaint_id=d.case_id)


@handlers.on(registry.CASES_STATUS_CHANGED, CASE_STATUS_CHANGED_V1, CaseStatusChanged)
async def on_case_status_changed(
    event: Envelope[CaseStatusChanged], *, session: AsyncSession
) -> None:
    """Record one transition (acknowledgement, escalation, status)."""
    d = event.data
    await _transition(
        session=session, event=event, case_id=d.case_id, at=d.at, kind="status_changed",
        to_status=d.to_status, action=d.action,
    )  # fmt: skip
    await model.refresh_complaint(session=session, complaint_id=d.case_id)


#: ``cases.sla-withdrawn.v1`` (tracking): travels on the warning or breach topic.
CASE_SLA_WITHDRAWN_V1 = "cases.sla-withdrawn.v1"


class CaseSlaWithdrawn(Payload):
    """Tolerant reading of ``cases.sla-withdrawn.v1``: a warning or breach no longer holds.

    Attributes:
        alert: ``warning`` or ``breach``.
        previous_due_at: the due time the withdrawn alert was raised against (UTC).
    """

    case_id: str
    clock: str
    round: int = 1
    alert: Literal["warning", "breach"]
    previous_due_at: datetime


async def _sla(event: Envelope[CaseSlaEvent], alert: str, *, session: AsyncSession) -> None:
    d = event.data
    await model.upsert(
        session=session,
        table=tables.clock_alert_fact,
        key={
            "case_id": d.case_id,
            "clock": d.clock,
            "round": d.round,
            "alert": alert,
            "due_at": d.due_at,
        },
        values={"at": d.at},
        rules={"at": Merge.EARLIEST},
    )
    await model.refresh_complaint(session=session, complaint_id=d.case_id)


@handlers.on(registry.CASES_SLA_WARNING, CASE_SLA_WARNING_V1, CaseSlaEvent)
async def on_case_sla_warning(event: Envelope[CaseSlaEvent], *, session: AsyncSession) -> None:
    """Record that a clock reached its warning point (the case is at risk)."""
    await _sla(event, "warning", session=session)


@handlers.on(registry.CASES_SLA_BREACHED, CASE_SLA_BREACHED_V1, CaseSlaEvent)
async def on_case_sla_breached(event: Envelope[CaseSlaEvent], *, session: AsyncSession) -> None:
    """Record that a clock passed its due time."""
    await _sla(event, "breach", session=session)


async def _sla_withdrawn(event: Envelope[CaseSlaWithdrawn], *, session: AsyncSession) -> None:
    d = event.data
    await model.upsert(
        session=session,
        table=tables.clock_alert_fact,
        key={
            "case_id": d.case_id,
            "clock": d.clock,
            "round": d.round,
            "alert": d.alert,
            "due_at": d.previous_due_at,
        },
        values={"withdrawn": True},
    )
    await model.refresh_complaint(session=session, complaint_id=d.case_id)


# The same type arrives on both alert topics; the registry keys handlers by type, so one
# registration subscribes to the warning topic and the breach topic is subscribed through
# the breach handler above (the consumer reads every registered topic).
handlers.on(registry.CASES_SLA_WARNING, CASE_SLA_WITHDRAWN_V1, CaseSlaWithdrawn)(_sla_withdrawn)


@handlers.on(registry.CASES_RESOLVED, CASE_RESOLVED_V1, CaseResolved)
async def on_case_resolved(event: Envelope[CaseResolved], *, session: AsyncSession) -> None:
    """Record the resolution of a round: responsibility, remedy, compensation, on time."""
    d = event.data
    await model.upsert(
        session=session,
        table=tables.case_round_fact,
        key={"case_id": d.case_id, "round": d.round},
        values={
            "resolved_at": d.resolved_at,
            "responsibility": d.responsibility,
            "remedy": d.remedy,
            "compensation_minor": d.compensation_minor,
            "currency": d.currency,
            "resolved_on_time": d.on_time,
            "working_days_taken": d.working_days_taken,
        },
    )
    await _transition(
        session=session, event=event, case_id=d.case_id, at=d.resolved_at, kind="resolved",
        to_status="resolved",
    )  # fmt: skip
    await model.refresh_complaint(session=session, complaint_id=d.case_id)


@handlers.on(registry.CASES_RESULT_NOTIFIED, CASE_RESULT_NOTIFIED_V1, CaseResultNotified)
async def on_case_result_notified(
    event: Envelope[CaseResultNotified], *, session: AsyncSession
) -> None:
    """Record that the customer was told the result (the resolution clock stops here)."""
    d = event.data
    await model.upsert(
        session=session,
        table=tables.case_round_fact,
        key={"case_id": d.case_id, "round": d.round},
        values={"notified_at": d.notified_at, "notified_on_time": d.on_time},
    )
    await _transition(
        session=session, event=event, case_id=d.case_id, at=d.notified_at,
        kind="result_notified", to_status="result_notified",
    )  # fmt: skip
    await model.refresh_complaint(session=session, complaint_id=d.case_id)


@handlers.on(registry.CASES_REOPENED, CASE_REOPENED_V1, CaseReopened)
async def on_case_reopened(event: Envelope[CaseReopened], *, session: AsyncSession) -> None:
    """Record a reopen: a new round with its own resolution clock."""
    d = event.data
    await model.upsert(
        session=session,
        table=tables.case_round_fact,
        key={"case_id": d.case_id, "round": d.round},
        values={"started_at": d.reopened_at, "due_at": d.due_at, "reopen_reason": d.reason},
    )
    await _transition(
        session=session, event=event, case_id=d.case_id, at=d.reopened_at, kind="reopened",
        to_status="reopened", action=d.reason,
    )  # fmt: skip
    await model.refresh_complaint(session=session, complaint_id=d.case_id)


@handlers.on(registry.CASES_CLOSED, CASE_CLOSED_V1, CaseClosed)
async def on_case_closed(event: Envelope[CaseClosed], *, session: AsyncSession) -> None:
    """Record that the case ended, with its outcome."""
    d = event.data
    await _transition(
        session=session, event=event, case_id=d.case_id, at=d.closed_at, kind="closed",
        to_status="closed", action=d.outcome,
    )  # fmt: skip
    await model.refresh_complaint(session=session, complaint_id=d.case_id)


@handlers.on(registry.CUSTOMER_NOTIFICATIONS, CUSTOMER_NOTIFICATION_V1, CustomerNotification)
async def on_customer_notification(
    event: Envelope[CustomerNotification], *, session: AsyncSession
) -> None:
    """Count deadline extensions (notifications of kind ``extension``); ignore the others."""
    d = event.data
    if d.kind != "extension":
        return
    await _transition(
        session=session, event=event, case_id=d.subject_id, at=event.time, kind="extension",
        to_status=None,
    )  # fmt: skip
    await model.refresh_complaint(session=session, complaint_id=d.subject_id)


# --- follow-up visits ------------------------------------------------------------------------


@handlers.on(registry.FOLLOWUPS_SCHEDULED, FOLLOWUP_SCHEDULED_V1, FollowupScheduled)
async def on_followup_scheduled(
    event: Envelope[FollowupScheduled], *, session: AsyncSession
) -> None:
    """Record a planned call-back visit."""
    d = event.data
    await model.upsert(
        session=session,
        table=tables.followup_fact,
        key={"visit_id": d.visit_id},
        values={
            "subject_id": d.subject_id,
            "subject_kind": d.subject_kind,
            "round": d.round,
            "channel": d.channel,
            "scheduled_at": event.time,
            "due_at": d.due_at,
            "department": d.department,
        },
        default=_FILL,
    )


@handlers.on(registry.FOLLOWUPS_COMPLETED, FOLLOWUP_COMPLETED_V1, FollowupCompleted)
async def on_followup_completed(
    event: Envelope[FollowupCompleted], *, session: AsyncSession
) -> None:
    """Record a visit's outcome and satisfaction score (1-5)."""
    d = event.data
    await model.upsert(
        session=session,
        table=tables.followup_fact,
        key={"visit_id": d.visit_id},
        values={
            "subject_id": d.subject_id,
            "subject_kind": d.subject_kind,
            "round": d.round,
            "outcome": d.outcome,
            "score": d.score,
            "reason_code": d.reason_code,
            "attempts": d.attempts,
            "completed_at": d.completed_at,
            "department": d.department,
        },
        rules={"subject_id": _FILL, "subject_kind": _FILL, "round": _FILL, "department": _FILL},
    )
    if d.subject_kind == "case":
        await model.refresh_complaint(session=session, complaint_id=d.subject_id)


# --- suggestions -------------------------------------------------------------------------------


@handlers.on(registry.SUGGESTIONS_RECEIVED, SUGGESTION_RECEIVED_V1, SuggestionReceived)
async def on_suggestion_received(
    event: Envelope[SuggestionReceived], *, session: AsyncSession
) -> None:
    """Record a suggestion's receipt facts."""
    d = event.data
    await model.upsert(
        session=session,
        table=tables.suggestion_fact,
        key={"suggestion_id": d.suggestion_id},
        values={
            "reference": d.reference,
            "channel": d.channel,
            "customer_key": d.customer_key,
            "received_at": d.received_at,
            "received_day": model.local_day(d.received_at, _tz()),
            "branch_code": d.branch_code,
            "product": d.product,
        },
        default=Merge.NEW_OR_KEEP,
    )


@handlers.on(registry.SUGGESTIONS_SCREENED, SUGGESTION_SCREENED_V1, SuggestionScreened)
async def on_suggestion_screened(
    event: Envelope[SuggestionScreened], *, session: AsyncSession
) -> None:
    """Record routing's typing of a suggestion (category, department, near duplicate)."""
    d = event.data
    await model.upsert(
        session=session,
        table=tables.suggestion_fact,
        key={"suggestion_id": d.suggestion_id},
        values={
            "category": d.category,
            "product_line": d.product_line,
            "department": d.department,
            "near_duplicate_of": d.near_duplicate_of,
            "screened_at": event.time,
            "reference": d.reference,
            "channel": d.channel,
            "customer_key": d.customer_key,
            "received_at": d.received_at,
            "received_day": model.local_day(d.received_at, _tz()),
        },
        rules={
            "category": Merge.NEW_OR_KEEP,
            "product_line": Merge.NEW_OR_KEEP,
            "department": Merge.NEW_OR_KEEP,
            "near_duplicate_of": Merge.NEW_OR_KEEP,
            "screened_at": Merge.EARLIEST,
        },
        default=_FILL,
    )


@handlers.on(registry.SUGGESTIONS_DECIDED, SUGGESTION_DECIDED_V1, SuggestionDecided)
async def on_suggestion_decided(
    event: Envelope[SuggestionDecided], *, session: AsyncSession
) -> None:
    """Record a decision (rejected at screening, adopted or declined); the latest one wins."""
    d = event.data
    s = tables.suggestion_fact
    await model.upsert(
        session=session,
        table=s,
        key={"suggestion_id": d.suggestion_id},
        values={
            "reference": d.reference,
            "customer_key": d.customer_key,
            "category": d.category,
            "department": d.department,
        },
        default=_FILL,
    )
    later = (s.c.decided_at.is_(None)) | (s.c.decided_at <= d.decided_at)
    await session.execute(
        s.update()
        .where(s.c.suggestion_id == d.suggestion_id, later)
        .values(decision=d.decision, decided_at=d.decided_at, evaluation_score=d.score)
    )


@handlers.on(registry.SUGGESTIONS_IMPLEMENTED, SUGGESTION_IMPLEMENTED_V1, SuggestionImplemented)
async def on_suggestion_implemented(
    event: Envelope[SuggestionImplemented], *, session: AsyncSession
) -> None:
    """Record that an adopted suggestion was put in place."""
    d = event.data
    await model.upsert(
        session=session,
        table=tables.suggestion_fact,
        key={"suggestion_id": d.suggestion_id},
        values={
            "implemented_at": d.implemented_at,
            "planned_due_date": d.planned_due_date,
            "implemented_on_time": d.on_time,
            "reference": d.reference,
            "customer_key": d.customer_key,
            "department": d.department,
        },
        rules={
            "implemented_at": Merge.EARLIEST,
            "planned_due_date": Merge.NEW_OR_KEEP,
            "implemented_on_time": Merge.NEW_OR_KEEP,
        },
        default=_FILL,
    )


@handlers.on(registry.SUGGESTIONS_REWARDED, SUGGESTION_REWARDED_V1, SuggestionRewarded)
async def on_suggestion_rewarded(
    event: Envelope[SuggestionRewarded], *, session: AsyncSession
) -> None:
    """Record a reward granted to the suggester (one row per reward event)."""
    d = event.data
    await model.upsert(
        session=session,
        table=tables.suggestion_reward_fact,
        key={"event_id": event.id},
        values={
            "suggestion_id": d.suggestion_id,
            "reward_type": d.reward_type,
            "amount_minor": d.amount_minor,
            "currency": d.currency,
            "rewarded_at": d.rewarded_at,
        },
    )
    await model.upsert(
        session=session,
        table=tables.suggestion_fact,
        key={"suggestion_id": d.suggestion_id},
        values={"reference": d.reference, "customer_key": d.customer_key},
        default=_FILL,
    )
