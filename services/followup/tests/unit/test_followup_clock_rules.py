"""Unit tests of the visit clock's alert rules (issue 6 §4): warning instant, next check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.followup.domain.visit import policy
from services.followup.settings import FollowupSettings
from shared.workcalendar import WorkingDayCalendar

TZ = ZoneInfo("Asia/Shanghai")
CAL = WorkingDayCalendar(tz="Asia/Shanghai")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ).astimezone(UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("days_left", "due", "expected"),
    [
        # Clock ends 24:00 Friday 2026-12-04: the last working day starts the warning.
        (1.0, local(2026, 12, 5), local(2026, 12, 4)),
        # Ends 24:00 Monday 2026-12-07: the weekend weighs nothing, so the window opens
        # when Friday ends.
        (1.0, local(2026, 12, 8), local(2026, 12, 5)),
        (1.5, local(2026, 12, 8), local(2026, 12, 4, 12)),
        (0.0, local(2026, 12, 8), None),
    ],
)
def test_warn_at_matches_working_days_left(
    days_left: float, due: datetime, expected: datetime | None
) -> None:
    s = FollowupSettings(warning_working_days_left=days_left)
    got = policy.warn_at(CAL, s, due)
    assert got == expected
    if got is not None:
        assert CAL.working_days_left(got, due) == pytest.approx(days_left)
        state, _ = policy.clock_state(CAL, s, now=got, due_at=due, active=True)
        assert state == "warning"
        before, _ = policy.clock_state(
            CAL, s, now=got - timedelta(minutes=1), due_at=due, active=True
        )
        assert before == "on_track"


def test_next_clock_check() -> None:
    s = FollowupSettings()
    due = local(2026, 12, 8)
    now = local(2026, 12, 1, 9)
    kw = {"now": now, "due_at": due}
    assert policy.next_clock_check(CAL, s, warned_at=None, overdue_at=None, **kw) == local(
        2026, 12, 5
    )
    assert policy.next_clock_check(CAL, s, warned_at=now, overdue_at=None, **kw) == due
    assert policy.next_clock_check(CAL, s, warned_at=now, overdue_at=now, **kw) is None
    # Already inside the window (a short clock): the next look is the end of the clock.
    inside = local(2026, 12, 7, 10)
    assert (
        policy.next_clock_check(CAL, s, now=inside, due_at=due, warned_at=None, overdue_at=None)
        == due
    )
