"""Intake service: records every complaint and suggestion from every channel (port 8001)."""

from __future__ import annotations

from fastapi import FastAPI

from services.intake import tables
from services.intake.api.routes import router
from services.intake.settings import IntakeSettings, get_settings
from shared.app import ServiceSpec, create_service_app
from shared.privacy import Vault


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    """Build the intake app (``uvicorn --factory services.intake.main:create_app``)."""
    settings = settings or get_settings()
    spec = ServiceSpec(
        name="intake",
        title="Intake",
        description=(
            "Records complaints and suggestions from every channel at once, with personal "
            "data encrypted, and publishes `complaints.received` / `suggestions.received`."
        ),
        routers=[router],
        outbox=tables.outbox,
        kafka_required_for_ready=False,
    )
    app = create_service_app(spec, settings)
    app.state.vault = Vault(settings.vault_keys.get_secret_value())
    return app
