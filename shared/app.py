"""The common FastAPI application shell of every service.

:func:`create_service_app` wires what all five services share: settings, JSON logs,
problem+json errors, correlation ids, HTTP metrics, ``/healthz``, ``/readyz``,
``/metrics``, one async engine per process, the outbox relay and the event consumer, and a
graceful shutdown (stop consuming, finish in-flight work, flush the producer, dispose the
engine; STYLE.md §12).
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import uuid_utils
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path

from shared import context, errors, metrics
from shared import logging as cfp_logging
from shared.config import PlatformSettings
from shared.db import make_engine, make_sessionmaker
from shared.kafka.consumer import EventConsumer, HandlerRegistry
from shared.kafka.relay import OutboxRelay

Hook = Callable[[FastAPI], Awaitable[None]]


@dataclass
class ServiceSpec:
    """What a service contributes to the shell.

    Attributes:
        name: service name (schema, consumer group, log ``service`` field).
        title: OpenAPI title.
        description: OpenAPI description (markdown).
        routers: the service's ``/v1`` routers.
        outbox: the service's outbox table, or None when it publishes nothing.
        processed: the service's processed-events table, or None when it consumes nothing.
        handlers: the event handlers, or None.
        kafka_required_for_ready: when False (intake), ``/readyz`` stays 200 while Kafka is
            down, because the outbox keeps accepting work; the body still says so.
        on_startup / on_shutdown: extra hooks (sweepers, model loading), run in order.
        max_body_bytes: request bodies above this size get 413 before they are parsed.
        db_server_settings: PostgreSQL settings for the service's connections
            (:func:`shared.db.make_engine`).
        middleware: the service's own pure-ASGI middlewares, outermost first; they run
            inside the platform's (observability, then the body limit), so what they answer
            is measured and correlated like any request.
    """

    name: str
    title: str
    description: str
    routers: list[APIRouter] = field(default_factory=list)
    outbox: Table | None = None
    processed: Table | None = None
    handlers: HandlerRegistry | None = None
    kafka_required_for_ready: bool = True
    on_startup: list[Hook] = field(default_factory=list)
    on_shutdown: list[Hook] = field(default_factory=list)
    max_body_bytes: int = 1_000_000
    middleware: list[Middleware] = field(default_factory=list)
    db_server_settings: dict[str, str] = field(default_factory=dict)


class _ObservabilityMiddleware:
    """Pure-ASGI middleware: correlation id in and out, request duration histogram.

    The histogram's label children are cached per ``(route template, method, status)``
    (bounded: templates x methods x status codes), so a request does not pay
    ``labels()``'s validation and locked lookup.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._durations: dict[tuple[str, str, int], Any] = {}

    def _duration_child(self, template: str, method: str, status: int) -> Any:
        key = (template, method, status)
        child = self._durations.get(key)
        if child is None:
            child = metrics.HTTP_REQUEST_DURATION.labels(template, method, str(status))
            self._durations[key] = child
        return child

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = None
        for key, value in scope.get("headers", ()):
            if key == b"x-correlation-id":
                cid = value.decode("latin-1")[:128]
                break
        cid = cid or str(uuid_utils.uuid4())
        token = context.correlation_id.set(cid)
        started = time.perf_counter()
        status = 500
        cid_header = (b"x-correlation-id", cid.encode())

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), cid_header]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self._duration_child(template, scope["method"], status).observe(
                time.perf_counter() - started
            )
            context.correlation_id.reset(token)


class _BodyLimitMiddleware:
    """Pure-ASGI middleware: refuse bodies above ``limit`` bytes with a 413 problem.

    Checks ``Content-Length`` up front and counts the bytes of chunked bodies as they
    arrive, so an oversized body is never parsed.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body = json.dumps(
            {
                "type": "https://cfp.example/problems/payload_too_large",
                "title": "Request body too large",
                "status": 413,
                "detail": f"request bodies are limited to {self.limit} bytes",
                "instance": scope.get("path", ""),
                "code": "payload_too_large",
                "correlation_id": context.correlation_id.get(),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", errors.PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lengths = 0  # Content-Length headers seen, each a valid number within the limit
        count_bytes = False
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                if value.isdigit() and int(value) > self.limit:
                    await self._refuse(scope, send)
                    return
                lengths += 1
                count_bytes = count_bytes or not value.isdigit()
            elif key == b"transfer-encoding":
                count_bytes = True
        if not count_bytes and lengths <= 1:
            # Fast path: without Transfer-Encoding the body is exactly Content-Length bytes
            # (none without it; RFC 9112 §6.3), which is within the limit: nothing to count.
            await self.app(scope, receive, send)
            return
        seen = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal seen, too_large
            if too_large:
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # Stop reading; the app sees a truncated body, and its answer is
                    # replaced by the 413 below.
                    too_large = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        replaced = False

        async def replacing_send(message: Message) -> None:
            nonlocal replaced
            if too_large:
                if not replaced and message["type"] == "http.response.start":
                    replaced = True
                    await self._refuse(scope, send)
                return
            await send(message)

        await self.app(scope, limited_receive, replacing_send)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield a session for the request; the route commits with ``async with session.begin()``.

    After the request, wakes the outbox relay when the session staged events.
    """
    async with request.app.state.sessionmaker() as session:
        yield session
    if session.info.get("outbox_dirty") and request.app.state.relay is not None:
        request.app.state.relay.wake()


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def settings_of(request: Request) -> Any:
    """Return the app's settings object (dependency)."""
    return request.app.state.settings


