"""Synthetic but realistic event streams for tests and benchmarks of the read model.

:func:`complaint_events` builds the events one complaint produces through the platform, as
the contracts in shared/events/contracts define them (receipt, routing, case, clocks,
resolution, notification, follow-up visit, reopen, close); :func:`suggestion_events` does
the same for a suggestion. Distributions (channels, categories, outcomes) follow
:data:`CHANNEL_WEIGHTS` and friends: skewed like a retail bank's complaint mix. No
personal data: customer keys are ``cus_<n>``.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.events.contracts import cases, complaints, followups, suggestions
from shared.events.envelope import Envelope, new_event
from shared.events.registry import (
    CASES_CLOSED,
    CASES_OPENED,
    CASES_REOPENED,
    CASES_RESOLVED,
    CASES_RESULT_NOTIFIED,
    CASES_SLA_BREACHED,
    CASES_SLA_WARNING,
    CASES_STATUS_CHANGED,
    COMPLAINTS_RECEIVED,
    COMPLAINTS_ROUTED,
    CUSTOMER_NOTIFICATIONS,
    FOLLOWUPS_COMPLETED,
    FOLLOWUPS_SCHEDULED,
    SUGGESTIONS_DECIDED,
    SUGGESTIONS_IMPLEMENTED,
    SUGGESTIONS_RECEIVED,
    SUGGESTIONS_REWARDED,
    SUGGESTIONS_SCREENED,
)

CHANNEL_WEIGHTS = {
    "phone": 35,
    "web": 18,
    "mobile_app": 16,
    "branch": 11,
    "email": 8,
    "online_chat": 6,
    "letter": 3,
    "social_media": 2,
    "regulator_referral": 1,
}
#: category -> (weight, product lines, department, priority weights P1..P4)
CATEGORIES: dict[str, tuple[int, tuple[str, ...], str, tuple[int, int, int, int]]] = {
    "service_quality": (24, ("retail_deposits", "cards", "loans"), "branch_ops", (1, 10, 50, 39)),
    "fees_and_charges": (20, ("cards", "retail_deposits", "loans"), "billing", (1, 15, 60, 24)),
    "product_function": (15, ("cards", "digital_banking", "wealth"), "product", (2, 20, 55, 23)),
    "technical_failure": (12, ("digital_banking", "cards"), "it_ops", (5, 35, 45, 15)),
    "staff_attitude": (10, ("retail_deposits", "loans"), "branch_ops", (1, 15, 55, 29)),
    "fraud_and_security": (8, ("cards", "digital_banking"), "fraud", (40, 40, 15, 5)),
    "privacy": (3, ("digital_banking", "retail_deposits"), "compliance", (20, 40, 30, 10)),
    "other": (8, ("other",), "customer_care", (1, 9, 40, 50)),
}
REGIONS = ("Beijing", "Shanghai", "Guangdong", "Zhejiang", "Jiangsu", "Sichuan", "Hubei")
REGION_WEIGHTS = (14, 16, 22, 14, 14, 10, 10)
REMEDIES = {"explanation": 40, "apology": 25, "fee_refund": 15, "compensation": 10,
            "rectification": 8, "none": 2}  # fmt: skip


@dataclass(frozen=True)
class ComplaintPlan:
    """The ground truth of one synthetic complaint (what its events say)."""

    complaint_id: str
    received_at: datetime
    channel: str
    category: str
    product_line: str
    department: str
    priority: str
    region: str
    branch_code: str
    customer_key: str
    acknowledged: bool
    resolved: bool
    on_time: bool
    breached: bool
    escalated: bool
    extended: bool
    remedy: str | None
    compensation_minor: int
    working_days: float | None
    followup: str | None  # satisfied | unsatisfied | unreachable | None
    score: int | None
    reopened: bool


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def plan_complaint(
    rng: random.Random, received_at: datetime, *, customers: int = 50_000
) -> ComplaintPlan:
    """Draw one complaint's facts from the distributions of this module."""
    category = _pick(rng, {k: v[0] for k, v in CATEGORIES.items()})
    _, products, department, prio = CATEGORIES[category]
    priority = rng.choices(("P1", "P2", "P3", "P4"), weights=prio)[0]
    region = rng.choices(REGIONS, weights=REGION_WEIGHTS)[0]
    resolved = rng.random() < 0.9
    on_time = resolved and rng.random() < 0.88
    followup = None
    score = None
    if resolved:
        r = rng.random()
        followup = "satisfied" if r < 0.7 else "unsatisfied" if r < 0.82 else "unreachable"
        if followup == "satisfied":
            score = rng.choices((3, 4, 5), weights=(15, 45, 40))[0]
        elif followup == "unsatisfied":
            score = rng.choices((1, 2, 3), weights=(40, 45, 15))[0]
    remedy = _pick(rng, REMEDIES) if resolved else None
    compensation = rng.choice((5000, 10000, 20000, 50000)) if remedy == "compensation" else 0
    if remedy == "fee_refund":
        compensation = rng.choice((1500, 3000, 8000))
    return ComplaintPlan(
        complaint_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        received_at=received_at,
        channel=_pick(rng, CHANNEL_WEIGHTS),
        category=category,
        product_line=rng.choice(products),
        department=department,
        priority=priority,
        region=region,
        branch_code=f"{region[:2].upper()}{rng.randint(1, 40):03d}",
        customer_key=f"cus_{rng.randint(1, customers)}",
        acknowledged=rng.random() < 0.97,
        resolved=resolved,
        on_time=on_time,
        breached=not on_time and rng.random() < 0.9,
        escalated=rng.random() < 0.06,
        extended=rng.random() < 0.04,
        remedy=remedy,
        compensation_minor=compensation,
        working_days=round(rng.lognormvariate(0.9, 0.5), 2) if resolved else None,
        followup=followup,
        score=score,
        reopened=followup == "unsatisfied",
    )


