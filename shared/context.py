"""Per-request / per-message context carried in ``contextvars`` (STYLE.md §7).

The request middleware sets ``correlation_id`` from ``X-Correlation-ID`` (or a new one);
the consumer wrapper sets it from the envelope. Logs and new events pick it up.
"""

from __future__ import annotations

from contextvars import ContextVar

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
traceparent: ContextVar[str | None] = ContextVar("traceparent", default=None)
