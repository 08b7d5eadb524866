"""Daily summaries (migration 0004) on real PostgreSQL: exact, and the reports agree.

The trigger-maintained summaries must equal a recomputation from the fact rows after any
stream (reopens, follow-ups, duplicates, random order), and every report read from the
summaries must equal the same report read from the facts (a range that starts one
microsecond after a local midnight, read by handling from the facts' edge day and by trend,
types and cross analysis inside ``reports.facts_only()``; the same range from the midnight
takes the summaries; no complaint arrives in that microsecond).
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.analytics import rebuild, reports, synthetic, tables
from services.analytics.metrics import build_metrics

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
TZ = "Asia/Shanghai"


async def _facts(report: Any, **kwargs: Any) -> Any:
    """``report`` read from the facts only (the reference)."""
    with reports.facts_only():
        return await report(**kwargs)


SUMMARIES = ("complaint_day_dims", "complaint_day_totals", "complaint_day_remedy",
             "complaint_day_hist", "complaint_day_dim_totals", "complaint_day_dim_remedy",
             "complaint_day_dim_hist", "complaint_month_pair_totals",
             "complaint_month_pair_remedy", "complaint_month_pair_hist",
             "complaint_month_cell_totals", "complaint_month_cell_remedy",
             "complaint_month_cell_hist")  # fmt: skip


def _differences(got: Any, want: Any) -> dict[str, tuple[Any, Any]]:
    """The top-level fields of two report dataclasses that differ, as {field: (got, want)}."""
    return {
        name: (value, getattr(want, name))
        for name, value in vars(got).items()
        if value != getattr(want, name)
    }


def _triggers_disabled(families: list[Any]) -> float:
    """The value of ``analytics_summary_triggers_disabled`` among metric families."""
    (family,) = [f for f in families if f.name == "analytics_summary_triggers_disabled"]
    return float(family.samples[0].value)


def synthetic_suggestions(n: int, seed: int) -> list[Any]:
    """Every event of ``n`` suggestions received in the 60 days before :data:`NOW`, few
    customers (so that some have a previous suggestion)."""
    rng = random.Random(seed)
    return [
        e
        for _ in range(n)
        for e in synthetic.suggestion_events(
            rng, synthetic.received_instant(rng, days=60, end=NOW), customers=3
        )
    ]


def _events(n: int, seed: int) -> list[Any]:
    rng = random.Random(seed)
    plans = [
        synthetic.plan_complaint(rng, synthetic.received_instant(rng, days=60, end=NOW))
        for _ in range(n)
    ]
    return [e for p in plans for e in synthetic.complaint_events(p)]


async def test_trigger_summaries_equal_a_recomputation(
    model_sm: Any, apply: Any, snap: Any
) -> None:
    events = _events(50, seed=5)
    shuffled = events * 2
    random.Random(4).shuffle(shuffled)
    await apply(model_sm, shuffled)
    live = {k: v for k, v in (await snap(model_sm)).items() if k in SUMMARIES}
    assert live["complaint_day_totals"]
    assert live["complaint_day_hist"]
    assert live["complaint_day_dim_totals"]
    assert live["complaint_day_dim_hist"]
    assert live["complaint_day_dim_remedy"]
    assert live["complaint_month_pair_totals"]
    assert live["complaint_month_pair_remedy"]
    assert live["complaint_month_pair_hist"]
    assert live["complaint_month_cell_totals"]
    assert live["complaint_month_cell_remedy"]
    assert live["complaint_month_cell_hist"]
    async with model_sm() as session, session.begin():
        await session.execute(text("SELECT analytics.complaint_summary_backfill()"))
    recomputed = {k: v for k, v in (await snap(model_sm)).items() if k in SUMMARIES}
    assert live == recomputed
    # Deleting every fact empties the summaries (rows at count 0 are removed).
    async with model_sm() as session, session.begin():
        await session.execute(tables.complaint_fact.delete())
    after = await snap(model_sm)
    assert all(after[name] == [] for name in SUMMARIES)


async def test_reports_from_summaries_equal_reports_from_facts(model_sm: Any, apply: Any) -> None:
    await apply(model_sm, _events(120, seed=9))
    zone = ZoneInfo(TZ)
    start = datetime(2026, 9, 1, tzinfo=zone)
    end = datetime(2026, 11, 21, tzinfo=zone)
    ranges = [
        (start, end),
        (datetime(2026, 10, 15, tzinfo=zone), datetime(2026, 11, 1, tzinfo=zone)),
    ]
    async with model_sm() as session, session.begin():
        for lo, hi in ranges:
            whole = reports.Filters(from_=lo, to=hi, tz=TZ)
            # One microsecond later: not a midnight, so the first day is read from the facts
            # (all of it under facts_only); no complaint arrives in that microsecond, so the
            # figures must be the same.
            facts = reports.Filters(from_=lo + timedelta(microseconds=1), to=hi, tz=TZ)
            assert whole.day_range() is not None
            assert facts.day_range() is None

            h1 = await reports.handling(session=session, filters=whole)
            h2 = await reports.handling(session=session, filters=facts)
            assert h1.complaints > 0
            assert h1.resolution_hours.median is not None
            assert h1 == h2
            for g in ("day", "week", "month"):
                for by in (None, "channel", "category"):
                    t1 = await reports.trend(session=session, filters=whole, granularity=g, by=by)
                    t2 = await _facts(
                        reports.trend, session=session, filters=facts, granularity=g, by=by
                    )
                    assert t1 == t2
            for dim in ("category", "channel", "priority", "department"):
                y1 = await reports.types(session=session, filters=whole, dimension=dim)
                y2 = await _facts(reports.types, session=session, filters=facts, dimension=dim)
                assert (y1.total, y1.items) == (y2.total, y2.items)
            c1 = await reports.cross(
                session=session, filters=whole, rows="channel", cols="category"
            )
            c2 = await _facts(
                reports.cross, session=session, filters=facts, rows="channel", cols="category"
            )
            assert c1 == c2
            assert c1.total > 0
            phone = reports.Filters(from_=lo, to=hi, values={"channel": ("phone",)}, tz=TZ)
            phone_f = reports.Filters(
                from_=lo + timedelta(microseconds=1), to=hi, values={"channel": ("phone",)}, tz=TZ
            )
            p1 = await reports.types(session=session, filters=phone)
            p2 = await _facts(reports.types, session=session, filters=phone_f)
            assert (p1.total, p1.items) == (p2.total, p2.items)
        # Open ranges too.
        h_all = await reports.handling(session=session, filters=reports.Filters(tz=TZ))
        h_facts = await reports.handling(
            session=session,
            filters=reports.Filters(from_=datetime(2000, 1, 1, 0, 0, 1, tzinfo=UTC), tz=TZ),
        )
        assert h_all == h_facts


async def test_handling_with_partial_edge_days_equals_the_facts(model_sm: Any, apply: Any) -> None:
    """Ranges inside a day: whole days from the summaries + edge days from the facts."""
    await apply(model_sm, _events(200, seed=13))
    zone = ZoneInfo(TZ)
    at = lambda d, h, m=0: datetime(2026, d[0], d[1], h, m, tzinfo=zone)  # noqa: E731
    ranges = [
        (at((9, 25), 9), at((11, 14), 15, 30)),  # two partial edges, whole days between
        (at((10, 3), 9), at((11, 1), 0)),  # partial start, midnight end
        (at((10, 3), 0), at((10, 20), 13)),  # midnight start, partial end
        (at((10, 10), 8), at((10, 10), 18)),  # both edges on one day
        (at((10, 10), 8), at((10, 11), 18)),  # adjacent edge days, no whole day
        (None, at((10, 20), 13)),  # open start
        (at((10, 20), 13), None),  # open end
    ]
    async with model_sm() as session, session.begin():
        for lo, hi in ranges:
            flt = reports.Filters(from_=lo, to=hi, tz=TZ)
            assert flt.day_range() is None
            assert flt.split_days()[1], "an edge day is read from the facts"
            mixed = await reports.handling(session=session, filters=flt)
            facts = reports._handling_report(
                *await reports._handling_from_facts(session=session, filters=flt)
            )
            assert mixed.complaints > 0
            assert mixed == facts, (lo, hi)
        # The edges hold complaints: the partial ranges differ from their whole days.
        partial = await reports.handling(
            session=session, filters=reports.Filters(from_=ranges[0][0], to=ranges[0][1], tz=TZ)
        )
        whole = await reports.handling(
            session=session,
            filters=reports.Filters(
                from_=datetime(2026, 9, 25, tzinfo=zone),
                to=datetime(2026, 11, 15, tzinfo=zone),
                tz=TZ,
            ),
        )
        assert partial.complaints < whole.complaints


async def test_handling_with_one_dimension_filter_equals_the_facts(
    model_sm: Any, apply: Any
) -> None:
    """A value filter on any one of the seven dimensions: per-dimension summaries (0006/0007)."""
    await apply(model_sm, _events(200, seed=17))
    zone = ZoneInfo(TZ)
    whole = (datetime(2026, 9, 25, tzinfo=zone), datetime(2026, 11, 21, tzinfo=zone))
    partial = (datetime(2026, 9, 25, 9, tzinfo=zone), datetime(2026, 11, 14, 15, tzinfo=zone))
    assert set(tables.DIM_SUMMARY_DIMENSIONS) == set(reports.FILTER_COLUMNS)
    async with model_sm() as session, session.begin():
        values: dict[str, list[str]] = {}
        for dim, col in tables.DIM_SUMMARY_COLUMNS.items():
            rows = await session.execute(
                text(f"SELECT DISTINCT {col} FROM analytics.complaint_fact WHERE {col} IS NOT NULL")
            )
            values[dim] = sorted(r[0] for r in rows)
            assert values[dim], col
        cases = [(dim, (vals[0],)) for dim, vals in values.items()]
        cases.append(("category", tuple(values["category"][:2])))
        cases.append(("branch", tuple(values["branch"][:3])))
        cases.append(("channel", ("no-such-channel",)))
        cases.append(("region", ("no-such-region",)))
        for lo, hi in (whole, partial, (None, None)):
            for dim, accepted in cases:
                flt = reports.Filters(from_=lo, to=hi, values={dim: accepted}, tz=TZ)
                summary = await reports.handling(session=session, filters=flt)
                facts = reports._handling_report(
                    *await reports._handling_from_facts(session=session, filters=flt)
                )
                assert summary == facts, (lo, hi, dim, accepted)
            phone = await reports.handling(
                session=session,
                filters=reports.Filters(from_=lo, to=hi, values={"channel": cases[0][1]}, tz=TZ),
            )
            assert phone.complaints > 0
            assert phone.resolution_working_days.median is not None


async def test_handling_percentiles_when_a_bucket_ends_outside_the_range(
    model_sm: Any, apply: Any
) -> None:
    """The first and last value of a bucket in a range (the skip scan, tenth round).

    The acknowledgement times are rewritten so that each receipt day has its own value,
    all in one bucket, in an order unrelated to the day: the bucket's lowest and highest
    values then belong to days outside most ranges, and the skip scan must step over
    several values before one has a row in the range. Resolution times get several values
    per day and bucket. Every report, with and without partial edge days and with a
    dimension filter, must equal the report computed from the facts.
    """
    await apply(model_sm, _events(200, seed=29))
    zone = ZoneInfo(TZ)
    async with model_sm() as session, session.begin():
        await session.execute(
            text(
                "UPDATE analytics.complaint_fact SET ack_seconds = 9901 + "
                "((received_day - DATE '2026-01-01') * 37) % 900 WHERE ack_seconds IS NOT NULL"
            )
        )
        await session.execute(
            text(
                "UPDATE analytics.complaint_fact SET resolution_seconds = "
                "3600 * ceil(resolution_seconds / 3600.0) - "
                "((received_day - DATE '2026-01-01') * 53 + ascii(complaint_id::text)) % 3600 "
                "WHERE resolution_seconds IS NOT NULL"
            )
        )
    ranges = [
        (datetime(2026, 10, 1, tzinfo=zone), datetime(2026, 10, 20, tzinfo=zone)),
        (datetime(2026, 10, 1, 9, tzinfo=zone), datetime(2026, 10, 20, 15, tzinfo=zone)),
        (datetime(2026, 9, 25, tzinfo=zone), None),
        (None, datetime(2026, 10, 5, 12, tzinfo=zone)),
    ]
    async with model_sm() as session, session.begin():
        lowest, highest = (
            await session.execute(
                text(
                    "SELECT min(ack_seconds), max(ack_seconds) FROM analytics.complaint_fact "
                    "WHERE received_day IS NOT NULL"
                )
            )
        ).one()
        in_first = (
            await session.execute(
                text(
                    "SELECT min(ack_seconds), max(ack_seconds) FROM analytics.complaint_fact "
                    "WHERE received_day BETWEEN DATE '2026-10-01' AND DATE '2026-10-19'"
                )
            )
        ).one()
        # The bucket's ends lie outside the first range: the skip scan has work to do.
        assert lowest < in_first[0]
        assert in_first[1] < highest
        channel = (
            await session.execute(
                text(
                    "SELECT channel FROM analytics.complaint_fact WHERE ack_seconds IS NOT NULL "
                    "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
                )
            )
        ).scalar_one()
        for lo, hi in ranges:
            for values in ({}, {"channel": (channel,)}):
                flt = reports.Filters(from_=lo, to=hi, values=values, tz=TZ)
                got = await reports.handling(session=session, filters=flt)
                want = reports._handling_report(
                    *await reports._handling_from_facts(session=session, filters=flt)
                )
                assert got.acknowledgement_hours.count > 0, (lo, hi, values)
                assert got == want, (lo, hi, values)


async def test_handling_percentiles_with_a_distinct_value_per_complaint(
    model_sm: Any, apply: Any
) -> None:
    """Durations to the microsecond: the skip scan hands over to the ordered read.

    Every acknowledgement time is distinct and grows with the receipt day, all in one
    bucket, so a range's lowest value has far more than ``SKIP_SCAN_STEPS`` lower values
    before it (the skip scan gives up and the ordered read answers) and its highest value
    is the bucket's last in range. Whole-day, partial-edge, one-day and open ranges, with
    and without a filter, must give the facts' report.
    """
    await apply(model_sm, _events(200, seed=31))
    zone = ZoneInfo(TZ)
    async with model_sm() as session, session.begin():
        await session.execute(
            text(
                "UPDATE analytics.complaint_fact SET ack_seconds = 9901 + "
                "(received_day - DATE '2026-09-01') * 10 + "
                "('x' || substr(md5(complaint_id::text), 1, 6))::bit(24)::int / 1677721.6 "
                "WHERE ack_seconds IS NOT NULL"
            )
        )
    async with model_sm() as session, session.begin():
        below, distinct, buckets = (
            await session.execute(
                text(
                    "SELECT count(DISTINCT ack_seconds) FILTER (WHERE received_day < "
                    "DATE '2026-10-20'), count(DISTINCT ack_seconds) = count(ack_seconds), "
                    "count(DISTINCT ceil(ack_seconds / 900)) FROM analytics.complaint_fact "
                    "WHERE received_day IS NOT NULL"
                )
            )
        ).one()
        assert buckets == 1
        assert distinct
        assert below > reports.SKIP_SCAN_STEPS
        ranges = [
            (datetime(2026, 10, 20, tzinfo=zone), datetime(2026, 11, 10, tzinfo=zone)),
            (datetime(2026, 10, 20, 9, tzinfo=zone), datetime(2026, 11, 10, 15, tzinfo=zone)),
            (datetime(2026, 10, 20, 8, tzinfo=zone), datetime(2026, 10, 21, 20, tzinfo=zone)),
            (datetime(2026, 10, 20, tzinfo=zone), None),
        ]
        for lo, hi in ranges:
            for values in ({}, {"channel": ("phone",)}):
                flt = reports.Filters(from_=lo, to=hi, values=values, tz=TZ)
                got = await reports.handling(session=session, filters=flt)
                want = reports._handling_report(
                    *await reports._handling_from_facts(session=session, filters=flt)
                )
                assert got == want, (lo, hi, values)
                if not values:
                    assert got.acknowledgement_hours.count > 0, (lo, hi)


async def test_handling_with_several_dimension_filters_equals_the_facts(
    model_sm: Any, apply: Any
) -> None:
    """Value filters on two or more dimensions: the matching rows read once (0007)."""
    await apply(model_sm, _events(200, seed=19))
    zone = ZoneInfo(TZ)
    cost = "SELECT current_setting('random_page_cost')"
    async with model_sm() as session, session.begin():
        server_cost = (await session.execute(text(cost))).scalar_one()
        assert server_cost != reports.MATCHES_RANDOM_PAGE_COST
        top = (
            await session.execute(
                text(
                    "SELECT channel, category, region, product_line, priority, branch_code, "
                    "count(*) FROM analytics.complaint_fact WHERE received_day IS NOT NULL "
                    "GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 7 DESC, 1, 2, 3, 4, 5, 6 LIMIT 1"
                )
            )
        ).one()
        channel, category, region, product_line, priority, branch, _ = top
        cases: list[dict[str, tuple[str, ...]]] = [
            {"channel": (channel,), "category": (category,)},
            {"region": (region,), "category": (category,)},
            {"product_line": (product_line,), "priority": (priority,)},
            {"branch": (branch,), "channel": (channel,), "region": (region,)},
            {"channel": (channel, "web", "email"), "priority": (priority, "P1")},
            {"channel": (channel,), "region": ("no-such-region",)},
        ]
        ranges = [
            (datetime(2026, 9, 25, tzinfo=zone), datetime(2026, 11, 21, tzinfo=zone)),
            (datetime(2026, 9, 25, 9, tzinfo=zone), datetime(2026, 11, 14, 15, tzinfo=zone)),
            (None, None),
        ]
        seen = 0
        for lo, hi in ranges:
            for values in cases:
                flt = reports.Filters(from_=lo, to=hi, values=values, tz=TZ)
                got = await reports.handling(session=session, filters=flt)
                want = reports._handling_report(
                    *await reports._handling_from_facts(session=session, filters=flt)
                )
                assert got == want, (lo, hi, values)
                seen += got.complaints
        assert seen > 0
        both = await reports.handling(
            session=session,
            filters=reports.Filters(values={"channel": (channel,), "category": (category,)}, tz=TZ),
        )
        assert both.complaints > 0
        assert both.remedies or both.resolved == 0
        # The matches statement's planner setting is put back (eleventh round).
        assert (await session.execute(text(cost))).scalar_one() == server_cost


async def test_handling_with_two_filters_from_the_pair_months_equals_the_facts(
    model_sm: Any, apply: Any
) -> None:
    """Two value filters: whole months from the pair summaries (0014), other days from facts.

    Complaints over about five months, events in random order with duplicates; then a
    reclassification moves complaints between cells. Every pair of the six dimensions, each
    way round, with one or two values per filter, over ranges with whole months and partial
    months at either end, ranges starting or ending inside a day, and open ranges: the
    summaries path must give the facts' report exactly.
    """
    rng = random.Random(23)
    plans = [
        synthetic.plan_complaint(rng, synthetic.received_instant(rng, days=150, end=NOW))
        for _ in range(260)
    ]
    events = [e for p in plans for e in synthetic.complaint_events(p)]
    shuffled = events + events[::7]
    rng.shuffle(shuffled)
    await apply(model_sm, shuffled)
    async with model_sm() as session, session.begin():
        # A reclassification: the same complaints, other category (cells move between keys).
        await session.execute(
            text(
                "UPDATE analytics.complaint_fact SET category = 'fees_and_charges' "
                "WHERE category IS DISTINCT FROM 'fees_and_charges' AND resolved_at IS NOT NULL "
                "AND complaint_id IN (SELECT complaint_id FROM analytics.complaint_fact "
                "ORDER BY complaint_id LIMIT 40)"
            )
        )
    zone = ZoneInfo(TZ)
    ranges = [
        (datetime(2026, 7, 1, tzinfo=zone), datetime(2026, 11, 1, tzinfo=zone)),
        (datetime(2026, 7, 17, tzinfo=zone), datetime(2026, 10, 9, tzinfo=zone)),
        (datetime(2026, 8, 3, 10, tzinfo=zone), datetime(2026, 10, 1, tzinfo=zone)),
        (datetime(2026, 8, 1, tzinfo=zone), datetime(2026, 9, 30, 18, tzinfo=zone)),
        (None, datetime(2026, 10, 12, tzinfo=zone)),
        (datetime(2026, 8, 20, tzinfo=zone), None),
        (None, None),
    ]
    names = list(tables.PAIR_SUMMARY_DIMENSIONS)
    async with model_sm() as session, session.begin():
        common: dict[str, list[str]] = {}
        for dim, column in tables.PAIR_SUMMARY_DIMENSIONS.items():
            rows = await session.execute(
                text(
                    f"SELECT {column} FROM analytics.complaint_fact WHERE {column} IS NOT NULL "
                    f"AND received_day IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 2"
                )
            )
            common[dim] = [r[0] for r in rows]
        compared = used = 0
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                for k, (lo, hi) in enumerate(ranges):
                    first, second = (b, a) if k % 2 else (a, b)  # both orders for each pair
                    values = {first: tuple(common[first][:1]), second: tuple(common[second])}
                    flt = reports.Filters(from_=lo, to=hi, values=values, tz=TZ)
                    got = await reports.handling(session=session, filters=flt)
                    want = reports._handling_report(
                        *await reports._handling_from_facts(session=session, filters=flt)
                    )
                    assert got == want, (lo, hi, values, _differences(got, want))
                    compared += 1
                    used += got.complaints
        assert compared == 15 * len(ranges)
        assert used > 0
        # The path itself (not only the dispatch): the pair rows of the whole months.
        days, edges = reports.Filters(from_=ranges[1][0], to=ranges[1][1], tz=TZ).split_days()
        slices = [("channel", tuple(common["channel"])), ("priority", tuple(common["priority"]))]
        direct = reports._handling_report(
            *await reports._handling_from_summaries(
                session=session, days=days, edges=edges, slices=slices
            )
        )
        flt = reports.Filters(from_=ranges[1][0], to=ranges[1][1], values=dict(slices), tz=TZ)
        want = reports._handling_report(
            *await reports._handling_from_facts(session=session, filters=flt)
        )
        assert direct == want
        assert direct.complaints > 0
        assert direct.resolution_hours.median is not None
        with pytest.raises(ValueError, match="whole month"):
            within = reports.Filters(
                from_=datetime(2026, 8, 3, tzinfo=zone),
                to=datetime(2026, 8, 20, tzinfo=zone),
                tz=TZ,
            )
            await reports._handling_from_summaries(
                session=session, days=within.split_days()[0], slices=slices
            )


async def test_handling_with_three_or_more_filters_from_the_cell_months_equals_the_facts(
    model_sm: Any, apply: Any
) -> None:
    """Three to six value filters: whole months from the cell summaries (0015).

    Complaints over about five months, events in random order with duplicates; then
    reclassifications move complaints between cells, one of them into cells never seen
    before (the trigger adds them). Triples, a quadruple and all six dimensions, with one or
    two values per filter, over ranges with whole months and partial months at either end,
    ranges starting or ending inside a day, and open ranges: the summaries path must give
    the facts' report exactly.
    """
    rng = random.Random(29)
    plans = [
        synthetic.plan_complaint(rng, synthetic.received_instant(rng, days=150, end=NOW))
        for _ in range(300)
    ]
    events = [e for p in plans for e in synthetic.complaint_events(p)]
    shuffled = events + events[::5]
    rng.shuffle(shuffled)
    await apply(model_sm, shuffled)
    async with model_sm() as session, session.begin():
        await session.execute(
            text(
                "UPDATE analytics.complaint_fact SET category = 'fees_and_charges' "
                "WHERE category IS DISTINCT FROM 'fees_and_charges' AND resolved_at IS NOT NULL "
                "AND complaint_id IN (SELECT complaint_id FROM analytics.complaint_fact "
                "ORDER BY complaint_id LIMIT 40)"
            )
        )
        await session.execute(
            text(
                "UPDATE analytics.complaint_fact SET region = 'Xizang' "
                "WHERE complaint_id IN (SELECT complaint_id FROM analytics.complaint_fact "
                "ORDER BY complaint_id DESC LIMIT 25)"
            )
        )
    zone = ZoneInfo(TZ)
    ranges = [
        (datetime(2026, 7, 1, tzinfo=zone), datetime(2026, 11, 1, tzinfo=zone)),
        (datetime(2026, 7, 17, tzinfo=zone), datetime(2026, 10, 9, tzinfo=zone)),
        (datetime(2026, 8, 3, 10, tzinfo=zone), datetime(2026, 10, 1, tzinfo=zone)),
        (datetime(2026, 8, 1, tzinfo=zone), datetime(2026, 9, 30, 18, tzinfo=zone)),
        (None, datetime(2026, 10, 12, tzinfo=zone)),
        (datetime(2026, 8, 20, tzinfo=zone), None),
        (None, None),
    ]
    names = list(tables.CELL_SUMMARY_DIMENSIONS)
    async with model_sm() as session, session.begin():
        cells = (
            await session.execute(text("SELECT count(*) FROM analytics.complaint_cell"))
        ).scalar_one()
        assert cells > 0
        common: dict[str, list[str]] = {}
        for dim, column in tables.CELL_SUMMARY_DIMENSIONS.items():
            rows = await session.execute(
                text(
                    f"SELECT {column} FROM analytics.complaint_fact WHERE {column} IS NOT NULL "
                    f"AND received_day IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 2"
                )
            )
            common[dim] = [r[0] for r in rows]
        triples = [list(t) for t in itertools.combinations(names, 3)]
        combos = [*triples[::3], names[:4], names[2:], names]
        compared = used = 0
        for n_combo, dims in enumerate(combos):
            for k, (lo, hi) in enumerate(ranges):
                order = dims[::-1] if (n_combo + k) % 2 else dims  # any order of the filters
                values = {d: tuple(common[d][: 1 + (i == 0)]) for i, d in enumerate(order)}
                if "region" in values and k == 0:
                    values["region"] = ("Xizang", *values["region"])
                flt = reports.Filters(from_=lo, to=hi, values=values, tz=TZ)
                got = await reports.handling(session=session, filters=flt)
                want = reports._handling_report(
                    *await reports._handling_from_facts(session=session, filters=flt)
                )
                assert got == want, (lo, hi, values, _differences(got, want))
                compared += 1
                used += got.complaints
        assert compared == len(combos) * len(ranges)
        assert used > 0
        # The path itself (not only the dispatch): the cell rows of the whole months.
        days, edges = reports.Filters(from_=ranges[1][0], to=ranges[1][1], tz=TZ).split_days()
        slices = [
            ("priority", tuple(common["priority"])),
            ("channel", tuple(common["channel"])),
            ("category", tuple(common["category"])),
        ]
        direct = reports._handling_report(
            *await reports._handling_from_summaries(
                session=session, days=days, edges=edges, slices=slices
            )
        )
        flt = reports.Filters(from_=ranges[1][0], to=ranges[1][1], values=dict(slices), tz=TZ)
        want = reports._handling_report(
            *await reports._handling_from_facts(session=session, filters=flt)
        )
        assert direct == want
        assert direct.complaints > 0
        assert direct.resolution_hours.median is not None
        with pytest.raises(ValueError, match="no cell summaries"):
            await reports._handling_from_summaries(
                session=session, days=days, slices=[*slices, ("branch", ("GU007",))]
            )
        # A new combination got its cell from the trigger; the backfill keeps the ids.
        xizang = text(
            "SELECT cell_id FROM analytics.complaint_cell WHERE region = 'Xizang' ORDER BY 1"
        )
        before = (await session.execute(xizang)).scalars().all()
        assert before
    async with model_sm() as session, session.begin():
        await session.execute(text("SELECT analytics.complaint_cell_summary_backfill()"))
        assert (await session.execute(xizang)).scalars().all() == before


async def test_snapshot_sees_one_model_and_writes_nothing(model_sm: Any, apply: Any) -> None:
    """A report's transaction (``reports.snapshot``): REPEATABLE READ, read-only; a commit
    from another session during it stays invisible to it; the pooled connection comes back
    at the server's default isolation."""
    await apply(model_sm, _events(3, seed=41))
    count = text("SELECT count(*) FROM analytics.complaint_fact")
    received_count = text(
        "SELECT count(*) FROM analytics.complaint_fact WHERE received_day IS NOT NULL"
    )
    async with model_sm() as session, reports.snapshot(session):
        isolation = (await session.execute(text("SHOW transaction_isolation"))).scalar_one()
        read_only = (await session.execute(text("SHOW transaction_read_only"))).scalar_one()
        assert (isolation, read_only) == ("repeatable read", "on")
        before = (await session.execute(count)).scalar_one()
        received = (await session.execute(received_count)).scalar_one()
        assert before > 0
        await apply(model_sm, _events(2, seed=42))  # committed by other sessions meanwhile
        assert (await session.execute(count)).scalar_one() == before
        report = await reports.handling(session=session, filters=reports.Filters(tz=TZ))
        assert report.complaints == received
    async with model_sm() as session, session.begin():
        assert (await session.execute(count)).scalar_one() > before
        isolation = (await session.execute(text("SHOW transaction_isolation"))).scalar_one()
        assert isolation == "read committed"
    with pytest.raises(DBAPIError, match="read-only transaction"):
        async with model_sm() as session, reports.snapshot(session):
            await session.execute(tables.complaint_fact.delete())
    async with model_sm() as session, session.begin():
        assert (await session.execute(count)).scalar_one() > before