def _event(
    topic: str, type_: str, subject: str, data: Any, at: datetime, source: str
) -> tuple[str, Envelope[Any]]:
    return topic, new_event(source=source, type_=type_, subject=subject, data=data, time=at)


def complaint_events(p: ComplaintPlan) -> list[tuple[str, Envelope[Any]]]:
    """Return ``(topic, envelope)`` pairs of one complaint's life, in causal order."""
    cid, t0 = p.complaint_id, p.received_at
    ref = "C-" + cid[:6].upper()
    dims = {"department": p.department, "category": p.category}
    out = [
        _event(COMPLAINTS_RECEIVED, complaints.COMPLAINT_RECEIVED_V1, cid,
               complaints.ComplaintReceived(
                   complaint_id=cid, reference=ref, channel=p.channel, received_at=t0,
                   customer_key=p.customer_key, description="[redacted]",
                   branch_code=p.branch_code, region=p.region, language="zh"),
               t0, "intake"),
        _event(COMPLAINTS_ROUTED, complaints.COMPLAINT_ROUTED_V1, cid,
               complaints.ComplaintRouted(
                   complaint_id=cid, reference=ref, channel=p.channel, received_at=t0,
                   customer_key=p.customer_key, category=p.category,
                   product_line=p.product_line, priority=p.priority,
                   department=p.department, confidence=0.9, branch_code=p.branch_code,
                   region=p.region),
               t0 + timedelta(seconds=2), "routing"),
    ]  # fmt: skip
    opened = t0 + timedelta(seconds=5)
    due = t0 + timedelta(days=7)
    out.append(
        _event(CASES_OPENED, cases.CASE_OPENED_V1, cid,
               cases.CaseOpened(
                   case_id=cid, complaint_id=cid, reference=ref, channel=p.channel,
                   category=p.category, product_line=p.product_line, priority=p.priority,
                   department=p.department, received_at=t0, opened_at=opened, due_at=due,
                   due_date=due.date(), customer_key=p.customer_key,
                   branch_code=p.branch_code, region=p.region),
               opened, "tracking")
    )  # fmt: skip

    def status(action: str, frm: str | None, to: str, at: datetime) -> None:
        out.append(
            _event(CASES_STATUS_CHANGED, cases.CASE_STATUS_CHANGED_V1, cid,
                   cases.CaseStatusChanged(
                       case_id=cid, action=action, from_status=frm, to_status=to,
                       actor_role="agent", at=at, priority=p.priority, **dims),
                   at, "tracking")
        )  # fmt: skip

    if p.acknowledged:
        status("acknowledge", "opened", "acknowledged", t0 + timedelta(hours=3))
    if p.escalated:
        status("escalate", "acknowledged", "escalated", t0 + timedelta(days=1))
    if p.extended:
        out.append(
            _event(CUSTOMER_NOTIFICATIONS, cases.CUSTOMER_NOTIFICATION_V1, cid,
                   cases.CustomerNotification(
                       notification_id=str(uuid.uuid4()), kind="extension", subject_id=cid,
                       reference=ref, customer_key=p.customer_key),
                   t0 + timedelta(days=2), "tracking")
        )  # fmt: skip
    if not p.on_time:
        sla = {"case_id": cid, "clock": "resolution", "due_at": due, "priority": p.priority}
        out.append(
            _event(CASES_SLA_WARNING, cases.CASE_SLA_WARNING_V1, cid,
                   cases.CaseSlaEvent(at=due - timedelta(days=1), **sla, **dims),
                   due - timedelta(days=1), "tracking")
        )  # fmt: skip
        if p.breached:
            out.append(
                _event(CASES_SLA_BREACHED, cases.CASE_SLA_BREACHED_V1, cid,
                       cases.CaseSlaEvent(at=due, **sla, **dims), due, "tracking")
            )  # fmt: skip
    if not p.resolved:
        return out
    assert p.working_days is not None
    resolved_at = t0 + timedelta(days=p.working_days * 1.4)
    out.append(
        _event(CASES_RESOLVED, cases.CASE_RESOLVED_V1, cid,
               cases.CaseResolved(
                   case_id=cid, resolved_at=resolved_at, responsibility="bank",
                   remedy=p.remedy, compensation_minor=p.compensation_minor,
                   currency="CNY" if p.compensation_minor else None, priority=p.priority,
                   on_time=p.on_time, working_days_taken=p.working_days, **dims),
               resolved_at, "tracking")
    )  # fmt: skip
    notified = resolved_at + timedelta(hours=1)
    out.append(
        _event(CASES_RESULT_NOTIFIED, cases.CASE_RESULT_NOTIFIED_V1, cid,
               cases.CaseResultNotified(
                   case_id=cid, notified_at=notified, channel=p.channel,
                   customer_key=p.customer_key, on_time=p.on_time, **dims),
               notified, "tracking")
    )  # fmt: skip
    if p.followup is None:
        return out
    visit = str(uuid.uuid5(uuid.NAMESPACE_URL, "visit:" + cid))
    out.append(
        _event(FOLLOWUPS_SCHEDULED, followups.FOLLOWUP_SCHEDULED_V1, visit,
               followups.FollowupScheduled(
                   visit_id=visit, subject_id=cid, subject_kind="case", channel="phone",
                   due_at=notified + timedelta(days=3), department=p.department),
               notified, "followup")
    )  # fmt: skip
    done = notified + timedelta(days=1)
    out.append(
        _event(FOLLOWUPS_COMPLETED, followups.FOLLOWUP_COMPLETED_V1, visit,
               followups.FollowupCompleted(
                   visit_id=visit, subject_id=cid, subject_kind="case", outcome=p.followup,
                   score=p.score, attempts=1 if p.followup != "unreachable" else 3,
                   completed_at=done, department=p.department),
               done, "followup")
    )  # fmt: skip
    closed = done + timedelta(hours=1)
    if p.reopened:
        out.append(
            _event(CASES_REOPENED, cases.CASE_REOPENED_V1, cid,
                   cases.CaseReopened(
                       case_id=cid, round=2, reopened_at=closed, reason="followup_unsatisfied",
                       priority=p.priority, due_at=closed + timedelta(days=7),
                       due_date=(closed + timedelta(days=7)).date(), **dims),
                   closed, "tracking")
        )  # fmt: skip
        closed = closed + timedelta(days=2)
        out.append(
            _event(CASES_RESOLVED, cases.CASE_RESOLVED_V1, cid,
                   cases.CaseResolved(
                       case_id=cid, round=2, resolved_at=closed, responsibility="bank",
                       remedy="apology", priority=p.priority, on_time=True,
                       working_days_taken=1.5, **dims),
                   closed, "tracking")
        )  # fmt: skip
        closed = closed + timedelta(hours=1)
    out.append(
        _event(CASES_CLOSED, cases.CASE_CLOSED_V1, cid,
               cases.CaseClosed(
                   case_id=cid, closed_at=closed,
                   outcome="satisfied" if p.followup != "unreachable" else "unreachable",
                   round=2 if p.reopened else 1, reopen_count=int(p.reopened), **dims),
               closed, "tracking")
    )  # fmt: skip
    return out


