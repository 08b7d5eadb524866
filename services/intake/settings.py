"""Settings of the intake service (env prefix ``CFP_`` for platform values, ``INTAKE_`` here)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import PlatformSettings


class IntakeSettings(PlatformSettings):
    """Intake settings.

    Attributes:
        idempotency_ttl_seconds: how long an ``Idempotency-Key`` is remembered (seconds).
        duplicate_window_seconds: a second identical submission from the same customer
            within this many seconds, without a key, is linked as a probable duplicate.
        max_body_bytes: larger request bodies get 413.
    """

    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore", populate_by_name=True)

    idempotency_ttl_seconds: int = Field(24 * 3600, ge=60)
    duplicate_window_seconds: int = Field(600, ge=0)
    max_body_bytes: int = Field(1_000_000, ge=1024)


@lru_cache
def get_settings() -> IntakeSettings:
    """Return the process's settings (cached; tests build their own)."""
    return IntakeSettings()
