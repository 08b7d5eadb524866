"""Benchmark of the analytics reports on 1,000,000 complaints, and of the rebuild rate.

    uv run python bench/bench_analytics.py [--complaints 1000000] [--suggestions 100000]
                                           [--rebuild-complaints 2000] [--repeat 5]
                                           [--keep-database] [--database-url URL]
                                           [--only TEXT ...] [--matrix]

``--keep-database`` keeps the loaded scratch database (its URL is printed) and
``--database-url`` times the reports on such a database without loading again, so before
and after figures of a change come from the same data and machine state; ``--only`` times
the reports whose name contains one of the texts (with ``--matrix``: the matrix rows whose
name contains one); ``--matrix`` times every report with no filter and with one value filter
on each of the seven dimensions (and trend, types and cross *by* each dimension), over two
years and the last 30 days, as tables, then lists the cells over 200 ms. With
``--database-url`` the database is upgraded to the latest migration first and the tables a
migration backfills (repeat links, cross month cells, pair and cell summaries, suggestion
links) are vacuumed (a fresh backfill in a migration leaves the visibility map unset, so
index-only scans would visit the heap until autovacuum runs).

1. Creates a scratch database (dropped at the end) with analytics' migrations and loads
   ``--complaints`` synthetic complaints (services/analytics/synthetic.py distributions:
   channel, category, priority, region mix, resolution times, follow-up outcomes, remedies)
   received over the last two years straight into ``complaint_fact`` with COPY, plus
   ``--suggestions`` suggestions (the summary triggers off during COPY, then the daily
   summaries backfilled once); then VACUUM ANALYZE.
2. Times every report (median, min and max of ``--repeat`` runs after one warm-up), over the
   whole range and over typical windows, and the scrape-time business-metrics refresh.
3. Produces the events of ``--rebuild-complaints`` complaints (and a tenth as many
   suggestions) to a topic prefix of its own and times ``rebuild`` into a second scratch
   database: events per second. Baseline in the same run: the same events applied one
   transaction per event (the live consumer's unit of work), to show the batching gain;
   and the same rebuild with ``defer_summaries`` (summary triggers off, one recomputation
   at the end) into a third.

Prints one line per figure; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from services.analytics import reports, synthetic
from services.analytics.metrics import build_metrics, build_metrics_concurrently
from services.analytics.rebuild import RebuildSummary, apply_batch, rebuild
from shared import devinfra, migrations
from shared.config import PlatformSettings
from shared.db import make_engine, make_sessionmaker
from shared.events.envelope import to_wire
from shared.events.registry import all_topics
from shared.kafka.producer import make_producer

TZ = "Asia/Shanghai"
#: The tables the triggers keep, vacuumed after a load or migration (a fresh backfill leaves
#: the visibility map unset; index-only scans would visit the heap until autovacuum runs).
DERIVED_TABLES = (
    "complaint_day_dims", "complaint_day_totals", "complaint_day_remedy", "complaint_day_hist",
    "complaint_day_dim_totals", "complaint_day_dim_remedy", "complaint_day_dim_hist",
    "complaint_repeat_link", "complaint_repeat_month", "complaint_repeat_dim_link",
    "complaint_repeat_dim_month", "complaint_month_cross", "complaint_month_pair",
    "complaint_month_pair_totals", "complaint_month_pair_remedy", "complaint_month_pair_hist",
    "complaint_cell", "complaint_month_cell_totals", "complaint_month_cell_remedy",
    "complaint_month_cell_hist", "complaint_customer", "complaint_category",
    "complaint_customer_cell", "suggestion_link",
)  # fmt: skip
COLUMNS = (
    "complaint_id", "reference", "channel", "customer_key", "received_at", "received_day",
    "branch_code", "region", "category", "product_line", "priority", "department",
    "opened_at", "due_at", "status", "status_at", "acknowledged_at", "ack_seconds",
    "escalation_count", "extension_count", "reopen_count", "resolved_at",
    "resolution_working_days", "resolution_seconds", "res_clocks_done", "res_clocks_on_time",
    "ack_clock_done", "ack_clock_on_time", "breaches_resolution", "remedy",
    "compensation_minor", "closed_at", "visits_done", "visits_unreachable",
    "visits_unsatisfied", "score_n", "score_sum", "score_1", "score_2", "score_3", "score_4",
    "score_5",
)  # fmt: skip


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def complaint_row(p: synthetic.ComplaintPlan, zone: ZoneInfo) -> tuple[Any, ...]:
    """The ``complaint_fact`` row the handlers would derive from ``p``'s events."""
    t0 = p.received_at
    ack = t0 + timedelta(hours=3) if p.acknowledged else None
    resolved = t0 + timedelta(days=(p.working_days or 0) * 1.4) if p.resolved else None
    closed = resolved + timedelta(days=2) if resolved and p.followup else None
    status = "closed" if closed else "result_notified" if resolved else "acknowledged"
    visits = 1 if p.followup else 0
    scores = [int(p.score == i) for i in range(1, 6)]
    return (
        uuid.UUID(p.complaint_id), "C-" + p.complaint_id[:6], p.channel, p.customer_key, t0,
        t0.astimezone(zone).date(), p.branch_code, p.region, p.category, p.product_line,
        p.priority, p.department, t0 + timedelta(seconds=5), t0 + timedelta(days=7), status,
        closed or resolved or ack or t0, ack, 10800.0 if ack else None, int(p.escalated),
        int(p.extended), int(p.reopened), resolved, p.working_days,
        (resolved - t0).total_seconds() if resolved else None,
        int(p.resolved) + int(p.reopened), int(p.on_time) + int(p.reopened), int(p.acknowledged),
        int(p.acknowledged), int(p.breached), p.remedy, p.compensation_minor, closed, visits,
        int(p.followup == "unreachable"), int(p.followup == "unsatisfied"),
        int(p.score is not None), p.score or 0, *scores,
    )  # fmt: skip


