"""Tracking service: cases, their deadlines, and the suggestion workflow (port 8003)."""

from __future__ import annotations

from fastapi import FastAPI

from services.tracking import tables
from services.tracking.api.routes import router
from services.tracking.domain.calendar import CalendarHolder
from services.tracking.domain.sla import SlaSweeper
from services.tracking.handlers import build_handlers
from services.tracking.settings import TrackingSettings, get_settings
from shared.app import ServiceSpec, create_service_app
from shared.audit import audit_router


def create_app(settings: TrackingSettings | None = None) -> FastAPI:
    """Build the tracking app (``uvicorn --factory services.tracking.main:create_app``).

    The lifespan starts the SLA sweep loop (``TRACKING_SWEEP_ENABLED``, every
    ``TRACKING_SWEEP_INTERVAL_SECONDS``) after the relay and the consumer, and stops it first.
    """
    settings = settings or get_settings()
    holder = CalendarHolder(settings.timezone)

    async def start_sweeper(app: FastAPI) -> None:
        app.state.sweeper = None
        if not settings.sweep_enabled:
            return
        relay = app.state.relay
        app.state.sweeper = SlaSweeper(
            sessionmaker=app.state.sessionmaker,
            settings=settings,
            holder=holder,
            on_alerts=relay.wake if relay is not None else None,
        )
        app.state.sweeper.start()

    async def stop_sweeper(app: FastAPI) -> None:
        if getattr(app.state, "sweeper", None) is not None:
            await app.state.sweeper.stop()

    spec = ServiceSpec(
        name="tracking",
        title="Tracking",
        description=(
            "Handles complaints through their lifecycle (acknowledge, assign, investigate, "
            "determine responsibility, resolve, notify, close; withdraw, merge, escalate, "
            "reopen), keeps their clocks (5 working days to resolve, Civil Code counting, "
            "China's holidays and make-up working days plus the bank's overrides), emits "
            "warnings and breaches, and runs the suggestion workflow."
        ),
        routers=[router, audit_router(tables.audit_log)],
        outbox=tables.outbox,
        processed=tables.processed_events,
        handlers=build_handlers(settings, holder),
        on_startup=[start_sweeper],
        on_shutdown=[stop_sweeper],
    )
    app = create_service_app(spec, settings)
    app.state.calendar_holder = holder
    return app
