"""Pure parts of tracking: the state machine table, warning points, next checks, states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.tracking.domain import clocks, lifecycle
from services.tracking.settings import TrackingSettings
from shared.workcalendar import WorkingDayCalendar

CST = timezone(timedelta(hours=8))
CAL = WorkingDayCalendar()


def test_every_status_is_reachable_and_terminal_states_only_reopen() -> None:
    reachable = {lifecycle.OPENED}
    for _, (_, to) in lifecycle.TRANSITIONS.items():
        if to:
            reachable.add(to)
    assert reachable == set(lifecycle.STATUSES)
    assert lifecycle.allowed_actions("withdrawn") == []
    assert lifecycle.allowed_actions("merged") == []
    assert lifecycle.allowed_actions("closed") == ["reopen"]
    assert set(lifecycle.ROLES) == set(lifecycle.TRANSITIONS)


@pytest.mark.parametrize(
    ("action", "status", "expected"),
    [
        ("acknowledge", "opened", "acknowledged"),
        ("acknowledge", "investigating", None),
        ("resolve", "responsibility_determined", "resolved"),
        ("notify_customer", "resolved", "result_notified"),
        ("reopen", "result_notified", "reopened"),
        ("reopen", "investigating", None),
        ("identify_staff", "investigating", "investigating"),
        ("escalate", "escalated", None),
        ("merge", "closed", None),
    ],
)
def test_target(action: str, status: str, expected: str | None) -> None:
    assert lifecycle.target(action, status) == expected


def test_bump_priority() -> None:
    assert [lifecycle.bump_priority(p) for p in ("P4", "P3", "P2", "P1", "X")] == [
        "P3",
        "P2",
        "P1",
        "P1",
        "X",
    ]


def test_warning_point_is_start_of_last_working_day() -> None:
    due = CAL.deadline(datetime(2026, 9, 30, 10, tzinfo=CST)).due_at  # due 13 Oct
    assert clocks.warn_instant(CAL, due, 1.0) == datetime(2026, 10, 13, tzinfo=CST)
    assert clocks.warn_instant(CAL, due, 1.5) == datetime(2026, 10, 12, 12, tzinfo=CST)
    # two working days back skips Sunday 11 Oct and lands on 12 Oct 00:00
    assert clocks.warn_instant(CAL, due, 2.0) == datetime(2026, 10, 12, tzinfo=CST)
    assert clocks.warn_instant(CAL, due, 3.0) == datetime(2026, 10, 10, tzinfo=CST)
    assert clocks.warn_instant(CAL, due, 0) is None
    for days_left in (0.5, 1.0, 2.25, 3.0):
        at = clocks.warn_instant(CAL, due, days_left)
        assert at is not None
        assert CAL.working_days_left(at, due) == pytest.approx(days_left)


def test_acknowledgement_clock_gets_no_warning_and_next_check_order() -> None:
    settings = TrackingSettings()
    start = datetime(2026, 6, 15, 10, tzinfo=CST)
    ack = clocks.new_clock(
        CAL, settings, case_id="c", kind="acknowledgement", round_=1, started_at=start
    )
    assert ack["warn_at"] is None
    assert ack["next_check_at"] == ack["due_at"]
    res = clocks.new_clock(
        CAL, settings, case_id="c", kind="resolution", round_=1, started_at=start
    )
    assert res["next_check_at"] == res["warn_at"] == datetime(2026, 6, 23, tzinfo=CST)
    assert clocks.next_check({**res, "warned_at": res["warn_at"]}) == res["due_at"]
    assert clocks.next_check({**res, "breached_at": res["due_at"]}) is None
    assert clocks.next_check({**res, "paused_at": start}) is None
    assert clocks.state(res, start) == "on_track"
    assert clocks.state(res, res["warn_at"]) == "at_risk"
    assert clocks.state(res, res["due_at"]) == "breached"
    assert clocks.state({**res, "stopped_at": res["due_at"]}, start) == "met"
    assert clocks.state({**res, "stopped_at": res["due_at"] + timedelta(seconds=1)}, start) == (
        "missed"
    )


def test_extension_keeps_the_original_due_for_on_time() -> None:
    settings = TrackingSettings()
    start = datetime(2026, 6, 15, 10, tzinfo=CST)
    res = clocks.new_clock(
        CAL, settings, case_id="c", kind="resolution", round_=1, started_at=start
    )
    extended = {**res, "extension_working_days": 2}
    extended.update(clocks.recomputed(CAL, settings, extended))
    assert extended["due_date"].isoformat() == "2026-06-25"
    assert extended["original_due_at"] == res["due_at"]
    late = res["due_at"] + timedelta(hours=1)
    assert clocks.state({**extended, "stopped_at": late}, late) == "met"
    assert clocks.on_time(extended, late) is False  # honest: after the original due time
    assert clocks.on_time(extended, res["due_at"]) is True
    assert datetime.now(UTC)
