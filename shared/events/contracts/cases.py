"""Payloads of the case events (owned by tracking). No personal data (ARCHITECTURE.md §3).

Statuses of a complaint case (tracking's state machine): ``opened``, ``acknowledged``,
``assigned``, ``investigating``, ``awaiting_customer``, ``responsibility_determined``,
``resolved``, ``result_notified``, ``closed``, ``withdrawn``, ``merged``, ``escalated``
(a flag-like status while a supervisor handles it) and ``reopened``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final, Literal

from pydantic import Field

from shared.events.envelope import Payload

CASE_OPENED_V1: Final = "cases.opened.v1"
CASE_STATUS_CHANGED_V1: Final = "cases.status-changed.v1"
CASE_SLA_WARNING_V1: Final = "cases.sla-warning.v1"
CASE_SLA_BREACHED_V1: Final = "cases.sla-breached.v1"
CASE_SLA_WITHDRAWN_V1: Final = "cases.sla-withdrawn.v1"
CASE_RESOLVED_V1: Final = "cases.resolved.v1"
CASE_RESULT_NOTIFIED_V1: Final = "cases.result-notified.v1"
CASE_REOPENED_V1: Final = "cases.reopened.v1"
CASE_CLOSED_V1: Final = "cases.closed.v1"
CUSTOMER_NOTIFICATION_V1: Final = "customer.notifications.v1"

ClockKind = Literal["resolution", "acknowledgement", "regulatory"]
Responsibility = Literal["bank", "customer", "third_party", "not_established"]
Remedy = Literal["apology", "compensation", "fee_refund", "rectification", "explanation", "none"]


class CaseOpened(Payload):
    """``cases.opened.v1``: tracking opened a case for a routed complaint.

    Attributes:
        case_id: equals the complaint id.
        due_at: end of the 5-working-day resolution period (UTC instant).
        due_date: the period's last day, in the bank's time zone.
        provisional: True when the due date falls in a year without an official
            holiday schedule.
    """

    case_id: str
    complaint_id: str
    reference: str
    channel: str
    category: str
    product_line: str
    priority: str
    department: str
    received_at: datetime
    opened_at: datetime
    due_at: datetime
    due_date: date
    provisional: bool = False
    customer_key: str
    branch_code: str | None = None
    region: str | None = None


class CaseStatusChanged(Payload):
    """``cases.status-changed.v1``: one transition of the case state machine.

    Attributes:
        action: the action that caused it (``acknowledge``, ``assign``, ...).
        actor_role: role of the person or ``system``; never a name.
        at: when it happened (UTC).
    """

    case_id: str
    action: str
    from_status: str | None
    to_status: str
    actor_role: str
    at: datetime
    department: str
    category: str
    priority: str
    handler: str | None = None


class CaseSlaEvent(Payload):
    """``cases.sla-warning.v1`` / ``cases.sla-breached.v1``: a clock's warning or due time.

    Each is emitted exactly once per clock and round.

    Attributes:
        clock: which clock.
        round: 1 for the first handling, +1 per reopen.
        due_at: the clock's due time (UTC).
        at: when the warning or breach was detected (UTC, within 60 s of the moment).
    """

    case_id: str
    clock: ClockKind
    round: int = 1
    due_at: datetime
    at: datetime
    department: str
    category: str
    priority: str


class CaseSlaWithdrawn(Payload):
    """``cases.sla-withdrawn.v1``: a warning or breach no longer holds.

    A calendar change moved the clock's due time later. Travels on the topic of the alert it
    withdraws (``cases.sla-warning`` or ``cases.sla-breached``), so consumers that do not
    know this type skip it; those that count alerts subtract one.

    Attributes:
        alert: ``warning`` or ``breach``: which alert is withdrawn.
        previous_due_at: the due time the alert was raised against (UTC).
        due_at: the new due time (UTC).
        reason: ``calendar_change``.
    """

    case_id: str
    clock: ClockKind
    round: int = 1
    alert: Literal["warning", "breach"]
    previous_due_at: datetime
    due_at: datetime
    at: datetime
    reason: str = "calendar_change"
    department: str
    category: str
    priority: str


class CaseResolved(Payload):
    """``cases.resolved.v1``: the bank decided the outcome (responsibility and remedy).

    Attributes:
        compensation_minor: compensation in minor units of ``currency`` (0 when none).
        working_days_taken: working days from receipt (or reopen) to resolution.
    """

    case_id: str
    round: int = 1
    resolved_at: datetime
    responsibility: Responsibility
    remedy: Remedy
    compensation_minor: int = 0
    currency: str | None = None
    department: str
    category: str
    priority: str
    on_time: bool
    working_days_taken: float | None = None


class CaseResultNotified(Payload):
    """``cases.result-notified.v1``: the customer was told the result.

    The resolution clock stops here by default, and followup schedules the call-back visit.
    """

    case_id: str
    round: int = 1
    notified_at: datetime
    channel: str
    customer_key: str
    department: str
    category: str
    on_time: bool


class CaseReopened(Payload):
    """``cases.reopened.v1``: the case is handled again with a new resolution clock.

    Attributes:
        reason: ``followup_unsatisfied``, ``customer_request`` or ``supervisor``.
        round: the new round (2 for the first reopen).
    """

    case_id: str
    round: int
    reopened_at: datetime
    reason: str
    priority: str
    due_at: datetime
    due_date: date
    department: str
    category: str


class CaseClosed(Payload):
    """``cases.closed.v1``: the case ended.

    Attributes:
        outcome: ``satisfied``, ``unreachable``, ``closed_without_followup``, ``withdrawn``
            or ``merged``.
    """

    case_id: str
    closed_at: datetime
    outcome: str
    round: int = 1
    reopen_count: int = 0
    department: str
    category: str


class CustomerNotification(Payload):
    """``customer.notifications.v1``: a message the bank's messaging system delivers.

    No personal data: the messaging system resolves ``customer_key`` to contact details.

    Attributes:
        kind: ``acknowledgement``, ``result``, ``extension``, ``suggestion_result``,
            ``reward``.
        subject_id: case or suggestion id.
        params: template values (deadline, remedy, recourse, amount ...); no free text
            from the customer.
    """

    notification_id: str
    kind: str
    subject_id: str
    reference: str
    customer_key: str
    language: str = "zh"
    params: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
