"""A background loop that runs one round every few seconds until stopped (the sweepers).

Tracking's SLA sweeper and followup's visit-clock sweeper share this lifecycle: started from
the app's lifespan, one round per interval, a failing round logged and the loop kept alive,
and a stop that lets the current round finish (its transaction commits or rolls back whole).
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from shared.logging import get_logger

log = get_logger("shared.periodic")


class PeriodicWorker(ABC):
    """Run :meth:`tick` every :attr:`interval_seconds` in a background task.

    Subclasses set :attr:`name` (the task's name) and :attr:`failure_event` (the log event of
    a failed round), implement :meth:`tick` and :attr:`interval_seconds`, and may override
    :meth:`report` to log a round's result. An exception from a round is logged (first 300
    characters) and the next round runs after the interval; cancellation is not swallowed.
    """

    name: ClassVar[str]
    failure_event: ClassVar[str]
    #: Seconds :meth:`stop` waits for the current round before cancelling it.
    stop_timeout_seconds: ClassVar[float] = 15.0

    def __init__(self) -> None:
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    @abstractmethod
    def interval_seconds(self) -> float:
        """Seconds between the end of one round and the start of the next."""

    @abstractmethod
    async def tick(self) -> Any:
        """Run one round and return its result (given to :meth:`report`)."""

    def report(self, result: Any) -> None:  # noqa: B027 - optional hook, no-op by default
        """Log a round's result when it is worth a line (default: nothing)."""

    def start(self) -> None:
        """Start the loop as a background task."""
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop after the current round; cancel it after :attr:`stop_timeout_seconds`."""
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=self.stop_timeout_seconds)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.report(await self.tick())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(self.failure_event, error=str(exc)[:300])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval_seconds)
