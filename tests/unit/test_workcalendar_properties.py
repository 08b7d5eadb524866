"""Property tests of shared.workcalendar against a deliberately naive oracle.

The oracle shares no code with the library: it takes local dates with a fixed +08:00 offset
(Asia/Shanghai has had no DST since 1991), asks ``holidays`` directly whether each day is a
working day (``HolidayBase.is_working_day``, which uses the package's weekend_workdays),
applies the overrides from a plain dict, walks one day at a time, and measures pauses on a
set of paused minutes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from fractions import Fraction

import holidays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.workcalendar import CalendarOverride, WorkingDayCalendar

OFFSET = timezone(timedelta(hours=8))
PACKAGE = holidays.country_holidays("CN", years=range(2024, 2029))
PLAIN = WorkingDayCalendar()

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- the oracle -------------------------------------------------------------------------


def oracle_is_working(day: date, overrides: dict[date, str]) -> bool:
    if day in overrides:
        return overrides[day] == "working_day"
    return bool(PACKAGE.is_working_day(day))


def oracle_local_date(instant: datetime) -> date:
    return instant.astimezone(OFFSET).date()


def oracle_paused_minutes(pauses: list[tuple[datetime, datetime]]) -> set[int]:
    """Minutes since the epoch (UTC) that fall inside any pause; pauses are minute-aligned."""
    minutes: set[int] = set()
    for begin, end in pauses:
        first = int(begin.timestamp()) // 60
        last = int(end.timestamp()) // 60
        minutes.update(range(first, last))
    return minutes


def oracle_deadline(
    instant: datetime,
    n: int = 5,
    overrides: dict[date, str] | None = None,
    pauses: list[tuple[datetime, datetime]] | None = None,
) -> tuple[date, datetime]:
    rules = overrides or {}
    paused_minutes = oracle_paused_minutes(pauses or [])
    day = oracle_local_date(instant)
    counted = 0
    paused = Fraction(0)
    while True:
        day += timedelta(days=1)
        if not oracle_is_working(day, rules):
            continue
        counted += 1
        midnight = int(datetime.combine(day, time(0), tzinfo=OFFSET).timestamp()) // 60
        covered = sum(1 for m in range(midnight, midnight + 1440) if m in paused_minutes)
        paused += Fraction(covered, 1440)
        credit = int(paused) + (1 if paused - int(paused) >= Fraction(1, 2) else 0)
        if counted - credit >= n:
            break
    due_at = datetime.combine(day + timedelta(days=1), time(0), tzinfo=OFFSET)
    return day, due_at


def oracle_calendar_deadline(instant: datetime, days: int) -> date:
    day = oracle_local_date(instant) + timedelta(days=days)
    while not oracle_is_working(day, {}):
        day += timedelta(days=1)
    return day


def oracle_count(a: date, b: date, overrides: dict[date, str] | None = None) -> int:
    rules = overrides or {}
    count = 0
    day = a
    while day < b:
        day += timedelta(days=1)
        count += oracle_is_working(day, rules)
    return count


# -- strategies -------------------------------------------------------------------------

offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
instants = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2026, 12, 31, 23, 59, 59),
    timezones=offsets,
)
days_2025_2026 = st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 12, 31))
override_maps = st.dictionaries(
    keys=days_2025_2026, values=st.sampled_from(["holiday", "working_day"]), max_size=12
)


@st.composite
def minute_pauses(draw: st.DrawFn, start: datetime) -> list[tuple[datetime, datetime]]:
    """Up to three minute-aligned pauses starting within 15 days after ``start``."""
    base = start.astimezone(UTC).replace(second=0, microsecond=0)
    pauses = []
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        begin = base + timedelta(minutes=draw(st.integers(min_value=0, max_value=15 * 1440)))
        length = timedelta(minutes=draw(st.integers(min_value=0, max_value=4 * 1440)))
        pauses.append((begin, begin + length))
    return pauses


@st.composite
def instant_and_pauses(draw: st.DrawFn) -> tuple[datetime, list[tuple[datetime, datetime]]]:
    start = draw(instants)
    return start, draw(minute_pauses(start))


# -- properties -------------------------------------------------------------------------


@SETTINGS
@given(start=instants)
def test_due_date_equals_oracle(start: datetime) -> None:
    result = PLAIN.deadline(start)
    due_date, due_at = oracle_deadline(start)
    assert result.due_date == due_date
    assert result.due_at == due_at
    assert result.due_at.tzinfo is UTC


@SETTINGS
@given(start=instants, overrides=override_maps)
def test_due_date_with_overrides_equals_oracle(start: datetime, overrides: dict[date, str]) -> None:
    cal = WorkingDayCalendar(
        overrides=[CalendarOverride(day, kind, "test") for day, kind in overrides.items()]  # type: ignore[arg-type]
    )
    assert cal.deadline(start).due_date == oracle_deadline(start, overrides=overrides)[0]


@SETTINGS
@given(start=instants, n=st.integers(min_value=1, max_value=30))
def test_due_date_is_a_working_day_n_working_days_after_receipt(start: datetime, n: int) -> None:
    result = PLAIN.deadline(start, n)
    received = oracle_local_date(start)
    assert oracle_is_working(result.due_date, {})
    assert PLAIN.is_working_day(result.due_date)
    assert oracle_count(received, result.due_date) == n
    # never earlier: the working day before the due date is still inside the period
    assert oracle_count(received, result.due_date - timedelta(days=1)) == n - 1
    assert result.due_at > start


@SETTINGS
@given(a=instants, b=instants)
def test_due_date_is_monotonic_in_receipt_time(a: datetime, b: datetime) -> None:
    first, second = sorted((a, b))
    assert PLAIN.deadline(first).due_date <= PLAIN.deadline(second).due_date
    assert PLAIN.deadline(first).due_at <= PLAIN.deadline(second).due_at


@SETTINGS
@given(case=instant_and_pauses())
def test_pauses_never_make_it_earlier_and_match_oracle(
    case: tuple[datetime, list[tuple[datetime, datetime]]],
) -> None:
    start, pauses = case
    plain = PLAIN.deadline(start)
    paused = PLAIN.deadline(start, pauses=pauses)
    assert paused.due_date >= plain.due_date
    assert paused.due_at >= plain.due_at
    assert paused.due_date == oracle_deadline(start, pauses=pauses)[0]
    assert oracle_count(plain.due_date, paused.due_date) == paused.paused_working_days


@SETTINGS
@given(start=instants, days=st.integers(min_value=1, max_value=60))
def test_calendar_deadline_equals_oracle(start: datetime, days: int) -> None:
    result = PLAIN.calendar_deadline(start, days)
    assert result.due_date == oracle_calendar_deadline(start, days)
    assert result.due_date >= oracle_local_date(start) + timedelta(days=days)


@SETTINGS
@given(a=days_2025_2026, b=days_2025_2026, overrides=override_maps)
def test_working_days_between_equals_oracle(a: date, b: date, overrides: dict[date, str]) -> None:
    cal = WorkingDayCalendar(
        overrides=[CalendarOverride(day, kind, "test") for day, kind in overrides.items()]  # type: ignore[arg-type]
    )
    lo, hi = sorted((a, b))
    assert cal.working_days_between(lo, hi) == oracle_count(lo, hi, overrides)
    assert cal.working_days_between(hi, lo) == -oracle_count(lo, hi, overrides)


@SETTINGS
@given(day=days_2025_2026, n=st.integers(min_value=-300, max_value=300))
def test_add_working_days_counts_strictly_after_or_before(day: date, n: int) -> None:
    moved = PLAIN.add_working_days(day, n)
    if n == 0:
        assert moved == day
        return
    assert oracle_is_working(moved, {})
    if n > 0:
        # n working days in (day, moved]; inverse of working_days_between
        assert oracle_count(day, moved) == n
        assert PLAIN.working_days_between(day, moved) == n
    else:
        # -n working days in [moved, day): start itself is never counted
        assert oracle_count(moved - timedelta(days=1), day - timedelta(days=1)) == -n


@SETTINGS
@given(a=days_2025_2026, b=days_2025_2026, c=days_2025_2026)
def test_working_days_between_is_additive(a: date, b: date, c: date) -> None:
    between = PLAIN.working_days_between
    assert between(a, b) + between(b, c) == between(a, c)


@SETTINGS
@given(start=instants)
def test_working_days_left_at_receipt_is_between_five_and_six(start: datetime) -> None:
    result = PLAIN.deadline(start)
    left = PLAIN.working_days_left(start, result.due_at)
    assert 5.0 <= left <= 6.0
    if not oracle_is_working(oracle_local_date(start), {}):
        assert left == 5.0
    assert PLAIN.working_days_left(result.due_at, result.due_at) == 0.0
