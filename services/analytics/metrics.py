"""Business metrics for Prometheus, computed from the read model at scrape time.

:class:`BusinessCollector` is a prometheus-client custom collector. On ``GET /metrics`` the
analytics app first awaits :meth:`BusinessCollector.refresh` (a few aggregate queries on the
read model, at most once per ``ANALYTICS_METRICS_MIN_INTERVAL_SECONDS``), then the shared
exposition renders the snapshot together with the shared HTTP, event and lag metrics.

Because every value comes from the database, every replica and every uvicorn worker shows
the same figures, a restart loses nothing, and the counters (``*_total``) only grow as the
read model grows (a rebuild that empties the model reads as a counter reset). Dashboards
aggregate these series across replicas with ``max``, never ``sum``. Names and labels are
documented in docs/metrics.md; labels hold bounded codes only (status, department,
priority, clock, channel, category, outcome, score, state), never ids.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.analytics import tables
from shared.events.contracts.complaints import CHANNELS
from shared.logging import get_logger

log = get_logger(__name__)

CLOCKS = ("resolution", "acknowledgement", "regulatory")
FOLLOWUP_OUTCOMES = ("satisfied", "unsatisfied", "unreachable")
SUGGESTION_STATES = ("received", "rejected", "declined", "adopted", "implemented")

#: Upper bounds of the resolution histogram, in working days (the target is 5).
RESOLUTION_BUCKETS_WD = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0)
#: Upper bounds of the acknowledgement histogram, in seconds (15 min .. 7 days).
ACK_BUCKETS_SECONDS = (900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 259200, 604800)

REFRESH_FAILURES = Counter(
    "analytics_metrics_refresh_failures_total",
    "Scrape-time refreshes of the business metrics that failed (the previous values stay).",
)

_TERMINAL = "('closed', 'withdrawn', 'merged')"


def _hist_buckets(measure: str, bounds: tuple[float, ...], per_unit: float, prefix: str) -> str:
    # complaint_day_hist bucket k holds values in ((k - 1) / per_unit, k / per_unit], so
    # "value <= b" is "bucket <= b * per_unit" for the bounds above (multiples of a bucket).
    return ",\n".join(
        f"COALESCE(sum(n) FILTER (WHERE measure = '{measure}' AND bucket <= "
        f"{round(b * per_unit)}), 0)::bigint AS {prefix}{i}"
        for i, b in enumerate(bounds)
    )


#: Histograms from the daily summaries (migration 0004): counts and sums of complaints whose
#: receipt is known, read from a few thousand summary rows instead of every fact.
_COMPLAINT_SQL = """
SELECT COALESCE(sum(wd_n), 0)::bigint AS wd_n, COALESCE(sum(wd_sum), 0) AS wd_sum,
       COALESCE(sum(ack_n), 0)::bigint AS ack_n, COALESCE(sum(ack_sum), 0) AS ack_sum
FROM analytics.complaint_day_totals
"""
#: The days are summed per bucket first (one cheap grouping), then the few hundred bucket
#: rows are filtered per bound (instead of every bound's filter on every day's row).
_HIST_SQL = f"""
WITH h AS (
    SELECT measure, bucket, sum(n) AS n FROM analytics.complaint_day_hist
    WHERE measure IN ('wd', 'ack') GROUP BY measure, bucket
)
SELECT
    {_hist_buckets("wd", RESOLUTION_BUCKETS_WD, 10, "wd")},
    {_hist_buckets("ack", ACK_BUCKETS_SECONDS, 1 / 900, "ack")}
FROM h
"""

_OPEN_SQL = f"""
SELECT COALESCE(status, 'opened') AS status, COALESCE(department, 'unknown') AS department,
       COALESCE(priority, 'unknown') AS priority, count(*) AS n