async def load(url: str, n: int, n_suggestions: int) -> float:
    """Load ``n`` complaints and ``n_suggestions`` suggestions; return seconds taken."""
    rng = random.Random(20261129)
    zone = ZoneInfo(TZ)
    end = datetime.now(UTC)
    started = time.perf_counter()
    conn = await asyncpg.connect(_dsn(url))
    try:
        # Bulk load: the summary triggers (0004, 0006) are off during COPY, the summaries are
        # computed once afterwards (analytics.complaint_summary_backfill).
        await conn.execute("ALTER TABLE analytics.complaint_fact DISABLE TRIGGER USER")
        batch = 50_000
        for first in range(0, n, batch):
            rows = [
                complaint_row(
                    synthetic.plan_complaint(
                        rng, synthetic.received_instant(rng, days=730, end=end), customers=400_000
                    ),
                    zone,
                )
                for _ in range(min(batch, n - first))
            ]
            await conn.copy_records_to_table(
                "complaint_fact", schema_name="analytics", records=rows, columns=COLUMNS
            )
        srows = []
        for _ in range(n_suggestions):
            t = synthetic.received_instant(rng, days=730, end=end)
            r = rng.random()
            decision = (
                None if r < 0.15 else "rejected" if r < 0.35 else "declined" if r < 0.65
                else "adopted"
            )  # fmt: skip
            decided = t + timedelta(days=rng.randint(2, 20)) if decision else None
            implemented = (
                decided + timedelta(days=rng.randint(10, 90))
                if decision == "adopted" and rng.random() < 0.7
                else None
            )
            srows.append(
                (uuid.uuid4(), rng.choice(list(synthetic.CHANNEL_WEIGHTS)),
                 f"cus_{rng.randint(1, 400_000)}", t, t.astimezone(zone).date(),
                 rng.choice(list(synthetic.CATEGORIES)), decision, decided, implemented,
                 rng.random() < 0.8 if implemented else None)
            )  # fmt: skip
        # The link trigger of 0013 is off during COPY too; the links are computed once below.
        await conn.execute("ALTER TABLE analytics.suggestion_fact DISABLE TRIGGER USER")
        await conn.copy_records_to_table(
            "suggestion_fact",
            schema_name="analytics",
            records=srows,
            columns=(
                "suggestion_id", "channel", "customer_key", "received_at", "received_day",
                "category", "decision", "decided_at", "implemented_at", "implemented_on_time",
            ),
        )  # fmt: skip
        await conn.execute("ALTER TABLE analytics.complaint_fact ENABLE TRIGGER USER")
        await conn.execute("ALTER TABLE analytics.suggestion_fact ENABLE TRIGGER USER")
        t = time.perf_counter()
        await conn.execute("SELECT analytics.complaint_summary_backfill()")
        if await conn.fetchval("SELECT to_regclass('analytics.suggestion_link')"):
            await conn.execute("SELECT analytics.suggestion_link_backfill()")
        print(f"summaries backfilled in {time.perf_counter() - t:.1f}s", flush=True)
        for table in DERIVED_TABLES:
            if not await conn.fetchval("SELECT to_regclass($1)", f"analytics.{table}"):
                continue  # an older schema (the bench run on an earlier tree)
            await conn.execute(f"VACUUM ANALYZE analytics.{table}")
            rows = await conn.fetchval(f"SELECT count(*) FROM analytics.{table}")
            print(f"  {table}: {rows} rows", flush=True)
        await conn.execute("VACUUM ANALYZE analytics.complaint_fact")
        await conn.execute("VACUUM ANALYZE analytics.suggestion_fact")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def _facts_handling(s: Any, f: reports.Filters) -> Any:
    # The fact-table computation every summary path is compared with (the "before").
    return reports._handling_report(*await reports._handling_from_facts(session=s, filters=f))


