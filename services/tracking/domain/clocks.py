"""Clock arithmetic of a case: due times, warning points, pauses, extensions, next checks.

A clock row (``tracking.case_clock``) is one deadline of one handling round:

- ``resolution``: ``resolution_working_days`` (5) working days from receipt or reopen
  (plan §7.1.3 (3); Civil Code arts. 201 and 203), plus approved extensions, with the
  optional pause credit (docs/deadlines.md §3);
- ``acknowledgement``: ``acknowledgement_working_days`` (1) working day from receipt;
- ``regulatory``: ``regulatory_calendar_days`` (15) calendar days from receipt; never paused
  nor extended (it keeps running while the internal clock pauses, ARCHITECTURE.md §4).

Everything here is pure: functions take a clock as a mapping and return the new values.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from services.tracking.settings import TrackingSettings
from shared.workcalendar import Deadline, WorkingDayCalendar

ClockState = Literal["on_track", "at_risk", "breached", "met", "missed"]
KINDS: tuple[str, ...] = ("resolution", "acknowledgement", "regulatory")


def period_working_days(kind: str, settings: TrackingSettings) -> int | None:
    """Return the clock's period in working days, or None for the calendar-day clock."""
    if kind == "resolution":
        return settings.resolution_working_days
    if kind == "acknowledgement":
        return settings.acknowledgement_working_days
    return None


def pauses_of(clock: Mapping[str, Any]) -> list[tuple[datetime, datetime]]:
    """Return the closed pause intervals stored on a clock (``pauses`` jsonb), as instants."""
    return [
        (datetime.fromisoformat(begin), datetime.fromisoformat(end))
        for begin, end in clock.get("pauses") or []
    ]


def deadlines(
    calendar: WorkingDayCalendar, settings: TrackingSettings, clock: Mapping[str, Any]
) -> tuple[Deadline, Deadline | None]:
    """Compute a clock's effective deadline and, when extended, its original one.

    Args:
        calendar: the bank's calendar.
        settings: clock periods.
        clock: needs ``kind``, ``started_at``, ``pauses`` and ``extension_working_days``.

    Returns:
        ``(effective, original)``: ``original`` is the deadline without extensions (pause
        credit included), None when the clock has no extension.
    """
    started: datetime = clock["started_at"]
    days = period_working_days(clock["kind"], settings)
    if days is None:
        return calendar.calendar_deadline(started, settings.regulatory_calendar_days), None
    pauses = pauses_of(clock)
    extension = int(clock.get("extension_working_days") or 0)
    effective = calendar.deadline(started, days + extension, pauses=pauses)
    if extension == 0:
        return effective, None
    return effective, calendar.deadline(started, days, pauses=pauses)


def warn_instant(
    calendar: WorkingDayCalendar, due_at: datetime, days_left: float
) -> datetime | None:
    """Return when a clock enters its warning window, or None for no warning.

    The window opens when ``days_left`` working days of working time remain before
    ``due_at``, measured as ``WorkingDayCalendar.working_days_left`` does (each working day's
    local 00:00-24:00 weighs 1, rest days 0). For the default 1.0 and a period ending 24:00
    that is local 00:00 of the last working day.

    Args:
        calendar: the bank's calendar.
        due_at: the clock's end (UTC).
        days_left: warning point in working days (>= 0); 0 means no warning.
    """
    if days_left <= 0:
        return None
    remaining = days_left
    end = due_at
    day = (due_at.astimezone(calendar.tz) - timedelta(microseconds=1)).date()
    if not calendar.is_working_day(day):
        day = calendar.add_working_days(day, -1)
        end = _midnight(calendar, day + timedelta(days=1))
    while True:
        start = _midnight(calendar, day)
        share = (end - start) / timedelta(days=1)
        if remaining <= share:
            return end - timedelta(days=remaining)
        remaining -= share
        day = calendar.add_working_days(day, -1)
        end = _midnight(calendar, day + timedelta(days=1))


def _midnight(calendar: WorkingDayCalendar, day: date) -> datetime:
    """Return local 00:00 of ``day`` as a UTC instant."""
    return datetime.combine(day, datetime.min.time(), tzinfo=calendar.tz).astimezone(UTC)