FROM analytics.complaint_fact
WHERE closed_at IS NULL AND opened_at IS NOT NULL AND COALESCE(status, '') NOT IN {_TERMINAL}
GROUP BY 1, 2, 3
"""

#: Per clock: breach alerts ever raised (withdrawn ones too, so the counter never goes
#: back), withdrawn breaches, and open clocks at risk or breached (active alerts only).
_CLOCK_SQL = """
WITH a AS (
    SELECT case_id, clock, round,
           count(*) FILTER (WHERE alert = 'breach' AND at IS NOT NULL) AS raised,
           count(*) FILTER (WHERE alert = 'breach' AND at IS NOT NULL AND withdrawn)
               AS withdrawn,
           bool_or(alert = 'warning' AND at IS NOT NULL AND NOT withdrawn) AS warned,
           bool_or(alert = 'breach' AND at IS NOT NULL AND NOT withdrawn) AS breached
    FROM analytics.clock_alert_fact GROUP BY 1, 2, 3
)
SELECT a.clock,
       COALESCE(sum(a.raised), 0) AS breaches,
       COALESCE(sum(a.withdrawn), 0) AS withdrawn,
       count(*) FILTER (WHERE o.open_clock AND a.warned AND NOT a.breached) AS at_risk,
       count(*) FILTER (WHERE o.open_clock AND a.breached) AS breached_open
FROM a
JOIN analytics.complaint_fact AS f ON f.complaint_id = a.case_id
LEFT JOIN analytics.case_round_fact AS r ON r.case_id = a.case_id AND r.round = a.round
CROSS JOIN LATERAL (
    SELECT f.closed_at IS NULL AND NOT (
        (a.clock = 'acknowledgement' AND f.acknowledged_at IS NOT NULL)
        OR (a.clock <> 'acknowledgement' AND COALESCE(r.notified_at, r.resolved_at) IS NOT NULL)
    ) AS open_clock
) AS o
GROUP BY a.clock
"""

#: Received per channel from the per-dimension day totals (0006): one row per day and
#: channel (about 3,700 rows for two years) instead of every day-dimension combination.
_RECEIVED_SQL = """
SELECT COALESCE(value, 'unknown') AS channel, sum(n)::bigint AS n
FROM analytics.complaint_day_dim_totals WHERE dim = 'channel' GROUP BY 1
"""

#: Complaints of the last 24 h per category against the mean per day of the 28 days before.
_RECENT_SQL = """
SELECT COALESCE(category, 'unclassified') AS category,
       count(*) FILTER (WHERE received_at >= now() - interval '24 hours') AS last_24h,
       count(*) FILTER (WHERE received_at < now() - interval '24 hours') / 28.0 AS baseline
FROM analytics.complaint_fact
WHERE received_at >= now() - interval '29 days' AND received_at <= now()
GROUP BY 1
"""

_FOLLOWUP_SQL = """
SELECT COALESCE(outcome, 'pending') AS outcome, count(*) AS n,
       count(score) AS answers, COALESCE(sum(score), 0) AS score_sum,
       count(*) FILTER (WHERE score = 1) AS s1, count(*) FILTER (WHERE score = 2) AS s2,
       count(*) FILTER (WHERE score = 3) AS s3, count(*) FILTER (WHERE score = 4) AS s4,
       count(*) FILTER (WHERE score = 5) AS s5
FROM analytics.followup_fact GROUP BY 1
"""

_SUGGESTION_SQL = """
SELECT CASE
         WHEN implemented_at IS NOT NULL THEN 'implemented'
         WHEN decision IS NOT NULL THEN decision
         ELSE 'received' END AS state,
       count(*) AS n
