"""Domain metrics of followup, computed from the database (issue 6, "Metrics").

A background task of each replica recomputes a snapshot from the ``visit`` table every
``metrics_refresh_seconds`` (and once at start-up); a custom Prometheus collector serves
the latest snapshot on ``GET /metrics``. Because the figures are counted in the database,
they are right after a restart and identical on every replica: aggregate replicas with
``max``, never ``sum`` (see docs/followup.md).

Series (labels hold bounded values only):

* ``followup_visits_due{channel,subject_kind}``: active visits whose next attempt is due.
* ``followup_visits_overdue{channel,subject_kind}``: active visits past their clock.
* ``followup_visits_warning{channel,subject_kind}``: active visits with at most
  ``warning_working_days_left`` working days left, not overdue.
* ``followup_visits_active{channel,subject_kind}``: all active visits.
* ``followup_visits_completed_total{outcome,subject_kind}``: visits ended by an outcome.
* ``followup_visits_cancelled_total{reason}``: visits cancelled by a close or a reopen.
* ``followup_visit_completion_ratio``: completed / (completed + active overdue), 0..1; 1
  when no visit has come to its end yet.
* ``followup_satisfaction_score`` (histogram, buckets 1..5): scores of reached visits.
* ``followup_reopens_after_visit_total{visit_outcome}``: cases reopened after a completed
  visit.
* ``followup_metrics_refreshed_timestamp_seconds``: Unix time of the snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from prometheus_client.core import (
    REGISTRY,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup import tables
from services.followup.settings import FollowupSettings
from shared.logging import get_logger
from shared.workcalendar import WorkingDayCalendar

log = get_logger(__name__)

v = tables.visit
CHANNELS = ("call", "sms", "app_survey")
KINDS = ("case", "suggestion")
OUTCOMES = ("satisfied", "unsatisfied", "unreachable")
CANCEL_REASONS = ("case_closed", "case_reopened", "superseded")
# Bound on the calendar days a "warning" visit can still have left: at most a few working
# days plus the longest run of rest days (Spring Festival, National Day: 7-9 days).
_WARNING_LOOKAHEAD_EXTRA_DAYS = 15

LabelKey = tuple[str, str]


@dataclass
class Snapshot:
    """Figures of one refresh; counts keyed by ``(channel, subject_kind)`` and so on."""

    at: float
    due: dict[LabelKey, int] = field(default_factory=dict)
    overdue: dict[LabelKey, int] = field(default_factory=dict)
    warning: dict[LabelKey, int] = field(default_factory=dict)
    active: dict[LabelKey, int] = field(default_factory=dict)
    completed: dict[LabelKey, int] = field(default_factory=dict)
    cancelled: dict[str, int] = field(default_factory=dict)
    scores: dict[int, int] = field(default_factory=dict)
    reopens: dict[str, int] = field(default_factory=dict)
    completion_ratio: float = 1.0


async def _grouped(session: AsyncSession, *conditions: object) -> dict[LabelKey, int]:
    rows = await session.execute(
        select(v.c.channel, v.c.subject_kind, func.count())
        .where(*conditions)  # type: ignore[arg-type]
        .group_by(v.c.channel, v.c.subject_kind)
    )
    return {(r[0], r[1]): int(r[2]) for r in rows}


async def compute_snapshot(
    *,
    session: AsyncSession,
    calendar: WorkingDayCalendar,
    settings: FollowupSettings,
    now: datetime,
) -> Snapshot:
    """Count the figures from the database at ``now`` (a handful of indexed aggregates).

    Args:
        session: a read-only unit of work.
        calendar: the bank's working-day calendar.
        settings: the warning rule (working days left on the clock).
        now: aware current instant.
    """
    snap = Snapshot(at=now.timestamp())
    active = v.c.status == "active"
    snap.due = await _grouped(session, active, v.c.next_attempt_at <= now)
    snap.overdue = await _grouped(session, active, v.c.due_at <= now)
    snap.active = await _grouped(session, active)
    completed_rows = await session.execute(
        select(v.c.outcome, v.c.subject_kind, func.count())
        .where(v.c.status == "completed")
        .group_by(v.c.outcome, v.c.subject_kind)
    )
    snap.completed = {(r[0], r[1]): int(r[2]) for r in completed_rows}
    cancelled_rows = await session.execute(
        select(v.c.cancel_reason, func.count())
        .where(v.c.status == "cancelled")
        .group_by(v.c.cancel_reason)
    )
    snap.cancelled = {str(r[0]): int(r[1]) for r in cancelled_rows}
    score_rows = await session.execute(
        select(v.c.score, func.count())
        .where(v.c.status == "completed", v.c.score.is_not(None))
        .group_by(v.c.score)
    )
    snap.scores = {int(r[0]): int(r[1]) for r in score_rows}
    reopen_rows = await session.execute(
        select(v.c.outcome, func.count()).where(v.c.reopened_at.is_not(None)).group_by(v.c.outcome)
    )
    snap.reopens = {str(r[0]): int(r[1]) for r in reopen_rows}
    horizon = now + timedelta(
        days=int(settings.warning_working_days_left) + 1 + _WARNING_LOOKAHEAD_EXTRA_DAYS
    )
    near = await session.execute(
        select(v.c.channel, v.c.subject_kind, v.c.due_at).where(
            active, v.c.due_at > now, v.c.due_at <= horizon
        )
    )
    for channel, kind, due_at in near:
        if calendar.working_days_left(now, due_at) <= settings.warning_working_days_left:
            snap.warning[(channel, kind)] = snap.warning.get((channel, kind), 0) + 1
    done = sum(snap.completed.values())
    missed = sum(snap.overdue.values())
    snap.completion_ratio = done / (done + missed) if done + missed else 1.0
    return snap


def _by_channel_kind(metric: GaugeMetricFamily, counts: dict[LabelKey, int]) -> GaugeMetricFamily:
    """Add one sample per channel and subject kind (zeros included, so series never vanish)."""
    for channel in CHANNELS:
        for kind in KINDS:
            metric.add_metric([channel, kind], counts.get((channel, kind), 0))
    return metric


class FollowupCollector(Collector):
    """Serves the latest :class:`Snapshot` as Prometheus metric families."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None

    def describe(self) -> Iterable[Metric]:
        """Describe nothing up front (the families depend on the snapshot)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield the families of the latest snapshot (nothing before the first refresh)."""
        snap = self.snapshot
        if snap is None:
            return
        labels = ["channel", "subject_kind"]
        yield _by_channel_kind(
            GaugeMetricFamily(
                "followup_visits_due", "Active visits whose next attempt is due.", labels=labels
            ),
            snap.due,
        )
        yield _by_channel_kind(
            GaugeMetricFamily(
                "followup_visits_overdue", "Active visits past their clock.", labels=labels
            ),
            snap.overdue,
        )
        yield _by_channel_kind(
            GaugeMetricFamily(
                "followup_visits_warning",
                "Active visits near the end of their clock (warning), not overdue.",
                labels=labels,
            ),
            snap.warning,
        )
        yield _by_channel_kind(
            GaugeMetricFamily("followup_visits_active", "Active visits.", labels=labels),
            snap.active,
        )
        completed = CounterMetricFamily(
            "followup_visits_completed",
            "Visits ended by an outcome (satisfied, unsatisfied, unreachable).",
            labels=["outcome", "subject_kind"],
        )
        for outcome in OUTCOMES:
            for kind in KINDS:
                completed.add_metric([outcome, kind], snap.completed.get((outcome, kind), 0))
        yield completed
        cancelled = CounterMetricFamily(
            "followup_visits_cancelled",
            "Visits cancelled because the case was closed or reopened first.",
            labels=["reason"],
        )
        for reason in CANCEL_REASONS:
            cancelled.add_metric([reason], snap.cancelled.get(reason, 0))
        yield cancelled
        yield GaugeMetricFamily(
            "followup_visit_completion_ratio",
            "Completed visits / (completed + active overdue visits), 0..1.",
            value=snap.completion_ratio,
        )
        buckets: list[tuple[str, float]] = []
        running = 0
        for score in range(1, 6):
            running += snap.scores.get(score, 0)
            buckets.append((f"{score}.0", running))
        buckets.append(("+Inf", running))
        yield HistogramMetricFamily(
            "followup_satisfaction_score",
            "Satisfaction scores (1-5) of reached visits.",
            buckets=buckets,
            sum_value=sum(score * n for score, n in snap.scores.items()),
        )
        reopens = CounterMetricFamily(
            "followup_reopens_after_visit",
            "Cases reopened after a completed visit, by the visit's outcome.",
            labels=["visit_outcome"],
        )
        for outcome in OUTCOMES:
            reopens.add_metric([outcome], snap.reopens.get(outcome, 0))
        yield reopens
        yield GaugeMetricFamily(
            "followup_metrics_refreshed_timestamp_seconds",
            "Unix time of the last refresh of the followup domain metrics.",
            value=snap.at,
        )


