"""Request and response models of follow-up visits (ARCHITECTURE §5, followup)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.followup.domain.visit.policy import ClockState, VisitState
from services.followup.settings import VisitChannel

AttemptResultKind = Literal["reached", "unreachable"]
Outcome = Literal["satisfied", "unsatisfied", "unreachable"]
SubjectKind = Literal["case", "suggestion"]

#: Why a reached customer is unsatisfied (required when ``satisfied`` is false).
ReasonCode = Literal[
    "not_resolved",
    "remedy_insufficient",
    "compensation_insufficient",
    "slow_handling",
    "staff_attitude",
    "explanation_unclear",
    "responsibility_disputed",
    "other",
]
REASON_CODES: Final[tuple[str, ...]] = ReasonCode.__args__  # type: ignore[attr-defined]

#: Longest comment kept, in characters (after redaction the text may be shorter).
COMMENT_MAX_CHARS: Final = 2000


class AttemptCreate(BaseModel):
    """One try to reach the customer (``POST /v1/followups/{id}/attempts``).

    Attributes:
        result: ``reached`` or ``unreachable``.
        satisfied: required when reached; forbidden when unreachable.
        score: satisfaction 1..5, required when reached; forbidden when unreachable.
        reason_code: required when reached and not satisfied; forbidden otherwise.
        comment: the customer's words or the caller's note, up to 2000 characters; phone,
            ID-card, card and account numbers and e-mail addresses are redacted before
            storage (``shared.privacy.redact``).
        channel: the channel used, when not the visit's own.
    """

    model_config = ConfigDict(extra="forbid")

    result: AttemptResultKind
    satisfied: bool | None = None
    score: int | None = Field(None, ge=1, le=5)
    reason_code: ReasonCode | None = None
    comment: str | None = Field(None, max_length=COMMENT_MAX_CHARS)
    channel: VisitChannel | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AttemptCreate:
        if self.result == "reached":
            if self.satisfied is None or self.score is None:
                raise ValueError("a reached attempt needs satisfied and score (1-5)")
            if not self.satisfied and self.reason_code is None:
                raise ValueError("an unsatisfied answer needs a reason_code")
            if self.satisfied and self.reason_code is not None:
                raise ValueError("reason_code is only given when the customer is unsatisfied")
        elif self.satisfied is not None or self.score is not None or self.reason_code is not None:
            raise ValueError("an unreachable attempt has no satisfied, score or reason_code")
        return self


class AttemptRead(BaseModel):
    """A recorded attempt."""

    number: int
    result: AttemptResultKind
    channel: VisitChannel
    satisfied: bool | None
    score: int | None
    reason_code: str | None
    comment: str | None
    recorded_by: str
    attempted_at: datetime


class VisitRead(BaseModel):
    """A follow-up visit with its clock.

    Attributes:
        status: stored status, ``active``, ``completed`` or ``cancelled``.
        state: what a caller sees: ``scheduled`` (not due yet), ``due``, ``overdue``,
            ``completed`` or ``cancelled``.
        trigger: ``result_notified``, ``suggestion_implemented``, ``suggestion_declined``
            or ``suggestion_rejected``.
        customer_key: pseudonymous customer key (ARCHITECTURE §3); intake resolves it for
            roles that may see contact details.
        next_attempt_at: from when the next attempt is due (None once the visit ended).
        due_at / due_date: the visit's clock (UTC instant / local last day).
        clock_state: ``on_track``, ``warning``, ``overdue`` or ``stopped``.
        working_days_left: working days left on the clock (negative when overdue; None
            once stopped).
        cancel_reason: ``case_closed``, ``case_reopened`` or ``superseded``.
        reopened_at: when the case was reopened after this visit (tracking's event).
        attempts: the attempts, oldest first (detail view only).
    """

    id: str
    subject_kind: SubjectKind
    subject_id: str
    round: int
    status: Literal["active", "completed", "cancelled"]
    state: VisitState
    trigger: str
    channel: VisitChannel
    department: str | None
    category: str | None
    customer_key: str
    triggered_at: datetime
    first_attempt_at: datetime
    next_attempt_at: datetime | None
    due_at: datetime
    due_date: date
    provisional: bool
    clock_state: ClockState
    working_days_left: float | None
    attempts_count: int
    max_attempts: int
    outcome: Outcome | None
    satisfied: bool | None
    score: int | None
    reason_code: str | None
    comment: str | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    reopened_at: datetime | None
    created_at: datetime
    attempts: list[AttemptRead] | None = None


class VisitPage(BaseModel):
    """A page of visits, by due time, with the total that matched."""

    total: int
    limit: int
    offset: int
    items: list[VisitRead]


class AttemptRecorded(BaseModel):
    """The answer to ``POST /v1/followups/{id}/attempts``: the attempt and the visit after it."""

    attempt: AttemptRead
    visit: VisitRead
