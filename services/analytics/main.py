"""Analytics service: the read model and the reports (port 8005)."""

from __future__ import annotations

from fastapi import FastAPI

from services.analytics import tables
from services.analytics.api.routes import router
from services.analytics.handlers import handlers
from services.analytics.settings import AnalyticsSettings, get_settings
from shared.app import ServiceSpec, create_service_app


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    """Build the analytics app (``uvicorn --factory services.analytics.main:create_app``)."""
    settings = settings or get_settings()
    spec = ServiceSpec(
        name="analytics",
        title="Analytics",
        description="Builds a read model from every event and serves the plan's reports.",
        routers=[router],
        processed=tables.processed_events,
        handlers=handlers,
    )
    return create_service_app(spec, settings)