#: One collector per process (the default registry refuses a second one with these names).
COLLECTOR = FollowupCollector()
_registered = False


def register() -> FollowupCollector:
    """Register :data:`COLLECTOR` with the default registry once per process; return it."""
    global _registered
    if not _registered:
        REGISTRY.register(COLLECTOR)
        _registered = True
    return COLLECTOR


async def refresh(app: FastAPI) -> Snapshot:
    """Recompute the snapshot now from ``app``'s database and publish it to the collector."""
    async with app.state.sessionmaker() as session, session.begin():
        snap = await compute_snapshot(
            session=session,
            calendar=app.state.calendar,
            settings=app.state.settings,
            now=datetime.now(UTC),
        )
    COLLECTOR.snapshot = snap
    return snap


async def _loop(app: FastAPI, every_seconds: float) -> None:
    """Refresh forever; a failed refresh keeps the last snapshot and is logged."""
    while True:
        started = time.perf_counter()
        try:
            await refresh(app)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("followup.metrics_refresh_failed", error=str(exc)[:300])
        await asyncio.sleep(max(every_seconds - (time.perf_counter() - started), 0.05))


async def start(app: FastAPI) -> None:
    """Start-up hook: register the collector and start the refresh task."""
    register()
    app.state.metrics_task = asyncio.create_task(
        _loop(app, app.state.settings.metrics_refresh_seconds), name="followup-metrics"
    )


async def stop(app: FastAPI) -> None:
    """Shutdown hook: stop the refresh task."""
    task: asyncio.Task[None] | None = getattr(app.state, "metrics_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
