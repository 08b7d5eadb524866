"""Group commit: concurrent submissions share one database transaction.

Each request prepares its submission (:func:`service.prepare`) and hands it to the
:class:`GroupCommitter`; a small pool of worker tasks takes whatever is queued (up to
``max_batch``), records it with :func:`service.record_batch` in one statement (its own
transaction: one round trip and one commit per batch), and answers every waiting
request. Under light load a batch holds one submission and nothing waits for a timer;
under heavy load the per-request cost of round trips and commits is shared. A request
is answered only after its transaction committed, so every 201 has its row, its vault
entry and its outbox event.

Failure isolation: when a batch fails for another reason than a reference collision or
a deadlock (both retried), its submissions are retried one by one, so one bad request
cannot fail the others.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.intake import metrics
from services.intake.domain.submission import service
from services.intake.settings import IntakeSettings
from shared.logging import get_logger

log = get_logger(__name__)

_Job = tuple[service.Prepared, "asyncio.Future[service.Outcome]"]
_RETRIES = 3
#: SQLSTATEs retried as a whole batch: deadlock, serialization failure.
_TRANSIENT = ("40P01", "40001")


def _sqlstate(exc: BaseException) -> str | None:
    """Return the SQLSTATE of a database error, raw asyncpg or wrapped by SQLAlchemy."""
    for candidate in (exc, getattr(exc, "orig", None), getattr(exc, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None)
        if code:
            return str(code)
    return None


class _HeldConnection:
    """A worker's database connection, kept from one batch to the next.

    Borrowing from the pool per batch would cost a pre-ping (three round trips) each
    time. After any error the connection is thrown away and the next batch opens a new
    one, so a broken connection never fails more than the batch that found it.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._connection: AsyncConnection | None = None

    async def driver(self) -> asyncpg.Connection:
        """Return the asyncpg connection, opening one when needed."""
        if self._connection is None:
            self._connection = await self.engine.connect()
        raw = await self._connection.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection
        return driver

    async def discard(self) -> None:
        """Drop the connection (closed, not returned to the pool)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.invalidate()
            with contextlib.suppress(Exception):
                await connection.close()

    async def close(self) -> None:
        """Return the connection to the pool."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()


class GroupCommitter:
    """Batches prepared submissions into shared transactions.

    Args:
        engine: the service's engine; each worker holds one of its connections.
        settings: intake settings (``group_commit_max_batch``, ``group_commit_workers``).
        after_commit: called after each successful commit (wakes the outbox relay).
    """

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        settings: IntakeSettings,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.after_commit = after_commit
        self.max_batch = settings.group_commit_max_batch
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the worker tasks."""
        for n in range(self.settings.group_commit_workers):
            self._workers.append(asyncio.create_task(self._work(), name=f"intake-commit-{n}"))

    async def stop(self) -> None:
        """Finish every queued submission, then stop the workers."""
        workers, self._workers = self._workers, []
        for _ in workers:
            self._queue.put_nowait(None)
        for task in workers:
            try:
                await asyncio.wait_for(task, timeout=30)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()

    async def submit(self, item: service.Prepared) -> tuple[service.SubmissionAccepted, bool]:
        """Record ``item`` (in a batch with others) and return ``(reply, replayed)``.

        Raises:
            AppError: the submission's own domain error (409 key reuse, ...).
            Exception: a database error that also failed when retried alone.
        """
        if not self._workers:  # stopped or never started: record alone
            held = _HeldConnection(self.engine)
            try:
                outcome = (await self._record([item], held))[0]
            finally:
                await held.close()
        else:
            future: asyncio.Future[service.Outcome] = asyncio.get_running_loop().create_future()
            self._queue.put_nowait((item, future))
            outcome = await asyncio.shield(future)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _work(self) -> None:
        held = _HeldConnection(self.engine)
        try:
            await self._take_batches(held)
        finally:
            await held.close()

    async def _take_batches(self, held: _HeldConnection) -> None:
        while True:
            job = await self._queue.get()
            if job is None:
                return
            batch = [job]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if nxt is None:  # keep the stop marker for this worker's next turn
                    self._queue.put_nowait(None)
                    break
                batch.append(nxt)
            await self._run(batch, held)

    async def _run(self, batch: list[_Job], held: _HeldConnection) -> None:
        items = [item for item, _ in batch]
        try:
            outcomes = await self._record(items, held)
        except Exception as exc:
            if len(batch) == 1:
                outcomes = [exc]  # type: ignore[list-item]
            else:
                log.warning(
                    "intake.batch_failed_retrying_alone", size=len(batch), error=type(exc).__name__
                )
                outcomes = []
                for item in items:
                    try:
                        outcomes.extend(await self._record([item], held))
                    except Exception as one:
                        log.exception("intake.submission_failed")
                        outcomes.append(one)  # type: ignore[arg-type]
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    async def _record(
        self, items: list[service.Prepared], held: _HeldConnection
    ) -> list[service.Outcome]:
        """Record ``items`` in one transaction (one statement), retrying collisions, deadlocks."""
        for attempt in range(_RETRIES):
            try:
                db = await held.driver()
                # One statement outside a transaction: its own atomic, durable transaction.
                outcomes = await service.record_batch(
                    connection=db, items=items, settings=self.settings, now=datetime.now(UTC)
                )
                break
            except BaseException as exc:
                await held.discard()
                if not isinstance(exc, Exception):  # cancelled: the connection is gone too
                    raise
                code = _sqlstate(exc)
                collision = code == "23505" and "submission_reference_key" in str(exc)
                if not (collision or code in _TRANSIENT) or attempt == _RETRIES - 1:
                    raise
                if collision:
                    for item in items:
                        item.redraw_reference(self.settings.timezone)
        metrics.BATCH_SIZE.observe(len(items))
        if self.after_commit is not None:
            with contextlib.suppress(Exception):
                self.after_commit()
        return outcomes