async def time_reports(
    url: str, repeat: int, only: list[str] | None = None
) -> list[tuple[str, float]]:
    """Return ``(report, median milliseconds)`` for every report and window.

    Args:
        url: database with the loaded model.
        repeat: timed runs per report (after one warm-up).
        only: time only reports whose name contains one of these texts (None = all).
    """
    # The analytics service's connection settings (reports.DB_SERVER_SETTINGS: custom plans).
    engine = make_engine(url, pool_size=3, server_settings=reports.DB_SERVER_SETTINGS)
    sm = make_sessionmaker(engine)
    zone = ZoneInfo(TZ)
    today = datetime.now(zone).date()
    month_ago = datetime.combine(today - timedelta(days=30), datetime.min.time(), zone)
    year_ago = datetime.combine(today - timedelta(days=365), datetime.min.time(), zone)
    all_ = reports.Filters(tz=TZ)
    month = reports.Filters(from_=month_ago, tz=TZ)
    year = reports.Filters(from_=year_ago, tz=TZ)
    phone = reports.Filters(values={"channel": ("phone",)}, tz=TZ)
    # A value filter; a range that starts inside a day.
    year_phone = reports.Filters(from_=year_ago, values={"channel": ("phone",)}, tz=TZ)
    year_9am = reports.Filters(from_=year_ago + timedelta(hours=9), tz=TZ)
    # Repeats, worst case of the month cells: both edge months nearly whole partial months
    # (from the 2nd of a month 7 months back to the 28th, 17:00, of last month).
    first = today.replace(day=1)
    for _ in range(7):
        first = (first - timedelta(days=1)).replace(day=1)
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    partial_months = reports.Filters(
        from_=datetime.combine(first + timedelta(days=1), datetime.min.time(), zone),
        to=datetime.combine(last_month + timedelta(days=27), datetime.min.time(), zone)
        + timedelta(hours=17),
        tz=TZ,
    )
    # One filter on product_line, region or branch (per-dimension summaries, 0007); filters
    # on two dimensions (the matching fact rows, read once).
    year_region = reports.Filters(from_=year_ago, values={"region": ("Guangdong",)}, tz=TZ)
    year_branch = reports.Filters(from_=year_ago, values={"branch": ("GU007",)}, tz=TZ)
    year_cards = reports.Filters(from_=year_ago, values={"product_line": ("cards",)}, tz=TZ)
    year_phone_fees = reports.Filters(
        from_=year_ago, values={"channel": ("phone",), "category": ("fees_and_charges",)}, tz=TZ
    )
    year_region_fees = reports.Filters(
        from_=year_ago,
        values={"region": ("Guangdong",), "category": ("fees_and_charges",)},
        tz=TZ,
    )
    year_branch_phone = reports.Filters(
        from_=year_ago, values={"branch": ("GU007",), "channel": ("phone",)}, tz=TZ
    )
    # Two filters matching many rows (about a sixth of the complaints): the pair summaries.
    year_phone_p3 = reports.Filters(
        from_=year_ago, values={"channel": ("phone",), "priority": ("P3",)}, tz=TZ
    )
    all_phone_p3 = reports.Filters(values={"channel": ("phone",), "priority": ("P3",)}, tz=TZ)
    # Worst cases around the pair summaries: nearly a whole month of strip at each end; no
    # whole month (the matches path); three filters (the matches path).
    phone_p3 = {"channel": ("phone",), "priority": ("P3",)}
    partial_phone_p3 = reports.Filters(
        from_=partial_months.from_, to=partial_months.to, values=phone_p3, tz=TZ
    )
    inside_month_phone_p3 = reports.Filters(
        from_=datetime.combine(last_month + timedelta(days=1), datetime.min.time(), zone),
        to=datetime.combine(last_month + timedelta(days=27), datetime.min.time(), zone),
        values=phone_p3,
        tz=TZ,
    )
    all_phone_p3_fees = reports.Filters(
        values={**phone_p3, "category": ("fees_and_charges",)}, tz=TZ
    )
    # Three or more filters (the cell summaries, 0015): a partial first month; strips at
    # both ends; four and six filters; three filters with several values each (a sixth of
    # the complaints, the most cells).
    phone_p3_fees = all_phone_p3_fees.values
    year_phone_p3_fees = reports.Filters(from_=year_ago, values=phone_p3_fees, tz=TZ)
    partial_phone_p3_fees = reports.Filters(
        from_=partial_months.from_, to=partial_months.to, values=phone_p3_fees, tz=TZ
    )
    all_four = reports.Filters(values={**phone_p3_fees, "region": ("Guangdong",)}, tz=TZ)
    all_six = reports.Filters(
        values={
            **phone_p3_fees,
            "region": ("Guangdong",),
            "product_line": ("cards",),
            "department": ("billing",),
        },
        tz=TZ,
    )
    all_wide_three = reports.Filters(
        values={
            "channel": ("phone", "web", "mobile_app"),
            "priority": ("P2", "P3"),
            "category": ("fees_and_charges", "service_quality"),
        },
        tz=TZ,
    )

    all_phone_or_web = reports.Filters(values={"channel": ("phone", "web")}, tz=TZ)

    def trend(f: reports.Filters, g: reports.Granularity) -> Callable[[Any], Awaitable[Any]]:
        return lambda s: reports.trend(session=s, filters=f, granularity=g)

    cases: list[tuple[str, Callable[[Any], Awaitable[Any]]]] = [
        ("trend day, 2 years", trend(all_, "day")),
        ("trend week, 2 years", trend(all_, "week")),
        ("trend month, 2 years", trend(all_, "month")),
        ("trend month by channel, 1 year",
         lambda s: reports.trend(session=s, filters=year, granularity="month", by="channel")),
        ("trend day, last 30 days", trend(month, "day")),
        ("types, 2 years", lambda s: reports.types(session=s, filters=all_)),
        ("types, phone only, 2 years", lambda s: reports.types(session=s, filters=phone)),
        ("types, last 30 days", lambda s: reports.types(session=s, filters=month)),
        ("handling, 2 years", lambda s: reports.handling(session=s, filters=all_)),
        ("handling, 1 year", lambda s: reports.handling(session=s, filters=year)),
        ("handling, last 30 days", lambda s: reports.handling(session=s, filters=month)),
        ("cross channel x category, 2 years",
         lambda s: reports.cross(session=s, filters=all_, rows="channel", cols="category")),
        ("cross region x priority, last 30 days",
         lambda s: reports.cross(session=s, filters=month, rows="region", cols="priority")),
        ("spikes by category (28-day baseline)",
         lambda s: reports.spikes(session=s, filters=all_, dimension="category", day=today)),
        ("spikes by branch (28-day baseline)",
         lambda s: reports.spikes(session=s, filters=all_, dimension="branch", day=today)),
        ("repeats, last 30 days", lambda s: reports.repeats(session=s, filters=month)),
        ("repeats, 2 years", lambda s: reports.repeats(session=s, filters=all_)),
        ("repeats, 1 year", lambda s: reports.repeats(session=s, filters=year)),
        ("repeats, 1 year from 09:00", lambda s: reports.repeats(session=s, filters=year_9am)),
        ("repeats, 2nd of a month to the 28th, 6 months",
         lambda s: reports.repeats(session=s, filters=partial_months)),
        # Repeats with filters the links do not hold (two dimensions; several values of one)
        # or another threshold: the customer cells of 0016 (docs/analytics.md, fifteenth
        # round; before it, the pass in customer order over the facts).
        ("repeats, phone + P3, 2 years",
         lambda s: reports.repeats(session=s, filters=all_phone_p3)),
        ("repeats, phone or web, 2 years",
         lambda s: reports.repeats(session=s, filters=all_phone_or_web)),
        ("repeats, phone or web, 1 year from 09:00",
         lambda s: reports.repeats(session=s, filters=replace(
             all_phone_or_web, from_=year_9am.from_))),
        ("repeats, min 3 complaints, 2 years",
         lambda s: reports.repeats(session=s, filters=all_, min_complaints=3)),
        ("repeats, min 3 complaints, phone + P3, 1 year",
         lambda s: reports.repeats(session=s, filters=replace(
             all_phone_p3, from_=year.from_), min_complaints=3)),
        ("repeats, phone or web, 2 years (fact table)",
         lambda s: reports._repeats_from_facts(session=s, filters=all_phone_or_web)),
        ("cross region x product line, phone or web, 2 years",
         lambda s: reports.cross(
             session=s, filters=all_phone_or_web, rows="region", cols="product_line")),
        # Sixteenth round: a value filter with a grouping no summary holds (0017's indexes),
        # a monthly trend with value filters (the cell months), a range from 09:00 (whole
        # days from their path, edge days from the facts).
        ("cross branch x category, phone or web, 2 years",
         lambda s: reports.cross(
             session=s, filters=all_phone_or_web, rows="branch", cols="category")),
        ("cross branch x category, P1 or P2, 2 years",
         lambda s: reports.cross(session=s, filters=reports.Filters(
             values={"priority": ("P1", "P2")}, tz=TZ), rows="branch", cols="category")),
        ("trend month by region, phone or web, 2 years",
         lambda s: reports.trend(
             session=s, filters=all_phone_or_web, granularity="month", by="region")),
        ("trend day, phone + P3, 1 year from 09:00",
         lambda s: reports.trend(session=s, filters=replace(
             all_phone_p3, from_=year_9am.from_), granularity="day")),
        ("types by product line, phone or web, 1 year from 09:00",
         lambda s: reports.types(session=s, filters=replace(
             all_phone_or_web, from_=year_9am.from_), dimension="product_line")),
        ("repeats, 2nd of a month to the 28th, 6 months (fact table)",
         lambda s: reports._repeats_from_facts(session=s, filters=partial_months)),
        ("repeats, 2 years (fact table)",
         lambda s: reports._repeats_from_facts(session=s, filters=all_)),
        ("repeats, 1 year (fact table)",
         lambda s: reports._repeats_from_facts(session=s, filters=year)),
        ("repeats, last 30 days (fact table)",
         lambda s: reports._repeats_from_facts(session=s, filters=month)),
        ("suggestions, 2 years", lambda s: reports.suggestions(session=s)),
        ("handling, phone only, 1 year",
         lambda s: reports.handling(session=s, filters=year_phone)),
        ("handling, 1 year from 09:00",
         lambda s: reports.handling(session=s, filters=year_9am)),
        ("handling, phone only, 1 year (fact table)", lambda s: _facts_handling(s, year_phone)),
        ("handling, 1 year from 09:00 (fact table)", lambda s: _facts_handling(s, year_9am)),
        ("handling, region only, 1 year",
         lambda s: reports.handling(session=s, filters=year_region)),
        ("handling, branch only, 1 year",
         lambda s: reports.handling(session=s, filters=year_branch)),
        ("handling, product line only, 1 year",
         lambda s: reports.handling(session=s, filters=year_cards)),
        ("handling, phone + fees, 1 year",
         lambda s: reports.handling(session=s, filters=year_phone_fees)),
        ("handling, region + fees, 1 year",
         lambda s: reports.handling(session=s, filters=year_region_fees)),
        ("handling, branch + phone, 1 year",
         lambda s: reports.handling(session=s, filters=year_branch_phone)),
        ("handling, phone + P3, 1 year",
         lambda s: reports.handling(session=s, filters=year_phone_p3)),
        ("handling, phone + P3, 2 years",
         lambda s: reports.handling(session=s, filters=all_phone_p3)),
        ("handling, phone + P3, 2nd of a month to the 28th, 6 months",
         lambda s: reports.handling(session=s, filters=partial_phone_p3)),
        ("handling, phone + P3, 2nd to the 27th of last month",
         lambda s: reports.handling(session=s, filters=inside_month_phone_p3)),
        ("handling, phone + P3 + fees, 2 years",
         lambda s: reports.handling(session=s, filters=all_phone_p3_fees)),
        ("handling, phone + P3 + fees, 1 year",
         lambda s: reports.handling(session=s, filters=year_phone_p3_fees)),
        ("handling, phone + P3 + fees, 2nd of a month to the 28th, 6 months",
         lambda s: reports.handling(session=s, filters=partial_phone_p3_fees)),
        ("handling, phone + P3 + fees + Guangdong, 2 years",
         lambda s: reports.handling(session=s, filters=all_four)),
        ("handling, six filters, 2 years",
         lambda s: reports.handling(session=s, filters=all_six)),
        ("handling, 3 channels + 2 priorities + 2 categories, 2 years",
         lambda s: reports.handling(session=s, filters=all_wide_three)),
        ("handling, 3 channels + 2 priorities + 2 categories, 2 years (fact table)",
         lambda s: _facts_handling(s, all_wide_three)),
        ("handling, phone + P3, 2nd of a month to the 28th, 6 months (fact table)",
         lambda s: _facts_handling(s, partial_phone_p3)),
        ("handling, phone + P3 + fees, 2 years (fact table)",
         lambda s: _facts_handling(s, all_phone_p3_fees)),
        ("handling, phone + P3, 1 year (fact table)",
         lambda s: _facts_handling(s, year_phone_p3)),
        ("handling, phone + P3, 2 years (fact table)",
         lambda s: _facts_handling(s, all_phone_p3)),
        ("handling, region only, 1 year (fact table)",
         lambda s: _facts_handling(s, year_region)),
        ("handling, branch only, 1 year (fact table)",
         lambda s: _facts_handling(s, year_branch)),
        ("handling, product line only, 1 year (fact table)",
         lambda s: _facts_handling(s, year_cards)),
        ("handling, phone + fees, 1 year (fact table)",
         lambda s: _facts_handling(s, year_phone_fees)),
        ("handling, region + fees, 1 year (fact table)",
         lambda s: _facts_handling(s, year_region_fees)),
        ("handling, branch + phone, 1 year (fact table)",
         lambda s: _facts_handling(s, year_branch_phone)),
        ("business metrics refresh (scrape)", lambda s: build_metrics(s)),
        ("business metrics refresh (scrape, two connections, one snapshot)",
         lambda s: build_metrics_concurrently(sm)),
    ]  # fmt: skip
    out = []
    try:
        for name, run in cases:
            if only and not any(o in name for o in only):
                continue
            timings = []
            for i in range(repeat + 1):
                async with sm() as session, session.begin():
                    t = time.perf_counter()
                    await run(session)
                    if i:
                        timings.append((time.perf_counter() - t) * 1000)
            out.append((name, statistics.median(timings)))
            print(
                f"  {name:<50} {statistics.median(timings):8.1f} ms"
                f"   (min {min(timings):.1f}, max {max(timings):.1f})",
                flush=True,
            )
    finally:
        await engine.dispose()
    return out


