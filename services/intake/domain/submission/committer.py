"""Group commit: concurrent submissions share one database transaction.

Each request prepares its submission (:func:`service.prepare`) and hands it to the
:class:`GroupCommitter`; a small pool of worker tasks takes whatever is queued (up to
``max_batch``), records it with :func:`service.record_batch` in one transaction, commits
once, and answers every waiting request. Under light load a batch holds one submission
and nothing waits for a timer; under heavy load the per-request cost of round trips and
commits is shared. A request is answered only after its transaction committed, so every
201 has its row, its vault entry and its outbox event.

Failure isolation: when a batch fails for another reason than a reference collision or
a deadlock (both retried), its submissions are retried one by one, so one bad request
cannot fail the others.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.intake import metrics
from services.intake.domain.submission import service
from services.intake.settings import IntakeSettings
from shared.logging import get_logger

log = get_logger(__name__)

_Job = tuple[service.Prepared, "asyncio.Future[service.Outcome]"]
_RETRIES = 3


class GroupCommitter:
    """Batches prepared submissions into shared transactions.

    Args:
        sessionmaker: the service's session factory.
        settings: intake settings (``group_commit_max_batch``, ``group_commit_workers``).
        after_commit: called after each successful commit (wakes the outbox relay).
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: IntakeSettings,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
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
            outcome = (await self._record([item]))[0]
        else:
            future: asyncio.Future[service.Outcome] = asyncio.get_running_loop().create_future()
            self._queue.put_nowait((item, future))
            outcome = await asyncio.shield(future)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _work(self) -> None:
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
            await self._run(batch)

    async def _run(self, batch: list[_Job]) -> None:
        items = [item for item, _ in batch]
        try:
            outcomes = await self._record(items)
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
                        outcomes.extend(await self._record([item]))
                    except Exception as one:
                        log.exception("intake.submission_failed")
                        outcomes.append(one)  # type: ignore[arg-type]
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    async def _record(self, items: list[service.Prepared]) -> list[service.Outcome]:
        """Record ``items`` in one transaction, retrying collisions and deadlocks."""
        for attempt in range(_RETRIES):
            try:
                async with self.sessionmaker() as session, session.begin():
                    outcomes = await service.record_batch(
                        session=session,
                        items=items,
                        settings=self.settings,
                        now=datetime.now(UTC),
                    )
                break
            except IntegrityError as exc:
                if "submission_reference_key" not in str(exc.orig) or attempt == _RETRIES - 1:
                    raise
                for item in items:
                    item.redraw_reference(self.settings.timezone)
            except DBAPIError as exc:
                code = getattr(exc.orig, "sqlstate", None) or getattr(
                    getattr(exc.orig, "__cause__", None), "sqlstate", None
                )
                if code not in ("40P01", "40001") or attempt == _RETRIES - 1:
                    raise
        metrics.BATCH_SIZE.observe(len(items))
        if self.after_commit is not None:
            with contextlib.suppress(Exception):
                self.after_commit()
        return outcomes
