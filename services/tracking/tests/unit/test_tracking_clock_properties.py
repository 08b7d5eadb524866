"""Property tests of the case clocks with pauses and reopens, against an independent oracle.

The oracle asks ``holidays`` day by day (``is_working_day``), takes local dates with a fixed
+08:00 offset, and counts pauses in whole local days; it shares no code with
shared.workcalendar or services.tracking. Pauses here start and end at local midnight, so
every paused working day counts whole.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import holidays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.tracking.domain import clocks
from services.tracking.settings import TrackingSettings
from shared.workcalendar import WorkingDayCalendar

CST = timezone(timedelta(hours=8))
PACKAGE = holidays.country_holidays("CN", years=range(2024, 2029))
CAL = WorkingDayCalendar()
SETTINGS = TrackingSettings()
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31, 23, 59)
).map(lambda d: d.replace(tzinfo=CST))


def working(day: date) -> bool:
    return bool(PACKAGE.is_working_day(day))


def oracle_due(received: date, n: int, paused_days: set[date]) -> date:
    day, counted, credit = received, 0, 0
    while True:
        day += timedelta(days=1)
        if not working(day):
            continue
        counted += 1
        if day in paused_days:
            credit += 1
        if counted - credit >= n:
            return day


def pause_days(start: date, offset: int, length: int) -> tuple[datetime, datetime, set[date]]:
    first = start + timedelta(days=offset)
    begin = datetime.combine(first, time(0), tzinfo=CST)
    end = begin + timedelta(days=length)
    return begin, end, {first + timedelta(days=i) for i in range(length)}


def clock_after_pause(received: datetime, begin: datetime, end: datetime) -> dict[str, object]:
    clock = clocks.new_clock(
        CAL, SETTINGS, case_id="c", kind="resolution", round_=1, started_at=received
    )
    clock["paused_at"] = begin
    return {**clock, **clocks.end_pause(CAL, SETTINGS, clock, end)}


@PROPS
@given(received=instants, offset=st.integers(1, 12), length=st.integers(0, 6))
def test_paused_due_date_matches_oracle_and_is_a_later_working_day(
    received: datetime, offset: int, length: int
) -> None:
    begin, end, days = pause_days(received.date(), offset, length)
    clock = clock_after_pause(received, begin, end)
    plain = CAL.deadline(received, 5).due_date
    due = clock["due_date"]
    assert isinstance(due, date)
    assert due == oracle_due(received.date(), 5, days)
    assert working(due)
    assert due >= plain  # a pause never makes the due date earlier
    # never earlier than 5 working days after receipt
    assert (
        sum(
            working(received.date() + timedelta(days=i))
            for i in range(1, (due - received.date()).days + 1)
        )
        >= 5
    )
    assert clock["next_check_at"] == clock["warn_at"]


@PROPS
@given(received=instants, later=st.integers(0, 3 * 24 * 60))
def test_due_date_is_monotonic_in_receipt_time(received: datetime, later: int) -> None:
    a = clocks.new_clock(
        CAL, SETTINGS, case_id="c", kind="resolution", round_=1, started_at=received
    )
    b = clocks.new_clock(
        CAL,
        SETTINGS,
        case_id="c",
        kind="resolution",
        round_=1,
        started_at=received + timedelta(minutes=later),
    )
    assert a["due_at"] <= b["due_at"]


@PROPS
@given(received=instants, closed_days=st.integers(0, 40), reopen_minute=st.integers(0, 1439))
def test_reopened_clock_counts_from_the_reopen_only(
    received: datetime, closed_days: int, reopen_minute: int
) -> None:
    first = clocks.new_clock(
        CAL, SETTINGS, case_id="c", kind="resolution", round_=1, started_at=received
    )
    reopen_day = first["due_date"] + timedelta(days=closed_days)  # type: ignore[operator]
    reopened_at = datetime.combine(reopen_day, time(0), tzinfo=CST) + timedelta(
        minutes=reopen_minute
    )
    if reopened_at.year > 2026:
        return
    second = clocks.new_clock(
        CAL, SETTINGS, case_id="c", kind="resolution", round_=2, started_at=reopened_at
    )
    due = second["due_date"]
    assert due == oracle_due(reopen_day, 5, set())
    assert working(due)
    # not overdue at once: at the reopen instant it is on track with more than 5 days left
    assert clocks.state(second, reopened_at) == "on_track"
    assert CAL.working_days_left(reopened_at, second["due_at"]) >= 5  # type: ignore[arg-type]
