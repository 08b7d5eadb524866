"""Event handlers of routing: complaints and suggestions in, routed/screened events out."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.routing.domain import service as routing_service
from shared.events import registry
from shared.events.contracts.complaints import (
    COMPLAINT_RECEIVED_V1,
    SUGGESTION_RECEIVED_V1,
    ComplaintReceived,
    SuggestionReceived,
)
from shared.events.envelope import Envelope
from shared.kafka.consumer import HandlerRegistry


def build_handlers(runtime: routing_service.RoutingRuntime) -> HandlerRegistry:
    """Return routing's handler registry bound to ``runtime``."""
    handlers = HandlerRegistry()

    async def prepare(events: list[Envelope[ComplaintReceived]]) -> None:
        await routing_service.prepare_batch(runtime, [e.data for e in events])

    @handlers.on(
        registry.COMPLAINTS_RECEIVED, COMPLAINT_RECEIVED_V1, ComplaintReceived, prepare=prepare
    )
    async def on_complaint_received(
        event: Envelope[ComplaintReceived], *, session: AsyncSession
    ) -> None:
        await routing_service.route_complaint(
            session=session, runtime=runtime, complaint=event.data
        )

    @handlers.on(registry.SUGGESTIONS_RECEIVED, SUGGESTION_RECEIVED_V1, SuggestionReceived)
    async def on_suggestion_received(
        event: Envelope[SuggestionReceived], *, session: AsyncSession
    ) -> None:
        await routing_service.screen_suggestion(
            session=session, runtime=runtime, suggestion=event.data
        )

    return handlers