#: One value per filter dimension for the matrix (a common value of the synthetic mix).
MATRIX_VALUES = {
    "channel": "phone",
    "category": "fees_and_charges",
    "product_line": "cards",
    "department": "billing",
    "priority": "P3",
    "region": "Guangdong",
    "branch": "GU007",
}
#: Columns of the matrix's "cross by x <column>" rows (each dimension as rows against them).
CROSS_COLUMNS = ("category", "channel", "department", "priority", "region", "branch")
#: Filters the suggestions report accepts (the others are "n/a" in the matrix).
SUGGESTION_FILTERS = ("channel", "category", "department", "branch", "product_line")


async def _timed(sm: Any, run: Callable[[Any], Awaitable[Any]], repeat: int) -> float:
    """Median milliseconds of ``repeat`` runs of ``run`` (one warm-up, one transaction each)."""
    timings = []
    for i in range(repeat + 1):
        async with sm() as session, session.begin():
            t = time.perf_counter()
            await run(session)
            if i:
                timings.append((time.perf_counter() - t) * 1000)
    return statistics.median(timings)


async def time_matrix(
    url: str, repeat: int, only: list[str] | None = None
) -> list[tuple[str, float]]:
    """Time every report with no filter and with one value filter on each dimension.

    Two windows: the whole two years (no bounds) and the last 30 days (from a local
    midnight). Reports: trend by day, week and month, types (by category), handling, cross
    (channel x category), repeats (min 2), spikes (by category on today, 28-day baseline:
    the range does not apply, the filter does), suggestions (``n/a`` for filters it does
    not take). Then trend (month, by), types and cross (x each of :data:`CROSS_COLUMNS`) *by*
    each dimension.
    Prints one table per window (median ms of ``repeat`` runs) and returns
    ``(case, ms)`` for every cell. With ``only``, just the rows (report names) containing one
    of the texts are timed.
    """

    def wanted(name: str) -> bool:
        return not only or any(o in name for o in only)

    engine = make_engine(url, pool_size=2)
    sm = make_sessionmaker(engine)
    zone = ZoneInfo(TZ)
    today = datetime.now(zone).date()
    windows = {
        "2 years": None,
        "last 30 days": datetime.combine(today - timedelta(days=30), datetime.min.time(), zone),
    }
    dims = [None, *MATRIX_VALUES]

    def report_cases(
        flt: reports.Filters, dim: str | None
    ) -> list[tuple[str, Callable[[Any], Awaitable[Any]] | None]]:
        sugg = None
        if dim is None or dim in SUGGESTION_FILTERS:
            values = {dim: (MATRIX_VALUES[dim],)} if dim else None
            sugg = lambda s: reports.suggestions(session=s, from_=flt.from_, values=values)  # noqa: E731
        return [
            ("trend day", lambda s: reports.trend(session=s, filters=flt, granularity="day")),
            ("trend week", lambda s: reports.trend(session=s, filters=flt, granularity="week")),
            ("trend month", lambda s: reports.trend(session=s, filters=flt, granularity="month")),
            ("types", lambda s: reports.types(session=s, filters=flt)),
            ("handling", lambda s: reports.handling(session=s, filters=flt)),
            ("cross channel x category",
             lambda s: reports.cross(session=s, filters=flt, rows="channel", cols="category")),
            ("repeats", lambda s: reports.repeats(session=s, filters=flt)),
            ("spikes by category",
             lambda s: reports.spikes(session=s, filters=flt, dimension="category", day=today)),
            ("suggestions", sugg),
        ]  # fmt: skip

    out: list[tuple[str, float]] = []
    try:
        for window, from_ in windows.items():
            print(f"matrix, {window} (median ms of {repeat}; columns: value filter):", flush=True)
            header = ["(none)", *MATRIX_VALUES]
            print(f"  {'report':<26}" + "".join(f"{h:>13}" for h in header), flush=True)
            grid: dict[str, list[str]] = {}
            for dim in dims:
                flt = reports.Filters(
                    from_=from_, values={dim: (MATRIX_VALUES[dim],)} if dim else {}, tz=TZ
                )
                for name, run in report_cases(flt, dim):
                    if not wanted(name):
                        continue
                    if run is None:
                        grid.setdefault(name, []).append("n/a")
                        continue
                    ms = await _timed(sm, run, repeat)
                    out.append((f"{name}, filter {dim or 'none'}, {window}", ms))
                    grid.setdefault(name, []).append(f"{ms:.1f}")
            for name, cells in grid.items():
                print(f"  {name:<26}" + "".join(f"{c:>13}" for c in cells), flush=True)
            flt = reports.Filters(from_=from_, tz=TZ)
            print(f"  {'by dimension:':<26}" + "".join(f"{h:>13}" for h in MATRIX_VALUES))
            rows: dict[str, list[str]] = {}
            for dim in MATRIX_VALUES:
                by_cases = [
                    ("trend month by", lambda s, d=dim, flt=flt: reports.trend(
                        session=s, filters=flt, granularity="month", by=d)),
                    ("types by", lambda s, d=dim, flt=flt: reports.types(
                        session=s, filters=flt, dimension=d)),
                    *((f"cross by x {col}", None if dim == col else (
                        lambda s, d=dim, c=col, flt=flt: reports.cross(
                            session=s, filters=flt, rows=d, cols=c)))
                      for col in CROSS_COLUMNS),
                ]  # fmt: skip
                for name, run in by_cases:
                    if not wanted(name):
                        continue
                    if run is None:
                        rows.setdefault(name, []).append("n/a")
                        continue
                    ms = await _timed(sm, run, repeat)
                    out.append((f"{name} {dim}, {window}", ms))
                    rows.setdefault(name, []).append(f"{ms:.1f}")
            for name, cells in rows.items():
                print(f"  {name:<26}" + "".join(f"{c:>13}" for c in cells), flush=True)
    finally:
        await engine.dispose()
    return out