def _install_offline_docs(app: FastAPI, title: str) -> None:
    """Serve Swagger UI at ``/docs`` with its assets from this process, not from a CDN.

    Bank networks often have no route to the internet; FastAPI's default page loads its
    JavaScript and CSS from jsDelivr. The assets come from the ``swagger-ui-bundle`` package
    (mounted at ``/docs/assets``); links honour a proxy's ``root_path``.
    """
    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_path), name="swagger-ui-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{title} - API",
            swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/assets/favicon-32x32.png",
        )


def create_service_app(spec: ServiceSpec, settings: PlatformSettings) -> FastAPI:
    """Build the FastAPI app of one service.

    Args:
        spec: the service's routers, tables, handlers and hooks.
        settings: the service's settings (a :class:`PlatformSettings` subclass).

    Returns:
        The app; its lifespan opens the engine, starts the relay and the consumer, and
        closes them in reverse order.
    """
    cfp_logging.configure(spec.name, settings.log_level)
    log = cfp_logging.get_logger(f"services.{spec.name}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            application_name=spec.name,
            server_settings=spec.db_server_settings,
        )
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.relay = None
        app.state.consumer = None
        if spec.outbox is not None and settings.relay_in_process:
            app.state.relay = OutboxRelay(
                table=spec.outbox,
                sessionmaker=app.state.sessionmaker,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                topic_prefix=settings.kafka_topic_prefix,
                client_id=spec.name,
                retention_seconds=settings.outbox_retention_hours * 3600,
            )
            app.state.relay.start()
        if spec.handlers is not None and spec.processed is not None and spec.handlers.by_type:
            relay = app.state.relay
            app.state.consumer = EventConsumer(
                group=spec.name,
                registry=spec.handlers,
                sessionmaker=app.state.sessionmaker,
                processed_table=spec.processed,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                topic_prefix=settings.kafka_topic_prefix,
                after_commit=relay.wake if relay is not None else None,
            )
            app.state.consumer.start()
        for hook in spec.on_startup:
            await hook(app)
        # What is alive now (modules, models, routes, pools) lives as long as the process:
        # moved out of the cyclic collector's reach, so its full collections no longer walk
        # it (they were about 10 % of intake's CPU under load: docs/intake.md "Benchmark").
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, 20, 20)
        log.info("service.started")
        try:
            yield
        finally:
            for hook in spec.on_shutdown:
                await hook(app)
            if app.state.consumer is not None:
                await app.state.consumer.stop()
            if app.state.relay is not None:
                await app.state.relay.stop()
            await engine.dispose()
            log.info("service.stopped")

    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version=cfp_logging.VERSION,
        lifespan=lifespan,
        docs_url=None,  # served below from the swagger-ui-bundle package, not a CDN
        redoc_url=None,
        openapi_url="/openapi.json",
        # Metrics are Prometheus (/metrics) and logs structlog: FastAPI's native OpenTelemetry
        # is off, so requests do not pay its per-request provider checks (about 3 % of
        # intake's CPU under load, docs/intake.md "Benchmark").
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    _install_offline_docs(app, spec.title)
    app.state.settings = settings
    app.state.spec = spec
    errors.install(app)
    for mw in reversed(spec.middleware):  # add_middleware puts each outside the ones before
        app.add_middleware(mw.cls, *mw.args, **mw.kwargs)
    app.add_middleware(_BodyLimitMiddleware, limit=spec.max_body_bytes)
    app.add_middleware(_ObservabilityMiddleware)

    @app.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": spec.name}

    @app.get("/readyz", tags=["ops"], summary="Readiness: database and Kafka reachable")
    async def readyz(request: Request) -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            async with request.app.state.engine.connect() as conn:
                await conn.execute(text("select 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        kafka_ok = True
        relay = request.app.state.relay
        consumer = request.app.state.consumer
        if relay is not None:
            kafka_ok = kafka_ok and relay.connected
        if consumer is not None:
            kafka_ok = kafka_ok and consumer.consumer is not None
        checks["kafka"] = "ok" if kafka_ok else "unavailable"
        ready = checks["database"] == "ok" and (kafka_ok or not spec.kafka_required_for_ready)
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "service": spec.name, "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        body, content_type = metrics.render_latest()
        return Response(body, media_type=content_type)

    for router in spec.routers:
        app.include_router(router)
    return app
