"""Settings of the followup service (env prefix ``FOLLOWUP_``).

The visit rules come from the plan's §7.1.4 (every handled complaint is followed up; an
unsatisfied customer's complaint is handled again; an unreachable customer's complaint is
closed after a number of tries). The numbers are the bank's choice; the defaults are what
``docs/followup.md`` describes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import PlatformSettings

VisitChannel = Literal["call", "sms", "app_survey"]

#: Default channel policy: the channel named in ``cases.result-notified`` (how the customer
#: was told the result) -> the channel of the visit. Anything not listed gets
#: ``default_channel``. A customer who used the app answers a survey in the app; one who was
#: answered in writing over a digital channel gets an SMS survey; everyone else is called.
DEFAULT_CHANNEL_POLICY: dict[str, VisitChannel] = {
    "mobile_app": "app_survey",
    "app": "app_survey",
    "app_push": "app_survey",
    "sms": "sms",
    "web": "sms",
    "online_chat": "sms",
    "email": "sms",
}


class FollowupSettings(PlatformSettings):
    """Followup settings.

    Attributes:
        delay_working_days: the visit becomes due at local 00:00 of the n-th working day
            after the day the customer was told the result (0: at once), >= 0.
        window_working_days: the visit's clock: it should be completed by 24:00 of the
            n-th working day after the result day (at least ``delay_working_days``), >= 1.
        warning_working_days_left: a visit is in ``warning`` when this many working days or
            fewer are left on its clock (like the cases' warnings), >= 0.
        max_attempts: unreachable attempts after which the visit ends ``unreachable`` and
            tracking closes the case (plan §7.1.4; default 3), 1..10.
        retry_spacing_working_days: after an unreachable attempt the next one is due at
            local 00:00 of the n-th working day after the attempt's day (0: at once).
        default_channel: visit channel when the policy has no entry.
        channel_policy: result-notification channel -> visit channel.
        reopened_channel: channel of every visit after a reopen (round >= 2): a person calls
            a customer who was unsatisfied once.
        suggestion_channel: channel of the follow-up of a suggestion's decision.
        metrics_refresh_seconds: how often the domain gauges are recomputed from the
            database, seconds > 0.
        sweep_enabled: run the visit-clock sweep in this process (issue 6 §4: warnings like
            cases); every replica may run it, each alert is emitted once.
        sweep_interval_seconds: pause between two sweeps, seconds > 0 (an alert is emitted
            at most this long after its moment).
        sweep_batch_size: visits claimed per sweep transaction, 1..10000.
    """

    model_config = SettingsConfigDict(env_prefix="FOLLOWUP_", extra="ignore", populate_by_name=True)

    delay_working_days: int = Field(1, ge=0, le=30)
    window_working_days: int = Field(3, ge=1, le=60)
    warning_working_days_left: float = Field(1.0, ge=0)
    max_attempts: int = Field(3, ge=1, le=10)
    retry_spacing_working_days: int = Field(1, ge=0, le=10)
    default_channel: VisitChannel = "call"
    channel_policy: dict[str, VisitChannel] = Field(
        default_factory=lambda: dict(DEFAULT_CHANNEL_POLICY)
    )
    reopened_channel: VisitChannel = "call"
    suggestion_channel: VisitChannel = "app_survey"
    metrics_refresh_seconds: float = Field(15.0, gt=0, le=3600)
    sweep_enabled: bool = True
    sweep_interval_seconds: float = Field(30.0, gt=0, le=3600)
    sweep_batch_size: int = Field(500, ge=1, le=10_000)


@lru_cache
def get_settings() -> FollowupSettings:
    """Return the process's settings (cached)."""
    return FollowupSettings()
