"""Per-client rate limiting of intake (issue 3 §6): token buckets, answered with 429.

Each client (the bearer token's subject) has a bucket of ``rate_limit_burst`` tokens that
refills at ``rate_limit_per_second``; a request takes one token or is refused with a 429
problem carrying ``Retry-After`` (whole seconds until a token is back).

Limitation: the buckets live in the process. With N replicas behind a load balancer a
client may get up to N times the configured rate; a shared limiter (PostgreSQL or the
gateway's) is the fix when that matters. Buckets of idle clients are dropped so that the
table stays small.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from services.intake import metrics
from shared.auth import Principal, current_principal
from shared.errors import AppError


class RateLimited(AppError):
    """Too many requests from this client (429, with ``Retry-After``)."""

    code = "rate_limited"
    status = 429
    title = "Too many requests"


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """Token buckets keyed by client.

    Args:
        rate_per_second: refill rate, > 0 (0 disables the limiter: every call passes).
        burst: bucket size, >= 1.
        clock: monotonic clock in seconds (tests may pass their own).
    """

    def __init__(self, rate_per_second: float, burst: int, clock: Any = time.monotonic) -> None:
        self.rate = rate_per_second
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._last_sweep = clock()

    def take(self, client: str) -> float:
        """Take one token for ``client``.

        Returns:
            0.0 when admitted, else the seconds until a token is available (> 0).
        """
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if now - self._last_sweep > 60:
            self._sweep(now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _sweep(self, now: float) -> None:
        full_after = self.burst / self.rate
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < full_after}
        self._last_sweep = now


async def rate_limited_principal(
    request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> Principal:
    """Dependency: admit the request within the client's rate, else raise 429.

    ``async`` (it never blocks) so that FastAPI does not send it to its thread pool.

    Raises:
        RateLimited: the client's bucket is empty; ``Retry-After`` says when to retry.
    """
    buckets: TokenBuckets | None = getattr(request.app.state, "rate_limiter", None)
    if buckets is not None:
        wait = buckets.take(principal.subject)
        if wait > 0:
            metrics.RATE_LIMITED.inc()
            retry_after = max(1, math.ceil(wait))
            raise RateLimited(
                f"more than the allowed rate for this client; retry in {retry_after} s",
                retry_after=retry_after,
            )
    return principal


RateLimit = Depends(rate_limited_principal)
