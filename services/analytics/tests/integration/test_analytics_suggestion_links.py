"""Suggestion participants from the previous-suggestion links (migration 0013), real PostgreSQL.

The links kept by the trigger ``suggestion_fact_link`` must equal a recomputation from the
fact rows (``suggestion_link_backfill``) after any stream (random order, redelivery, a
corrected receipt instant, a changed or lost customer, ties on the receipt instant,
deletions, concurrent writers of one customer), and every figure of the suggestions report
must equal a direct computation over ``suggestion_fact`` (``count(DISTINCT customer_key)``
for the participants) for open, bounded and partial ranges, ranges bounded exactly at a
receipt instant shared by several suggestions, without a value filter and with each filter.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from services.analytics import reports, synthetic
from shared.events.registry import SUGGESTIONS_RECEIVED

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
TZ = "Asia/Shanghai"
#: Report filter -> ``suggestion_fact`` column.
FILTERS = {
    "channel": "channel",
    "category": "category",
    "department": "department",
    "branch": "branch_code",
    "product_line": "product_line",
}


def _events(n: int, seed: int, customers: int) -> list[Any]:
    """Every event of ``n`` suggestions over 130 days by few customers, plus corrections.

    One suggestion in ten also gets a corrected receipt (another ``suggestions.received``
    with an instant two days earlier or equal to another suggestion's instant): whichever
    the stream applies last wins, so the receipt instants change under the links.
    """
    rng = random.Random(seed)
    out: list[Any] = []
    instants: list[datetime] = []
    keys: list[str] = []
    for _ in range(n):
        tie = instants and rng.random() < 0.15
        j = rng.randrange(len(instants)) if tie else -1
        at = instants[j] if tie else synthetic.received_instant(rng, days=130, end=NOW)
        events = synthetic.suggestion_events(rng, at, customers=customers)
        if tie:  # a tie on the receipt instant, by the same customer
            same = {"customer_key": keys[j]}
            events = [
                (t, e.model_copy(update={"data": e.data.model_copy(update=same)}))
                for t, e in events
            ]
        instants.append(at)
        keys.append(events[0][1].data.customer_key)
        out += events
        if rng.random() < 0.1:
            topic, first = events[0]
            assert topic == SUGGESTIONS_RECEIVED
            moved = rng.choice([at - timedelta(days=2), rng.choice(instants)])
            data = first.data.model_copy(update={"received_at": moved})
            out.append((topic, first.model_copy(update={"id": str(uuid.uuid4()), "data": data})))
    return out


async def _links(sm: Any) -> list[tuple[Any, ...]]:
    async with sm() as session, session.begin():
        rows = (await session.execute(text("SELECT * FROM analytics.suggestion_link"))).all()
    return sorted((tuple(r) for r in rows), key=repr)


async def _assert_recomputation_equal(sm: Any) -> list[tuple[Any, ...]]:
    live = await _links(sm)
    async with sm() as session, session.begin():
        await session.execute(text("SELECT analytics.suggestion_link_backfill()"))
    assert await _links(sm) == live
    return live


async def _direct(
    session: Any,
    from_: datetime | None,
    to: datetime | None,
    values: dict[str, tuple[str, ...]],
) -> dict[str, Any]:
    """Every figure of the report straight from ``suggestion_fact`` (the reference)."""
    conds = ["received_at IS NOT NULL"]
    params: dict[str, Any] = {}
    if from_ is not None:
        conds.append("received_at >= :lo")
        params["lo"] = from_
    if to is not None:
        conds.append("received_at < :hi")
        params["hi"] = to
    for i, (name, accepted) in enumerate(values.items()):
        conds.append(f"{FILTERS[name]} = ANY(:v{i})")
        params[f"v{i}"] = list(accepted)
    where = " AND ".join(conds)
    days = "extract(epoch FROM implemented_at - decided_at) / 86400.0"
    m = (
        await session.execute(
            text(
                f"""
SELECT count(*) AS n, count(DISTINCT customer_key) AS participants,
       count(decision) AS screened,
       count(*) FILTER (WHERE decision IN ('adopted', 'declined')) AS evaluated,
       count(*) FILTER (WHERE decision = 'adopted') AS adopted,
       count(*) FILTER (WHERE decision = 'declined') AS declined,
       count(implemented_at) AS implemented,
       count({days}) AS d_n, avg({days}) AS d_mean,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY {days}) AS d_p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY {days}) AS d_p90,
       count(implemented_on_time) AS planned,
       count(*) FILTER (WHERE implemented_on_time) AS on_time
