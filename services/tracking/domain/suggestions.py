"""The suggestion workflow (issue 5 §6; ARCHITECTURE.md §1 "suggestions").

received (from routing's ``suggestions.screened``) -> screen: ``screened`` or ``rejected``
(with a reason) -> evaluate (one or more reviewers score feasibility, reasonableness and
expected effect 1-5; weighted) -> ``adopted`` or ``declined`` -> plan (department, owner,
due date in working days) -> ``implemented`` (with a measured-effect note) -> notify the
suggester -> reward (type and amount in the reward ledger).

Events: ``suggestions.decided`` (rejected, adopted, declined), ``suggestions.implemented``,
``suggestions.rewarded``, and ``customer.notifications`` (suggestion_result, reward).
Functions never commit (STYLE.md §3).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.tracking import tables
from services.tracking.domain.exceptions import (
    ForbiddenAction,
    IllegalTransition,
    InvalidAction,
    SuggestionNotFound,
    VersionConflict,
)
from services.tracking.domain.service import valid_uuid
from services.tracking.settings import TrackingSettings
from shared import audit
from shared.auth import Principal
from shared.events import outbox, registry
from shared.events.contracts.cases import CUSTOMER_NOTIFICATION_V1, CustomerNotification
from shared.events.contracts.complaints import SuggestionScreened
from shared.events.contracts.suggestions import (
    SUGGESTION_DECIDED_V1,
    SUGGESTION_IMPLEMENTED_V1,
    SUGGESTION_REWARDED_V1,
    SuggestionDecided,
    SuggestionImplemented,
    SuggestionRewarded,
)
from shared.events.envelope import Envelope, Payload, new_event
from shared.privacy import redact
from shared.workcalendar import WorkingDayCalendar

Text500 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Score = Annotated[int, Field(ge=1, le=5)]

RECEIVED, SCREENED, REJECTED = "received", "screened", "rejected"
UNDER_EVALUATION, ADOPTED, DECLINED = "under_evaluation", "adopted", "declined"
PLANNED, IMPLEMENTED, NOTIFIED, REWARDED = "planned", "implemented", "notified", "rewarded"

#: action -> (states it may start from, roles admitted; admin always is).
TRANSITIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "screen": (frozenset({RECEIVED}), frozenset({"agent", "supervisor"})),
    "evaluate": (frozenset({SCREENED, UNDER_EVALUATION}), frozenset({"agent", "supervisor"})),
    "adopt": (frozenset({UNDER_EVALUATION}), frozenset({"supervisor"})),
    "decline": (frozenset({UNDER_EVALUATION}), frozenset({"supervisor"})),
    "plan": (frozenset({ADOPTED}), frozenset({"supervisor"})),
    "implement": (frozenset({PLANNED}), frozenset({"agent", "supervisor"})),
    "notify": (frozenset({REJECTED, DECLINED, IMPLEMENTED}), frozenset({"agent", "supervisor"})),
    # Feedback comes before the reward (plan: implementation, feedback, reward), so the
    # suggester is always told the outcome.
    "reward": (frozenset({NOTIFIED}), frozenset({"supervisor"})),
}


def allowed_actions(status: str) -> list[str]:
    """Return the suggestion actions allowed from ``status``."""
    return [a for a, (sources, _) in TRANSITIONS.items() if status in sources]


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expected_version: int | None = Field(None, ge=1)


class Screen(_Action):
    """Accept the suggestion for evaluation, or reject it (a reason is then required)."""

    action: Literal["screen"]
    accepted: bool
    reason: Text500 | None = None


class Evaluate(_Action):
    """One reviewer's scores (1-5 each); a reviewer evaluating again replaces their scores."""

    action: Literal["evaluate"]
    feasibility: Score
    reasonableness: Score
    expected_effect: Score
    comment: Annotated[str, StringConstraints(max_length=2000)] | None = None


class Adopt(_Action):
    """Adopt the evaluated suggestion."""

    action: Literal["adopt"]
    reason: Text500 | None = None


