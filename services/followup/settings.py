"""Settings of the followup service (env prefix ``FOLLOWUP_``)."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from shared.config import PlatformSettings


class FollowupSettings(PlatformSettings):
    """Followup settings (platform values only, for now)."""

    model_config = SettingsConfigDict(env_prefix="FOLLOWUP_", extra="ignore", populate_by_name=True)


@lru_cache
def get_settings() -> FollowupSettings:
    """Return the process's settings (cached)."""
    return FollowupSettings()
