"""Working-day calendar and complaint deadlines (China, Asia/Shanghai by default).

Rules and their sources (details and examples in ``docs/deadlines.md``):

* Period: a complaint is handled within 5 working days of receipt, plan §7.1.3 (3).
* Counting: PRC Civil Code art. 201 (the day of receipt is not counted; counting starts the
  next day) and art. 203 (the period ends at 24:00 of its last day, or at the close of
  business hours where the bank has them; a last day that falls on a rest day moves to the
  next working day).
* Working day: Monday-Friday that is not a public holiday, plus the official make-up working
  days (weekend days worked to bridge holidays), as set by the yearly State Council General
  Office holiday notices and carried by the ``holidays`` package (``holidays.China``:
  public holidays, "day off (substituted from ...)" entries and ``weekend_workdays``).
  Caller-supplied :class:`CalendarOverride` entries win over the package.
* Provisional years: a year without an official State Council schedule in the package (the
  notice for year N is published in November/December of N-1) is computed from the
  package's estimate and every deadline touching it is marked ``provisional``.

The calendar precomputes a sorted array of working-day ordinals for a contiguous range of
years, grown on demand, so that a due date is one ``bisect`` plus a few conversions
(a few microseconds). ``holidays`` lookups are cached per year for the whole process.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from fractions import Fraction
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo

import holidays
from holidays.countries.china import China as _PackageChina

__all__ = [
    "DEFAULT_CALENDAR_DAYS",
    "DEFAULT_TIMEZONE",
    "DEFAULT_WORKING_DAYS",
    "FIRST_SUPPORTED_YEAR",
    "LAST_SUPPORTED_YEAR",
    "CalendarOverride",
    "Deadline",
    "OverrideKind",
    "PauseInterval",
    "WorkingDayCalendar",
    "package_official_years",
]

DEFAULT_TIMEZONE = "Asia/Shanghai"
"""Zone in which local dates are taken unless the bank configures another (ARCHITECTURE §4)."""

DEFAULT_WORKING_DAYS = 5
"""Complaint handling period in working days, plan §7.1.3 (3)."""

DEFAULT_CALENDAR_DAYS = 15
"""Default regulatory clock in calendar days (:meth:`WorkingDayCalendar.calendar_deadline`)."""

FIRST_SUPPORTED_YEAR: int = _PackageChina.start_year
"""First year the ``holidays`` package models for China (1950)."""

LAST_SUPPORTED_YEAR: int = _PackageChina.end_year
"""Last year the ``holidays`` package models for China (its lunisolar table ends there)."""

OverrideKind = Literal["holiday", "working_day"]
PauseInterval = tuple[datetime, datetime]

_OVERRIDE_KINDS: frozenset[str] = frozenset({"holiday", "working_day"})
_MIDNIGHT = time(0)
_HALF = Fraction(1, 2)
# Years loaded around a requested year, so that a due date near a year end or a long pause
# does not trigger one rebuild per year.
_LOAD_MARGIN_YEARS = 1
# Lower bound of working days in a year, used to size an extension for large n.
_MIN_WORKING_DAYS_PER_YEAR = 240


@dataclass(frozen=True, slots=True)
class CalendarOverride:
    """A bank-supplied correction of one local date; it wins over the ``holidays`` package.

    Attributes:
        day: the local calendar date it applies to.
        kind: ``"holiday"`` makes ``day`` a rest day (a bank closure, or a holiday from a new
            State Council notice); ``"working_day"`` makes it a working day (a make-up
            working day, or removing a holiday the package has).
        reason: why, for the audit trail; non-empty.

    Raises:
        ValueError: unknown ``kind`` or blank ``reason``.
        TypeError: ``day`` is a ``datetime`` rather than a plain ``date``.
    """

    day: date
    kind: OverrideKind
    reason: str

    def __post_init__(self) -> None:
        if isinstance(self.day, datetime) or not isinstance(self.day, date):
            raise TypeError(f"CalendarOverride.day must be a date, got {type(self.day)!r}")
        if self.kind not in _OVERRIDE_KINDS:
            raise ValueError(
                f"CalendarOverride.kind must be 'holiday' or 'working_day': {self.kind!r}"
            )
        if not self.reason or not self.reason.strip():
            raise ValueError("CalendarOverride.reason must not be blank")


@dataclass(frozen=True, slots=True)
class Deadline:
    """The end of a handling period.

    Attributes:
        due_date: the last day of the period, a local date in the calendar's time zone.
        due_at: the instant the period ends, timezone-aware in UTC: local 24:00 of
            ``due_date`` (= 00:00 of the next local day), or the close-of-business time on
            ``due_date`` when one was given (Civil Code art. 203).
        provisional: True when some year from the first counted day to ``due_date`` has no
            official State Council schedule yet (see :meth:`WorkingDayCalendar.is_provisional`);
            the date may change when the notice is published.
        paused_working_days: whole working days credited for pauses (0 without pauses).
    """

    due_date: date
    due_at: datetime
    provisional: bool
    paused_working_days: int = 0


@cache
def package_official_years() -> frozenset[int]:
    """Return the years for which the ``holidays`` package carries an official schedule.

    The package encodes each State Council notice as substituted days (weekday days off
    swapped with weekend make-up working days) in ``special_public_holidays``, keyed by year;
    every notice since 2001 has them. The span from the first to the last such year is
    official; years outside it use the package's rule-based estimate.

    Returns:
        The official years, e.g. 2001..2026 for ``holidays`` 0.109; empty if the package no
        longer exposes the data (then every year is provisional unless declared official).
    """
    table = getattr(holidays.country_holidays("CN"), "special_public_holidays", None)
    if not isinstance(table, dict) or not table:
        return frozenset()
    years = [year for year in table if isinstance(year, int)]
    return frozenset(range(min(years), max(years) + 1)) if years else frozenset()


@cache
def _package_year(year: int) -> tuple[frozenset[date], frozenset[date]]:
    """Return the package's rest-day holidays and weekend make-up working days of one year.

    Building ``holidays.China`` costs about a millisecond per year (much more on first
    use), so the result is cached for the process.

    Args:
        year: calendar year, FIRST_SUPPORTED_YEAR..LAST_SUPPORTED_YEAR.

    Returns:
        ``(holidays, weekend_workdays)``, both restricted to dates inside ``year``.
    """
    table = holidays.country_holidays("CN", years=year)
    rest = frozenset(day for day in table if day.year == year)
    # weekend_workdays also holds cross-year make-up days of other notices; keep this year's.
    made_up = frozenset(day for day in table.weekend_workdays if day.year == year)
    return rest, made_up


@dataclass(frozen=True, slots=True)
class _Span:
    """Working days of a contiguous range of years (an immutable snapshot).

    Attributes:
        first_year: first loaded year; ``last_year < first_year`` means empty.
        last_year: last loaded year.
        lo: ordinal of 1 January of ``first_year``.
        hi: ordinal of 31 December of ``last_year``.
        ords: sorted ordinals of every working day in the range.
        work: the same ordinals as a set, for O(1) membership.
    """

    first_year: int
    last_year: int
    lo: int
    hi: int
    ords: list[int]
    work: frozenset[int]


_EMPTY_SPAN = _Span(first_year=1, last_year=0, lo=1, hi=0, ords=[], work=frozenset())


def _require_date(value: object, name: str) -> date:
    """Return ``value`` if it is a plain date; raise TypeError for datetimes and others."""
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"{name} must be a date (not a datetime), got {type(value)!r}")
    return value


def _require_aware(value: object, name: str) -> datetime:
    """Return ``value`` if it is an aware datetime; raise ValueError if naive, else TypeError."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value)!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value


