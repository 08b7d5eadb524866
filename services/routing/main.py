"""Routing service: classifies complaints and suggestions and routes them (port 8002)."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from services.routing import tables
from services.routing.api.routes import router
from services.routing.classifier import ComplaintClassifier
from services.routing.classifier.rules import warm_up
from services.routing.domain import service as routing_service
from services.routing.handlers import build_handlers
from services.routing.settings import RoutingSettings, get_settings
from shared.app import ServiceSpec, create_service_app
from shared.audit import audit_router


def create_app(settings: RoutingSettings | None = None) -> FastAPI:
    """Build the routing app (``uvicorn --factory services.routing.main:create_app``)."""
    settings = settings or get_settings()
    runtime = routing_service.RoutingRuntime(
        settings=settings, classifier=ComplaintClassifier.load(settings.model_path)
    )

    async def seed_rules(app: FastAPI) -> None:
        async with app.state.sessionmaker() as session, session.begin():
            await routing_service.ensure_default_rules(session=session)

    async def warm_classifier(app: FastAPI) -> None:
        # jieba and OpenCC load their dictionaries on first use (about a second); do it now,
        # off the event loop, instead of stalling the first Chinese complaint. One dry run
        # also touches the model's code paths.
        await asyncio.to_thread(warm_up)
        await asyncio.to_thread(runtime.classifier.predict, "warm-up: card payment failed")

    spec = ServiceSpec(
        name="routing",
        title="Routing",
        description=(
            "Classifies each complaint (category, product line, priority) with rules and a "
            "trained model, chooses the department from versioned routing rules, and "
            "publishes `complaints.routed`; low-confidence results wait in the triage queue."
        ),
        routers=[router, audit_router(tables.audit_log)],
        outbox=tables.outbox,
        processed=tables.processed_events,
        handlers=build_handlers(runtime),
        on_startup=[warm_classifier, seed_rules],
    )
    app = create_service_app(spec, settings)
    app.state.runtime = runtime
    return app
