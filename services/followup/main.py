"""Followup service: call-back visits after a result is given (port 8004).

Consumes tracking's ``cases.result-notified``, ``cases.reopened``, ``cases.closed``,
``suggestions.decided`` and ``suggestions.implemented``; emits ``followups.scheduled`` and
``followups.completed``, and from a sweep loop ``followups.visit-warning`` and
``followups.visit-overdue`` (once per visit); serves the callers' work list and the
attempts API, the audit log, and domain metrics computed from the database
(docs/followup.md).
"""

from __future__ import annotations

from fastapi import FastAPI

from services.followup import metrics, tables
from services.followup.api.routes import router
from services.followup.domain.visit.clock_sweep import VisitClockSweeper
from services.followup.handlers import build_handlers
from services.followup.settings import FollowupSettings, get_settings
from shared.app import ServiceSpec, create_service_app
from shared.audit import audit_router
from shared.workcalendar import WorkingDayCalendar


def create_app(settings: FollowupSettings | None = None) -> FastAPI:
    """Build the followup app (``uvicorn --factory services.followup.main:create_app``)."""
    settings = settings or get_settings()
    calendar = WorkingDayCalendar(tz=settings.timezone)

    async def start_sweeper(app: FastAPI) -> None:
        app.state.clock_sweeper = None
        if not settings.sweep_enabled:
            return
        relay = app.state.relay
        app.state.clock_sweeper = VisitClockSweeper(
            sessionmaker=app.state.sessionmaker,
            calendar=calendar,
            settings=settings,
            on_alerts=relay.wake if relay is not None else None,
        )
        app.state.clock_sweeper.start()

    async def stop_sweeper(app: FastAPI) -> None:
        if getattr(app.state, "clock_sweeper", None) is not None:
            await app.state.clock_sweeper.stop()

    spec = ServiceSpec(
        name="followup",
        title="Follow-up",
        description=(
            "Schedules a call-back visit (call, SMS or app survey) a configurable number of "
            "working days after the customer was told the result, records attempts and "
            "satisfaction, and reports the outcome: satisfied closes the case, unsatisfied "
            "reopens it, unreachable after N tries closes it as unreachable."
        ),
        routers=[router, audit_router(tables.audit_log)],
        outbox=tables.outbox,
        processed=tables.processed_events,
        handlers=build_handlers(settings, calendar),
        on_startup=[metrics.start, start_sweeper],
        on_shutdown=[stop_sweeper, metrics.stop],
    )
    app = create_service_app(spec, settings)
    app.state.calendar = calendar
    return app
