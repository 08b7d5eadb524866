"""Settings of the tracking service (env prefix ``TRACKING_``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import PlatformSettings


class TrackingSettings(PlatformSettings):
    """Tracking settings.

    Attributes:
        resolution_working_days: handling period in working days (plan §7.1.3 (3): 5).
        acknowledgement_working_days: first-response target in working days (default 1).
        regulatory_calendar_days: the regulator's period in calendar days (default 15).
        warning_working_days_left: warn when this many working days or fewer are left.
        resolution_clock_stops_at: ``result_notified`` (default, ARCHITECTURE.md §4: the
            clock stops when the customer is told the result) or ``resolved``.
        pause_while_awaiting_customer: credit the time a case awaits the customer (in
            working days, docs/deadlines.md §3); off by default, audited when used.
        sweep_enabled: run the SLA sweep loop in this process.
        sweep_interval_seconds: seconds between sweeps; warnings and breaches are emitted
            within this delay plus one sweep's duration (must stay well under 60 s).
        sweep_batch_size: clocks claimed per sweep transaction.
        metrics_refresh_seconds: seconds between refreshes of the calendar gauges.
        max_extension_working_days: most working days one extension may add.
        suggestion_weight_feasibility / _reasonableness / _effect: weights of the three
            evaluation criteria (each scored 1-5); normalised to sum 1.
        suggestion_min_reviewers: evaluations needed before adopt/decline.
        recourse: the customer's recourse named in the result notification (codes the
            messaging system turns into text: mediation, the regulator's hotline, court).
    """

    model_config = SettingsConfigDict(env_prefix="TRACKING_", extra="ignore", populate_by_name=True)

    resolution_working_days: int = Field(5, ge=1, le=60)
    acknowledgement_working_days: int = Field(1, ge=1, le=10)
    regulatory_calendar_days: int = Field(15, ge=1, le=90)
    warning_working_days_left: float = Field(1.0, ge=0)
    resolution_clock_stops_at: Literal["result_notified", "resolved"] = "result_notified"
    pause_while_awaiting_customer: bool = False
    sweep_enabled: bool = True
    sweep_interval_seconds: float = Field(10.0, gt=0, le=50)
    sweep_batch_size: int = Field(500, ge=1, le=10_000)
    metrics_refresh_seconds: float = Field(60.0, gt=0)
    max_extension_working_days: int = Field(10, ge=1, le=30)
    suggestion_weight_feasibility: float = Field(0.4, ge=0)
    suggestion_weight_reasonableness: float = Field(0.3, ge=0)
    suggestion_weight_effect: float = Field(0.3, ge=0)
    suggestion_min_reviewers: int = Field(1, ge=1, le=10)
    recourse: str = "financial_dispute_mediation,regulator_hotline_12378,court"


@lru_cache
def get_settings() -> TrackingSettings:
    """Return the process's settings (cached)."""
    return TrackingSettings()
