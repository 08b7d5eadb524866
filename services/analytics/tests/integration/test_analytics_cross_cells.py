"""Cross analysis from the month cells per pair of migration 0012, real PostgreSQL.

The cells (per pair of dimensions with product line, region or branch: 15 pairs; local
receipt month and the two values: complaints, resolution clocks done and on time) kept by
the row trigger must equal a recomputation from the fact rows after any stream (random
order, redelivery) and any change (every one of the seven dimensions, several at once, the
receipt day across a month, the clocks, a receipt learnt late, deletions); and cross
analysis read from them must equal the pass over the facts (``_cross_from_facts``) for
every one of the 15 pairs both ways round over whole months, ranges starting and ending
inside months, open ranges, single days, ranges inside one month or across two, with the
bank time zone's day (and month) boundaries. After the same changes, the handling pair
summaries of 0014 kept by their trigger must equal their backfill.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from services.analytics import reports, synthetic, tables

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
TZ = "Asia/Shanghai"
PAIRS = tables.CROSS_PAIRS
COLUMNS = tables.CROSS_PAIR_DIMENSIONS
PAIR_SUMMARIES = ("complaint_month_pair_totals", "complaint_month_pair_remedy",
                  "complaint_month_pair_hist")  # fmt: skip


def _events(n: int, seed: int) -> list[Any]:
    """Every event (receipt, routing, case, clocks, follow-up) of ``n`` complaints, 130 days."""
    rng = random.Random(seed)
    plans = [
        synthetic.plan_complaint(rng, synthetic.received_instant(rng, days=130, end=NOW))
        for _ in range(n)
    ]
    return [e for p in plans for e in synthetic.complaint_events(p)]


async def _cells(sm: Any) -> list[tuple[Any, ...]]:
    async with sm() as session, session.begin():
        rows = (await session.execute(text("SELECT * FROM analytics.complaint_month_pair"))).all()
    return sorted((tuple(r) for r in rows), key=repr)


async def _pair_summaries(sm: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the handling pair summaries (0014), per table, sorted."""
    out = {}
    async with sm() as session, session.begin():
        for table in PAIR_SUMMARIES:
            rows = (await session.execute(text(f"SELECT * FROM analytics.{table}"))).all()
            out[table] = sorted((tuple(r) for r in rows), key=repr)
    return out


async def _assert_cells_recomputed_equal(sm: Any) -> list[tuple[Any, ...]]:
    """The live cells equal an independent GROUP BY over the facts and the backfill; the
    handling pair summaries kept by their trigger (0014) equal their backfill."""
    live = await _cells(sm)
    pair_summaries = await _pair_summaries(sm)
    assert pair_summaries["complaint_month_pair_totals"]
    reference = []
    async with sm() as session, session.begin():
        for a, b in PAIRS:
            rows = await session.execute(
                text(
                    f"SELECT '{a}:{b}', date_trunc('month', received_day)::date, "
                    f"{COLUMNS[a]}, {COLUMNS[b]}, "
                    "count(*), sum(res_clocks_done), sum(res_clocks_on_time) "
                    "FROM analytics.complaint_fact WHERE received_day IS NOT NULL "
                    "GROUP BY 2, 3, 4"
                )
            )
            reference += [tuple(r) for r in rows]
    assert live == sorted(reference, key=repr)
    async with sm() as session, session.begin():
        await session.execute(text("SELECT analytics.complaint_summary_backfill()"))
    assert await _cells(sm) == live
    assert await _pair_summaries(sm) == pair_summaries
    return live


def _ranges() -> list[tuple[datetime | None, datetime | None]]:
    """Day-aligned ranges (local midnights of the bank's zone) of every shape."""
    zone = ZoneInfo(TZ)
    at = lambda m, d: datetime(2026, m, d, tzinfo=zone)  # noqa: E731
    return [
        (None, None),  # open
        (at(8, 1), at(11, 1)),  # whole months
        (at(8, 1), None),
        (None, at(10, 1)),
        (at(8, 17), None),  # starts inside a month, open end
        (None, at(10, 12)),  # open start, ends inside a month
        (at(8, 17), at(10, 12)),  # both edges inside months
        (at(7, 31), at(11, 2)),  # one-day edges
        (at(9, 3), at(9, 25)),  # inside one month
        (at(9, 20), at(10, 9)),  # across two months, no whole month
        (at(9, 30), at(10, 1)),  # a single day (the last of a month)
        (at(10, 1), at(10, 2)),  # a single day (the first of a month)
        (at(9, 1), at(10, 1)),  # one whole month
        (at(6, 1), at(12, 1)),  # beyond the data
    ]


