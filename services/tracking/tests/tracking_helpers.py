"""Builders shared by tracking's tests (imported as services.tracking.tests.tracking_helpers)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tracking import tables
from services.tracking.domain import service as case_service
from services.tracking.settings import TrackingSettings
from shared.events.contracts.complaints import ComplaintRouted
from shared.workcalendar import WorkingDayCalendar


def routed(
    *,
    received_at: datetime,
    priority: str = "P3",
    department: str = "retail_ops",
    category: str = "service_quality",
    complaint_id: str | None = None,
) -> ComplaintRouted:
    cid = complaint_id or str(uuid.uuid4())
    return ComplaintRouted(
        complaint_id=cid,
        reference=f"C-{cid[:8]}",
        channel="phone",
        received_at=received_at,
        customer_key="cus_" + cid[:12],
        category=category,
        product_line="cards",
        priority=priority,
        department=department,
        confidence=0.9,
    )


async def open_case(
    sm: async_sessionmaker[AsyncSession],
    received_at: datetime,
    *,
    settings: TrackingSettings | None = None,
    now: datetime | None = None,
    **kw: Any,
) -> str:
    """Open a case directly through the domain service (as the routed consumer does)."""
    event = routed(received_at=received_at, **kw)
    async with sm() as session, session.begin():
        await case_service.open_case(
            session=session,
            calendar=WorkingDayCalendar(),
            settings=settings or TrackingSettings(),
            routed=event,
            now=now or datetime.now(UTC),
        )
    return event.complaint_id


async def outbox_types(sm: async_sessionmaker[AsyncSession], case_id: str) -> list[str]:
    ob = tables.outbox
    async with sm() as session:
        rows = await session.execute(
            select(ob.c.type).where(ob.c.key == case_id).order_by(ob.c.seq)
        )
        return [r.type for r in rows]


async def outbox_payloads(
    sm: async_sessionmaker[AsyncSession], case_id: str, type_: str
) -> list[dict[str, Any]]:
    ob = tables.outbox
    async with sm() as session:
        rows = await session.execute(
            select(ob.c.payload).where(ob.c.key == case_id, ob.c.type == type_).order_by(ob.c.seq)
        )
        return [r.payload["data"] for r in rows]
