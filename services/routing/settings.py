"""Settings of the routing service (env prefix ``ROUTING_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import PlatformSettings


class RoutingSettings(PlatformSettings):
    """Routing settings.

    Attributes:
        triage_threshold: predictions with confidence below this (0..1) go to the triage
            queue for a person to confirm; the case is opened meanwhile, so the deadline
            clock is never held up.
        model_path: classifier artifact folder; the newest shipped artifact when unset.
        high_amount_minor: a disputed amount above this many minor units raises priority.
        repeat_window_days: a complaint from the same customer within this many days is a
            repeat complaint and raises priority.
        near_duplicate_threshold: a suggestion whose character n-grams overlap an earlier
            suggestion's with at least this Jaccard similarity (0..1) is flagged as its
            near-duplicate; see ``services.routing.domain.duplicates`` (values below about
            0.4 start to miss candidates).
    """

    model_config = SettingsConfigDict(env_prefix="ROUTING_", extra="ignore", populate_by_name=True)

    triage_threshold: float = Field(0.45, ge=0.0, le=1.0)
    model_path: Path | None = None
    high_amount_minor: int = Field(5_000_000, ge=0)
    repeat_window_days: int = Field(30, ge=1)
    near_duplicate_threshold: float = Field(0.7, gt=0.0, le=1.0)


@lru_cache
def get_settings() -> RoutingSettings:
    """Return the process's settings (cached)."""
    return RoutingSettings()
