"""Payloads of the case events (owned by tracking). No personal data (ARCHITECTURE.md §3)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Final

from shared.events.envelope import Payload

CASE_OPENED_V1: Final = "cases.opened.v1"


class CaseOpened(Payload):
    """``cases.opened.v1``: tracking opened a case for a routed complaint.

    Attributes:
        case_id: equals the complaint id.
        due_at: end of the 5-working-day resolution period (UTC instant).
        due_date: the period's last day, in the bank's time zone.
        provisional: True when the due date falls in a year without an official
            holiday schedule.
    """

    case_id: str
    complaint_id: str
    reference: str
    channel: str
    category: str
    product_line: str
    priority: str
    department: str
    received_at: datetime
    opened_at: datetime
    due_at: datetime
    due_date: date
    provisional: bool = False
    customer_key: str
    branch_code: str | None = None
    region: str | None = None