class Decline(_Action):
    """Decline the evaluated suggestion, with a reason."""

    action: Literal["decline"]
    reason: Text500


class Plan(_Action):
    """Plan the implementation: department, owner (staff id), due in working days."""

    action: Literal["plan"]
    department: Code
    owner: Code
    working_days: int = Field(ge=1, le=250)


class Implement(_Action):
    """Record the implementation and its measured effect."""

    action: Literal["implement"]
    effect_note: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)
    ]


class Notify(_Action):
    """The suggester was told the outcome."""

    action: Literal["notify"]
    channel: Literal["phone", "sms", "email", "letter", "branch", "mobile_app", "online_chat"]


class Reward(_Action):
    """Reward the suggester (ledger row); ``amount_minor`` in minor units of ``currency``."""

    action: Literal["reward"]
    reward_type: Literal["cash", "points", "gift", "certificate"]
    amount_minor: int = Field(0, ge=0, le=10**12)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")


SuggestionAction = Annotated[
    Screen | Evaluate | Adopt | Decline | Plan | Implement | Notify | Reward,
    Field(discriminator="action"),
]


class EvaluationRead(BaseModel):
    """One reviewer's evaluation."""

    reviewer: str
    feasibility: int
    reasonableness: int
    expected_effect: int
    weighted_score: float
    comment: str | None
    evaluated_at: datetime


class RewardRead(BaseModel):
    """One reward ledger row."""

    id: int
    reward_type: str
    amount_minor: int
    currency: str | None
    granted_by: str
    granted_at: datetime


class SuggestionRead(BaseModel):
    """A suggestion with its evaluations, reward ledger and allowed actions."""

    id: str
    reference: str
    status: str
    channel: str
    customer_key: str
    category: str
    product_line: str
    department: str
    near_duplicate_of: str | None
    received_at: datetime
    updated_at: datetime
    version: int
    screen_reason: str | None
    decision_reason: str | None
    score: float | None
    plan_department: str | None
    plan_owner: str | None
    plan_working_days: int | None
    plan_due_date: date | None
    implemented_at: datetime | None
    effect_note: str | None
    notified_at: datetime | None
    allowed_actions: list[str]
    evaluations: list[EvaluationRead] = []
    rewards: list[RewardRead] = []


class SuggestionPage(BaseModel):
    """A page of suggestions (newest first) with the total that matched."""

    total: int
    items: list[SuggestionRead]


def _read(row: Any, evaluations: list[EvaluationRead], rewards: list[RewardRead]) -> SuggestionRead:
    m = row._mapping
    return SuggestionRead(
        **{f: m[f] for f in SuggestionRead.model_fields if f in m},
        allowed_actions=allowed_actions(m["status"]),
        evaluations=evaluations,
        rewards=rewards,
    )


