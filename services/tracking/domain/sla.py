"""The SLA sweep: warnings and breaches, each once per clock and round (issue 5 §4).

``cases.sla-warning`` and ``cases.sla-breached`` are emitted within a minute of the moment,
with any number of tracking replicas.

How it stays exactly-once:

- every clock row carries ``next_check_at`` (indexed, partial: only rows that still need a
  check), the earliest instant at which the sweep has something to do for it;
- a sweep transaction claims due rows with ``SELECT ... WHERE next_check_at <= now ORDER BY
  next_check_at LIMIT n FOR UPDATE OF case_clock SKIP LOCKED``: two replicas never claim the
  same row, and a row another replica has just handled no longer matches (PostgreSQL
  re-checks the predicate on the newest row version);
- in the same transaction it sets ``warned_at``/``breached_at``, moves ``next_check_at``
  and adds the outbox rows; a crash before commit leaves nothing, so a restart simply finds
  the row again (nothing lost), and after commit the row no longer matches (nothing
  repeated). The outbox relay publishes at least once; consumers deduplicate by event id.

A clock whose due time passed without a warning (the service was down through the whole
warning window) gets only the breach: a warning after the fact would be noise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tracking import metrics as tracking_metrics
from services.tracking import tables
from services.tracking.domain import clocks
from services.tracking.domain.calendar import CalendarHolder
from services.tracking.settings import TrackingSettings
from shared.events import outbox, registry
from shared.events.contracts.cases import (
    CASE_SLA_BREACHED_V1,
    CASE_SLA_WARNING_V1,
    CaseSlaEvent,
)
from shared.events.envelope import Envelope, new_event
from shared.logging import get_logger
from shared.periodic import PeriodicWorker

log = get_logger(__name__)


@dataclass
class SweepResult:
    """What one sweep did.

    Attributes:
        warnings / breaches: alerts emitted.
        claimed: clock rows claimed and examined.
        max_lag_seconds: largest delay between a row's ``next_check_at`` and the sweep.
    """

    warnings: int = 0
    breaches: int = 0
    claimed: int = 0
    max_lag_seconds: float = 0.0


def claim_statement(now: datetime, batch_size: int) -> Any:
    """Return the claiming SELECT (exposed for EXPLAIN in the benchmark)."""
    k, c = tables.case_clock, tables.case
    return (
        select(
            k.c.case_id,
            k.c.kind,
            k.c.round,
            k.c.due_at,
            k.c.warn_at,
            k.c.warned_at,
            k.c.breached_at,
            k.c.stopped_at,
            k.c.paused_at,
            k.c.next_check_at,
            c.c.status,
            c.c.department,
            c.c.category,
            c.c.priority,
        )
        .join(c, c.c.id == k.c.case_id)
        .where(k.c.next_check_at <= now)
        .order_by(k.c.next_check_at)
        .limit(batch_size)
        .with_for_update(of=k, skip_locked=True)
    )


def _alert(row: Any, kind: str, now: datetime) -> tuple[Envelope[CaseSlaEvent], str]:
    data = CaseSlaEvent(
        case_id=row.case_id,
        clock=row.kind,
        round=row.round,
        due_at=row.due_at,
        at=now,
        department=row.department,
        category=row.category,
        priority=row.priority,
    )
    if kind == "warning":
        type_, topic = CASE_SLA_WARNING_V1, registry.CASES_SLA_WARNING
    else:
        type_, topic = CASE_SLA_BREACHED_V1, registry.CASES_SLA_BREACHED
    return new_event(source="tracking", type_=type_, subject=row.case_id, data=data), topic


async def sweep_batch(*, session: AsyncSession, now: datetime, batch_size: int) -> SweepResult:
    """Claim and handle one batch of due clocks in the caller's transaction.

    Args:
        session: the sweep's transaction (the claimed rows stay locked until it ends).
        now: the sweep instant (UTC); rows with ``next_check_at <= now`` are due.
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
    timeline: list[dict[str, Any]] = []
    for row in rows:
        result.max_lag_seconds = max(
            result.max_lag_seconds, (now - row.next_check_at).total_seconds()
        )
        clock = dict(row._mapping)
        emitted: str | None = None
        if clock["stopped_at"] is None and clock["paused_at"] is None:
            if clock["breached_at"] is None and now >= clock["due_at"]:
                clock["breached_at"] = now
                emitted = "breach"
            elif (
                clock["warned_at"] is None
                and clock["warn_at"] is not None
                and now >= clock["warn_at"]
                and now < clock["due_at"]
            ):
                clock["warned_at"] = now
                emitted = "warning"
        if emitted:
            events.append(_alert(row, emitted, now))
            tracking_metrics.SLA_ALERTS.labels(emitted, row.kind).inc()
            timeline.append(
                {
                    "case_id": row.case_id,
                    "at": now,
                    "action": "sla_breached" if emitted == "breach" else "sla_warning",
                    "from_status": row.status,
                    "to_status": row.status,
                    "actor": "system:sla",
                    "details": {
                        "clock": row.kind,
                        "round": row.round,
                        "due_at": row.due_at.isoformat(),
                    },
                }
            )
            if emitted == "breach":
                result.breaches += 1
            else:
                result.warnings += 1
        updates.append(
            {
                "b_case_id": row.case_id,
                "b_kind": row.kind,
                "b_round": row.round,
                "warned_at": clock["warned_at"],
                "breached_at": clock["breached_at"],
                "next_check_at": clocks.next_check(clock),
            }
        )
    k = tables.case_clock
    await session.execute(
        update(k)
        .where(
            and_(
                k.c.case_id == bindparam("b_case_id"),
                k.c.kind == bindparam("b_kind"),
                k.c.round == bindparam("b_round"),
            )
        )
        .values(
            warned_at=bindparam("warned_at"),
            breached_at=bindparam("breached_at"),
            next_check_at=bindparam("next_check_at"),
        )
        .execution_options(synchronize_session=False),
        updates,
    )
    if timeline:
        await session.execute(insert(tables.case_event), timeline)
    await outbox.add_many(session, tables.outbox, events)
    return result


