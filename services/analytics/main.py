"""Analytics service: the read model, the reports and the business metrics (port 8005)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from services.analytics import reports, tables
from services.analytics.api.routes import router
from services.analytics.handlers import handlers
from services.analytics.metrics import collector
from services.analytics.settings import AnalyticsSettings, get_settings
from shared.app import ServiceSpec, create_service_app


class RefreshBusinessMetrics:
    """Pure-ASGI middleware: refresh the business metrics before ``GET /metrics``.

    The shared exposition then renders values computed from the database at scrape time.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refresh on ``/metrics`` (at most once per min interval), then pass the request on."""
        if scope["type"] == "http" and scope["path"] == "/metrics":
            state = scope["app"].state
            sessionmaker = getattr(state, "sessionmaker", None)
            if sessionmaker is not None:
                await collector.refresh(sessionmaker)
        await self.app(scope, receive, send)


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
        db_server_settings=reports.DB_SERVER_SETTINGS,
    )
    collector.min_interval_seconds = settings.metrics_min_interval_seconds
    app = create_service_app(spec, settings)
    app.add_middleware(RefreshBusinessMetrics)
    return app
