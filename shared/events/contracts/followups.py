"""Payloads of the follow-up visit events (owned by followup). No personal data."""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from shared.events.envelope import Payload

FOLLOWUP_SCHEDULED_V1: Final = "followups.scheduled.v1"
FOLLOWUP_COMPLETED_V1: Final = "followups.completed.v1"


class FollowupScheduled(Payload):
    """``followups.scheduled.v1``: a call-back visit was planned.

    Attributes:
        subject_kind: ``case`` or ``suggestion``.
        round: the case round the visit follows (2 after a reopen).
        due_at: by when the visit should be completed (UTC).
    """

    visit_id: str
    subject_id: str
    subject_kind: Literal["case", "suggestion"]
    round: int = 1
    channel: str
    due_at: datetime
    department: str | None = None


class FollowupCompleted(Payload):
    """``followups.completed.v1``: a visit ended.

    Attributes:
        outcome: ``satisfied``, ``unsatisfied`` (tracking reopens the case) or
            ``unreachable`` (after the configured number of attempts).
        score: satisfaction 1..5 when reached.
        reason_code: why the customer is unsatisfied, when unsatisfied.
        comment: the customer's comment, redacted.
        channel: the visit's channel (``call``, ``sms``, ``app_survey``); optional, added
            after v1 was first published.
    """

    visit_id: str
    subject_id: str
    subject_kind: Literal["case", "suggestion"]
    round: int = 1
    outcome: Literal["satisfied", "unsatisfied", "unreachable"]
    score: int | None = None
    reason_code: str | None = None
    comment: str | None = None
    attempts: int
    completed_at: datetime
    department: str | None = None
    channel: str | None = None


FOLLOWUP_VISIT_WARNING_V1: Final = "followups.visit-warning.v1"
FOLLOWUP_VISIT_OVERDUE_V1: Final = "followups.visit-overdue.v1"


class FollowupVisitClockEvent(Payload):
    """``followups.visit-warning.v1`` / ``followups.visit-overdue.v1``: a visit's clock alert.

    Emitted once per visit by followup's sweep: the warning when at most
    ``FOLLOWUP_WARNING_WORKING_DAYS_LEFT`` working days are left on an active visit's clock,
    the overdue alert when the clock ended with the visit still active (issue 6 §4).

    Attributes:
        round: the case round the visit follows (1 for suggestions).
        due_at: the end of the visit's clock (UTC).
        at: when the sweep saw the condition (UTC).
        channel: the visit's channel (``call``, ``sms``, ``app_survey``).
    """

    visit_id: str
    subject_id: str
    subject_kind: Literal["case", "suggestion"]
    round: int = 1
    due_at: datetime
    at: datetime
    department: str | None = None
    channel: str
