"""Payloads of the complaint and suggestion intake and routing events (owned by intake and routing).

No personal data: the customer appears only as ``customer_key`` (pseudonymous) and free
text is redacted (ARCHITECTURE.md §3). Amounts are in minor currency units.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from shared.events.envelope import Payload

COMPLAINT_RECEIVED_V1: Final = "complaints.received.v1"
SUGGESTION_RECEIVED_V1: Final = "suggestions.received.v1"
COMPLAINT_ROUTED_V1: Final = "complaints.routed.v1"
COMPLAINT_REROUTED_V1: Final = "complaints.rerouted.v1"
SUGGESTION_SCREENED_V1: Final = "suggestions.screened.v1"

Channel = Literal[
    "phone",
    "email",
    "online_chat",
    "letter",
    "branch",
    "mobile_app",
    "web",
    "social_media",
    "regulator_referral",
]
CHANNELS: Final[tuple[str, ...]] = Channel.__args__  # type: ignore[attr-defined]


class ComplaintReceived(Payload):
    """``complaints.received.v1``: a complaint was recorded by intake.

    Attributes:
        complaint_id: UUID of the complaint; also the case id downstream.
        reference: customer-facing reference (``C-YYMMDD-XXXXXX``).
        received_at: receipt instant (UTC) from which the deadline counts.
        customer_key: pseudonymous customer key (``cus_...``).
        description: redacted description.
        amount_minor: disputed amount in minor units of ``currency``, when given.
    """

    complaint_id: str
    reference: str
    channel: str
    received_at: datetime
    customer_key: str
    description: str
    subject: str | None = None
    product: str | None = None
    branch_code: str | None = None
    region: str | None = None
    occurred_at: datetime | None = None
    amount_minor: int | None = None
    currency: str | None = None
    language: str | None = None
    external_ref: str | None = None
    attachment_count: int = 0
    vulnerable_customer: bool = False


class SuggestionReceived(Payload):
    """``suggestions.received.v1``: a suggestion was recorded by intake (fields as complaints)."""

    suggestion_id: str
    reference: str
    channel: str
    received_at: datetime
    customer_key: str
    description: str
    subject: str | None = None
    product: str | None = None
    branch_code: str | None = None
    language: str | None = None


class ComplaintRouted(Payload):
    """``complaints.routed.v1``: routing classified the complaint and chose a department.

    Attributes:
        category: taxonomy category code (``service_quality``, ...).
        product_line: taxonomy product line code.
        priority: ``P1`` (highest) .. ``P4``.
        department: responsible department code.
        confidence: classifier confidence, 0..1.
        needs_triage: True when confidence fell below the threshold: a person confirms.
        rule_version: version of the routing rules that chose the department.
        classifier_version: version of the model artifact.
    """

    complaint_id: str
    reference: str
    channel: str
    received_at: datetime
    customer_key: str
    category: str
    product_line: str
    priority: str
    department: str
    confidence: float
    needs_triage: bool = False
    rule_version: int | None = None
    classifier_version: str | None = None
    branch_code: str | None = None
    region: str | None = None
    language: str | None = None
    amount_minor: int | None = None
    currency: str | None = None


class ComplaintRerouted(Payload):
    """``complaints.rerouted.v1``: a supervisor overrode a complaint's classification.

    The new values replace those of ``complaints.routed``; a consumer (tracking) moves the
    case to ``department`` and applies ``category``, ``product_line`` and ``priority``.
    Several reroutes of one complaint keep their order on the complaint's partition; the
    latest wins. The supervisor's reason stays in routing's audit log (it is free text).

    Attributes:
        complaint_id: UUID of the complaint (and of its case).
        reference: customer-facing reference.
        category / product_line / priority / department: the new classification.
        previous_category / previous_product_line / previous_priority /
            previous_department: the values they replace.
        rerouted_at: instant of the override (UTC).
        rerouted_by: staff subject of the supervisor (not customer data).
        rule_version: routing rules in force when the department was chosen.
    """

    complaint_id: str
    reference: str
    category: str
    product_line: str
    priority: str
    department: str
    previous_category: str | None = None
    previous_product_line: str | None = None
    previous_priority: str | None = None
    previous_department: str | None = None
    rerouted_at: datetime | None = None
    rerouted_by: str | None = None
    rule_version: int | None = None


class SuggestionScreened(Payload):
    """``suggestions.screened.v1``: routing typed a suggestion and chose a department.

    Attributes:
        near_duplicate_of: id of an earlier suggestion with nearly the same text, if any.
        near_duplicate_similarity: Jaccard similarity of the two texts' character n-grams,
            0..1, when ``near_duplicate_of`` is set.
    """

    suggestion_id: str
    reference: str
    channel: str
    received_at: datetime
    customer_key: str
    category: str
    product_line: str
    department: str
    confidence: float
    near_duplicate_of: str | None = None
    near_duplicate_similarity: float | None = None
