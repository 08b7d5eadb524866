"""JSON-lines logging for every service (STYLE.md §7), built on structlog.

Each line carries ``timestamp`` (UTC), ``level``, ``logger``, ``event`` (a constant message
such as ``outbox.published``), ``service``, ``version`` and the bound context
(``correlation_id`` from :mod:`shared.context`). Never log personal data or payloads: pass
free text through :func:`shared.privacy.redact` first.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
import structlog.tracebacks

from shared import context

VERSION = "0.1.0"


def _add_context(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    cid = context.correlation_id.get()
    if cid and "correlation_id" not in event_dict:
        event_dict["correlation_id"] = cid
    return event_dict


def configure(service: str, level: str = "INFO") -> None:
    """Configure structlog and the standard library to write JSON lines to stdout.

    structlog loggers and plain ``logging`` loggers (uvicorn, aiokafka, SQLAlchemy) go
    through one formatter, so every line has the same shape.

    Args:
        service: added to every line as ``service``.
        level: minimum level name (``DEBUG`` .. ``ERROR``).
    """

    def add_service(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        event_dict["service"] = service
        event_dict["version"] = VERSION
        return event_dict

    pre_chain: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_context,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *pre_chain,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                add_service,
                # Never locals: they would carry tokens and personal data into the logs.
                structlog.processors.ExceptionRenderer(
                    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
                ),
                structlog.processors.JSONRenderer(ensure_ascii=False),
            ],
            foreign_pre_chain=pre_chain,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for noisy in ("aiokafka", "kafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    """Return a structlog logger named ``name``."""
    return structlog.get_logger(name)
