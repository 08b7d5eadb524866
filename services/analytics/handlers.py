"""Event handlers of analytics: fold every event into the read model (idempotent upserts).

Each handler writes only the columns its event knows, so events of one complaint may
arrive in any order and the row ends the same.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics import tables
from shared.events import registry
from shared.events.contracts.cases import CASE_OPENED_V1, CaseOpened
from shared.events.contracts.complaints import (
    COMPLAINT_RECEIVED_V1,
    COMPLAINT_ROUTED_V1,
    ComplaintReceived,
    ComplaintRouted,
)
from shared.events.envelope import Envelope
from shared.kafka.consumer import HandlerRegistry

handlers = HandlerRegistry()


async def upsert_fact(session: AsyncSession, complaint_id: str, values: dict[str, Any]) -> None:
    """Insert the complaint's fact row or update the given columns of it."""
    stmt = pg_insert(tables.complaint_fact).values(complaint_id=complaint_id, **values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[tables.complaint_fact.c.complaint_id],
            set_={k: stmt.excluded[k] for k in values},
        )
    )


@handlers.on(registry.COMPLAINTS_RECEIVED, COMPLAINT_RECEIVED_V1, ComplaintReceived)
async def on_complaint_received(
    event: Envelope[ComplaintReceived], *, session: AsyncSession
) -> None:
    """Record receipt facts: channel, time, customer key, branch, amount."""
    d = event.data
    await upsert_fact(
        session,
        d.complaint_id,
        {
            "reference": d.reference,
            "channel": d.channel,
            "customer_key": d.customer_key,
            "received_at": d.received_at,
            "branch_code": d.branch_code,
            "region": d.region,
            "language": d.language,
            "amount_minor": d.amount_minor,
        },
    )


@handlers.on(registry.COMPLAINTS_ROUTED, COMPLAINT_ROUTED_V1, ComplaintRouted)
async def on_complaint_routed(event: Envelope[ComplaintRouted], *, session: AsyncSession) -> None:
    """Record classification facts: category, product line, priority, department."""
    d = event.data
    await upsert_fact(
        session,
        d.complaint_id,
        {
            "category": d.category,
            "product_line": d.product_line,
            "priority": d.priority,
            "department": d.department,
            "needs_triage": d.needs_triage,
        },
    )


@handlers.on(registry.CASES_OPENED, CASE_OPENED_V1, CaseOpened)
async def on_case_opened(event: Envelope[CaseOpened], *, session: AsyncSession) -> None:
    """Record case facts: when it opened and when it is due."""
    d = event.data
    await upsert_fact(
        session,
        d.complaint_id,
        {"opened_at": d.opened_at, "due_at": d.due_at, "due_date": d.due_date},
    )