def suggestion_events(
    rng: random.Random, received_at: datetime, *, customers: int = 50_000
) -> list[tuple[str, Envelope[Any]]]:
    """Return ``(topic, envelope)`` pairs of one suggestion's life, in causal order."""
    sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    ref = "S-" + sid[:6].upper()
    customer = f"cus_{rng.randint(1, customers)}"
    channel = _pick(rng, CHANNEL_WEIGHTS)
    category = _pick(rng, {k: v[0] for k, v in CATEGORIES.items()})
    department = CATEGORIES[category][2]
    t = received_at
    out = [
        _event(SUGGESTIONS_RECEIVED, complaints.SUGGESTION_RECEIVED_V1, sid,
               complaints.SuggestionReceived(
                   suggestion_id=sid, reference=ref, channel=channel, received_at=t,
                   customer_key=customer, description="[redacted]"), t, "intake"),
        _event(SUGGESTIONS_SCREENED, complaints.SUGGESTION_SCREENED_V1, sid,
               complaints.SuggestionScreened(
                   suggestion_id=sid, reference=ref, channel=channel, received_at=t,
                   customer_key=customer, category=category, product_line="other",
                   department=department, confidence=0.8), t + timedelta(seconds=3),
               "routing"),
    ]  # fmt: skip
    r = rng.random()
    if r < 0.15:
        return out  # still being evaluated
    decision = "rejected" if r < 0.35 else "declined" if r < 0.65 else "adopted"
    decided = t + timedelta(days=rng.randint(2, 20))
    out.append(
        _event(SUGGESTIONS_DECIDED, suggestions.SUGGESTION_DECIDED_V1, sid,
               suggestions.SuggestionDecided(
                   suggestion_id=sid, reference=ref, customer_key=customer, decision=decision,
                   score=round(rng.uniform(1, 5), 1) if decision != "rejected" else None,
                   decided_at=decided, category=category, department=department),
               decided, "tracking")
    )  # fmt: skip
    if decision != "adopted" or rng.random() < 0.3:
        return out
    done = decided + timedelta(days=rng.randint(10, 90))
    out.append(
        _event(SUGGESTIONS_IMPLEMENTED, suggestions.SUGGESTION_IMPLEMENTED_V1, sid,
               suggestions.SuggestionImplemented(
                   suggestion_id=sid, reference=ref, customer_key=customer,
                   implemented_at=done, department=department,
                   planned_due_date=(done + timedelta(days=5)).date().isoformat(),
                   on_time=rng.random() < 0.8),
               done, "tracking")
    )  # fmt: skip
    out.append(
        _event(SUGGESTIONS_REWARDED, suggestions.SUGGESTION_REWARDED_V1, sid,
               suggestions.SuggestionRewarded(
                   suggestion_id=sid, reference=ref, customer_key=customer,
                   reward_type="points", amount_minor=rng.choice((0, 5000, 20000)),
                   currency="CNY", rewarded_at=done + timedelta(days=1)),
               done + timedelta(days=1), "tracking")
    )  # fmt: skip
    return out


def received_instant(rng: random.Random, *, days: int, end: datetime | None = None) -> datetime:
    """Return a receipt instant in the ``days`` before ``end`` (weekday- and hour-shaped)."""
    end = end or datetime.now(UTC)
    while True:
        t = end - timedelta(seconds=rng.uniform(0, days * 86400))
        local_hour = (t.hour + 8) % 24
        weight = 1.0 if 8 <= local_hour < 20 else 0.15
        if t.weekday() >= 5:
            weight *= 0.6
        if rng.random() < weight:
            return t
