"""Event handlers of tracking."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.tracking.domain import service as case_service
from services.tracking.settings import TrackingSettings
from shared.events import registry
from shared.events.contracts.complaints import COMPLAINT_ROUTED_V1, ComplaintRouted
from shared.events.envelope import Envelope
from shared.kafka.consumer import HandlerRegistry
from shared.workcalendar import WorkingDayCalendar


def build_handlers(settings: TrackingSettings, calendar: WorkingDayCalendar) -> HandlerRegistry:
    """Return tracking's handler registry."""
    handlers = HandlerRegistry()

    @handlers.on(registry.COMPLAINTS_ROUTED, COMPLAINT_ROUTED_V1, ComplaintRouted)
    async def on_complaint_routed(
        event: Envelope[ComplaintRouted], *, session: AsyncSession
    ) -> None:
        await case_service.open_case(
            session=session,
            calendar=calendar,
            settings=settings,
            routed=event.data,
            now=datetime.now(UTC),
        )

    return handlers
