"""Time reports with value filters, shapes the named benchmark does not cover.

Usage (on a database loaded by ``bench_analytics.py --keep-database``, vacuumed)::

    uv run python bench/probe_filtered_reports.py <database URL> [text in a report name]

Each report x filter set x range runs four times inside ``reports.snapshot`` (as the API
does); the median of the last three is printed when it is above 120 ms, and the shapes over
200 ms are listed at the end. Filter sets: phone + P3, phone or web, Guangdong + fees,
cards + Guangdong, phone + P3 + fees, and since the sixteenth round P1 or P2, billing (one
dimension); ranges: two years (open), one year from a local midnight, one year from
09:00. Figures of the fifteenth and sixteenth rounds: docs/analytics.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from services.analytics import reports

TZ = "Asia/Shanghai"
SETS: dict[str, dict[str, tuple[str, ...]]] = {
    "phone+P3": {"channel": ("phone",), "priority": ("P3",)},
    "phone|web": {"channel": ("phone", "web")},
    "Guangdong+fees": {"region": ("Guangdong",), "category": ("fees_and_charges",)},
    "cards+Guangdong": {"product_line": ("cards",), "region": ("Guangdong",)},
    "phone+P3+fees": {
        "channel": ("phone",), "priority": ("P3",), "category": ("fees_and_charges",)
    },
    "P1|P2": {"priority": ("P1", "P2")},
    "billing": {"department": ("billing",)},
}  # fmt: skip
Report = Callable[[AsyncSession, reports.Filters], Awaitable[Any]]
REPORTS: dict[str, Report] = {
    "trend day": lambda s, f: reports.trend(session=s, filters=f, granularity="day"),
    "trend week": lambda s, f: reports.trend(session=s, filters=f, granularity="week"),
    "trend month by region": lambda s, f: reports.trend(
        session=s, filters=f, granularity="month", by="region"
    ),
    "types": lambda s, f: reports.types(session=s, filters=f),
    "types by product_line": lambda s, f: reports.types(
        session=s, filters=f, dimension="product_line"
    ),
    "cross channel x category": lambda s, f: reports.cross(
        session=s, filters=f, rows="channel", cols="category"
    ),
    "cross branch x category": lambda s, f: reports.cross(
        session=s, filters=f, rows="branch", cols="category"
    ),
    "handling": lambda s, f: reports.handling(session=s, filters=f),
    "repeats": lambda s, f: reports.repeats(session=s, filters=f),
}


async def main(url: str, only: str | None) -> None:
    """Time every shape; print the slow ones and the count under 200 ms."""
    zone = ZoneInfo(TZ)
    today = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    year = today - timedelta(days=365)
    ranges = {"2y": None, "1y": year, "1y 9am": year + timedelta(hours=9)}
    engine = create_async_engine(url)
    over: list[tuple[str, str, str, float]] = []
    n = 0
    try:
        for name, report in REPORTS.items():
            if only and only not in name:
                continue
            for set_name, values in SETS.items():
                for range_name, start in ranges.items():
                    flt = reports.Filters(from_=start, values=values, tz=TZ)
                    times = []
                    for i in range(4):
                        async with AsyncSession(engine) as session, reports.snapshot(session):
                            t = time.perf_counter()
                            await report(session, flt)
                            if i:
                                times.append((time.perf_counter() - t) * 1000)
                    median = statistics.median(times)
                    n += 1
                    if median > 120:
                        print(f"{name:26s} {set_name:16s} {range_name:7s} {median:7.1f} ms "
                              f"(max {max(times):.1f})", flush=True)  # fmt: skip
                    if median > 200:
                        over.append((name, set_name, range_name, round(median, 1)))
    finally:
        await engine.dispose()
    print(f"{n - len(over)}/{n} under 200 ms; over: {over}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url")
    parser.add_argument("only", nargs="?", help="only reports whose name contains this text")
    args = parser.parse_args()
    asyncio.run(main(args.database_url, args.only))