FROM analytics.suggestion_fact GROUP BY 1
"""

_REWARD_SQL = """
SELECT count(*) AS n, COALESCE(sum(amount_minor), 0) AS amount
FROM analytics.suggestion_reward_fact
"""


#: Summary triggers (``tables.SUMMARY_TRIGGERS``) that are turned off. Names and table
#: names are constants of the code (inlined: the refresh's statements take no parameters).
_TRIGGERS_SQL = f"""
SELECT count(*) FILTER (WHERE t.tgenabled = 'D') AS disabled
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace s ON s.oid = c.relnamespace
WHERE s.nspname = 'analytics' AND (c.relname, t.tgname) IN ({
    ", ".join(f"('{table}', '{name}')" for table, names in tables.SUMMARY_TRIGGERS.items()
              for name in names)
})
"""  # fmt: skip


class BusinessCollector(Collector):
    """Holds the latest snapshot of the business metrics and refreshes it from the database.

    Args:
        min_interval_seconds: a refresh within this many seconds of the previous one reuses
            the snapshot (protects the database from many scrapers), >= 0.
    """

    def __init__(self, min_interval_seconds: float = 5.0) -> None:
        self.min_interval_seconds = min_interval_seconds
        self._snapshot: list[Metric] = []
        self._refreshed_at = float("-inf")
        self._lock = asyncio.Lock()

    def collect(self) -> Iterator[Metric]:
        """Yield the latest snapshot (called by the exposition)."""
        yield from self._snapshot

    async def refresh(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, force: bool = False
    ) -> None:
        """Recompute the snapshot unless it is younger than ``min_interval_seconds``.

        A database error keeps the previous snapshot and bumps
        ``analytics_metrics_refresh_failures_total``; it never fails the scrape.
        """
        async with self._lock:
            if not force and time.monotonic() - self._refreshed_at < self.min_interval_seconds:
                return
            started = time.perf_counter()
            try:
                metrics = await build_metrics_concurrently(sessionmaker)
            except Exception as exc:
                REFRESH_FAILURES.inc()
                log.warning("metrics.refresh_failed", error=f"{type(exc).__name__}: {exc}"[:300])
                return
            duration = GaugeMetricFamily(
                "analytics_metrics_refresh_seconds",
                "Time the last scrape-time refresh of the business metrics took, in seconds.",
                value=time.perf_counter() - started,
            )
            self._snapshot = [*metrics, duration]
            self._refreshed_at = time.monotonic()


async def _rows(session: AsyncSession, sql: str) -> list[Any]:
    return list((await session.execute(text(sql))).all())


#: The refresh's statements by name (:func:`_assemble` reads their rows).
_QUERIES = {
    "open": _OPEN_SQL,
    "clock": _CLOCK_SQL,
    "complaint": _COMPLAINT_SQL,
    "hist": _HIST_SQL,
    "received": _RECEIVED_SQL,
    "recent": _RECENT_SQL,
    "followup": _FOLLOWUP_SQL,
    "suggestion": _SUGGESTION_SQL,
    "reward": _REWARD_SQL,
    "triggers": _TRIGGERS_SQL,
}
#: How :func:`build_metrics_concurrently` splits them over two connections: about equal
#: halves of the refresh's time on 1,000,000 complaints (bench/bench_analytics.py; the
#: histogram rows about 35-50 ms, open cases and suggestion states about 33 ms each, the
#: last days by category about 17 ms, the rest 1-3 ms each).
_QUERY_GROUPS = (
    ("hist", "recent", "complaint", "received", "clock"),
    ("open", "suggestion", "followup", "reward", "triggers"),
)
_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")


async def build_metrics(session: AsyncSession) -> list[Metric]:
    """Compute every business metric family from the read model, in ``session``.

    Label values that can exist (clocks, outcomes, scores, suggestion states) are always
    emitted, with 0 when nothing was counted, so that series exist from the first scrape.

    Returns:
        The metric families, ready for the exposition.
    """
    return _assemble({name: await _rows(session, sql) for name, sql in _QUERIES.items()})


async def build_metrics_concurrently(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> list[Metric]:
    """The families of :func:`build_metrics`, its statements run on two connections at once.

    Both transactions are REPEATABLE READ on one snapshot (the first exports it with
    ``pg_export_snapshot()``, the second imports it with ``SET TRANSACTION SNAPSHOT`` before
    any query), so every figure comes from the same state of the read model, as in one
    transaction; the wall time is about the larger half of the statements instead of their
    sum (docs/analytics.md, fourth round).

    Returns:
        The metric families, ready for the exposition.

    Raises:
        sqlalchemy.exc.DBAPIError: a database error (the caller keeps the previous snapshot).
        ValueError: PostgreSQL returned a snapshot id of an unknown shape.
    """
    rr = {"isolation_level": "REPEATABLE READ"}
    async with sessionmaker() as first, first.begin(), sessionmaker() as second, second.begin():
        await first.connection(execution_options=rr)
        snapshot = (await first.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
        # Inlined into the statement (a utility statement takes no parameters): check it.
        if not _SNAPSHOT_ID.match(snapshot):
            raise ValueError(f"unexpected snapshot id {snapshot!r}")
        await second.connection(execution_options=rr)
        await second.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))

        async def run(session: AsyncSession, names: tuple[str, ...]) -> dict[str, list[Any]]:
            return {name: await _rows(session, _QUERIES[name]) for name in names}

        parts = await asyncio.gather(run(first, _QUERY_GROUPS[0]), run(second, _QUERY_GROUPS[1]))
    return _assemble({**parts[0], **parts[1]})


def _assemble(rows: dict[str, list[Any]]) -> list[Metric]:
    """Build the metric families from the rows of every statement of :data:`_QUERIES`."""
    out: list[Metric] = []

    open_cases = GaugeMetricFamily(
        "analytics_cases_open",
        "Open complaint cases (not closed, withdrawn or merged), by status, department and "
        "priority.",
        labels=["status", "department", "priority"],
    )
    for r in rows["open"]:
        open_cases.add_metric([r.status, r.department, r.priority], r.n)
    out.append(open_cases)

    by_clock = {r.clock: r for r in rows["clock"]}
    at_risk = GaugeMetricFamily(
        "analytics_cases_at_risk",
        "Open cases whose clock passed its warning point but not its due time, per clock.",
        labels=["clock"],
    )
    breached = GaugeMetricFamily(
        "analytics_cases_breached",
        "Open cases whose clock passed its due time without being stopped, per clock.",
        labels=["clock"],
    )
    breaches = CounterMetricFamily(
        "analytics_sla_breaches",
        "Clock breaches raised by tracking since the start (every round counts, withdrawn "
        "ones too), per clock.",
        labels=["clock"],
    )
    withdrawn = CounterMetricFamily(
        "analytics_sla_breaches_withdrawn",
        "Breaches tracking later withdrew (a calendar change moved the due time), per clock.",
        labels=["clock"],
    )
    for clock in sorted(set(CLOCKS) | set(by_clock)):
        r = by_clock.get(clock)
        at_risk.add_metric([clock], r.at_risk if r else 0)
        breached.add_metric([clock], r.breached_open if r else 0)
        breaches.add_metric([clock], r.breaches if r else 0)
        withdrawn.add_metric([clock], r.withdrawn if r else 0)
    out += [at_risk, breached, breaches, withdrawn]

    totals = rows["complaint"][0]
    hist = rows["hist"][0]
    c = SimpleNamespace(**totals._asdict(), **hist._asdict())
    wd_buckets = [(str(b), getattr(c, f"wd{i}")) for i, b in enumerate(RESOLUTION_BUCKETS_WD)]
    out.append(
        HistogramMetricFamily(
            "analytics_resolution_working_days",
            "Receipt to resolution of the first round, in working days (complaints resolved "
            "since the start).",
            buckets=[*wd_buckets, ("+Inf", c.wd_n)],
            sum_value=float(c.wd_sum),
        )
    )
    ack_buckets = [(str(b), getattr(c, f"ack{i}")) for i, b in enumerate(ACK_BUCKETS_SECONDS)]
    out.append(
        HistogramMetricFamily(
            "analytics_acknowledgement_seconds",
            "Receipt to first acknowledgement, in seconds (complaints acknowledged since the "
            "start).",
            buckets=[*ack_buckets, ("+Inf", c.ack_n)],
            sum_value=float(c.ack_sum),
        )
    )

    received = CounterMetricFamily(
        "analytics_complaints_received",
        "Complaints received since the start, by channel.",
        labels=["channel"],
    )
    by_channel = {r.channel: r.n for r in rows["received"]}
    for channel in sorted(set(CHANNELS) | set(by_channel)):
        received.add_metric([channel], by_channel.get(channel, 0))
    out.append(received)

    last_24h = GaugeMetricFamily(
        "analytics_complaints_last_24h",
        "Complaints received in the last 24 hours, by category.",
        labels=["category"],
    )
    baseline = GaugeMetricFamily(
        "analytics_complaints_baseline_daily",
        "Mean complaints per day over the 28 days before the last 24 hours, by category.",
        labels=["category"],
    )
    spike = GaugeMetricFamily(
        "analytics_complaint_spike_ratio",
        "Complaints of the last 24 hours divided by the category's mean daily count over "
        "the 28 days before (the count itself when the baseline is 0).",
        labels=["category"],
    )
    for r in rows["recent"]:
        base = float(r.baseline)
        last_24h.add_metric([r.category], r.last_24h)
        baseline.add_metric([r.category], base)
        spike.add_metric([r.category], r.last_24h / base if base else float(r.last_24h))
    out += [last_24h, baseline, spike]

    visits = {r.outcome: r for r in rows["followup"]}
    completed = CounterMetricFamily(
        "analytics_followups_completed",
        "Follow-up visits completed since the start, by outcome.",
        labels=["outcome"],
    )
    for outcome in FOLLOWUP_OUTCOMES:
        completed.add_metric([outcome], visits[outcome].n if outcome in visits else 0)
    pending = GaugeMetricFamily(
        "analytics_followups_pending", "Follow-up visits scheduled and not yet completed."
    )
    pending.add_metric([], visits["pending"].n if "pending" in visits else 0)
    answers = CounterMetricFamily(
        "analytics_satisfaction_answers",
        "Satisfaction answers (score 1-5) from follow-up visits since the start, by score.",
        labels=["score"],
    )
    total_answers = sum(r.answers for r in visits.values())
    for i in range(1, 6):
        answers.add_metric([str(i)], sum(getattr(r, f"s{i}") for r in visits.values()))
    mean = GaugeMetricFamily(
        "analytics_satisfaction_score_mean",
        "Mean satisfaction score (1-5) of every answer since the start; 0 before any.",
        value=(sum(r.score_sum for r in visits.values()) / total_answers) if total_answers else 0.0,
    )
    reached = sum(visits[o].n for o in ("satisfied", "unsatisfied") if o in visits)
    unsatisfied = GaugeMetricFamily(
        "analytics_satisfaction_unsatisfied_ratio",
        "Unsatisfied visits / reached visits since the start (0..1); 0 before any.",
        value=(visits["unsatisfied"].n / reached) if reached and "unsatisfied" in visits else 0.0,
    )
    out += [completed, pending, answers, mean, unsatisfied]

    states = {r.state: r.n for r in rows["suggestion"]}
    sugg = GaugeMetricFamily(
        "analytics_suggestions",
        "Suggestions by their current state (received, rejected, declined, adopted, implemented).",
        labels=["state"],
    )
    for state in sorted(set(SUGGESTION_STATES) | set(states)):
        sugg.add_metric([state], states.get(state, 0))
    rw = rows["reward"][0]
    rewards = CounterMetricFamily(
        "analytics_suggestion_rewards", "Rewards granted to suggesters since the start."
    )
    rewards.add_metric([], rw.n)
    out += [sugg, rewards]

    out.append(
        GaugeMetricFamily(
            "analytics_summary_triggers_disabled",
            "Row triggers keeping the read model's summaries that are turned off (a rebuild "
            "with --defer-summaries running in this database, or killed): the summary-based "
            "reports and metrics are stale while above 0.",
            value=rows["triggers"][0].disabled,
        )
    )
    return out


#: The process's collector, registered once with the default registry.
collector = BusinessCollector()
REGISTRY.register(collector)
