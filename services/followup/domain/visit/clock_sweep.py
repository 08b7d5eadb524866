"""The visit-clock sweep: ``followups.visit-warning`` and ``followups.visit-overdue``.

Issue 6 §4 asks that visits have their own clock "with warnings like cases". This is the
pattern of tracking's SLA sweep (``services/tracking/domain/sla.py``) applied to visits:

- every active visit carries ``clock_check_at`` (partial index ``visit_clock_check_idx``:
  only rows that still need a check), the earliest instant at which the sweep has
  something to do for it: its warning instant (:func:`policy.warn_at`), then ``due_at``;
  a completed or cancelled visit has NULL, so it is never claimed and never warns;
- a sweep transaction claims due rows with ``SELECT ... WHERE clock_check_at <= now AND
  status = 'active' ORDER BY clock_check_at LIMIT n FOR UPDATE SKIP LOCKED``: two replicas
  never claim the same row, and a row another replica has just handled no longer matches
  (PostgreSQL re-checks the predicate on the newest row version);
- in the same transaction it sets ``warned_at`` / ``overdue_at``, moves ``clock_check_at``
  and adds the outbox row; a crash before commit leaves nothing, so a restart finds the row
  again (nothing lost), and after commit the row no longer matches (nothing repeated). The
  outbox relay publishes at least once; consumers deduplicate by event id.

A visit whose clock ended before any warning was sent (the service was down through the
whole window) gets only the overdue alert: a warning after the fact would be noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.followup import tables
from services.followup.domain.visit import policy
from services.followup.settings import FollowupSettings
from shared.events import outbox, registry
from shared.events.contracts.followups import (
    FOLLOWUP_VISIT_OVERDUE_V1,
    FOLLOWUP_VISIT_WARNING_V1,
    FollowupVisitClockEvent,
)
from shared.events.envelope import Envelope, new_event
from shared.logging import get_logger
from shared.periodic import PeriodicWorker
from shared.workcalendar import WorkingDayCalendar

log = get_logger(__name__)

v = tables.visit

#: Alerts emitted by this process (sum over replicas = alerts emitted in total).
CLOCK_ALERTS = Counter(
    "followup_visit_clock_alerts_total",
    "Visit-clock alerts emitted by the sweep of this process (kind: warning, overdue).",
    ["kind", "channel"],
)


@dataclass
class SweepResult:
    """What one sweep did.

    Attributes:
        warnings / overdue: alerts emitted.
        claimed: visit rows claimed and examined.
    """

    warnings: int = 0
    overdue: int = 0
    claimed: int = 0


def claim_statement(now: datetime, batch_size: int) -> Any:
    """Return the claiming SELECT: active visits whose ``clock_check_at`` has come."""
    return (
        select(
            v.c.id,
            v.c.subject_kind,
            v.c.subject_id,
            v.c.round,
            v.c.channel,
            v.c.department,
            v.c.due_at,
            v.c.warned_at,
            v.c.overdue_at,
        )
        .where(v.c.clock_check_at <= now, v.c.status == "active")
        .order_by(v.c.clock_check_at)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )


def _alert(row: Any, kind: str, now: datetime) -> tuple[Envelope[Any], str]:
    data = FollowupVisitClockEvent(
        visit_id=row.id,
        subject_id=row.subject_id,
        subject_kind=row.subject_kind,
        round=row.round,
        due_at=row.due_at,
        at=now,
        department=row.department,
        channel=row.channel,
    )
    if kind == "warning":
        type_, topic = FOLLOWUP_VISIT_WARNING_V1, registry.FOLLOWUPS_VISIT_WARNING
    else:
        type_, topic = FOLLOWUP_VISIT_OVERDUE_V1, registry.FOLLOWUPS_VISIT_OVERDUE
    return new_event(source="followup", type_=type_, subject=row.subject_id, data=data), topic


async def sweep_batch(
    *,
    session: AsyncSession,
    calendar: WorkingDayCalendar,
    settings: FollowupSettings,
    now: datetime,
    batch_size: int,
) -> SweepResult:
    """Claim and handle one batch of due visit clocks in the caller's transaction.

    Args:
        session: the sweep's transaction (claimed rows stay locked until it ends).
        calendar: the bank's calendar (working days left, warning instant).
        settings: the warning threshold.
        now: the sweep instant (UTC).
        batch_size: most rows claimed.

    Returns:
        The counts; ``claimed < batch_size`` means nothing more is due.
    """
    result = SweepResult()
    rows = (await session.execute(claim_statement(now, batch_size))).all()
    result.claimed = len(rows)
    if not rows:
        return result
    updates: list[dict[str, Any]] = []
    events: list[tuple[Envelope[Any], str]] = []
    for row in rows:
        warned_at, overdue_at = row.warned_at, row.overdue_at
        state, _ = policy.clock_state(calendar, settings, now=now, due_at=row.due_at, active=True)
        emitted: str | None = None
        if state == "overdue" and overdue_at is None:
            overdue_at, emitted = now, "overdue"
        elif state == "warning" and warned_at is None and overdue_at is None:
            warned_at, emitted = now, "warning"
        if emitted is not None:
            events.append(_alert(row, emitted, now))
            CLOCK_ALERTS.labels(emitted, row.channel).inc()
            if emitted == "warning":
                result.warnings += 1
            else:
                result.overdue += 1
        updates.append(
            {
                "b_id": row.id,
                "warned_at": warned_at,
                "overdue_at": overdue_at,
                "clock_check_at": policy.next_clock_check(
                    calendar,
                    settings,
                    now=now,
                    due_at=row.due_at,
                    warned_at=warned_at,
                    overdue_at=overdue_at,
                ),
            }
        )
    await session.execute(
        update(v)
        .where(v.c.id == bindparam("b_id"))
        .values(
            warned_at=bindparam("warned_at"),
            overdue_at=bindparam("overdue_at"),
            clock_check_at=bindparam("clock_check_at"),
        )
        .execution_options(synchronize_session=False),
        updates,
    )
    await outbox.add_many(session, tables.outbox, events)
    return result


async def sweep_once(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    calendar: WorkingDayCalendar,
    settings: FollowupSettings,
    now_fn: Callable[[], datetime] = lambda: datetime.now(UTC),
    max_batches: int = 10_000,
) -> SweepResult:
    """Handle every visit clock due now, one committed transaction per batch.

    Safe to run concurrently in several processes (rows are claimed with SKIP LOCKED).
    """
    total = SweepResult()
    for _ in range(max_batches):
        async with sessionmaker() as session, session.begin():
            part = await sweep_batch(
                session=session,
                calendar=calendar,
                settings=settings,
                now=now_fn(),
                batch_size=settings.sweep_batch_size,
            )
        total.warnings += part.warnings
        total.overdue += part.overdue
        total.claimed += part.claimed
        if part.claimed < settings.sweep_batch_size:
            break
    return total


class VisitClockSweeper(PeriodicWorker):
    """The sweep loop of one followup process, started from the app's lifespan.

    Every ``sweep_interval_seconds`` it sweeps and wakes the outbox relay when it staged
    alerts (lifecycle: :class:`shared.periodic.PeriodicWorker`).
    """

    name = "followup-clock-sweeper"
    failure_event = "followup.clock_sweep_failed"

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        calendar: WorkingDayCalendar,
        settings: FollowupSettings,
        on_alerts: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.sessionmaker = sessionmaker
        self.calendar = calendar
        self.settings = settings
        self.on_alerts = on_alerts
        self.sweeps = 0

    @property
    def interval_seconds(self) -> float:
        """``FOLLOWUP_SWEEP_INTERVAL_SECONDS``."""
        return self.settings.sweep_interval_seconds

    async def tick(self) -> SweepResult:
        """Run one sweep and wake the relay when alerts were staged."""
        result = await sweep_once(
            sessionmaker=self.sessionmaker, calendar=self.calendar, settings=self.settings
        )
        if (result.warnings or result.overdue) and self.on_alerts is not None:
            self.on_alerts()
        self.sweeps += 1
        return result

    def report(self, result: SweepResult) -> None:
        """Log a sweep that staged warnings or overdue alerts."""
        if result.warnings or result.overdue:
            log.info(
                "followup.clock_swept",
                warnings=result.warnings,
                overdue=result.overdue,
                claimed=result.claimed,
            )
