"""Reports over a range that starts or ends inside a day, on real PostgreSQL.

Trend, types and cross analysis over such a range read its whole days from their usual
source (summaries, cells or an index-only fact pass) and the parts of the edge days from the
facts (``Filters.whole_days``, sixteenth round). Each must equal the same report read from
the facts only (``reports.facts_only()``), for value filters on one or several dimensions
(branch too), ranges whose bounds are receipt instants of complaints (a complaint received
exactly at ``from`` is in, one received at ``to`` is out), ranges inside one day or across
two days, and open ends.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from services.analytics import reports, synthetic, tables

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
TZ = "Asia/Shanghai"

VALUE_SETS: list[dict[str, tuple[str, ...]]] = [
    {},
    {"channel": ("phone", "web")},
    {"channel": ("phone",), "priority": ("P3",)},
    {"product_line": ("cards",), "region": ("Guangdong",)},
    {"channel": ("phone",), "priority": ("P3",), "category": ("fees_and_charges",)},
    {"region": ("Guangdong", "Beijing")},
    {"branch": ("GU007", "GU008", "BE001")},
    {"branch": ("GU007", "BE001"), "channel": ("phone",)},
]
TRENDS = [("day", None), ("week", "category"), ("month", "region"), ("month", None),
          ("day", "branch"), ("month", "product_line")]  # fmt: skip
TYPES = ("category", "product_line", "branch", "channel")
CROSSES = [("channel", "category"), ("branch", "category"), ("region", "product_line"),
           ("priority", "region")]  # fmt: skip


def _events(n: int, seed: int) -> list[Any]:
    """Every event of ``n`` complaints received over 100 days, routed and handled."""
    rng = random.Random(seed)
    plans = [
        synthetic.plan_complaint(rng, synthetic.received_instant(rng, days=100, end=NOW))
        for _ in range(n)
    ]
    return [e for p in plans for e in synthetic.complaint_events(p)]


async def _reports(session: Any, flt: reports.Filters) -> list[Any]:
    """Every trend, types and cross shape of the test for ``flt``."""
    out: list[Any] = []
    for granularity, by in TRENDS:
        out.append(
            await reports.trend(session=session, filters=flt, granularity=granularity, by=by)
        )
    for dimension in TYPES:
        got = await reports.types(session=session, filters=flt, dimension=dimension)
        out.append((got.total, got.items))
    for rows, cols in CROSSES:
        out.append(await reports.cross(session=session, filters=flt, rows=rows, cols=cols))
    return out


async def test_edge_day_ranges_equal_the_fact_pass(model_sm: Any, apply: Any) -> None:
    await apply(model_sm, _events(160, seed=131))
    async with model_sm() as session, session.begin():
        instants = sorted(
            (await session.execute(select(tables.complaint_fact.c.received_at))).scalars()
        )

    def midnight(instant: datetime) -> datetime:
        local = instant.astimezone(ZoneInfo(TZ))
        return datetime.combine(local.date(), datetime.min.time(), ZoneInfo(TZ))

    # Bounds at receipt instants (not midnights: the synthetic receipts are spread over
    # the day), so a complaint lies on each bound.
    lo, hi = instants[20], instants[140]
    same_day = [
        (a, b)
        for a, b in zip(instants, instants[3:], strict=False)
        if a.astimezone(ZoneInfo(TZ)).date() == b.astimezone(ZoneInfo(TZ)).date()
    ]
    assert same_day, "no day with four receipts"
    day_a, day_b = same_day[0]
    ranges = [
        (lo, hi),
        (lo, None),
        (None, hi),
        (day_a, day_b),  # inside one day: no whole day
        (lo, lo + timedelta(days=1)),  # across two days, no whole day between
        (lo, hi + timedelta(microseconds=1)),  # the complaint at ``hi`` now in
        (midnight(lo), hi),  # from a midnight to an instant
        (lo, midnight(hi) + timedelta(days=1)),  # from an instant to a midnight
    ]
    checked = 0
    async with model_sm() as session, session.begin():
        for values in VALUE_SETS:
            for start, end in ranges:
                flt = reports.Filters(from_=start, to=end, values=values, tz=TZ)
                assert flt.day_range() is None
                got = await _reports(session, flt)
                with reports.facts_only():
                    want = await _reports(session, flt)
                assert got == want, (values, start, end)
                checked += 1
        # The bounds are exact: the complaint received at ``from`` counts, at ``to`` not.
        at_lo = await reports.trend(
            session=session, filters=reports.Filters(from_=lo, to=hi, tz=TZ)
        )
        after_lo = await reports.trend(
            session=session,
            filters=reports.Filters(from_=lo + timedelta(microseconds=1), to=hi, tz=TZ),
        )
        to_hi = await reports.trend(
            session=session,
            filters=reports.Filters(from_=lo, to=hi + timedelta(microseconds=1), tz=TZ),
        )
        assert at_lo.total == 120 == after_lo.total + 1 == to_hi.total - 1
        inside = await reports.types(
            session=session, filters=reports.Filters(from_=day_a, to=day_b, tz=TZ)
        )
        assert inside.total == 3
    assert checked == len(VALUE_SETS) * len(ranges)


def test_whole_days_split() -> None:
    zone = ZoneInfo(TZ)
    flt = reports.Filters(
        from_=datetime(2026, 3, 1, 9, 0, tzinfo=zone),
        to=datetime(2026, 3, 4, 17, 30, tzinfo=zone),
        values={"channel": ("phone",)},
        tz=TZ,
    )
    whole, edges = flt.whole_days()
    assert whole is not None
    assert (whole.from_, whole.to) == (
        datetime(2026, 3, 2, tzinfo=zone),
        datetime(2026, 3, 4, tzinfo=zone),
    )
    assert whole.values == flt.values
    assert whole.day_range() is not None
    assert [(e.day.isoformat(), e.from_, e.to) for e in edges] == [
        ("2026-03-01", flt.from_, None),
        ("2026-03-04", None, flt.to),
    ]
    # Inside one day, and across two adjacent days: no whole day.
    one = reports.Filters(
        from_=datetime(2026, 3, 1, 9, tzinfo=zone), to=datetime(2026, 3, 1, 10, tzinfo=zone)
    )
    assert one.whole_days()[0] is None
    assert len(one.whole_days()[1]) == 1
    two = reports.Filters(
        from_=datetime(2026, 3, 1, 9, tzinfo=zone), to=datetime(2026, 3, 2, 10, tzinfo=zone)
    )
    assert two.whole_days()[0] is None
    assert len(two.whole_days()[1]) == 2
    # An open end stays open.
    open_end = reports.Filters(from_=datetime(2026, 3, 1, 9, tzinfo=zone), tz=TZ)
    whole, edges = open_end.whole_days()
    assert whole is not None
    assert whole.to is None
    assert len(edges) == 1