async def _assert_reports_equal(sm: Any) -> int:
    """Cross analysis from the cells equals the fact pass; returns the complaints seen."""
    seen = 0
    async with sm() as session, session.begin():
        for lo, hi in _ranges():
            flt = reports.Filters(from_=lo, to=hi, tz=TZ)
            for a, b in PAIRS:
                for rows, cols in ((a, b), (b, a)):
                    assert reports._cross_cells(flt, rows, cols) is not None, (rows, cols, lo, hi)
                    got = await reports.cross(session=session, filters=flt, rows=rows, cols=cols)
                    want = await reports._cross_from_facts(
                        session=session, filters=flt, rows=rows, cols=cols
                    )
                    assert got == want, (rows, cols, lo, hi)
                    seen += got.total
    return seen


async def test_cells_equal_a_recomputation_and_cross_equals_the_facts(
    model_sm: Any, apply: Any
) -> None:
    events = _events(110, seed=61)
    redelivered = events + random.Random(5).sample(events, len(events) // 2)
    random.Random(7).shuffle(redelivered)
    await apply(model_sm, redelivered)
    cells = await _assert_cells_recomputed_equal(model_sm)
    assert {c[0] for c in cells} == {f"{a}:{b}" for a, b in PAIRS}
    assert len(PAIRS) == 15
    assert sum(c[5] for c in cells) > 0, "clocks counted"
    assert sum(c[6] for c in cells) > 0, "on-time clocks counted"
    assert len({c[1] for c in cells}) >= 4, "several months"
    assert await _assert_reports_equal(model_sm) > 0
    async with model_sm() as session, session.begin():
        full = await reports.cross(
            session=session, filters=reports.Filters(tz=TZ), rows="branch", cols="category"
        )
        n = (
            await session.execute(
                text("SELECT count(*) FROM analytics.complaint_fact WHERE received_day IS NOT NULL")
            )
        ).scalar_one()
    assert full.total == n == 110
    assert any(c.resolved_clocks for c in full.cells)


async def test_cells_follow_every_change_and_deletions(model_sm: Any, apply: Any) -> None:
    await apply(model_sm, _events(90, seed=67))
    async with model_sm() as session, session.begin():
        ids = [
            r[0]
            for r in await session.execute(
                text("SELECT complaint_id FROM analytics.complaint_fact ORDER BY complaint_id")
            )
        ]
        # Receipts at the zone's month boundary: 16:30 UTC on 30 September is 00:30 on
        # 1 October in Shanghai (October's cell), 15:30 UTC is still 30 September.
        changes = [
            ("SET received_at = '2026-09-30 16:30Z', received_day = '2026-10-01'", ids[0:6]),
            ("SET received_at = '2026-09-30 15:30Z', received_day = '2026-09-30'", ids[6:12]),
            ("SET received_at = received_at - interval '40 days', "
             "received_day = received_day - 40", ids[12:20]),
            ("SET category = 'privacy'", ids[20:28]),
            ("SET category = NULL", ids[28:32]),
            ("SET product_line = 'cards'", ids[32:38]),
            ("SET product_line = NULL", ids[38:41]),
            ("SET region = 'Zhejiang', branch_code = 'ZH001'", ids[41:46]),
            ("SET channel = 'web'", ids[46:47]),
            ("SET department = 'card_services', priority = 'P1'", ids[47:48]),
            ("SET branch_code = NULL, region = NULL, channel = NULL, department = NULL, "
             "priority = NULL", ids[48:51]),
            ("SET res_clocks_done = res_clocks_done + 2, "
             "res_clocks_on_time = res_clocks_on_time + 1", ids[51:58]),
            ("SET res_clocks_done = 0, res_clocks_on_time = 0", ids[58:62]),
            ("SET category = 'billing_dispute', product_line = 'cards', region = 'Beijing', "
             "branch_code = 'BE002', res_clocks_done = 1, res_clocks_on_time = 1", ids[62:64]),
            ("SET channel = 'branch', department = 'retail', priority = 'P2', "
             "received_day = received_day + 31, received_at = received_at + interval '31 days'",
             ids[64:66]),
            ("SET received_day = NULL", ids[66:68]),  # receipt not known (yet)
            ("SET status = 'closed', escalation_count = 3", ids[68:72]),  # no cell change
            # Inputs of the handling pair summaries only (0014): totals, remedies, buckets.
            ("SET remedy = 'refund', compensation_minor = 12345, "
             "resolution_seconds = resolution_seconds + 5400, "
             "resolution_working_days = resolution_working_days + 1.5", ids[80:84]),
            ("SET remedy = NULL, compensation_minor = 0, ack_seconds = NULL", ids[84:86]),
        ]  # fmt: skip
        for change, some in changes:
            await session.execute(
                text(f"UPDATE analytics.complaint_fact {change} WHERE complaint_id = ANY(:i)"),
                {"i": some},
            )
        await session.execute(
            text("DELETE FROM analytics.complaint_fact WHERE complaint_id = ANY(:i)"),
            {"i": ids[72:80]},
        )
    await _assert_cells_recomputed_equal(model_sm)
    assert await _assert_reports_equal(model_sm) > 0
    async with model_sm() as session, session.begin():
        # The receipt learnt late counts again.
        await session.execute(
            text(
                "UPDATE analytics.complaint_fact SET received_day = '2026-10-01' "
                "WHERE complaint_id = ANY(:i)"
            ),
            {"i": ids[66:68]},
        )
        october = reports.Filters(
            from_=datetime(2026, 10, 1, tzinfo=ZoneInfo(TZ)),
            to=datetime(2026, 10, 2, tzinfo=ZoneInfo(TZ)),
            tz=TZ,
        )
        day = await reports.cross(session=session, filters=october, rows="region", cols="category")
    assert day.total >= 8  # the 6 moved across the boundary and the 2 learnt late
    cells = await _assert_cells_recomputed_equal(model_sm)
    assert any(c[1] == date(2026, 10, 1) for c in cells)
    assert await _assert_reports_equal(model_sm) > 0
    # Deleting every fact empties the cells (cells at 0 are removed).
    async with model_sm() as session, session.begin():
        await session.execute(text("DELETE FROM analytics.complaint_fact"))
    assert await _cells(model_sm) == []


async def test_other_shapes_keep_their_paths(model_sm: Any, apply: Any) -> None:
    """Value filters with branch or without a whole month, ranges inside a day and the
    day-summary pairs keep their paths."""
    await apply(model_sm, _events(60, seed=71))
    zone = ZoneInfo(TZ)
    cases = [
        (reports.Filters(values={"region": ("Guangdong",)}, tz=TZ), "region", "branch"),
        (reports.Filters(from_=datetime(2026, 9, 3, tzinfo=zone),
                         to=datetime(2026, 9, 25, tzinfo=zone),
                         values={"region": ("Guangdong",)}, tz=TZ), "region", "category"),
        (reports.Filters(values={"category": ("privacy",)}, tz=TZ), "category", "branch"),
        (reports.Filters(values={"channel": ("phone",)}, tz=TZ), "branch", "channel"),
        (reports.Filters(from_=datetime(2026, 9, 3, 9, 30, tzinfo=zone), tz=TZ),
         "product_line", "region"),
        (reports.Filters(to=datetime(2026, 10, 3, 18, 0, tzinfo=zone), tz=TZ),
         "priority", "branch"),
        (reports.Filters(tz=TZ), "channel", "department"),  # complaint_day_dims' pair
        (reports.Filters(tz=TZ), "product_line", "status"),  # not a cross dimension pair
    ]  # fmt: skip
    async with model_sm() as session, session.begin():
        for flt, rows, cols in cases:
            assert reports._cross_cells(flt, rows, cols) is None, (flt, rows, cols)
            got = await reports.cross(session=session, filters=flt, rows=rows, cols=cols)
            want = await reports._cross_from_facts(
                session=session, filters=flt, rows=rows, cols=cols
            )
            assert got == want, (flt, rows, cols)
        # channel x category keeps complaint_day_dims; it agrees with the facts too.
        flt = reports.Filters(tz=TZ)
        got = await reports.cross(session=session, filters=flt, rows="channel", cols="category")
        assert got == await reports._cross_from_facts(
            session=session, filters=flt, rows="channel", cols="category"
        )
        assert got.total == 60


async def test_trend_by_month_from_the_cells_equals_the_facts(model_sm: Any, apply: Any) -> None:
    """A monthly trend by product line, region or branch read from the pair cells (whole
    months) and the per-dimension day totals (edge months) equals a count over the facts."""
    await apply(model_sm, _events(90, seed=83))
    zone = ZoneInfo(TZ)
    checked = 0
    async with model_sm() as session, session.begin():
        for lo, hi in _ranges():
            flt = reports.Filters(from_=lo, to=hi, tz=TZ)
            for by in ("branch", "region", "product_line"):
                assert reports._trend_month_cells(flt, "month", by) is not None, (by, lo, hi)
                got = await reports.trend(session=session, filters=flt, granularity="month", by=by)
                rows = await session.execute(
                    text(
                        "SELECT to_char(received_day, 'YYYY-MM'), "
                        f"coalesce({COLUMNS[by]}, 'unknown'), count(*) "
                        "FROM analytics.complaint_fact WHERE received_day IS NOT NULL "
                        "AND (CAST(:lo AS date) IS NULL OR received_day >= :lo) "
                        "AND (CAST(:hi AS date) IS NULL OR received_day < :hi) GROUP BY 1, 2"
                    ),
                    {
                        "lo": lo.astimezone(zone).date() if lo else None,
                        "hi": hi.astimezone(zone).date() if hi else None,
                    },
                )
                want = sorted((p, v, int(n)) for p, v, n in rows)
                assert sorted((i.period, i.by, i.count) for i in got.items) == want, (by, lo, hi)
                checked += got.total
        # Other shapes keep their paths: weeks, a value filter, a range inside a day.
        assert reports._trend_month_cells(reports.Filters(tz=TZ), "week", "branch") is None
        assert (
            reports._trend_month_cells(
                reports.Filters(tz=TZ, values={"channel": ["phone"]}), "month", "branch"
            )
            is None
        )
        noon = datetime(2026, 9, 3, 12, 0, tzinfo=zone)
        assert (
            reports._trend_month_cells(reports.Filters(from_=noon, tz=TZ), "month", "branch")
            is None
        )
    assert checked > 0


async def test_cross_with_value_filters_from_the_cell_months_equals_the_facts(
    model_sm: Any, apply: Any
) -> None:
    """Value filters on the six cell dimensions (0015): cross analysis of two of them from
    the monthly cell summaries plus the edge days from the facts equals the fact pass, for
    one, two and three filters with one or several values, over every range shape, after a
    random order with redelivery and a reclassification into combinations never met."""
    events = _events(120, seed=67)
    redelivered = events + random.Random(3).sample(events, len(events) // 3)
    random.Random(9).shuffle(redelivered)
    await apply(model_sm, redelivered)
    async with model_sm() as session, session.begin():
        await session.execute(
            text(
                "UPDATE analytics.complaint_fact SET region = 'Xizang', category = 'privacy' "
                "WHERE complaint_id IN (SELECT complaint_id FROM analytics.complaint_fact "
                "ORDER BY complaint_id LIMIT 15)"
            )
        )
    filter_sets = [
        {"region": ("Guangdong", "Xizang")},
        {"channel": ("phone", "web"), "priority": ("P3",)},
        {"category": ("fees_and_charges", "privacy"), "channel": ("phone",), "region": ("Xizang",)},
        {"product_line": ("cards",)},
    ]
    axes = [("region", "category"), ("channel", "product_line"), ("priority", "department")]
    seen = served = 0
    async with model_sm() as session, session.begin():
        for values in filter_sets:
            for lo, hi in _ranges():
                flt = reports.Filters(from_=lo, to=hi, values=values, tz=TZ)
                for rows, cols in axes:
                    for r, c in ((rows, cols), (cols, rows)):
                        served += reports._cross_cells(flt, r, c) is not None
                        got = await reports.cross(session=session, filters=flt, rows=r, cols=c)
                        want = await reports._cross_from_facts(
                            session=session, filters=flt, rows=r, cols=c
                        )
                        assert got == want, (values, lo, hi, r, c)
                        seen += got.total
    assert seen > 0
    assert served > 0


async def test_trend_by_month_with_value_filters_from_the_cell_months_equals_the_facts(
    model_sm: Any, apply: Any
) -> None:
    """A monthly trend with value filters on the six cell dimensions, grouped by one of them
    or not, read from the cell months of 0015 and the facts of the edge months, equals the
    fact pass (``reports.facts_only``) over every range shape."""
    await apply(model_sm, _events(120, seed=97))
    value_sets: list[dict[str, tuple[str, ...]]] = [
        {"channel": ("phone", "web")},
        {"channel": ("phone",), "priority": ("P3",)},
        {"product_line": ("cards",), "region": ("Guangdong",)},
        {"region": ("Guangdong", "Beijing"), "category": ("fees_and_charges", "privacy")},
        {"channel": ("nope",), "region": ("Guangdong",)},
    ]
    served = seen = 0
    async with model_sm() as session, session.begin():
        for lo, hi in _ranges():
            for values in value_sets:
                flt = reports.Filters(from_=lo, to=hi, values=values, tz=TZ)
                for by in ("region", "product_line", "category", "channel", None):
                    # By region or product line (not day-summary dimensions, and never a
                    # one-filter per-dimension total here) the cells are what is read.
                    cells = reports._trend_month_cells(flt, "month", by)
                    served += by in ("region", "product_line") and cells is not None
                    got = await reports.trend(
                        session=session, filters=flt, granularity="month", by=by
                    )
                    with reports.facts_only():
                        want = await reports.trend(
                            session=session, filters=flt, granularity="month", by=by
                        )
                    assert got == want, (values, by, lo, hi)
                    seen += got.total
        # A branch grouping or filter is not a cell dimension: not this path.
        phone = reports.Filters(values={"channel": ("phone",)}, tz=TZ)
        assert reports._trend_month_cells(phone, "month", "branch") is None
        branch = reports.Filters(values={"branch": ("GU007",), "channel": ("phone",)}, tz=TZ)
        assert reports._trend_month_cells(branch, "month", "region") is None
    assert served > 40
    assert seen > 0
