"""Followup service: call-back visits after a result is given (port 8004).

This first version runs the service shell (health, readiness, metrics, outbox relay);
visits, attempts and satisfaction follow in the follow-up issue.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.followup import tables
from services.followup.settings import FollowupSettings, get_settings
from shared.app import ServiceSpec, create_service_app


def create_app(settings: FollowupSettings | None = None) -> FastAPI:
    """Build the followup app (``uvicorn --factory services.followup.main:create_app``)."""
    settings = settings or get_settings()
    spec = ServiceSpec(
        name="followup",
        title="Follow-up",
        description="Schedules and records follow-up visits and customer satisfaction.",
        outbox=tables.outbox,
        processed=tables.processed_events,
    )
    return create_service_app(spec, settings)