async def sweep_once(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    batch_size: int = 500,
    now_fn: Callable[[], datetime] = lambda: datetime.now(UTC),
    max_batches: int = 10_000,
) -> SweepResult:
    """Handle every clock due now, one committed transaction per batch.

    Safe to run concurrently in several processes (rows are claimed with SKIP LOCKED).

    Returns:
        The totals of all batches.
    """
    total = SweepResult()
    started = time.perf_counter()
    for _ in range(max_batches):
        async with sessionmaker() as session, session.begin():
            part = await sweep_batch(session=session, now=now_fn(), batch_size=batch_size)
        total.warnings += part.warnings
        total.breaches += part.breaches
        total.claimed += part.claimed
        total.max_lag_seconds = max(total.max_lag_seconds, part.max_lag_seconds)
        if part.claimed < batch_size:
            break
    tracking_metrics.SWEEP_DURATION.observe(time.perf_counter() - started)
    tracking_metrics.SWEEP_LAG.set(total.max_lag_seconds)
    return total


async def refresh_calendar_metrics(
    *, session: AsyncSession, holder: CalendarHolder, now: datetime
) -> int:
    """Update the provisional-calendar gauges; return the running provisional clocks.

    Gauges: ``tracking_calendar_year_provisional{year}`` (current and next year),
    ``tracking_provisional_open_clocks`` and ``tracking_calendar_provisional_years``
    (distinct due-date years of running provisional clocks).
    """
    calendar = holder.calendar
    year = calendar.local_date(now).year
    for y in (year, year + 1):
        tracking_metrics.CALENDAR_YEAR_PROVISIONAL.labels(str(y)).set(
            1 if calendar.is_provisional(y) else 0
        )
    k = tables.case_clock
    row = (
        await session.execute(
            select(
                func.count(),
                func.count(func.distinct(func.extract("year", k.c.due_date))),
            )
            .select_from(k)
            .where(and_(k.c.provisional.is_(True), k.c.stopped_at.is_(None)))
        )
    ).one()
    count = int(row[0] or 0)
    tracking_metrics.PROVISIONAL_OPEN_CLOCKS.set(count)
    tracking_metrics.CALENDAR_PROVISIONAL_YEARS.set(int(row[1] or 0))
    return int(count or 0)


class SlaSweeper(PeriodicWorker):
    """The sweep loop of one tracking process, started from the app's lifespan.

    Every ``sweep_interval_seconds`` it refreshes the calendar when another replica changed
    it, sweeps, wakes the outbox relay when it staged alerts, and every
    ``metrics_refresh_seconds`` refreshes the provisional-calendar gauges (lifecycle:
    :class:`shared.periodic.PeriodicWorker`).
    """

    name = "tracking-sla-sweeper"
    failure_event = "sla.sweep_failed"

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: TrackingSettings,
        holder: CalendarHolder,
        on_alerts: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.holder = holder
        self.on_alerts = on_alerts
        self._metrics_at = 0.0
        self.sweeps = 0

    @property
    def interval_seconds(self) -> float:
        """``TRACKING_SWEEP_INTERVAL_SECONDS``."""
        return self.settings.sweep_interval_seconds

    async def tick(self) -> SweepResult:
        """Run one round: calendar refresh, sweep, and (when due) the gauges."""
        async with self.sessionmaker() as session, session.begin():
            await self.holder.refresh(session)
        result = await sweep_once(
            sessionmaker=self.sessionmaker, batch_size=self.settings.sweep_batch_size
        )
        if (result.warnings or result.breaches) and self.on_alerts is not None:
            self.on_alerts()
        if time.monotonic() - self._metrics_at >= self.settings.metrics_refresh_seconds:
            self._metrics_at = time.monotonic()
            async with self.sessionmaker() as session, session.begin():
                await refresh_calendar_metrics(
                    session=session, holder=self.holder, now=datetime.now(UTC)
                )
        self.sweeps += 1
        return result

    def report(self, result: SweepResult) -> None:
        """Log a sweep that staged warnings or breaches."""
        if result.warnings or result.breaches:
            log.info(
                "sla.swept",
                warnings=result.warnings,
                breaches=result.breaches,
                claimed=result.claimed,
                max_lag_seconds=round(result.max_lag_seconds, 3),
            )
