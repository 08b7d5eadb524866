"""Tracking's domain metrics (STYLE.md §8: ``tracking_<what>_<unit>``, bounded labels)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SLA_ALERTS = Counter(
    "tracking_sla_alerts_total",
    "SLA warnings and breaches emitted, by kind (warning, breach) and clock.",
    ["kind", "clock"],
)
SLA_ALERTS_WITHDRAWN = Counter(
    "tracking_sla_alerts_withdrawn_total",
    "SLA warnings and breaches withdrawn after a calendar change, by kind and clock.",
    ["kind", "clock"],
)
SWEEP_DURATION = Histogram(
    "tracking_sla_sweep_duration_seconds",
    "Duration of one SLA sweep (all batches), in seconds.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0),
)
SWEEP_LAG = Gauge(
    "tracking_sla_sweep_lag_seconds",
    "Largest delay between a clock's check time and the sweep that handled it, last sweep.",
)
CASE_TRANSITIONS = Counter(
    "tracking_case_transitions_total", "Case actions applied, by action.", ["action"]
)
PROVISIONAL_DUE_DATES = Counter(
    "tracking_provisional_due_dates_total",
    "Cases opened with a provisional due date (a year without an official holiday schedule).",
)
PROVISIONAL_OPEN_CLOCKS = Gauge(
    "tracking_provisional_open_clocks",
    "Running clocks whose due date is provisional; alert when > 0 (enter the State "
    "Council notice as calendar overrides and declare the year official).",
)
CALENDAR_YEAR_PROVISIONAL = Gauge(
    "tracking_calendar_year_provisional",
    "1 when the year (current or next) has no official holiday schedule, else 0.",
    ["year"],
)
DUE_DATES_RECOMPUTED = Counter(
    "tracking_due_dates_recomputed_total",
    "Open clocks whose due time changed after a calendar change.",
)
CALENDAR_PROVISIONAL_YEARS = Gauge(
    "tracking_calendar_provisional_years",
    "Years in use (due dates of running clocks) without an official holiday schedule, so "
    "their due dates are provisional; alert when > 0 (docs/metrics.md CfpProvisionalCalendarYear).",
)