async def time_rebuild(server: str, n: int) -> tuple[RebuildSummary, RebuildSummary, float, int]:
    """Produce ``n`` complaints' events, rebuild them into scratch databases.

    Returns:
        The rebuild summary, the summary of the same rebuild with ``defer_summaries`` (the
        triggers off, one recomputation at the end), the per-event-transaction baseline in
        events/s, and the number of events.
    """
    settings = PlatformSettings()
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    devinfra.create_topics(settings.kafka_bootstrap_servers, all_topics(), prefix=prefix)
    rng = random.Random(7)
    events = []
    for _ in range(n):
        p = synthetic.plan_complaint(rng, synthetic.received_instant(rng, days=60))
        events += synthetic.complaint_events(p)
    for _ in range(n // 10):
        events += synthetic.suggestion_events(rng, synthetic.received_instant(rng, days=60))
    producer = make_producer(settings.kafka_bootstrap_servers, client_id="bench-analytics")
    await producer.start()
    try:
        futures = []
        for topic, envelope in events:
            key, value, headers = to_wire(envelope)
            futures.append(
                await producer.send(prefix + topic, value=value, key=key, headers=headers)
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    target = devinfra.create_database(server, f"bench_rebuild_{uuid.uuid4().hex[:8]}")
    deferred_db = devinfra.create_database(server, f"bench_rebuild_{uuid.uuid4().hex[:8]}")
    baseline_db = devinfra.create_database(server, f"bench_rebuild_{uuid.uuid4().hex[:8]}")
    try:
        for url in (target, deferred_db, baseline_db):
            await asyncio.to_thread(migrations.upgrade, "analytics", database_url=url)
        summary = await rebuild(
            database_url=target,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topic_prefix=prefix,
        )
        deferred = await rebuild(
            database_url=deferred_db,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topic_prefix=prefix,
            defer_summaries=True,
        )
        # Baseline: the same events, one transaction each (the live consumer's unit of work).
        from aiokafka.structs import ConsumerRecord

        engine = make_engine(baseline_db, pool_size=2)
        sm = make_sessionmaker(engine)
        base = RebuildSummary(group="baseline")
        sample = events[: min(len(events), 3000)]
        t = time.perf_counter()
        for topic, envelope in sample:
            key, value, headers = to_wire(envelope)
            record = ConsumerRecord(topic, 0, 0, 0, 0, key, value, None, len(key), len(value),
                                    headers)  # fmt: skip
            await apply_batch(sessionmaker=sm, records=[record], summary=base)
        baseline_rate = len(sample) / (time.perf_counter() - t)
        await engine.dispose()
    finally:
        for url in (target, deferred_db, baseline_db):
            await asyncio.to_thread(devinfra.drop_database, server, url.rsplit("/", 1)[1])
    return summary, deferred, baseline_rate, len(events)


async def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description="analytics report and rebuild benchmark")
    parser.add_argument("--complaints", type=int, default=1_000_000)
    parser.add_argument("--suggestions", type=int, default=100_000)
    parser.add_argument("--rebuild-complaints", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--database-url", help="a kept bench database: time, do not load")
    parser.add_argument("--only", nargs="*", help="reports whose name contains a text")
    parser.add_argument(
        "--matrix", action="store_true", help="every report x no filter / one filter per dimension"
    )
    args = parser.parse_args()
    server = PlatformSettings().database_url
    if args.database_url:
        url, name, drop = args.database_url, "", False
        await asyncio.to_thread(migrations.upgrade, "analytics", database_url=url)
        conn = await asyncpg.connect(_dsn(url))
        try:
            for table in DERIVED_TABLES:
                if await conn.fetchval("SELECT to_regclass($1)", f"analytics.{table}"):
                    await conn.execute(f"VACUUM ANALYZE analytics.{table}")
        finally:
            await conn.close()
    else:
        name = f"bench_analytics_{uuid.uuid4().hex[:8]}"
        url, drop = devinfra.create_database(server, name), not args.keep_database
    try:
        if not args.database_url:
            await asyncio.to_thread(migrations.upgrade, "analytics", database_url=url)
            seconds = await load(url, args.complaints, args.suggestions)
            print(f"loaded {args.complaints} complaints and {args.suggestions} suggestions "
                  f"in {seconds:.1f}s (synthetic, {date.today()})")  # fmt: skip
        if not drop:
            print(f"database kept: {url}", flush=True)
        if args.matrix:
            timings = await time_matrix(url, args.repeat, args.only)
        else:
            print(f"report timings (median of {args.repeat}, target < 200 ms):")
            timings = await time_reports(url, args.repeat, args.only)
        over = [n for n, ms in timings if ms >= 200]
        print(f"{len(timings) - len(over)}/{len(timings)} under 200 ms; over:")
        for n, ms in timings:
            if ms >= 200:
                print(f"  {n}: {ms:.1f} ms")
    finally:
        if drop:
            await asyncio.to_thread(devinfra.drop_database, server, name)
    if args.rebuild_complaints:
        summary, deferred, baseline, n_events = await time_rebuild(server, args.rebuild_complaints)
        print(
            f"rebuild: {n_events} events ({summary.applied} applied) in {summary.seconds:.1f}s "
            f"= {summary.events_per_second:.0f} events/s (batches of 500 per transaction); "
            f"baseline one transaction per event: {baseline:.0f} events/s "
            f"(ratio {summary.events_per_second / baseline:.1f}x)"
        )
        # ``seconds`` includes the recomputation (it ends inside the replay phase).
        print(
            f"rebuild --defer-summaries: {deferred.applied} applied in {deferred.seconds:.1f}s "
            f"= {deferred.events_per_second:.0f} events/s, of which the recomputation "
            f"{deferred.backfill_seconds:.1f}s"
        )


if __name__ == "__main__":
    asyncio.run(main())
