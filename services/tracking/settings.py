"""Settings of the tracking service (env prefix ``TRACKING_``)."""

from __future__ import annotations

from functools import lru_cache

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
    """

    model_config = SettingsConfigDict(env_prefix="TRACKING_", extra="ignore", populate_by_name=True)

    resolution_working_days: int = Field(5, ge=1, le=60)
    acknowledgement_working_days: int = Field(1, ge=1, le=10)
    regulatory_calendar_days: int = Field(15, ge=1, le=90)
    warning_working_days_left: float = Field(1.0, ge=0)


@lru_cache
def get_settings() -> TrackingSettings:
    """Return the process's settings (cached)."""
    return TrackingSettings()
