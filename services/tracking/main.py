"""Tracking service: cases, their deadlines, and the suggestion workflow (port 8003)."""

from __future__ import annotations

from fastapi import FastAPI

from services.tracking import tables
from services.tracking.api.routes import router
from services.tracking.handlers import build_handlers
from services.tracking.settings import TrackingSettings, get_settings
from shared.app import ServiceSpec, create_service_app
from shared.workcalendar import WorkingDayCalendar


def create_app(settings: TrackingSettings | None = None) -> FastAPI:
    """Build the tracking app (``uvicorn --factory services.tracking.main:create_app``)."""
    settings = settings or get_settings()
    calendar = WorkingDayCalendar(tz=settings.timezone)
    spec = ServiceSpec(
        name="tracking",
        title="Tracking",
        description=(
            "Opens a case for each routed complaint, keeps its clocks (5 working days to "
            "resolve, Civil Code counting, China's holidays and make-up working days) and "
            "serves the handlers' queues."
        ),
        routers=[router],
        outbox=tables.outbox,
        processed=tables.processed_events,
        handlers=build_handlers(settings, calendar),
    )
    app = create_service_app(spec, settings)
    app.state.calendar = calendar
    return app
