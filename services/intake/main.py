"""Intake service: records every complaint and suggestion from every channel (port 8001)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from fastapi import FastAPI
from starlette.middleware import Middleware

from services.intake import tables
from services.intake.api.routes import LeanSubmit, router
from services.intake.domain.submission import service as submission_service
from services.intake.domain.submission.committer import GroupCommitter
from services.intake.ratelimit import TokenBuckets
from services.intake.settings import IntakeSettings, get_settings
from shared.app import ServiceSpec, create_service_app
from shared.audit import audit_router
from shared.logging import get_logger
from shared.privacy import Vault

log = get_logger(__name__)


async def _purge_keys_forever(app: FastAPI, interval_seconds: float) -> None:
    """Delete expired idempotency keys every ``interval_seconds`` (errors are logged)."""
    while True:
        try:
            async with app.state.sessionmaker() as session, session.begin():
                n = await submission_service.purge_expired_keys(
                    session=session, now=datetime.now(UTC)
                )
            if n:
                log.info("intake.idempotency_keys_purged", count=n)
        except Exception as exc:
            log.warning("intake.idempotency_purge_failed", error=type(exc).__name__)
        await asyncio.sleep(interval_seconds)


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    """Build the intake app (``uvicorn --factory services.intake.main:create_app``)."""
    settings = settings or get_settings()

    async def start(app: FastAPI) -> None:
        relay = app.state.relay
        if relay is not None:
            relay.linger_seconds = settings.relay_linger_seconds
        app.state.committer = GroupCommitter(
            engine=app.state.engine,
            settings=settings,
            after_commit=relay.wake if relay is not None else None,
        )
        app.state.committer.start()
        app.state.purger = asyncio.create_task(
            _purge_keys_forever(app, settings.idempotency_purge_interval_seconds)
        )

    async def stop(app: FastAPI) -> None:
        app.state.purger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await app.state.purger
        await app.state.committer.stop()

    spec = ServiceSpec(
        name="intake",
        title="Intake",
        description=(
            "Records complaints and suggestions from every channel at once, with personal "
            "data encrypted, and publishes `complaints.received` / `suggestions.received`. "
            "Bearer tokens with roles; personal data masked unless the role may see it, "
            "every read in clear audited (`GET /v1/audit`)."
        ),
        routers=[router, audit_router(tables.audit_log)],
        outbox=tables.outbox,
        kafka_required_for_ready=False,
        on_startup=[start],
        on_shutdown=[stop],
        middleware=[Middleware(LeanSubmit, routes=[router])],
    )
    app = create_service_app(spec, settings)
    app.state.vault = Vault(settings.vault_keys.get_secret_value())
    app.state.rate_limiter = (
        TokenBuckets(settings.rate_limit_per_second, settings.rate_limit_burst)
        if settings.rate_limit_per_second > 0
        else None
    )
    return app
