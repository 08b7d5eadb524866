"""Payloads of the suggestion workflow events (owned by tracking). No personal data."""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from shared.events.envelope import Payload

SUGGESTION_DECIDED_V1: Final = "suggestions.decided.v1"
SUGGESTION_IMPLEMENTED_V1: Final = "suggestions.implemented.v1"
SUGGESTION_REWARDED_V1: Final = "suggestions.rewarded.v1"


class SuggestionDecided(Payload):
    """``suggestions.decided.v1``: screened out, adopted or declined.

    Attributes:
        decision: ``rejected`` (at screening), ``adopted`` or ``declined`` (after evaluation).
        score: weighted evaluation score 1..5, when evaluated.
    """

    suggestion_id: str
    reference: str
    customer_key: str
    decision: Literal["rejected", "adopted", "declined"]
    reason: str | None = None
    score: float | None = None
    decided_at: datetime
    category: str | None = None
    department: str | None = None


class SuggestionImplemented(Payload):
    """``suggestions.implemented.v1``: an adopted suggestion was put in place."""

    suggestion_id: str
    reference: str
    customer_key: str
    implemented_at: datetime
    department: str
    planned_due_date: str | None = None
    on_time: bool | None = None


class SuggestionRewarded(Payload):
    """``suggestions.rewarded.v1``: the suggester received a reward.

    Attributes:
        amount_minor: value in minor units of ``currency`` (0 for non-monetary rewards).
    """

    suggestion_id: str
    reference: str
    customer_key: str
    reward_type: str
    amount_minor: int = 0
    currency: str | None = None
    rewarded_at: datetime
