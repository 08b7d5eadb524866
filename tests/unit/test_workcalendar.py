"""Unit tests of shared.workcalendar: the ARCHITECTURE.md §4 examples and the edge rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from shared.workcalendar import (
    LAST_SUPPORTED_YEAR,
    CalendarOverride,
    Deadline,
    WorkingDayCalendar,
    package_official_years,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
CST = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def cal() -> WorkingDayCalendar:
    return WorkingDayCalendar()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- the 2026 schedule the examples rely on ---------------------------------------------


def test_2026_make_up_working_days_match_architecture(cal: WorkingDayCalendar) -> None:
    """ARCHITECTURE §4: the 2026 make-up working days are 4 Jan, 14 Feb, 28 Feb, 9 May,
    20 Sep and 10 Oct, and no other weekend day of 2026 is worked."""
    day = date(2026, 1, 1)
    weekend_workdays = []
    while day.year == 2026:
        if day.weekday() >= 5 and cal.is_working_day(day):
            weekend_workdays.append(day)
        day += timedelta(days=1)
    assert weekend_workdays == [
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    ]


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (date(2026, 1, 1), date(2026, 1, 3)),  # New Year
        (date(2026, 2, 15), date(2026, 2, 23)),  # Spring Festival
        (date(2026, 4, 4), date(2026, 4, 6)),  # Tomb-Sweeping Day
        (date(2026, 5, 1), date(2026, 5, 5)),  # Labour Day
        (date(2026, 6, 19), date(2026, 6, 21)),  # Dragon Boat Festival
        (date(2026, 9, 25), date(2026, 9, 27)),  # Mid-Autumn Festival
        (date(2026, 10, 1), date(2026, 10, 7)),  # National Day
    ],
)
def test_2026_holiday_blocks_are_rest_days(
    cal: WorkingDayCalendar, first: date, last: date
) -> None:
    day = first
    while day <= last:
        assert not cal.is_working_day(day), day
        day += timedelta(days=1)
    assert cal.is_working_day(last + timedelta(days=1)) or (last + timedelta(days=1)).weekday() >= 5


# -- ARCHITECTURE §4 examples ------------------------------------------------------------


def test_example_1_national_day(cal: WorkingDayCalendar) -> None:
    result = cal.deadline(at("2026-09-30T10:00:00+08:00"))
    assert result.due_date == date(2026, 10, 13)
    assert result.due_at == at("2026-10-14T00:00:00+08:00")
    assert result.due_at == datetime(2026, 10, 13, 16, 0, tzinfo=UTC)
    assert result.due_at.utcoffset() == timedelta(0)
    assert result.provisional is False
    assert result.paused_working_days == 0


def test_example_2_received_on_a_make_up_working_day(cal: WorkingDayCalendar) -> None:
    # 20 Sep 2026 is a Sunday worked for National Day; receipt day is still not counted.
    assert cal.is_working_day(date(2026, 9, 20))
    assert cal.deadline(at("2026-09-20T11:00:00+08:00")).due_date == date(2026, 9, 28)


def test_example_3_received_inside_spring_festival(cal: WorkingDayCalendar) -> None:
    result = cal.deadline(at("2026-02-15T09:30:00+08:00"))
    assert result.due_date == date(2026, 2, 28)
    assert result.due_date.weekday() == 5  # a Saturday make-up working day


def test_example_4_utc_instant_is_next_local_day(cal: WorkingDayCalendar) -> None:
    result = cal.deadline(at("2026-03-05T16:30:00Z"))
    assert cal.local_date(at("2026-03-05T16:30:00Z")) == date(2026, 3, 6)
    assert result.due_date == date(2026, 3, 13)
    assert result.due_at == at("2026-03-14T00:00:00+08:00")


def test_same_instant_in_any_offset_gives_same_deadline(cal: WorkingDayCalendar) -> None:
    instant = at("2026-03-05T16:30:00Z")
    for hours in (-12, -5, 0, 5.5, 8, 14):
        other = instant.astimezone(timezone(timedelta(hours=hours)))
        assert cal.deadline(other) == cal.deadline(instant)


def test_reopen_gets_a_new_clock_from_the_reopen_instant(cal: WorkingDayCalendar) -> None:
    received = cal.deadline(at("2026-04-08T10:00:00+08:00"))
    reopened = cal.deadline(at("2026-04-20T15:45:00+08:00"))  # Monday
    assert received.due_date == date(2026, 4, 15)
    assert reopened.due_date == date(2026, 4, 27)
    assert reopened.due_at == at("2026-04-28T00:00:00+08:00")


def test_received_just_before_and_after_local_midnight(cal: WorkingDayCalendar) -> None:
    # Friday 23:59:59 local: counting starts Saturday, so Mon..Fri of the next week.
    assert cal.deadline(at("2026-03-06T23:59:59+08:00")).due_date == date(2026, 3, 13)
    assert cal.deadline(at("2026-03-07T00:00:00+08:00")).due_date == date(2026, 3, 13)
    assert cal.deadline(at("2026-03-05T23:59:59+08:00")).due_date == date(2026, 3, 12)


# -- pauses ------------------------------------------------------------------------------


def test_two_paused_working_days_move_due_date_by_two(cal: WorkingDayCalendar) -> None:
    start = at("2026-06-15T10:00:00+08:00")  # due 2026-06-23 without pause (19 Jun is a holiday)
    assert cal.deadline(start).due_date == date(2026, 6, 23)
    pauses = [(at("2026-06-17T00:00:00+08:00"), at("2026-06-19T00:00:00+08:00"))]
    result = cal.deadline(start, pauses=pauses)
    assert result.due_date == date(2026, 6, 25)
    assert result.paused_working_days == 2


def test_pause_spanning_holiday_and_weekend_counts_only_working_days(
    cal: WorkingDayCalendar,
) -> None:
    start = at("2026-06-15T10:00:00+08:00")
    # Thu 18 Jun 12:00 .. Mon 22 Jun 12:00: half of Thu + half of Mon = 1 working day.
    pauses = [(at("2026-06-18T12:00:00+08:00"), at("2026-06-22T12:00:00+08:00"))]
    result = cal.deadline(start, pauses=pauses)
    assert result.paused_working_days == 1
    assert result.due_date == date(2026, 6, 24)


def test_partial_pause_rounds_half_up(cal: WorkingDayCalendar) -> None:
    start = at("2026-06-15T10:00:00+08:00")
    half = [(at("2026-06-16T06:00:00+08:00"), at("2026-06-16T18:00:00+08:00"))]
    less = [(at("2026-06-16T06:00:00+08:00"), at("2026-06-16T17:59:00+08:00"))]
    assert cal.deadline(start, pauses=half).paused_working_days == 1
    assert cal.deadline(start, pauses=half).due_date == date(2026, 6, 24)
    assert cal.deadline(start, pauses=less).paused_working_days == 0
    assert cal.deadline(start, pauses=less).due_date == date(2026, 6, 23)


def test_overlapping_pauses_are_merged_not_double_counted(cal: WorkingDayCalendar) -> None:
    start = at("2026-06-15T10:00:00+08:00")
    pauses = [
        (at("2026-06-17T00:00:00+08:00"), at("2026-06-18T12:00:00+08:00")),
        (at("2026-06-17T06:00:00+08:00"), at("2026-06-19T00:00:00+08:00")),
        (at("2026-06-16T22:00:00Z"), at("2026-06-17T10:00:00Z")),  # inside the first
    ]
    assert cal.deadline(start, pauses=pauses).due_date == date(2026, 6, 25)


def test_pauses_outside_the_period_change_nothing(cal: WorkingDayCalendar) -> None:
    start = at("2026-06-15T10:00:00+08:00")
    before = [(at("2026-06-10T00:00:00+08:00"), at("2026-06-16T00:00:00+08:00"))]
    after = [(at("2026-06-24T00:00:00+08:00"), at("2026-06-30T00:00:00+08:00"))]
    weekend = [(at("2026-06-20T00:00:00+08:00"), at("2026-06-22T00:00:00+08:00"))]
    for pauses in (before, after, weekend):
        assert cal.deadline(start, pauses=pauses).due_date == date(2026, 6, 23)


def test_pause_extending_past_original_due_date_counts_fully(cal: WorkingDayCalendar) -> None:
    start = at("2026-06-15T10:00:00+08:00")
    # Paused Mon 22 .. Thu 25 (4 working days: 22, 23, 24, 25): due moves 4 days to Mon 29.
    pauses = [(at("2026-06-22T00:00:00+08:00"), at("2026-06-26T00:00:00+08:00"))]
    result = cal.deadline(start, pauses=pauses)
    assert result.paused_working_days == 4
    assert result.due_date == date(2026, 6, 29)


def test_bad_pauses_are_rejected(cal: WorkingDayCalendar) -> None:
    start = at("2026-06-15T10:00:00+08:00")
    with pytest.raises(ValueError, match="ends before"):
        cal.deadline(
            start, pauses=[(at("2026-06-18T00:00:00+08:00"), at("2026-06-17T00:00:00+08:00"))]
        )
    with pytest.raises(ValueError, match="aware"):
        cal.deadline(start, pauses=[(datetime(2026, 6, 17), at("2026-06-18T00:00:00+08:00"))])


# -- overrides and provisional years -----------------------------------------------------


def test_override_holiday_on_due_date_pushes_it() -> None:
    start = at("2026-03-06T09:00:00+08:00")
    closure = CalendarOverride(date(2026, 3, 13), "holiday", "branch network closed")
    cal = WorkingDayCalendar(overrides=[closure])
    assert not cal.is_working_day(date(2026, 3, 13))
    assert cal.deadline(start).due_date == date(2026, 3, 16)
    assert WorkingDayCalendar().deadline(start).due_date == date(2026, 3, 13)


def test_override_saturday_working_day_pulls_due_date() -> None:
    start = at("2026-03-06T09:00:00+08:00")
    saturday = CalendarOverride(date(2026, 3, 7), "working_day", "bank make-up day")
    cal = WorkingDayCalendar(overrides=[saturday])
    assert cal.is_working_day(date(2026, 3, 7))
    assert cal.deadline(start).due_date == date(2026, 3, 12)


def test_override_removes_a_package_holiday_and_a_make_up_day() -> None:
    cal = WorkingDayCalendar(
        overrides=[
            CalendarOverride(date(2026, 10, 8), "holiday", "extra closure"),
            CalendarOverride(date(2026, 10, 10), "holiday", "make-up day cancelled"),
            CalendarOverride(date(2026, 10, 7), "working_day", "holiday worked"),
        ]
    )
    assert cal.is_working_day(date(2026, 10, 7))
    assert not cal.is_working_day(date(2026, 10, 8))
    assert not cal.is_working_day(date(2026, 10, 10))
    # 30 Sep: 7 Oct (1), 9 (2), 12 (3), 13 (4), 14 (5)
    assert cal.deadline(at("2026-09-30T10:00:00+08:00")).due_date == date(2026, 10, 14)


def test_conflicting_overrides_are_rejected() -> None:
    with pytest.raises(ValueError, match="conflicting"):
        WorkingDayCalendar(
            overrides=[
                CalendarOverride(date(2026, 3, 7), "working_day", "a"),
                CalendarOverride(date(2026, 3, 7), "holiday", "b"),
            ]
        )


def test_override_validation() -> None:
    with pytest.raises(ValueError, match="blank"):
        CalendarOverride(date(2026, 3, 7), "holiday", "  ")
    with pytest.raises(ValueError, match="kind"):
        CalendarOverride(date(2026, 3, 7), "closed", "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CalendarOverride(datetime(2026, 3, 7, tzinfo=UTC), "holiday", "x")


def test_last_official_year_comes_from_the_package() -> None:
    official = package_official_years()
    assert 2001 in official
    assert 2026 in official
    last = max(official)
    cal = WorkingDayCalendar()
    assert not cal.is_provisional(last)
    assert cal.is_provisional(last + 1)


def test_year_past_package_data_is_provisional() -> None:
    cal = WorkingDayCalendar()
    next_year = max(package_official_years()) + 1
    start = datetime(next_year, 3, 2, 10, tzinfo=SHANGHAI)
    result = cal.deadline(start)
    assert result.provisional is True
    assert cal.is_working_day(result.due_date)


def test_period_crossing_into_a_provisional_year_is_provisional(
    cal: WorkingDayCalendar,
) -> None:
    last = max(package_official_years())
    result = cal.deadline(datetime(last, 12, 29, 10, tzinfo=SHANGHAI))
    assert result.due_date.year == last + 1
    assert result.provisional is True
    assert cal.deadline(datetime(last, 12, 1, 10, tzinfo=SHANGHAI)).provisional is False


def test_declared_official_year_is_not_provisional() -> None:
    next_year = max(package_official_years()) + 1
    notice = [CalendarOverride(date(next_year, 2, 20), "working_day", "State Council notice")]
    cal = WorkingDayCalendar(overrides=notice, official_years=[next_year])
    assert not cal.is_provisional(next_year)
    assert cal.deadline(datetime(next_year, 3, 2, 10, tzinfo=SHANGHAI)).provisional is False


# -- calendar-day period -----------------------------------------------------------------


def test_calendar_period_last_day_on_rest_day_moves_to_next_working_day(
    cal: WorkingDayCalendar,
) -> None:
    # 20 Sep + 15 days = Mon 5 Oct (National Day); 6-7 Oct holidays; Thu 8 Oct works.
    result = cal.calendar_deadline(at("2026-09-20T10:00:00+08:00"))
    assert result.due_date == date(2026, 10, 8)
    assert result.due_at == at("2026-10-09T00:00:00+08:00")


def test_calendar_period_on_a_working_day_is_not_moved(cal: WorkingDayCalendar) -> None:
    # 2 Mar + 15 = Tue 17 Mar.
    assert cal.calendar_deadline(at("2026-03-02T10:00:00+08:00")).due_date == date(2026, 3, 17)
    # 2 Mar + 12 = Sat 14 Mar -> Mon 16 Mar.
    assert cal.calendar_deadline(at("2026-03-02T10:00:00+08:00"), 12).due_date == date(2026, 3, 16)


def test_calendar_period_ending_on_make_up_saturday_stays(cal: WorkingDayCalendar) -> None:
    # 13 Feb + 15 = Sat 28 Feb, a make-up working day.
    assert cal.calendar_deadline(at("2026-02-13T10:00:00+08:00")).due_date == date(2026, 2, 28)


# -- business close, time zones, validation ----------------------------------------------


def test_business_close_ends_on_the_due_date_at_that_time(cal: WorkingDayCalendar) -> None:
    result = cal.deadline(at("2026-09-30T10:00:00+08:00"), business_close=time(17, 30))
    assert result.due_date == date(2026, 10, 13)
    assert result.due_at == at("2026-10-13T17:30:00+08:00")
    assert result.due_at == datetime(2026, 10, 13, 9, 30, tzinfo=UTC)


def test_business_close_validation(cal: WorkingDayCalendar) -> None:
    start = at("2026-09-30T10:00:00+08:00")
    with pytest.raises(ValueError, match="naive"):
        cal.deadline(start, business_close=time(17, tzinfo=UTC))
    with pytest.raises(ValueError, match="00:00"):
        cal.deadline(start, business_close=time(0))


def test_naive_input_is_rejected(cal: WorkingDayCalendar) -> None:
    with pytest.raises(ValueError, match="aware"):
        cal.deadline(datetime(2026, 3, 5, 10))
    with pytest.raises(ValueError, match="aware"):
        cal.calendar_deadline(datetime(2026, 3, 5, 10))
    with pytest.raises(ValueError, match="aware"):
        cal.working_days_left(datetime(2026, 3, 5, 10), at("2026-03-13T00:00:00Z"))


def test_other_arguments_are_validated(cal: WorkingDayCalendar) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        cal.deadline(at("2026-03-05T10:00:00+08:00"), 0)
    with pytest.raises(ValueError, match=">= 1"):
        cal.calendar_deadline(at("2026-03-05T10:00:00+08:00"), 0)
    with pytest.raises(TypeError):
        cal.is_working_day(datetime(2026, 3, 5, tzinfo=UTC))
    with pytest.raises(ValueError, match="time zone"):
        WorkingDayCalendar(tz="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="supported"):
        cal.add_working_days(date(LAST_SUPPORTED_YEAR, 12, 20), 30)


def test_configurable_time_zone_changes_the_receipt_date() -> None:
    instant = at("2026-03-05T16:30:00Z")  # Thu 5 Mar in London, Fri 6 Mar in Shanghai
    london = WorkingDayCalendar(tz="Europe/London")
    assert london.local_date(instant) == date(2026, 3, 5)
    result = london.deadline(instant)
    assert result.due_date == date(2026, 3, 12)
    assert result.due_at == datetime(2026, 3, 13, 0, 0, tzinfo=UTC)  # London midnight, GMT


def test_due_at_in_a_dst_zone_is_local_midnight() -> None:
    berlin = WorkingDayCalendar(tz="Europe/Berlin")
    result = berlin.deadline(at("2026-03-20T10:00:00+01:00"))  # Fri
    assert result.due_date == date(2026, 3, 27)
    # 28 Mar 00:00 CET is 27 Mar 23:00 UTC (DST starts on 29 Mar).
    assert result.due_at == datetime(2026, 3, 27, 23, 0, tzinfo=UTC)
    later = berlin.deadline(at("2026-03-27T10:00:00+01:00"))
    assert later.due_date == date(2026, 4, 3)
    assert later.due_at == datetime(2026, 4, 3, 22, 0, tzinfo=UTC)  # CEST, +02:00


# -- working-day arithmetic --------------------------------------------------------------


def test_add_working_days(cal: WorkingDayCalendar) -> None:
    assert cal.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)
    assert cal.add_working_days(date(2026, 9, 30), 3) == date(2026, 10, 10)
    assert cal.add_working_days(date(2026, 9, 30), 0) == date(2026, 9, 30)
    assert cal.add_working_days(date(2026, 10, 8), -1) == date(2026, 9, 30)
    assert cal.add_working_days(date(2026, 10, 5), -1) == date(2026, 9, 30)
    # across the year boundary: 31 Dec 2025 -> 1 Jan 2026 holiday, 2 Jan day off, 4 Jan worked
    assert cal.add_working_days(date(2025, 12, 31), 1) == date(2026, 1, 4)
    # a year ahead needs more data to be loaded
    assert (
        cal.working_days_between(date(2025, 1, 1), cal.add_working_days(date(2025, 1, 1), 600))
        == 600
    )


def test_working_days_between(cal: WorkingDayCalendar) -> None:
    assert cal.working_days_between(date(2026, 9, 30), date(2026, 10, 13)) == 5
    assert cal.working_days_between(date(2026, 9, 30), date(2026, 9, 30)) == 0
    assert cal.working_days_between(date(2026, 10, 13), date(2026, 9, 30)) == -5
    assert cal.working_days_between(date(2026, 10, 1), date(2026, 10, 7)) == 0
    # 2026 as a whole: 365 days, 104 weekend days, 6 make-up days, and the weekday
    # rest days of the notice (1-2 Jan, 16-20 and 23 Feb, 6 Apr, 1, 4-5 May, 19 Jun,
    # 25 Sep, 1-2 and 5-7 Oct) = 19 -> 365 - 104 + 6 - 19 = 248.
    assert cal.working_days_between(date(2025, 12, 31), date(2026, 12, 31)) == 248


def test_roll_forward(cal: WorkingDayCalendar) -> None:
    assert cal.roll_forward(date(2026, 10, 1)) == date(2026, 10, 8)
    assert cal.roll_forward(date(2026, 10, 10)) == date(2026, 10, 10)


def test_working_days_left(cal: WorkingDayCalendar) -> None:
    deadline = cal.deadline(at("2026-09-30T10:00:00+08:00"))  # due 13 Oct 24:00
    assert cal.working_days_left(at("2026-10-13T12:00:00+08:00"), deadline.due_at) == 0.5
    assert cal.working_days_left(at("2026-10-12T00:00:00+08:00"), deadline.due_at) == 2.0
    # Friday 9 Oct 18:00: 0.25 of Fri + Sat 10 Oct (make-up) + Mon 12 + Tue 13
    assert cal.working_days_left(at("2026-10-09T18:00:00+08:00"), deadline.due_at) == 3.25
    # From the receipt instant: the rest of 30 Sep counts too (a working day).
    left = cal.working_days_left(at("2026-09-30T12:00:00+08:00"), deadline.due_at)
    assert left == 5.5
    assert cal.working_days_left(deadline.due_at, deadline.due_at) == 0.0
    # overdue: Wed 14 Oct 06:00 is 0.25 working day after due_at
    assert cal.working_days_left(at("2026-10-14T06:00:00+08:00"), deadline.due_at) == -0.25
    # a whole holiday week left counts zero
    assert (
        cal.working_days_left(at("2026-10-01T00:00:00+08:00"), at("2026-10-08T00:00:00+08:00"))
        == 0.0
    )


def test_deadline_is_a_value_object(cal: WorkingDayCalendar) -> None:
    first = cal.deadline(at("2026-09-30T10:00:00+08:00"))
    second = cal.deadline(at("2026-09-30T02:00:00Z"))
    assert first == second
    assert isinstance(first, Deadline)
    with pytest.raises(AttributeError):
        first.due_date = date(2026, 1, 1)  # type: ignore[misc]


def test_calendars_do_not_share_overrides() -> None:
    closed = WorkingDayCalendar(overrides=[CalendarOverride(date(2026, 3, 9), "holiday", "x")])
    plain = WorkingDayCalendar()
    assert not closed.is_working_day(date(2026, 3, 9))
    assert plain.is_working_day(date(2026, 3, 9))
    assert closed.overrides[0].reason == "x"
    assert plain.overrides == ()