FROM analytics.suggestion_fact WHERE {where}"""
            ),
            params,
        )
    ).one()
    rw = (
        await session.execute(
            text(
                "SELECT count(r.*), count(DISTINCT r.suggestion_id), "
                "coalesce(sum(r.amount_minor), 0) FROM analytics.suggestion_fact "
                "JOIN analytics.suggestion_reward_fact r USING (suggestion_id) "
                f"WHERE {where}"
            ),
            params,
        )
    ).one()
    channels = (
        await session.execute(
            text(
                "SELECT coalesce(channel, 'unknown'), count(*) FROM analytics.suggestion_fact "
                f"WHERE {where} GROUP BY 1"
            ),
            params,
        )
    ).all()

    def rate(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None  # reports._rate: 0..1, 4 digits

    def r2(v: Any) -> float | None:
        return None if v is None else round(float(v), 2)

    return {
        "suggestions": m.n,
        "participants": m.participants,
        "screened": m.screened,
        "screened_in": m.adopted + m.declined,
        "screened_in_rate": rate(m.adopted + m.declined, m.screened),
        "evaluated": m.evaluated,
        "adopted": m.adopted,
        "declined": m.declined,
        "adoption_rate": rate(m.adopted, m.evaluated),
        "implemented": m.implemented,
        "implementation_rate": rate(m.implemented, m.adopted),
        "implementation_days": {
            "count": m.d_n,
            "mean": r2(m.d_mean),
            "median": r2(m.d_p50),
            "p90": r2(m.d_p90),
        },
        "implemented_on_time_rate": rate(m.on_time, m.planned),
        "rewards": rw[0],
        "rewarded_suggestions": rw[1],
        "reward_amount_minor": int(rw[2]),
        "participation_by_channel": dict(channels),
    }


async def _ranges(sm: Any) -> list[tuple[datetime | None, datetime | None]]:
    """Open, bounded, partial ranges, and ranges bounded at a tied receipt instant."""
    zone = ZoneInfo(TZ)
    at = lambda m, d, h=0, mi=0: datetime(2026, m, d, h, mi, tzinfo=zone)  # noqa: E731
    async with sm() as session, session.begin():
        tied = (
            await session.execute(
                text(
                    "SELECT received_at FROM analytics.suggestion_fact "
                    "WHERE received_at IS NOT NULL GROUP BY received_at "
                    "HAVING count(DISTINCT customer_key) < count(*) "
                    "ORDER BY count(*) DESC, received_at LIMIT 2"
                )
            )
        ).scalars()
        tied = sorted(tied)
    assert len(tied) == 2, "the stream has a customer with two suggestions at one instant"
    return [
        (None, None),
        (at(8, 1), at(11, 1)),
        (at(8, 17, 9, 30), None),  # starts inside a day
        (None, at(10, 12, 14, 5)),  # ends inside a day
        (at(8, 17, 9, 30), at(10, 12, 14, 5)),
        (at(9, 3, 10), at(9, 3, 16)),  # inside one day
        (tied[0], None),  # starts at a tie
        (None, tied[0]),  # ends at a tie
        (tied[0], tied[1] + timedelta(microseconds=1)),
        (at(12, 1), None),  # empty
    ]


async def _assert_reports_equal(sm: Any) -> dict[str, int]:
    """Compare the report with the direct computation; return participants seen per filter."""
    async with sm() as session, session.begin():
        values = {
            name: (
                await session.execute(
                    text(
                        f"SELECT {col} FROM analytics.suggestion_fact WHERE {col} IS NOT NULL "
                        f"GROUP BY {col} ORDER BY count(*) DESC, {col} LIMIT 2"
                    )
                )
            )
            .scalars()
            .all()
            for name, col in FILTERS.items()
        }
    cases: list[tuple[str, dict[str, tuple[str, ...]]]] = [("none", {}), ("empty", {"channel": ()})]
    for name, found in values.items():
        assert found, name
        cases.append((name, {name: (found[0],)}))
        cases.append((f"{name} (two values)", {name: tuple(found)}))
    cases.append(("channel + category", {"channel": (values["channel"][0],),
                                         "category": (values["category"][0],)}))  # fmt: skip
    seen: dict[str, int] = {}
    for lo, hi in await _ranges(sm):
        for name, flt in cases:
            async with sm() as session, session.begin():
                got = await reports.suggestions(session=session, from_=lo, to=hi, values=flt)
                want = await _direct(session, lo, hi, {k: v for k, v in flt.items() if v})
            assert got.model_dump() == want, (name, lo, hi)
            seen[name] = seen.get(name, 0) + got.participants
    return seen


async def test_links_equal_a_recomputation_and_the_report_equals_the_facts(
    model_sm: Any, apply: Any
) -> None:
    events = _events(300, seed=13, customers=40)
    shuffled = events * 2  # every event redelivered, in a random order
    random.Random(5).shuffle(shuffled)
    await apply(model_sm, shuffled)
    async with model_sm() as session, session.begin():
        # Branches are not in the synthetic events: give some suggestions one.
        await session.execute(
            text(
                "UPDATE analytics.suggestion_fact SET branch_code = "
                "CASE WHEN get_byte(uuid_send(suggestion_id), 0) < 128 THEN 'SH001' "
                "ELSE 'BJ002' END WHERE get_byte(uuid_send(suggestion_id), 1) < 160"
            )
        )
    links = await _assert_recomputation_equal(model_sm)
    assert len(links) > 250
    seen = await _assert_reports_equal(model_sm)
    assert seen["none"] > 0
    assert all(seen[name] > 0 for name in FILTERS), seen
    async with model_sm() as session, session.begin():
        full = await reports.suggestions(session=session)
        repeat = (
            await session.execute(
                text(
                    "SELECT count(*) - count(DISTINCT customer_key) FROM analytics.suggestion_fact"
                    " WHERE received_at IS NOT NULL AND customer_key IS NOT NULL"
                )
            )
        ).scalar_one()
    assert 0 < full.participants <= 40 < full.suggestions
    assert repeat > 200, "most suggesters have several suggestions"


async def test_links_follow_changes_of_receipt_and_customer_and_deletions(
    model_sm: Any, apply: Any
) -> None:
    await apply(model_sm, _events(200, seed=17, customers=25))
    async with model_sm() as session, session.begin():
        ids = [
            r[0]
            for r in await session.execute(
                text("SELECT suggestion_id FROM analytics.suggestion_fact ORDER BY suggestion_id")
            )
        ]
        changes = [
            ("SET customer_key = 'cus_1'", ids[0:12]),
            ("SET received_at = received_at - interval '20 days', "
             "received_day = received_day - 20", ids[12:24]),
            # Ties: several suggestions of one customer at one instant.
            ("SET received_at = timestamptz '2026-09-03 10:00:00+08', "
             "received_day = date '2026-09-03', customer_key = 'cus_2'", ids[24:30]),
            ("SET customer_key = NULL", ids[30:36]),
            ("SET received_at = NULL, received_day = NULL", ids[36:40]),
            ("SET customer_key = 'cus_3', received_at = received_at + interval '3 days', "
             "received_day = received_day + 3", ids[40:50]),
            ("SET branch_code = 'SH001', product_line = 'cards'", ids[50:120]),
            ("SET customer_key = 'cus_4'", ids[36:38]),  # no receipt: no link
        ]  # fmt: skip
        for change, some in changes:
            await session.execute(
                text(f"UPDATE analytics.suggestion_fact {change} WHERE suggestion_id = ANY(:i)"),
                {"i": some},
            )
        await session.execute(
            text("UPDATE analytics.suggestion_fact SET received_at = received_at "
                 "WHERE suggestion_id = ANY(:i)"),
            {"i": ids[60:80]},
        )  # fmt: skip
        await session.execute(
            text("DELETE FROM analytics.suggestion_fact WHERE suggestion_id = ANY(:i)"),
            {"i": ids[120:140]},
        )
    links = await _assert_recomputation_equal(model_sm)
    assert sum(1 for r in links if r[1] == "cus_2") >= 6
    seen = await _assert_reports_equal(model_sm)
    assert seen["none"] > 0
    assert seen["branch"] > 0, seen
    # Receipts learnt again, one at a time (each its own statement and trigger run).
    async with model_sm() as session, session.begin():
        for i, sid in enumerate(ids[36:40]):
            await session.execute(
                text(
                    "UPDATE analytics.suggestion_fact SET received_at = :t, received_day = :d "
                    "WHERE suggestion_id = :i"
                ),
                {"t": NOW - timedelta(days=i), "d": (NOW - timedelta(days=i)).date(), "i": sid},
            )
    await _assert_recomputation_equal(model_sm)
    await _assert_reports_equal(model_sm)
    async with model_sm() as session, session.begin():
        await session.execute(text("DELETE FROM analytics.suggestion_fact"))
    assert await _links(model_sm) == []


async def test_concurrent_writers_of_one_customer_keep_exact_links(model_sm: Any) -> None:
    """Two transactions adding suggestions of the same customer wait for each other."""
    base = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)

    async def writer(offset: int) -> None:
        async with model_sm() as session, session.begin():
            for i in range(15):
                at = base + timedelta(hours=2 * i + offset)
                await session.execute(
                    text(
                        "INSERT INTO analytics.suggestion_fact "
                        "(suggestion_id, customer_key, received_at, received_day) "
                        "VALUES (:i, 'cus_shared', :t, :d)"
                    ),
                    {"i": str(uuid.uuid4()), "t": at, "d": at.date()},
                )
                await asyncio.sleep(0)

    await asyncio.gather(writer(0), writer(1))
    links = await _assert_recomputation_equal(model_sm)
    assert len(links) == 30
    assert sum(1 for r in links if r[3] is None) == 1
    async with model_sm() as session, session.begin():
        got = await reports.suggestions(session=session, from_=base + timedelta(hours=5))
    assert got.participants == 1
