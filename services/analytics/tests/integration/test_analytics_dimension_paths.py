"""Trend and types from the per-dimension totals (0006/0007) equal the fact computation.

Trend with a value filter on one of the seven filter dimensions, or grouped by one of them
without a filter (or both on the same dimension), and types by one of them, read
``complaint_day_dim_totals`` for whole-day ranges; types and cross analysis with a product
line or region filter read the facts through 0009's covering indexes. Each is compared with
the same report over a range that starts one microsecond later, read from the facts only
(``reports.facts_only()``; no complaint arrives in that microsecond), on real PostgreSQL.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.analytics import reports, synthetic, tables
from shared.events.registry import COMPLAINTS_RECEIVED

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
TZ = "Asia/Shanghai"


async def _facts(report: Any, **kwargs: Any) -> Any:
    """``report`` read from the facts only (the reference)."""
    with reports.facts_only():
        return await report(**kwargs)


def _events(n: int, seed: int) -> list[Any]:
    rng = random.Random(seed)
    plans = [
        synthetic.plan_complaint(rng, synthetic.received_instant(rng, days=75, end=NOW))
        for _ in range(n)
    ]
    events = [e for p in plans[10:] for e in synthetic.complaint_events(p)]
    # Ten complaints only received (not routed): category, product line, department and
    # priority NULL ("unclassified" / "unknown" in the reports).
    received = [synthetic.complaint_events(p)[0] for p in plans[:10]]
    assert all(topic == COMPLAINTS_RECEIVED for topic, _ in received)
    return events + received


#: One or more values per filter dimension (a value no complaint has, too).
VALUES = {
    "channel": [("phone",), ("web", "branch"), ("nope",)],
    "category": [("fees_and_charges",), ("privacy", "other")],
    "product_line": [("cards",), ("loans", "wealth"), ("nope",)],
    "department": [("billing",)],
    "priority": [("P3",), ("P1", "P2")],
    "region": [("Guangdong",), ("Beijing", "Hubei"), ("nope",)],
    "branch": [("GU007", "GU008", "BE001"), ("nope",)],
}


async def test_trend_and_types_from_dimension_totals_equal_the_facts(
    model_sm: Any, apply: Any
) -> None:
    await apply(model_sm, _events(150, seed=21))
    zone = ZoneInfo(TZ)
    ranges = [
        (datetime(2026, 9, 1, tzinfo=zone), datetime(2026, 11, 21, tzinfo=zone)),
        (datetime(2026, 10, 15, tzinfo=zone), datetime(2026, 11, 2, tzinfo=zone)),
        (datetime(2026, 10, 30, tzinfo=zone), None),
    ]
    served = 0
    async with model_sm() as session, session.begin():
        for lo, hi in ranges:

            def pair(
                values: dict[str, tuple[str, ...]], lo: datetime = lo, hi: datetime | None = hi
            ) -> tuple[Any, Any]:
                whole = reports.Filters(from_=lo, to=hi, values=values, tz=TZ)
                facts = reports.Filters(
                    from_=lo + timedelta(microseconds=1), to=hi, values=values, tz=TZ
                )
                assert facts.day_range() is None
                return whole, facts

            # Grouped by each of the seven dimensions, no filter.
            whole, facts = pair({})
            for dim in tables.DIM_SUMMARY_DIMENSIONS:
                assert reports._dim_totals_source(whole, dim) is not None
                for g in ("day", "week", "month"):
                    t1 = await reports.trend(session=session, filters=whole, granularity=g, by=dim)
                    t2 = await _facts(
                        reports.trend, session=session, filters=facts, granularity=g, by=dim
                    )
                    assert t1 == t2
                    assert t1.total > 0
                y1 = await reports.types(session=session, filters=whole, dimension=dim)
                y2 = await _facts(reports.types, session=session, filters=facts, dimension=dim)
                assert (y1.total, y1.items) == (y2.total, y2.items)
            # One filter dimension: trend (without by, or by the same dimension); types by
            # category (product line, region: the covering indexes) and by the filter's
            # dimension; cross analysis.
            for dim, value_sets in VALUES.items():
                for accepted in value_sets:
                    whole, facts = pair({dim: accepted})
                    assert reports._dim_totals_source(whole, None) is not None
                    served += 1
                    for g in ("day", "week", "month"):
                        for by in (None, dim):
                            t1 = await reports.trend(
                                session=session, filters=whole, granularity=g, by=by
                            )
                            t2 = await _facts(
                                reports.trend, session=session, filters=facts, granularity=g, by=by
                            )
                            assert t1 == t2
                    for dimension in ("category", dim):
                        y1 = await reports.types(
                            session=session, filters=whole, dimension=dimension
                        )
                        y2 = await _facts(
                            reports.types, session=session, filters=facts, dimension=dimension
                        )
                        assert (y1.total, y1.items) == (y2.total, y2.items)
                    c1 = await reports.cross(
                        session=session, filters=whole, rows="channel", cols="category"
                    )
                    c2 = await _facts(
                        reports.cross,
                        session=session,
                        filters=facts,
                        rows="channel",
                        cols="category",
                    )
                    assert c1 == c2
        # Two filter dimensions, or a filter with another grouping: not this path.
        two = reports.Filters(values={"region": ("Beijing",), "channel": ("web",)}, tz=TZ)
        assert reports._dim_totals_source(two, None) is None
        other = reports.Filters(values={"region": ("Beijing",)}, tz=TZ)
        assert reports._dim_totals_source(other, "channel") is None
    assert served > 10
