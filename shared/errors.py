"""Errors as RFC 9457 problem details (STYLE.md §6).

Domain code raises subclasses of :class:`AppError` with a stable ``code``, an HTTP
``status`` and a ``title``; one set of handlers renders every error, request validation
included, as ``application/problem+json`` with ``type``, ``title``, ``status``, ``detail``,
``instance``, ``code`` and ``correlation_id``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared import context
from shared.logging import get_logger

PROBLEM_JSON = "application/problem+json"
log = get_logger(__name__)


class AppError(Exception):
    """Base of domain errors.

    Attributes:
        code: stable machine-readable code (``case_not_found``).
        status: HTTP status.
        title: short human summary, constant per code.
        detail: this occurrence, human-readable.
        extra: further members of the problem document.
    """

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class NotFound(AppError):
    """A resource does not exist."""

    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(AppError):
    """The request conflicts with the current state."""

    code = "conflict"
    status = 409
    title = "Conflict"


def problem(
    request: Request, *, status: int, title: str, detail: str, code: str, **extra: Any
) -> JSONResponse:
    """Render a problem+json response."""
    body = {
        "type": f"https://cfp.example/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "code": code,
        "correlation_id": context.correlation_id.get(),
        **extra,
    }
    headers = {"Retry-After": str(extra["retry_after"])} if "retry_after" in extra else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


def install(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return problem(
            request,
            status=exc.status,
            title=exc.title,
            detail=exc.detail,
            code=exc.code,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type")}
            for e in exc.errors()
        ]
        if any(e["type"] == "json_invalid" for e in errors):
            detail = "the request body is not valid JSON"
        else:
            detail = "invalid field(s): " + ", ".join(sorted({e["field"] for e in errors}))
        return problem(
            request,
            status=422,
            title="Invalid request",
            detail=detail,
            code="validation_error",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        resp = problem(
            request,
            status=exc.status_code,
            title=str(exc.detail) if exc.status_code < 500 else "Server error",
            detail=str(exc.detail),
            code=f"http_{exc.status_code}",
        )
        if exc.headers:
            resp.headers.update(exc.headers)
        return resp

    @app.exception_handler(Exception)
    async def _unknown(request: Request, exc: Exception) -> JSONResponse:
        log.exception("http.unhandled_error", route=request.url.path)
        return problem(
            request,
            status=500,
            title="Internal server error",
            detail="an unexpected error occurred; quote the correlation id to support",
            code="internal_error",
        )
