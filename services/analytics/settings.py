"""Settings of the analytics service (env prefix ``ANALYTICS_``)."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from shared.config import PlatformSettings


class AnalyticsSettings(PlatformSettings):
    """Analytics settings (platform values only, for now)."""

    model_config = SettingsConfigDict(
        env_prefix="ANALYTICS_", extra="ignore", populate_by_name=True
    )


@lru_cache
def get_settings() -> AnalyticsSettings:
    """Return the process's settings (cached)."""
    return AnalyticsSettings()
