"""Settings of the intake service (env prefix ``CFP_`` for platform values, ``INTAKE_`` here)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from shared.config import PlatformSettings


class IntakeSettings(PlatformSettings):
    """Intake settings.

    Attributes:
        idempotency_ttl_seconds: how long an ``Idempotency-Key`` is remembered (seconds).
        duplicate_window_seconds: a second identical submission from the same customer
            within this many seconds, without a key, is linked as a probable duplicate.
        max_body_bytes: larger request bodies get 413.
        rate_limit_per_second: sustained requests per second admitted per client (token
            subject) by each replica; 0 turns rate limiting off.
        rate_limit_burst: requests a client may send at once before the rate applies.
        group_commit_max_batch: most submissions recorded in one transaction; 1 gives
            one transaction per request.
        group_commit_workers: concurrent batch transactions (database connections used).
        relay_linger_seconds: after a commit wakes the outbox relay, it waits this long
            (seconds) so that one pass publishes the events of several commits; adds at
            most this much delay between a 201 and the event on Kafka.
        idempotency_purge_interval_seconds: how often expired keys are deleted (seconds).
        preview_chars: length of the ``preview`` of a read submission (code points).
    """

    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore", populate_by_name=True)

    idempotency_ttl_seconds: int = Field(24 * 3600, ge=60)
    duplicate_window_seconds: int = Field(600, ge=0)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    rate_limit_per_second: float = Field(200.0, ge=0)
    rate_limit_burst: int = Field(1000, ge=1)
    group_commit_max_batch: int = Field(64, ge=1, le=1000)
    group_commit_workers: int = Field(2, ge=1, le=32)
    relay_linger_seconds: float = Field(0.2, ge=0, le=5)
    idempotency_purge_interval_seconds: float = Field(300.0, gt=0)
    preview_chars: int = Field(120, ge=8, le=2000)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read ``INTAKE_*`` and also the platform's ``CFP_*`` variables.

        The ``INTAKE_`` prefix of this class replaces ``CFP_``, so without this source
        ``CFP_JWT_SECRET``, ``CFP_VAULT_KEYS``, ``CFP_PSEUDONYM_KEY`` and
        ``CFP_ENVIRONMENT`` would be ignored and intake would run on the development
        secrets. ``INTAKE_*`` wins over ``CFP_*``.
        """
        return (
            init_settings,
            env_settings,
            EnvSettingsSource(settings_cls, env_prefix="CFP_"),
            dotenv_settings,
            file_secret_settings,
        )


@lru_cache
def get_settings() -> IntakeSettings:
    """Return the process's settings (cached; tests build their own)."""
    return IntakeSettings()