async def test_summary_triggers_named_for_deferral_are_every_fact_trigger(model_sm: Any) -> None:
    """``tables.SUMMARY_TRIGGERS`` names every trigger on the two fact tables at head (a new
    trigger must be listed with its backfill before a deferred rebuild may turn it off)."""
    async with model_sm() as session, session.begin():
        rows = await session.execute(
            text(
                "SELECT c.relname, t.tgname FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'analytics' AND NOT t.tgisinternal "
                "AND c.relname IN ('complaint_fact', 'suggestion_fact')"
            )
        )
        found = {(table, name) for table, name in rows}
    named = {(t, n) for t, names in tables.SUMMARY_TRIGGERS.items() for n in names}
    assert found == named


async def test_deferred_summaries_are_recomputed_also_after_an_error(
    model_sm: Any, apply: Any, snap: Any
) -> None:
    """Inside ``summaries_deferred`` facts are written without their summaries; after the
    block, also when it raised, the triggers are on and the summaries equal a recomputation
    and the figures the triggers would have kept; the business metrics count the triggers
    that are off (``analytics_summary_triggers_disabled``, the alert's input)."""
    events = _events(30, seed=77) + synthetic_suggestions(10, seed=79)
    await apply(model_sm, events)
    expected = await snap(model_sm)  # every table, the derived ones kept by the triggers
    derived = [name for name in expected if not name.endswith("_fact")]
    assert all(expected[name] for name in derived), "every derived table has rows"
    async with model_sm() as session, session.begin():
        await rebuild.reset_model(session=session)
    summary = rebuild.RebuildSummary(group="test")
    named_triggers = [n for names in tables.SUMMARY_TRIGGERS.values() for n in names]
    with pytest.raises(RuntimeError, match="replay failed"):
        async with rebuild.summaries_deferred(model_sm, summary):
            await apply(model_sm, events)
            inside = await snap(model_sm)
            async with model_sm() as session, session.begin():
                assert _triggers_disabled(await build_metrics(session)) == len(named_triggers)
            assert inside["complaint_fact"]
            assert inside["suggestion_fact"]
            assert all(inside[name] == [] for name in derived)
            raise RuntimeError("replay failed")
    assert summary.backfill_seconds > 0
    assert await snap(model_sm) == expected
    async with model_sm() as session, session.begin():
        assert _triggers_disabled(await build_metrics(session)) == 0
    async with model_sm() as session, session.begin():
        states = await session.execute(
            text(
                "SELECT DISTINCT t.tgenabled::text FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE c.relname IN ('complaint_fact', 'suggestion_fact') AND NOT t.tgisinternal"
            )
        )
        assert [r[0] for r in states] == ["O"]  # enabled (origin mode), none left off
    # And the triggers work again: one more complaint moves the summaries.
    await apply(model_sm, _events(1, seed=78))
    moved = await snap(model_sm)
    for name in ("complaint_day_totals", "complaint_day_dim_totals", "complaint_month_pair_totals"):
        assert moved[name] != expected[name], name


