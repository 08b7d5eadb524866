"""Repeat complaints from the customer links and month cells (migrations 0008, 0010) and
the customer-ordered rows (0016), real PostgreSQL.

The links and cells kept by the triggers (over all of a customer's complaints, 0008, and
per dimension value, 0010) and the rows of ``complaint_customer_cell`` (0016) must equal a
recomputation from the fact rows after any stream (random order, duplicates, deletions, a
changed customer, receipt, category or any other filter dimension), and the report read
from them must equal the fact-table computation (``_repeats_from_facts``) without a value
filter and with one value of each of the seven filter dimensions (the links), and with
several values, several dimensions and thresholds 2 to 4 (0016), for every kind of range:
open, whole months, ranges starting or ending inside a month or inside a day, ranges
inside one month, across two months.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from services.analytics import reports, synthetic

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
TZ = "Asia/Shanghai"
TABLES = (
    "complaint_repeat_link",
    "complaint_repeat_month",
    "complaint_repeat_dim_link",
    "complaint_repeat_dim_month",
    "complaint_customer_cell",
)
#: Filter name -> fact column (as ``reports.FILTER_COLUMNS``).
DIMS = {name: col.name for name, col in reports.FILTER_COLUMNS.items()}


def _events(n: int, seed: int, customers: int = 40) -> list[Any]:
    """Receipt and routing events of ``n`` complaints over 130 days by few customers."""
    rng = random.Random(seed)
    plans = [
        synthetic.plan_complaint(
            rng, synthetic.received_instant(rng, days=130, end=NOW), customers=customers
        )
        for _ in range(n)
    ]
    return [
        e
        for p in plans
        for e in synthetic.complaint_events(p)
        if e[0] in ("complaints.received", "complaints.routed")
    ]


async def _tables(sm: Any) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    async with sm() as session, session.begin():
        for t in TABLES:
            rows = (await session.execute(text(f"SELECT * FROM analytics.{t}"))).all()
            out[t] = sorted((tuple(r) for r in rows), key=repr)
    return out


async def _assert_recomputation_equal(sm: Any) -> None:
    live = await _tables(sm)
    async with sm() as session, session.begin():
        await session.execute(text("SELECT analytics.complaint_repeat_backfill()"))
        await session.execute(text("SELECT analytics.complaint_repeat_dim_backfill()"))
        await session.execute(text("SELECT analytics.complaint_customer_cell_backfill()"))
    assert await _tables(sm) == live


def _ranges() -> list[tuple[datetime | None, datetime | None]]:
    zone = ZoneInfo(TZ)
    at = lambda m, d, h=0, mi=0: datetime(2026, m, d, h, mi, tzinfo=zone)  # noqa: E731
    return [
        (None, None),
        (at(8, 1), at(11, 1)),  # whole months
        (at(8, 1), None),
        (None, at(10, 1)),
        (at(8, 17), None),  # starts inside a month
        (None, at(10, 12)),  # ends inside a month
        (at(8, 17), at(10, 12)),
        (at(8, 17, 9, 30), at(10, 12, 15)),  # inside days
        (at(9, 3), at(9, 25)),  # inside one month
        (at(9, 3, 10), at(9, 3, 18)),  # inside one day
        (at(9, 20), at(10, 9)),  # across two months, no whole month
        (at(9, 1, 0, 1), at(11, 1)),  # one minute after a month start
        (at(7, 1), at(12, 1, 9)),
    ]


async def _assert_reports_equal(sm: Any) -> int:
    seen = 0
    async with sm() as session, session.begin():
        for lo, hi in _ranges():
            flt = reports.Filters(from_=lo, to=hi, tz=TZ)
            got = await reports.repeats(session=session, filters=flt)
            want = await reports._repeats_from_facts(session=session, filters=flt)
            assert got == want, (lo, hi)
            assert list(got.by_category) == list(want.by_category), (lo, hi)
            seen += got.repeat_customers
    return seen


async def _common_values(sm: Any, per_dim: int = 2) -> dict[str, list[str]]:
    """The ``per_dim`` values of each filter dimension with the most repeat pairs."""
    out: dict[str, list[str]] = {}
    async with sm() as session, session.begin():
        for name, col in DIMS.items():
            rows = await session.execute(
                text(
                    f"SELECT {col} FROM analytics.complaint_fact WHERE {col} IS NOT NULL "
                    f"GROUP BY {col} ORDER BY count(*) - count(DISTINCT customer_key) DESC, "
                    f"{col} LIMIT :k"
                ),
                {"k": per_dim},
            )
            out[name] = [r[0] for r in rows]
    return out


async def _assert_filtered_reports_equal(sm: Any) -> int:
    """Several values, several dimensions, ``min_complaints`` 2 and 3: the customer cells
    of 0016 (and the fact pass with a branch) equal the facts over every range."""
    common = await _common_values(sm)
    shapes: list[dict[str, tuple[str, ...]]] = [
        {},
        {"channel": tuple(common["channel"])},
        {"category": tuple(common["category"])},
        {"channel": tuple(common["channel"][:1]), "priority": tuple(common["priority"][:1])},
        {"channel": tuple(common["channel"]), "region": tuple(common["region"][:1]),
         "department": tuple(common["department"])},
        {"product_line": tuple(common["product_line"][:1]),
         "category": tuple(common["category"])},
        {"channel": ("no-such-channel", *common["channel"][:1]),
         "priority": tuple(common["priority"])},
        {"channel": ("no-such-channel",), "priority": tuple(common["priority"])},
        {"branch": tuple(common["branch"][:1]), "channel": tuple(common["channel"])},
    ]  # fmt: skip
    seen = 0
    async with sm() as session, session.begin():
        for values in shapes:
            for lo, hi in _ranges():
                for m in (2, 3, 4):
                    if m == 2 and len(values) == 1 and len(next(iter(values.values()))) == 1:
                        continue  # the 0010 links (tested above)
                    flt = reports.Filters(from_=lo, to=hi, values=values, tz=TZ)
                    got = await reports.repeats(session=session, filters=flt, min_complaints=m)
                    want = await reports._repeats_from_facts(
                        session=session, filters=flt, min_complaints=m
                    )
                    assert got == want, (values, lo, hi, m)
                    assert list(got.by_category) == list(want.by_category), (values, lo, hi, m)
                    seen += got.repeat_customers
    return seen


async def _assert_value_reports_equal(sm: Any) -> dict[str, int]:
    """Per dimension: one value filter equals the facts over every range; repeat customers."""
    seen: dict[str, int] = {}
    values = await _common_values(sm)
    async with sm() as session, session.begin():
        for name, some in values.items():
            for value in [*some, "no-such-value"]:
                for lo, hi in _ranges():
                    flt = reports.Filters(from_=lo, to=hi, values={name: (value,)}, tz=TZ)
                    got = await reports.repeats(session=session, filters=flt)
                    want = await reports._repeats_from_facts(session=session, filters=flt)
                    assert got == want, (name, value, lo, hi)
                    assert list(got.by_category) == list(want.by_category), (name, value, lo, hi)
                    seen[name] = seen.get(name, 0) + got.repeat_customers
    return seen


async def test_links_equal_a_recomputation_and_reports_equal_the_facts(
    model_sm: Any, apply: Any
) -> None:
    events = _events(260, seed=31, customers=120)
    shuffled = events * 2
    random.Random(3).shuffle(shuffled)
    await apply(model_sm, shuffled)
    live = await _tables(model_sm)
    assert live["complaint_repeat_link"]
    assert any(r[0] == 3 for r in live["complaint_repeat_month"]), "triples exist"
    await _assert_recomputation_equal(model_sm)
    assert await _assert_reports_equal(model_sm) > 0
    seen = await _assert_value_reports_equal(model_sm)
    assert all(seen[name] > 0 for name in ("channel", "category", "priority")), seen
    # The whole-range report counts what the facts hold.
    async with model_sm() as session, session.begin():
        full = await reports.repeats(session=session, filters=reports.Filters(tz=TZ))
        n = (
            await session.execute(
                text(
                    "SELECT count(*) FROM analytics.complaint_fact "
                    "WHERE customer_key IS NOT NULL AND received_day IS NOT NULL"
                )
            )
        ).scalar_one()
    assert full.complaints == n
    assert 0 < full.repeat_customers < full.customers


async def test_links_follow_changes_and_deletions(model_sm: Any, apply: Any) -> None:
    await apply(model_sm, _events(160, seed=37, customers=25))
    async with model_sm() as session, session.begin():
        ids = [
            r[0]
            for r in await session.execute(
                text("SELECT complaint_id FROM analytics.complaint_fact ORDER BY complaint_id")
            )
        ]
        # Another customer, another receipt (one day earlier), another category, a lost
        # customer key, every other filter dimension changed or lost (routing changes
        # several at once), and deletions.
        changes = [
            ("SET customer_key = 'cus_1'", ids[0:10]),
            ("SET received_at = received_at - interval '1 day', received_day = received_day - 1",
             ids[10:20]),
            ("SET category = NULL", ids[20:30]),
            ("SET category = 'privacy'", ids[30:40]),
            ("SET customer_key = NULL", ids[40:45]),
            ("SET channel = 'web'", ids[70:80]),
            ("SET channel = NULL", ids[80:83]),
            ("SET product_line = 'cards', priority = 'P1', department = 'billing', "
             "category = 'billing_dispute'", ids[83:95]),
            ("SET product_line = NULL, priority = NULL, department = NULL", ids[95:100]),
            ("SET region = 'Zhejiang', branch_code = 'ZH001'", ids[100:120]),
            ("SET branch_code = NULL", ids[120:124]),
            ("SET customer_key = 'cus_2', branch_code = 'ZH001', channel = 'phone'",
             ids[124:130]),
            ("SET category = ''", ids[130:136]),  # an empty label is a label, not NULL
        ]  # fmt: skip
        for change, some in changes:
            await session.execute(
                text(f"UPDATE analytics.complaint_fact {change} WHERE complaint_id = ANY(:i)"),
                {"i": some},
            )
        await session.execute(
            text("DELETE FROM analytics.complaint_fact WHERE complaint_id = ANY(:i)"),
            {"i": ids[45:70]},
        )
    await _assert_recomputation_equal(model_sm)
    assert await _assert_reports_equal(model_sm) > 0
    seen = await _assert_value_reports_equal(model_sm)
    assert all(seen[name] > 0 for name in ("channel", "region", "branch")), seen
    assert await _assert_filtered_reports_equal(model_sm) > 0
    # Deleting every fact empties the tables (cells at 0 are removed).
    async with model_sm() as session, session.begin():
        await session.execute(text("DELETE FROM analytics.complaint_fact"))
    assert await _tables(model_sm) == {t: [] for t in TABLES}


async def test_other_thresholds_and_several_values_equal_the_facts(
    model_sm: Any, apply: Any
) -> None:
    """``min_complaints`` > 2, several values and several dimensions (the customer cells of
    0016) equal the fact pass, and a threshold above 2 finds fewer repeat customers."""
    await apply(model_sm, _events(160, seed=41, customers=60))
    await _assert_recomputation_equal(model_sm)
    assert await _assert_filtered_reports_equal(model_sm) > 0
    async with model_sm() as session, session.begin():
        flt = reports.Filters(tz=TZ)
        three = await reports.repeats(session=session, filters=flt, min_complaints=3)
        two = await reports.repeats(session=session, filters=flt)
        assert 0 < three.repeat_customers < two.repeat_customers
        assert three.customers == two.customers
        assert three.complaints == two.complaints
