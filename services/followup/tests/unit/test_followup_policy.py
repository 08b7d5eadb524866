"""Unit tests of the visit rules: channel policy, visit plan, retries, clock, attempt input."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.followup.domain.visit import policy
from services.followup.domain.visit.schemas import AttemptCreate
from services.followup.settings import FollowupSettings
from shared.workcalendar import WorkingDayCalendar

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkingDayCalendar("Asia/Shanghai")


def settings(**kw: object) -> FollowupSettings:
    return FollowupSettings(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "round_", "notice", "expected"),
    [
        ("case", 1, "phone", "call"),
        ("case", 1, "mobile_app", "app_survey"),
        ("case", 1, "Email", "sms"),
        ("case", 1, None, "call"),
        ("case", 1, "letter", "call"),
        ("case", 2, "mobile_app", "call"),  # after a reopen a person calls
        ("suggestion", 1, None, "app_survey"),
    ],
)
def test_channel_policy(kind: str, round_: int, notice: str | None, expected: str) -> None:
    got = policy.choose_channel(
        settings(),
        subject_kind=kind,  # type: ignore[arg-type]
        round_=round_,
        notice_channel=notice,
    )
    assert got == expected


def test_channel_policy_is_configurable() -> None:
    s = settings(default_channel="sms", channel_policy={"phone": "call"}, reopened_channel="sms")
    assert policy.choose_channel(s, subject_kind="case", round_=1, notice_channel="phone") == "call"
    assert policy.choose_channel(s, subject_kind="case", round_=1, notice_channel="web") == "sms"
    assert policy.choose_channel(s, subject_kind="case", round_=3, notice_channel="phone") == "sms"


def test_plan_over_national_day() -> None:
    # ARCHITECTURE §4 example 1: 1-7 Oct 2026 are holidays, Saturday 10 Oct is worked.
    notified = datetime(2026, 9, 30, 10, 0, tzinfo=SH)
    plan = policy.plan_visit(CAL, settings(delay_working_days=1, window_working_days=3), notified)
    assert plan.first_attempt_at == datetime(2026, 10, 8, 0, 0, tzinfo=SH)
    assert plan.first_attempt_at.tzinfo == UTC
    assert plan.due_date == date(2026, 10, 10)
    assert plan.due_at == datetime(2026, 10, 11, 0, 0, tzinfo=SH)
    assert not plan.provisional


def test_plan_uses_local_day_not_utc_day() -> None:
    # 2026-03-05T16:30Z is Friday 6 March 00:30 in Shanghai: the next working day is Monday 9.
    plan = policy.plan_visit(
        CAL, settings(delay_working_days=1), datetime(2026, 3, 5, 16, 30, tzinfo=UTC)
    )
    assert plan.first_attempt_at == datetime(2026, 3, 9, 0, 0, tzinfo=SH)


def test_plan_with_no_delay_is_due_at_once_and_window_covers_delay() -> None:
    notified = datetime(2026, 6, 1, 9, 0, tzinfo=SH)  # Monday
    plan = policy.plan_visit(CAL, settings(delay_working_days=0), notified)
    assert plan.first_attempt_at == notified
    long_delay = policy.plan_visit(
        CAL, settings(delay_working_days=5, window_working_days=2), notified
    )
    assert long_delay.due_date == date(2026, 6, 8)  # the 5th working day, not the 2nd
    assert long_delay.first_attempt_at < long_delay.due_at


def test_retry_is_spaced_by_working_days_and_extends_the_clock() -> None:
    friday = datetime(2026, 6, 5, 15, 0, tzinfo=SH)
    due_at = datetime(2026, 6, 6, 0, 0, tzinfo=SH)  # the clock ends tonight
    next_at, new_due, new_date = policy.plan_retry(
        CAL,
        settings(retry_spacing_working_days=1),
        now=friday,
        due_at=due_at,
        due_date=date(2026, 6, 5),
    )
    assert next_at == datetime(2026, 6, 8, 0, 0, tzinfo=SH)  # Monday
    assert new_date == date(2026, 6, 8)
    assert new_due == datetime(2026, 6, 9, 0, 0, tzinfo=SH)
    # a clock that already ends later is kept
    later = datetime(2026, 6, 12, 0, 0, tzinfo=SH)
    _, kept, kept_date = policy.plan_retry(
        CAL, settings(), now=friday, due_at=later, due_date=date(2026, 6, 11)
    )
    assert (kept, kept_date) == (later, date(2026, 6, 11))


def test_clock_state_and_visit_state() -> None:
    s = settings(warning_working_days_left=1.0)
    due_at = datetime(2026, 6, 6, 0, 0, tzinfo=SH)  # end of Friday 5 June
    assert (
        policy.clock_state(
            CAL, s, now=datetime(2026, 6, 3, 12, tzinfo=SH), due_at=due_at, active=True
        )[0]
        == "on_track"
    )
    state, left = policy.clock_state(
        CAL, s, now=datetime(2026, 6, 5, 12, tzinfo=SH), due_at=due_at, active=True
    )
    assert (state, left) == ("warning", 0.5)
    state, left = policy.clock_state(
        CAL, s, now=datetime(2026, 6, 8, 12, tzinfo=SH), due_at=due_at, active=True
    )
    assert state == "overdue"
    assert left is not None
    assert left < 0
    assert policy.clock_state(CAL, s, now=due_at, due_at=due_at, active=False) == ("stopped", None)
    now = datetime(2026, 6, 3, 12, tzinfo=SH)
    assert policy.visit_state(status="active", now=now, next_attempt_at=due_at, due_at=due_at) == (
        "scheduled"
    )
    assert policy.visit_state(status="active", now=now, next_attempt_at=now, due_at=due_at) == "due"
    assert policy.visit_state(status="active", now=due_at, next_attempt_at=now, due_at=due_at) == (
        "overdue"
    )
    assert policy.visit_state(status="cancelled", now=now, next_attempt_at=None, due_at=due_at) == (
        "cancelled"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"result": "reached", "satisfied": True, "score": 7},
        {"result": "reached", "satisfied": True, "score": 0},
        {"result": "reached", "satisfied": True},
        {"result": "reached", "score": 4},
        {"result": "reached", "satisfied": False, "score": 2},  # no reason code
        {"result": "reached", "satisfied": True, "score": 5, "reason_code": "other"},
        {"result": "reached", "satisfied": False, "score": 2, "reason_code": "because"},
        {"result": "unreachable", "score": 3},
        {"result": "unreachable", "satisfied": False},
        {"result": "maybe"},
        {"result": "unreachable", "channel": "fax"},
        {"result": "unreachable", "comment": "x" * 2001},
        {"result": "unreachable", "extra": 1},
    ],
)
def test_attempt_input_is_validated(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AttemptCreate.model_validate(body)


def test_attempt_input_accepts_the_valid_shapes() -> None:
    AttemptCreate.model_validate({"result": "unreachable", "comment": "no answer"})
    AttemptCreate.model_validate({"result": "reached", "satisfied": True, "score": 5})
    AttemptCreate.model_validate(
        {
            "result": "reached",
            "satisfied": False,
            "score": 1,
            "reason_code": "not_resolved",
            "channel": "sms",
        }
    )