def clock_warn_at(
    calendar: WorkingDayCalendar,
    settings: TrackingSettings,
    kind: str,
    due_at: datetime,
) -> datetime | None:
    """Return the warning instant of a clock, or None.

    None when the clock's period is not longer than the warning window: the
    1-working-day acknowledgement clock gets no warning.
    """
    days = period_working_days(kind, settings)
    if days is not None and days <= settings.warning_working_days_left:
        return None
    return warn_instant(calendar, due_at, settings.warning_working_days_left)


def next_check(clock: Mapping[str, Any]) -> datetime | None:
    """Return when the sweep must look at a clock next, or None when it never must.

    A stopped or paused clock, or one already breached, needs no check; one not yet warned
    is next checked at its warning point (if before due), else at ``due_at``.
    """
    if clock.get("stopped_at") or clock.get("paused_at") or clock.get("breached_at"):
        return None
    warn_at = clock.get("warn_at")
    due_at: datetime = clock["due_at"]
    if clock.get("warned_at") is None and warn_at is not None and warn_at < due_at:
        return warn_at
    return due_at


def recomputed(
    calendar: WorkingDayCalendar, settings: TrackingSettings, clock: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the due fields of a clock recomputed from its start, pauses and extensions.

    Returns:
        ``due_at``, ``due_date``, ``provisional``, ``paused_working_days``, ``warn_at``,
        ``original_due_at``, ``original_due_date``, ``next_check_at``.
    """
    effective, original = deadlines(calendar, settings, clock)
    values: dict[str, Any] = {
        "due_at": effective.due_at,
        "due_date": effective.due_date,
        "provisional": effective.provisional,
        "paused_working_days": effective.paused_working_days,
        "warn_at": clock_warn_at(calendar, settings, clock["kind"], effective.due_at),
        "original_due_at": original.due_at if original else None,
        "original_due_date": original.due_date if original else None,
    }
    values["next_check_at"] = next_check({**clock, **values})
    return values


def new_clock(
    calendar: WorkingDayCalendar,
    settings: TrackingSettings,
    *,
    case_id: str,
    kind: str,
    round_: int,
    started_at: datetime,
) -> dict[str, Any]:
    """Return the row of a new running clock started at ``started_at``."""
    clock: dict[str, Any] = {
        "case_id": case_id,
        "kind": kind,
        "round": round_,
        "started_at": started_at,
        "pauses": [],
        "extension_working_days": 0,
        "paused_at": None,
        "stopped_at": None,
        "warned_at": None,
        "breached_at": None,
    }
    clock.update(recomputed(calendar, settings, clock))
    return clock


def state(clock: Mapping[str, Any], now: datetime) -> ClockState:
    """Return the state of a clock at ``now``.

    on_track; at_risk (warning point passed); breached (running past due); met (stopped in
    time); missed (stopped late). A paused clock is judged on its due time as it stands.
    """
    due_at: datetime = clock["due_at"]
    stopped = clock.get("stopped_at")
    if stopped is not None:
        return "met" if stopped <= due_at else "missed"
    if now >= due_at:
        return "breached"
    warn_at = clock.get("warn_at")
    if warn_at is not None and now >= warn_at:
        return "at_risk"
    return "on_track"


def end_pause(
    calendar: WorkingDayCalendar,
    settings: TrackingSettings,
    clock: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """Return the values that close a clock's open pause at ``now`` and move its due time."""
    paused_at: datetime = clock["paused_at"]
    pauses = [*(clock.get("pauses") or []), [paused_at.isoformat(), now.isoformat()]]
    values: dict[str, Any] = {"paused_at": None, "pauses": pauses}
    values.update(recomputed(calendar, settings, {**clock, **values}))
    return values


def on_time(clock: Mapping[str, Any], at: datetime) -> bool:
    """Tell whether ``at`` is within the clock's *original* due time.

    Honest statistics (issue 5 §4): an approved extension moves the working due time but
    not the on-time figure reported in events.
    """
    original = clock.get("original_due_at") or clock["due_at"]
    return bool(at <= original)