async def test_planner_setting_holds_for_the_block_only(model_sm: Any) -> None:
    """``planner_setting`` gives the value inside the block and puts the caller's back after
    it, also after an error in the block and over a value the caller set locally."""
    setting = "SELECT current_setting('random_page_cost')"
    async with model_sm() as session, session.begin():
        server_cost = (await session.execute(text(setting))).scalar_one()
        assert server_cost != "1.1"
        async with reports.planner_setting(session, "random_page_cost", "1.1"):
            assert (await session.execute(text(setting))).scalar_one() == "1.1"
        assert (await session.execute(text(setting))).scalar_one() == server_cost
        await session.execute(text("SET LOCAL random_page_cost = 2.5"))
        with pytest.raises(ZeroDivisionError):
            async with reports.planner_setting(session, "random_page_cost", "1.1"):
                assert (await session.execute(text(setting))).scalar_one() == "1.1"
                _ = 1 / 0
        assert (await session.execute(text(setting))).scalar_one() == "2.5"
    async with model_sm() as session, session.begin():
        assert (await session.execute(text(setting))).scalar_one() == server_cost
        with pytest.raises(DBAPIError):
            async with reports.planner_setting(session, "random_page_cost", "-1"):
                pytest.fail("an invalid value must not enter the block")
    # A statement failing in the block: its own error comes out (not "current transaction
    # is aborted" from putting the value back), and the next transaction has the old value.
    with pytest.raises(DBAPIError, match="division by zero"):
        async with model_sm() as session, session.begin():
            async with reports.planner_setting(session, "random_page_cost", "1.1"):
                await session.execute(text("SELECT 1 / 0"))
    async with model_sm() as session, session.begin():
        assert (await session.execute(text(setting))).scalar_one() == server_cost


async def test_metrics_received_by_channel_equal_the_facts(model_sm: Any, apply: Any) -> None:
    """``analytics_complaints_received_total`` reads the per-dimension totals (0006)."""
    from services.analytics import metrics

    await apply(model_sm, _events(60, seed=21))
    async with model_sm() as session, session.begin():
        got = sorted(tuple(r) for r in (await session.execute(text(metrics._RECEIVED_SQL))).all())
        want = sorted(
            tuple(r)
            for r in (
                await session.execute(
                    text(
                        "SELECT COALESCE(channel, 'unknown'), count(*) "
                        "FROM analytics.complaint_fact WHERE received_day IS NOT NULL GROUP BY 1"
                    )
                )
            ).all()
        )
    assert got
    assert got == want