def _round_half_up(value: Fraction) -> int:
    """Round a non-negative fraction to the nearest integer, halves up (0.5 -> 1)."""
    return math.floor(value + _HALF)


class WorkingDayCalendar:
    """Working days of China plus bank overrides, and deadlines counted on them.

    Instances are immutable in behaviour (overrides are fixed at construction; build a new
    calendar when they change) and safe to share between threads.

    Args:
        tz: IANA zone name or ``tzinfo`` in which receipt instants become local dates;
            default Asia/Shanghai.
        overrides: corrections that win over the package; at most one kind per date.
        official_years: extra years to treat as official (e.g. the bank entered the new
            State Council notice as overrides before the package carries it).

    Raises:
        ValueError: the same date is overridden as both a holiday and a working day, or a
            zone name is unknown (``ZoneInfoNotFoundError`` is a ``KeyError``; it is
            re-raised as ValueError).
    """

    def __init__(
        self,
        tz: str | tzinfo = DEFAULT_TIMEZONE,
        overrides: Iterable[CalendarOverride] = (),
        official_years: Iterable[int] = (),
    ) -> None:
        if isinstance(tz, str):
            try:
                self._tz: tzinfo = ZoneInfo(tz)
            except (KeyError, ValueError) as exc:
                raise ValueError(f"unknown time zone {tz!r}") from exc
        else:
            self._tz = tz
        kinds: dict[date, OverrideKind] = {}
        kept: list[CalendarOverride] = []
        for override in overrides:
            if not isinstance(override, CalendarOverride):
                raise TypeError(f"overrides must be CalendarOverride, got {type(override)!r}")
            previous = kinds.get(override.day)
            if previous is not None and previous != override.kind:
                raise ValueError(
                    f"conflicting overrides for {override.day.isoformat()}: "
                    f"{previous!r} and {override.kind!r}"
                )
            kinds[override.day] = override.kind
            kept.append(override)
        self._overrides = tuple(kept)
        self._override_kinds = kinds
        self._official = package_official_years() | frozenset(int(y) for y in official_years)
        self._lock = threading.Lock()
        self._year_cache: dict[int, list[int]] = {}
        self._span = _EMPTY_SPAN
        self._midnights: dict[int, datetime] = {}

    # -- configuration -------------------------------------------------------------------

    @property
    def tz(self) -> tzinfo:
        """Return the zone in which local dates are taken."""
        return self._tz

    @property
    def overrides(self) -> tuple[CalendarOverride, ...]:
        """Return the overrides in the order given."""
        return self._overrides

    @property
    def official_years(self) -> frozenset[int]:
        """Return the years treated as official: the package's plus the declared ones."""
        return self._official

    def is_provisional(self, year: int) -> bool:
        """Tell whether ``year`` has no official State Council schedule known to the calendar.

        Args:
            year: calendar year.

        Returns:
            True unless the package carries the year's notice (see
            :func:`package_official_years`) or the caller declared it official.
        """
        return year not in self._official

    # -- precomputation ------------------------------------------------------------------

    def _year_ordinals(self, year: int) -> list[int]:
        """Return the sorted working-day ordinals of one year, overrides applied."""
        cached = self._year_cache.get(year)
        if cached is not None:
            return cached
        rest, made_up = _package_year(year)
        first = date(year, 1, 1)
        start = first.toordinal()
        length = date(year + 1, 1, 1).toordinal() - start
        weekday0 = first.weekday()
        kinds = self._override_kinds
        out: list[int] = []
        for offset in range(length):
            day = date.fromordinal(start + offset)
            kind = kinds.get(day)
            if kind is not None:
                working = kind == "working_day"
            elif (weekday0 + offset) % 7 >= 5:  # Saturday, Sunday
                working = day in made_up
            else:
                working = day not in rest
            if working:
                out.append(start + offset)
        self._year_cache[year] = out
        return out

    def _ensure(self, first_year: int, last_year: int) -> _Span:
        """Return a span covering ``first_year..last_year`` (and what was loaded before).

        Raises:
            ValueError: a year outside FIRST_SUPPORTED_YEAR..LAST_SUPPORTED_YEAR is needed.
        """
        span = self._span
        if span.first_year <= first_year and last_year <= span.last_year:
            return span
        if first_year < FIRST_SUPPORTED_YEAR or last_year > LAST_SUPPORTED_YEAR:
            raise ValueError(
                f"years {first_year}..{last_year} are outside the supported calendar range "
                f"{FIRST_SUPPORTED_YEAR}..{LAST_SUPPORTED_YEAR}"
            )
        with self._lock:
            span = self._span
            if span.first_year <= span.last_year:
                first_year = min(first_year, span.first_year)
                last_year = max(last_year, span.last_year)
            first_year = max(FIRST_SUPPORTED_YEAR, first_year - _LOAD_MARGIN_YEARS)
            last_year = min(LAST_SUPPORTED_YEAR, last_year + _LOAD_MARGIN_YEARS)
            ords: list[int] = []
            for year in range(first_year, last_year + 1):
                ords.extend(self._year_ordinals(year))
            span = _Span(
                first_year=first_year,
                last_year=last_year,
                lo=date(first_year, 1, 1).toordinal(),
                hi=date(last_year, 12, 31).toordinal(),
                ords=ords,
                work=frozenset(ords),
            )
            self._span = span  # one reference swap: readers see the old or the new snapshot
            return span

    def _span_for(self, ordinal: int) -> _Span:
        """Return a span that contains the day ``ordinal``, loading its year if needed."""
        span = self._span
        if span.lo <= ordinal <= span.hi:
            return span
        year = date.fromordinal(ordinal).year
        return self._ensure(year, year)

    # -- working days --------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        """Tell whether a local date is a working day.

        Args:
            day: a local calendar date (not a datetime).

        Returns:
            The override for ``day`` if any; else Monday-Friday and not a public holiday,
            or a weekend make-up working day (State Council notices via ``holidays``).

        Raises:
            TypeError: ``day`` is a datetime.
            ValueError: ``day`` is outside the supported years.
        """
        ordinal = _require_date(day, "day").toordinal()
        return ordinal in self._span_for(ordinal).work

    def add_working_days(self, start: date, n: int) -> date:
        """Return the n-th working day after ``start`` (before it when n < 0).

        ``start`` itself is never counted (Civil Code art. 201), so ``n=1`` is the first
        working day strictly after ``start``, and ``n=-1`` the last one strictly before it.

        Args:
            start: a local calendar date; need not be a working day.
            n: number of working days; 0 returns ``start`` unchanged.

        Returns:
            A working day (for n != 0).

        Raises:
            TypeError: ``start`` is a datetime.
            ValueError: the result would leave the supported years.
        """
        ordinal = _require_date(start, "start").toordinal()
        if n == 0:
            return start
        span = self._span_for(ordinal)
        while True:
            if n > 0:
                index = bisect_right(span.ords, ordinal) + n - 1
                if index < len(span.ords):
                    return date.fromordinal(span.ords[index])
                extra = 1 + n // _MIN_WORKING_DAYS_PER_YEAR
                span = self._ensure(span.first_year, span.last_year + extra)
            else:
                index = bisect_left(span.ords, ordinal) + n
                if index >= 0:
                    return date.fromordinal(span.ords[index])
                extra = 1 + (-n) // _MIN_WORKING_DAYS_PER_YEAR
                span = self._ensure(span.first_year - extra, span.last_year)

    def roll_forward(self, day: date) -> date:
        """Return ``day`` if it is a working day, else the next working day.

        This is Civil Code art. 203's rule for a period whose last day is a rest day.

        Raises:
            TypeError: ``day`` is a datetime.
            ValueError: the result would leave the supported years.
        """
        if self.is_working_day(day):
            return day
        return self.add_working_days(day, 1)

    def working_days_between(self, a: date, b: date) -> int:
        """Count the working days in the half-open interval (a, b].

        Args:
            a: local start date, not counted.
            b: local end date, counted.

        Returns:
            The count; 0 when ``a == b``; negative (minus the count in (b, a]) when b < a,
            so that counts add up: ``between(a, b) + between(b, c) == between(a, c)``; and
            ``working_days_between(a, add_working_days(a, n)) == n`` for n >= 0.

        Raises:
            TypeError: an argument is a datetime.
            ValueError: a date is outside the supported years.
        """
        lo = _require_date(a, "a")
        hi = _require_date(b, "b")
        if hi < lo:
            return -self.working_days_between(hi, lo)
        span = self._ensure(lo.year, hi.year)
        return bisect_right(span.ords, hi.toordinal()) - bisect_right(span.ords, lo.toordinal())

    # -- instants ------------------------------------------------------------------------

    def local_date(self, instant: datetime) -> date:
        """Return the local calendar date of an aware instant in the calendar's zone.

        Raises:
            ValueError: ``instant`` is naive.
        """
        return _require_aware(instant, "instant").astimezone(self._tz).date()

    def _local_midnight(self, day: date) -> datetime:
        """Return local 00:00 starting ``day`` as a UTC instant."""
        return datetime.combine(day, _MIDNIGHT, tzinfo=self._tz).astimezone(UTC)

    def _due_at(self, due: date, business_close: time | None) -> datetime:
        """Return the UTC instant a period ending on local ``due`` ends (art. 203)."""
        if business_close is None:
            ordinal = due.toordinal() + 1
            cached = self._midnights.get(ordinal)
            if cached is None:
                cached = self._local_midnight(date.fromordinal(ordinal))
                self._midnights[ordinal] = cached  # bounded: one entry per supported day
            return cached
        return datetime.combine(due, business_close, tzinfo=self._tz).astimezone(UTC)

    def _provisional(self, first_counted: date, due: date) -> bool:
        """Tell whether any year from ``first_counted`` to ``due`` is not official."""
        official = self._official
        if first_counted.year == due.year:
            return due.year not in official
        return any(y not in official for y in range(first_counted.year, due.year + 1))

    # -- deadlines -----------------------------------------------------------------------

    def deadline(
        self,
        start: datetime,
        working_days: int = DEFAULT_WORKING_DAYS,
        *,
        pauses: Sequence[PauseInterval] = (),
        business_close: time | None = None,
    ) -> Deadline:
        """Compute the end of a working-day period that starts at an instant.

        The day of ``start`` (local date) is not counted; the period's last day is the
        ``working_days``-th working day after it (plan §7.1.3 (3); Civil Code arts. 201,
        203). Use it for receipt, for a reopen (a new clock from the reopen instant), and
        for the acknowledgement target (``working_days=1``).

        Pause credit (optional): every working day after the start date counts as paused
        by the share of its local 00:00-24:00 covered by the union of ``pauses``. The due
        date is the first working day D on which (working days counted up to D) minus
        (paused share up to D, rounded half up to whole days) reaches ``working_days``.
        So two whole paused working days move the due date by two working days; pauses on
        rest days, on the start date or after the due date change nothing; a pause never
        makes the due date earlier.

        Args:
            start: aware instant of receipt (or reopen).
            working_days: period length in working days, >= 1; default 5.
            pauses: ``(begin, end)`` aware instants, ``begin <= end``, in any order, may
                overlap; the case awaited the customer during them.
            business_close: local close-of-business time (naive ``time``, after 00:00);
                when given, ``due_at`` is that time on the due date instead of 24:00.

        Returns:
            The deadline; ``due_at`` in UTC.

        Raises:
            ValueError: naive ``start`` or pause instant, ``working_days < 1``, a pause
                ending before it begins, an aware or 00:00 ``business_close``, or a date
                outside the supported years.
            TypeError: ``start`` is not a datetime.
        """
        if working_days < 1:
            raise ValueError(f"working_days must be >= 1, got {working_days}")
        if business_close is not None:
            _check_business_close(business_close)
        received = _require_aware(start, "start").astimezone(self._tz).date()
        if pauses:
            due, credited = self._paused_due(received, working_days, pauses)
            return Deadline(
                due_date=due,
                due_at=self._due_at(due, business_close),
                provisional=self._provisional(received + timedelta(days=1), due),
                paused_working_days=credited,
            )
        # Fast path (no pauses): add_working_days inlined, one bisect on the loaded span,
        # cached local midnights; this is the per-complaint hot path of the services.
        ordinal = received.toordinal()
        span = self._span
        index = bisect_right(span.ords, ordinal) + working_days - 1
        if span.lo <= ordinal and index < len(span.ords):
            due_ordinal = span.ords[index]
        else:
            due_ordinal = self.add_working_days(received, working_days).toordinal()
        due = date.fromordinal(due_ordinal)
        due_at = self._midnights.get(due_ordinal + 1) if business_close is None else None
        if due_at is None:
            due_at = self._due_at(due, business_close)
        if due.year == received.year:  # the counted days lie in one year
            provisional = due.year not in self._official
        else:
            provisional = self._provisional(received + timedelta(days=1), due)
        return Deadline(due_date=due, due_at=due_at, provisional=provisional)

    def calendar_deadline(
        self,
        start: datetime,
        days: int = DEFAULT_CALENDAR_DAYS,
        *,
        business_close: time | None = None,
    ) -> Deadline:
        """Compute the end of a calendar-day period (regulatory clock) from an instant.

        Civil Code arts. 201 and 203: the local day of ``start`` is not counted, the last
        day is ``days`` calendar days later, and if that is a rest day the period ends on
        the next working day.

        Args:
            start: aware instant the period starts.
            days: period length in calendar days, >= 1; default 15.
            business_close: as in :meth:`deadline`.

        Returns:
            The deadline; ``due_at`` in UTC.

        Raises:
            ValueError: naive ``start``, ``days < 1``, a bad ``business_close`` or a date
                outside the supported years.
            TypeError: ``start`` is not a datetime.
        """
        if days < 1:
            raise ValueError(f"days must be >= 1, got {days}")
        if business_close is not None:
            _check_business_close(business_close)
        received = _require_aware(start, "start").astimezone(self._tz).date()
        due = self.roll_forward(received + timedelta(days=days))
        return Deadline(
            due_date=due,
            due_at=self._due_at(due, business_close),
            provisional=self._provisional(received + timedelta(days=1), due),
        )

    def working_days_left(self, now: datetime, due_at: datetime) -> float:
        """Measure the working time from ``now`` to ``due_at`` in working days.

        Each working day weighs its local 00:00-24:00 as 1.0 (hours outside business hours
        count too, matching the 24:00 end of art. 203); rest days weigh 0. So at 12:00 on a
        due date ending 24:00, 0.5 is left; on the evening before a weekend with the due
        date on Monday, about 1.0 plus the rest of Friday. For whole days use
        ``working_days_between(local_date(now), due_date)``.

        Args:
            now: aware current instant.
            due_at: aware end of the period (``Deadline.due_at``).

        Returns:
            Working days left, fractional; negative (working time overdue) after
            ``due_at``; the warning rule "one working day left" is ``<= 1.0``.

        Raises:
            ValueError: a naive argument or a date outside the supported years.
        """
        a = _require_aware(now, "now")
        b = _require_aware(due_at, "due_at")
        if b < a:
            return -self.working_days_left(b, a)
        return float(self._working_share(a, b))

    def _day_share(self, day: date, begin: datetime, end: datetime) -> Fraction:
        """Return the share of local ``day`` covered by ``[begin, end)`` (0..1)."""
        day_start = self._local_midnight(day)
        day_end = self._local_midnight(day + timedelta(days=1))
        overlap = min(end, day_end) - max(begin, day_start)
        if overlap <= timedelta(0):
            return Fraction(0)
        length = day_end - day_start
        return Fraction(_micros(overlap), _micros(length))

    def _working_share(self, a: datetime, b: datetime) -> Fraction:
        """Return the working-day weight of ``[a, b)``, a <= b."""
        first = a.astimezone(self._tz).date()
        last = b.astimezone(self._tz).date()
        if first == last:
            return self._day_share(first, a, b) if self.is_working_day(first) else Fraction(0)
        total = Fraction(0)
        if self.is_working_day(first):
            total += self._day_share(first, a, b)
        # whole days strictly between first and last
        total += max(0, self.working_days_between(first, last - timedelta(days=1)))
        if self.is_working_day(last):
            total += self._day_share(last, a, b)
        return total

    def _paused_due(
        self, received: date, working_days: int, pauses: Sequence[PauseInterval]
    ) -> tuple[date, int]:
        """Apply the pause credit rule of :meth:`deadline`; return (due date, credit)."""
        merged = _merge_pauses(pauses)
        ordinal = received.toordinal()
        span = self._span_for(ordinal)
        index = bisect_right(span.ords, ordinal)
        counted = 0
        paused = Fraction(0)
        while True:
            if index >= len(span.ords):
                span = self._ensure(span.first_year, span.last_year + 1)
                continue
            day = date.fromordinal(span.ords[index])
            counted += 1
            for begin, end in merged:
                paused += self._day_share(day, begin, end)
            credit = _round_half_up(paused)
            if counted - credit >= working_days:
                return day, credit
            index += 1


def _micros(delta: timedelta) -> int:
    """Return a duration in whole microseconds (exact, unlike total_seconds())."""
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _check_business_close(value: time) -> None:
    """Validate a close-of-business time: a naive local ``time`` after 00:00."""
    if not isinstance(value, time):
        raise TypeError(f"business_close must be a datetime.time, got {type(value)!r}")
    if value.tzinfo is not None:
        raise ValueError("business_close must be a naive local time (the calendar's zone)")
    if value == _MIDNIGHT:
        raise ValueError("business_close 00:00 would end the period before its last day")


def _merge_pauses(pauses: Sequence[PauseInterval]) -> list[tuple[datetime, datetime]]:
    """Validate pause intervals and merge overlapping ones, sorted by start (UTC)."""
    intervals: list[tuple[datetime, datetime]] = []
    for pause in pauses:
        begin, end = pause
        begin_utc = _require_aware(begin, "pause start").astimezone(UTC)
        end_utc = _require_aware(end, "pause end").astimezone(UTC)
        if end_utc < begin_utc:
            raise ValueError(
                f"pause ends before it begins: {begin.isoformat()} > {end.isoformat()}"
            )
        if end_utc > begin_utc:
            intervals.append((begin_utc, end_utc))
    intervals.sort()
    merged: list[tuple[datetime, datetime]] = []
    for begin, end in intervals:
        if merged and begin <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((begin, end))
    return merged
