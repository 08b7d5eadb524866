"""Pure rules of a visit: its channel, when it is due, its clock, the spacing of retries.

No I/O here, so that the rules are unit-tested on their own. Working days come from
:class:`shared.workcalendar.WorkingDayCalendar` in the bank's time zone (ARCHITECTURE §4:
Monday-Friday minus public holidays plus make-up working days; the day of the triggering
event itself is not counted, Civil Code art. 201).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from services.followup.settings import FollowupSettings, VisitChannel
from shared.workcalendar import WorkingDayCalendar

ClockState = Literal["on_track", "warning", "overdue", "stopped"]
VisitState = Literal["scheduled", "due", "overdue", "completed", "cancelled"]


@dataclass(frozen=True, slots=True)
class VisitPlan:
    """When a new visit is due and by when it should be completed.

    Attributes:
        first_attempt_at: UTC instant from which the first attempt is due.
        due_at: UTC instant the visit's clock ends (local 24:00 of ``due_date``).
        due_date: the clock's last day, a local date in the bank's zone.
        provisional: the due date touches a year without an official holiday schedule.
    """

    first_attempt_at: datetime
    due_at: datetime
    due_date: date
    provisional: bool


def choose_channel(
    settings: FollowupSettings,
    *,
    subject_kind: Literal["case", "suggestion"],
    round_: int,
    notice_channel: str | None,
) -> VisitChannel:
    """Return the channel of a new visit by the bank's policy.

    Order: a suggestion's follow-up uses ``suggestion_channel``; a case visit after a
    reopen (round >= 2) uses ``reopened_channel`` (a person calls a customer who was
    unsatisfied once); otherwise ``channel_policy[notice_channel]`` or ``default_channel``.

    Args:
        settings: the service settings carrying the policy.
        subject_kind: ``case`` or ``suggestion``.
        round_: the case round, >= 1 (1 for suggestions).
        notice_channel: the channel named in ``cases.result-notified`` (how the customer
            was told the result), or None.

    Returns:
        ``call``, ``sms`` or ``app_survey``.
    """
    if subject_kind == "suggestion":
        return settings.suggestion_channel
    if round_ >= 2:
        return settings.reopened_channel
    if notice_channel is not None:
        channel = settings.channel_policy.get(notice_channel.strip().lower())
        if channel is not None:
            return channel
    return settings.default_channel


def start_of_working_day(
    calendar: WorkingDayCalendar, after: datetime, working_days: int
) -> datetime:
    """Return local 00:00 of the n-th working day after the local day of ``after`` (UTC).

    Args:
        calendar: the bank's working-day calendar.
        after: aware instant; its local day is not counted.
        working_days: n >= 0; 0 returns ``after`` itself (due at once).

    Raises:
        ValueError: naive ``after`` or a date outside the calendar's supported years.
    """
    if working_days <= 0:
        return after
    day = calendar.add_working_days(calendar.local_date(after), working_days)
    return datetime.combine(day, time(0), tzinfo=calendar.tz).astimezone(UTC)


def plan_visit(
    calendar: WorkingDayCalendar, settings: FollowupSettings, triggered_at: datetime
) -> VisitPlan:
    """Plan a visit triggered at ``triggered_at`` (the result was given, or a suggestion decided).

    The first attempt is due from local 00:00 of the ``delay_working_days``-th working day
    after the trigger's local day; the clock ends at 24:00 of the
    ``max(window_working_days, delay_working_days)``-th working day (a visit is never due
    after its own deadline).

    Raises:
        ValueError: naive ``triggered_at`` or a date outside the supported years.
    """
    deadline = calendar.deadline(
        triggered_at, max(settings.window_working_days, settings.delay_working_days, 1)
    )
    return VisitPlan(
        first_attempt_at=start_of_working_day(calendar, triggered_at, settings.delay_working_days),
        due_at=deadline.due_at,
        due_date=deadline.due_date,
        provisional=deadline.provisional,
    )


def plan_retry(
    calendar: WorkingDayCalendar,
    settings: FollowupSettings,
    *,
    now: datetime,
    due_at: datetime,
    due_date: date,
) -> tuple[datetime, datetime, date]:
    """Plan the next attempt after an unreachable one (plan §7.1.4: tries spaced by days).

    The next attempt is due from local 00:00 of the ``retry_spacing_working_days``-th
    working day after today; the clock is extended to 24:00 of that day when it would
    otherwise end before the retry can be made.

    Args:
        calendar: the bank's calendar.
        settings: spacing in working days.
        now: aware instant of the unreachable attempt.
        due_at: the visit's current clock end (UTC).
        due_date: the visit's current last day (local).

    Returns:
        ``(next_attempt_at, due_at, due_date)``, instants in UTC.
    """
    next_at = start_of_working_day(calendar, now, settings.retry_spacing_working_days)
    if settings.retry_spacing_working_days <= 0:
        return next_at, due_at, due_date
    retry_deadline = calendar.deadline(now, settings.retry_spacing_working_days)
    if retry_deadline.due_at > due_at:
        return next_at, retry_deadline.due_at, retry_deadline.due_date
    return next_at, due_at, due_date


def clock_state(
    calendar: WorkingDayCalendar,
    settings: FollowupSettings,
    *,
    now: datetime,
    due_at: datetime,
    active: bool,
) -> tuple[ClockState, float | None]:
    """Return the visit clock's state and the working days left on it.

    Args:
        calendar: the bank's calendar.
        settings: ``warning_working_days_left``.
        now: aware current instant.
        due_at: the visit's clock end.
        active: False once the visit was completed or cancelled (the clock stopped).

    Returns:
        ``(state, working_days_left)``: ``stopped`` and None for a visit that ended;
        ``overdue`` (negative days) at or after ``due_at``; ``warning`` when at most
        ``warning_working_days_left`` working days are left; else ``on_track``.
    """
    if not active:
        return "stopped", None
    left = calendar.working_days_left(now, due_at)
    if now >= due_at:
        return "overdue", left
    if left <= settings.warning_working_days_left:
        return "warning", left
    return "on_track", left


def visit_state(
    *, status: str, now: datetime, next_attempt_at: datetime | None, due_at: datetime
) -> VisitState:
    """Return what a caller sees: ``scheduled``, ``due``, ``overdue``, ``completed``, ``cancelled``.

    An active visit is ``scheduled`` before its next attempt time, ``due`` from then, and
    ``overdue`` once its clock ended.
    """
    if status == "completed":
        return "completed"
    if status == "cancelled":
        return "cancelled"
    if now >= due_at:
        return "overdue"
    if next_attempt_at is not None and now < next_attempt_at:
        return "scheduled"
    return "due"


def _local_midnight(calendar: WorkingDayCalendar, day: date) -> datetime:
    """Return local 00:00 of ``day`` as a UTC instant."""
    return datetime.combine(day, time(0), tzinfo=calendar.tz).astimezone(UTC)


def warn_at(
    calendar: WorkingDayCalendar, settings: FollowupSettings, due_at: datetime
) -> datetime | None:
    """Return when a visit's clock enters its warning window, or None for no warning.

    The window opens when ``warning_working_days_left`` working days of working time remain
    before ``due_at``, measured as ``WorkingDayCalendar.working_days_left`` does (each
    working day's local 00:00-24:00 weighs 1, rest days 0), so that the sweep's alert and
    :func:`clock_state` agree: the earliest instant at which :func:`clock_state` says
    ``warning``. For the default 1.0 and a clock ending 24:00 that is 24:00 of the working
    day before the last one (rest days in between weigh nothing, so a clock ending on a
    Monday warns from Saturday 00:00). Same rule as tracking's case clocks (issue 5 §4).

    Args:
        calendar: the bank's calendar.
        settings: ``warning_working_days_left`` (0: no warning).
        due_at: the visit's clock end (UTC).

    Raises:
        ValueError: a date outside the calendar's supported years.
    """
    remaining = settings.warning_working_days_left
    if remaining <= 0:
        return None
    end = due_at
    day = (due_at.astimezone(calendar.tz) - timedelta(microseconds=1)).date()
    if not calendar.is_working_day(day):
        day = calendar.add_working_days(day, -1)
        end = _local_midnight(calendar, day + timedelta(days=1))
    while True:
        start = _local_midnight(calendar, day)
        share = (end - start) / timedelta(days=1)
        if remaining <= share:
            instant = end - timedelta(days=remaining)
            if instant == start:
                # Rest days before this working day weigh nothing: the window already
                # opened at 24:00 of the previous working day.
                previous = calendar.add_working_days(day, -1)
                instant = _local_midnight(calendar, previous + timedelta(days=1))
            return instant
        remaining -= share
        day = calendar.add_working_days(day, -1)
        end = _local_midnight(calendar, day + timedelta(days=1))


def next_clock_check(
    calendar: WorkingDayCalendar,
    settings: FollowupSettings,
    *,
    now: datetime,
    due_at: datetime,
    warned_at: datetime | None,
    overdue_at: datetime | None,
) -> datetime | None:
    """Return when the clock sweep must look at an active visit next (None: never).

    A visit whose overdue alert was emitted needs no more checks; one already warned (or
    already inside its warning window) is next checked at ``due_at``; otherwise at its
    warning instant.

    Args:
        calendar: the bank's calendar.
        settings: the warning threshold.
        now: aware current instant.
        due_at: the visit's clock end (UTC).
        warned_at: when the warning was emitted, or None.
        overdue_at: when the overdue alert was emitted, or None.
    """
    if overdue_at is not None:
        return None
    if warned_at is None:
        warning = warn_at(calendar, settings, due_at)
        if warning is not None and now < warning < due_at:
            return warning
    return due_at
