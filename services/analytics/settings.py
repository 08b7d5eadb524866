"""Settings of the analytics service (env prefix ``ANALYTICS_``)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import PlatformSettings


class AnalyticsSettings(PlatformSettings):
    """Analytics settings.

    Attributes:
        metrics_min_interval_seconds: the business metrics are recomputed from the database
            at most once per this many seconds per process (env
            ``ANALYTICS_METRICS_MIN_INTERVAL_SECONDS``); scrapes in between reuse the values.
        rebuild_batch_size: events per database transaction during ``cfp analytics-rebuild``.
    """

    model_config = SettingsConfigDict(
        env_prefix="ANALYTICS_", extra="ignore", populate_by_name=True
    )

    metrics_min_interval_seconds: float = Field(5.0, ge=0.0, le=300.0)
    rebuild_batch_size: int = Field(500, ge=1, le=10000)


@lru_cache
def get_settings() -> AnalyticsSettings:
    """Return the process's settings (cached)."""
    return AnalyticsSettings()