async def receive(*, session: AsyncSession, screened: SuggestionScreened, now: datetime) -> bool:
    """Record a suggestion routed by routing (status ``received``); idempotent.

    Returns:
        False when it was already recorded.
    """
    created = await session.execute(
        pg_insert(tables.suggestion)
        .values(
            id=screened.suggestion_id,
            reference=screened.reference,
            status=RECEIVED,
            channel=screened.channel,
            customer_key=screened.customer_key,
            category=screened.category,
            product_line=screened.product_line,
            department=screened.department,
            confidence=screened.confidence,
            near_duplicate_of=screened.near_duplicate_of,
            received_at=screened.received_at,
            opened_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing()
        .returning(tables.suggestion.c.id)
    )
    if created.first() is None:
        return False
    await session.execute(
        insert(tables.suggestion_event).values(
            suggestion_id=screened.suggestion_id,
            at=now,
            action="receive",
            from_status=None,
            to_status=RECEIVED,
            actor="system:routing",
            details={
                "department": screened.department,
                "category": screened.category,
                "near_duplicate_of": screened.near_duplicate_of,
            },
        )
    )
    return True


async def get_suggestion(*, session: AsyncSession, suggestion_id: str) -> SuggestionRead:
    """Load a suggestion with evaluations and rewards.

    Raises:
        SuggestionNotFound: no such suggestion.
    """
    if not valid_uuid(suggestion_id):
        raise SuggestionNotFound(f"no suggestion {suggestion_id}")
    s = tables.suggestion
    row = (await session.execute(select(s).where(s.c.id == suggestion_id))).first()
    if row is None:
        raise SuggestionNotFound(f"no suggestion {suggestion_id}")
    e, r = tables.suggestion_evaluation, tables.reward_ledger
    evals = (
        await session.execute(
            select(e).where(e.c.suggestion_id == suggestion_id).order_by(e.c.evaluated_at)
        )
    ).all()
    rewards = (
        await session.execute(select(r).where(r.c.suggestion_id == suggestion_id).order_by(r.c.id))
    ).all()
    return _read(
        row,
        [EvaluationRead.model_validate(x._mapping, from_attributes=False) for x in evals],
        [RewardRead.model_validate(x._mapping, from_attributes=False) for x in rewards],
    )


async def list_suggestions(
    *,
    session: AsyncSession,
    status: str | None,
    department: str | None,
    category: str | None,
    limit: int,
    offset: int,
) -> SuggestionPage:
    """Return suggestions filtered by status, department and category, newest first."""
    s = tables.suggestion
    conditions = [
        col == value
        for col, value in (
            (s.c.status, status),
            (s.c.department, department),
            (s.c.category, category),
        )
        if value is not None
    ]
    total = await session.scalar(select(func.count()).select_from(s).where(*conditions))
    rows = (
        await session.execute(
            select(s)
            .where(*conditions)
            .order_by(s.c.received_at.desc(), s.c.id)
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return SuggestionPage(total=int(total or 0), items=[_read(r, [], []) for r in rows])


def weighted(
    settings: TrackingSettings, feasibility: int, reasonableness: int, effect: int
) -> float:
    """Return the weighted 1-5 score of one evaluation (weights normalised to sum 1)."""
    wf = settings.suggestion_weight_feasibility
    wr = settings.suggestion_weight_reasonableness
    we = settings.suggestion_weight_effect
    total = wf + wr + we
    if total <= 0:
        return round((feasibility + reasonableness + effect) / 3, 3)
    return round((wf * feasibility + wr * reasonableness + we * effect) / total, 3)


async def apply_action(
    *,
    session: AsyncSession,
    calendar: WorkingDayCalendar,
    settings: TrackingSettings,
    suggestion_id: str,
    action: BaseModel,
    actor: Principal,
    now: datetime,
) -> None:
    """Apply one suggestion action in the caller's transaction (audited, evented).

    Args:
        session: the unit of work.
        calendar: for the plan's due date in working days.
        settings: weights, minimum reviewers.
        suggestion_id: the suggestion.
        action: one of the :data:`SuggestionAction` models.
        actor: the caller.
        now: when (UTC).

    Raises:
        SuggestionNotFound: no such suggestion.
        VersionConflict: stale ``expected_version``.
        ForbiddenAction: role not admitted.
        IllegalTransition: not allowed in the current state (409 with allowed actions).
        InvalidAction: inconsistent fields (rejection without reason, too few reviews, ...).
    """
    name: str = action.action  # type: ignore[attr-defined]
    if not valid_uuid(suggestion_id):
        raise SuggestionNotFound(f"no suggestion {suggestion_id}")
    s = tables.suggestion
    row = (
        await session.execute(select(s).where(s.c.id == suggestion_id).with_for_update())
    ).first()
    if row is None:
        raise SuggestionNotFound(f"no suggestion {suggestion_id}")
    sug = dict(row._mapping)
    expected = getattr(action, "expected_version", None)
    if expected is not None and expected != sug["version"]:
        raise VersionConflict(
            f"suggestion is at version {sug['version']}, not {expected}",
            current_version=sug["version"],
        )
    sources, roles = TRANSITIONS[name]
    if not actor.has_any(*roles):
        raise ForbiddenAction(f"{name} requires one of the roles: {', '.join(sorted(roles))}")
    if sug["status"] not in sources:
        allowed = allowed_actions(sug["status"])
        raise IllegalTransition(
            f"cannot {name} a suggestion in state {sug['status']}; "
            f"allowed actions: {', '.join(allowed) or 'none'}",
            current_state=sug["status"],
            allowed_actions=allowed,
        )
    values: dict[str, Any] = {}
    details: dict[str, Any] = {}
    events: list[tuple[Envelope[Any], str]] = []

    def emit(type_: str, data: Payload, topic: str) -> None:
        events.append(
            (new_event(source="tracking", type_=type_, subject=suggestion_id, data=data), topic)
        )

    def decided(decision: str, reason: str | None, score: float | None) -> None:
        emit(
            SUGGESTION_DECIDED_V1,
            SuggestionDecided(
                suggestion_id=suggestion_id,
                reference=sug["reference"],
                customer_key=sug["customer_key"],
                decision=decision,  # type: ignore[arg-type]
                reason=reason,
                score=score,
                decided_at=now,
                category=sug["category"],
                department=sug["department"],
            ),
            registry.SUGGESTIONS_DECIDED,
        )

    def notify(kind: str, params: dict[str, str | int | float | bool | None]) -> None:
        emit(
            CUSTOMER_NOTIFICATION_V1,
            CustomerNotification(
                notification_id=str(uuid.uuid4()),
                kind=kind,
                subject_id=suggestion_id,
                reference=sug["reference"],
                customer_key=sug["customer_key"],
                params=params,
            ),
            registry.CUSTOMER_NOTIFICATIONS,
        )

    to_status = sug["status"]
    if isinstance(action, Screen):
        if action.accepted:
            to_status = SCREENED
        else:
            if not action.reason:
                raise InvalidAction("a rejection needs a reason")
            to_status = REJECTED
            decided("rejected", redact(action.reason), None)
        values["screen_reason"] = redact(action.reason) if action.reason else None
        details["accepted"] = action.accepted
    elif isinstance(action, Evaluate):
        score = weighted(
            settings, action.feasibility, action.reasonableness, action.expected_effect
        )
        e = tables.suggestion_evaluation
        stmt = pg_insert(e).values(
            suggestion_id=suggestion_id,
            reviewer=actor.subject,
            feasibility=action.feasibility,
            reasonableness=action.reasonableness,
            expected_effect=action.expected_effect,
            weighted_score=score,
            comment=redact(action.comment) if action.comment else None,
            evaluated_at=now,
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[e.c.suggestion_id, e.c.reviewer],
                set_={
                    "feasibility": stmt.excluded.feasibility,
                    "reasonableness": stmt.excluded.reasonableness,
                    "expected_effect": stmt.excluded.expected_effect,
                    "weighted_score": stmt.excluded.weighted_score,
                    "comment": stmt.excluded.comment,
                    "evaluated_at": stmt.excluded.evaluated_at,
                },
            )
        )
        mean = await session.scalar(
            select(func.avg(e.c.weighted_score)).where(e.c.suggestion_id == suggestion_id)
        )
        values["score"] = round(float(mean), 3) if mean is not None else score
        to_status = UNDER_EVALUATION
        details.update(
            feasibility=action.feasibility,
            reasonableness=action.reasonableness,
            expected_effect=action.expected_effect,
            weighted_score=score,
        )
    elif isinstance(action, Adopt | Decline):
        e = tables.suggestion_evaluation
        reviewers = await session.scalar(
            select(func.count()).select_from(e).where(e.c.suggestion_id == suggestion_id)
        )
        if int(reviewers or 0) < settings.suggestion_min_reviewers:
            raise InvalidAction(
                f"{settings.suggestion_min_reviewers} evaluation(s) needed before deciding; "
                f"{int(reviewers or 0)} so far"
            )
        to_status = ADOPTED if isinstance(action, Adopt) else DECLINED
        reason = redact(action.reason) if action.reason else None
        values["decision_reason"] = reason
        decided("adopted" if isinstance(action, Adopt) else "declined", reason, sug["score"])
        details.update(score=sug["score"], reviewers=int(reviewers or 0))
    elif isinstance(action, Plan):
        due = calendar.add_working_days(calendar.local_date(now), action.working_days)
        values.update(
            plan_department=action.department,
            plan_owner=action.owner,
            plan_working_days=action.working_days,
            plan_due_date=due,
        )
        to_status = PLANNED
        details.update(
            department=action.department, working_days=action.working_days, due_date=due.isoformat()
        )
    elif isinstance(action, Implement):
        on_time = calendar.local_date(now) <= sug["plan_due_date"] if sug["plan_due_date"] else None
        values.update(implemented_at=now, effect_note=redact(action.effect_note))
        to_status = IMPLEMENTED
        details["on_time"] = on_time
        emit(
            SUGGESTION_IMPLEMENTED_V1,
            SuggestionImplemented(
                suggestion_id=suggestion_id,
                reference=sug["reference"],
                customer_key=sug["customer_key"],
                implemented_at=now,
                department=sug["plan_department"] or sug["department"],
                planned_due_date=sug["plan_due_date"].isoformat() if sug["plan_due_date"] else None,
                on_time=on_time,
            ),
            registry.SUGGESTIONS_IMPLEMENTED,
        )
    elif isinstance(action, Notify):
        values["notified_at"] = now
        to_status = NOTIFIED
        details["channel"] = action.channel
        notify(
            "suggestion_result",
            {
                "outcome": sug["status"],
                "score": sug["score"],
                "channel": action.channel,
                "planned_due_date": sug["plan_due_date"].isoformat()
                if sug["plan_due_date"]
                else None,
            },
        )
    elif isinstance(action, Reward):
        if action.reward_type == "cash" and (action.amount_minor <= 0 or not action.currency):
            raise InvalidAction("a cash reward needs amount_minor > 0 and a currency")
        if action.amount_minor and not action.currency and action.reward_type != "points":
            raise InvalidAction("an amount needs a currency (except points)")
        await session.execute(
            insert(tables.reward_ledger).values(
                suggestion_id=suggestion_id,
                customer_key=sug["customer_key"],
                reward_type=action.reward_type,
                amount_minor=action.amount_minor,
                currency=action.currency,
                granted_by=actor.subject,
                granted_at=now,
            )
        )
        to_status = REWARDED
        details.update(
            reward_type=action.reward_type,
            amount_minor=action.amount_minor,
            currency=action.currency,
        )
        emit(
            SUGGESTION_REWARDED_V1,
            SuggestionRewarded(
                suggestion_id=suggestion_id,
                reference=sug["reference"],
                customer_key=sug["customer_key"],
                reward_type=action.reward_type,
                amount_minor=action.amount_minor,
                currency=action.currency,
                rewarded_at=now,
            ),
            registry.SUGGESTIONS_REWARDED,
        )
        notify(
            "reward",
            {
                "reward_type": action.reward_type,
                "amount_minor": action.amount_minor,
                "currency": action.currency,
            },
        )
    await session.execute(
        update(s)
        .where(s.c.id == suggestion_id)
        .values(**values, status=to_status, updated_at=now, version=sug["version"] + 1)
    )
    await session.execute(
        insert(tables.suggestion_event).values(
            suggestion_id=suggestion_id,
            at=now,
            action=name,
            from_status=sug["status"],
            to_status=to_status,
            actor=actor.subject,
            details=details,
        )
    )
    await audit.record(
        session,
        tables.audit_log,
        actor=actor,
        action=f"suggestion.{name}",
        subject_type="suggestion",
        subject_id=suggestion_id,
        details={"from_status": sug["status"], "to_status": to_status, **details},
    )
    await outbox.add_many(session, tables.outbox, events)
