"""Benchmark of tracking's deadline arithmetic and of the SLA sweep over 1,000,000 open cases.

Run: ``uv run python bench/bench_tracking.py [--cases 1000000] [--due 10000]``

1. Due-date computations per second: ``WorkingDayCalendar.deadline`` (the hot path of
   opening a case), ``clocks.new_clock`` (deadline + warning point + next check, what a case
   really stores), and a deadline with a pause credit.
2. The sweep: a scratch database (created here and dropped at the end) gets tracking's
   migrations, ``--cases`` open cases with three clocks each (loaded with INSERT ... SELECT
   generate_series), of which ``--due`` resolution clocks are past due. It prints the query
   plan of the claiming SELECT (it must use ``case_clock_next_check_idx``), the time of an
   idle sweep (nothing due), of the breach sweep (one sender), of the same with two
   concurrent sweepers, and the database load (pg_stat_database deltas, buffers of the
   claim query).

Prints figures only; asserts nothing about speed (STYLE.md, issue 5 "Performance").
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.tracking.domain import clocks, sla
from services.tracking.domain import service as case_service
from services.tracking.settings import TrackingSettings
from shared import migrations
from shared.config import PlatformSettings
from shared.db import make_engine, make_sessionmaker
from shared.workcalendar import WorkingDayCalendar


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def bench_due_dates(n: int) -> None:
    """Print due-date computations per second."""
    cal = WorkingDayCalendar()
    settings = TrackingSettings()
    rng = random.Random(5)
    base = datetime(2025, 1, 1, tzinfo=UTC)
    instants = [base + timedelta(seconds=rng.randrange(0, 2 * 365 * 86400)) for _ in range(n)]
    cal.deadline(instants[0])  # load the years
    t = time.perf_counter()
    for i in instants:
        cal.deadline(i, 5)
    dt = time.perf_counter() - t
    print(f"deadline():            {n / dt:12,.0f} per second ({dt / n * 1e6:.2f} µs each)")
    m = n // 4
    t = time.perf_counter()
    for i in instants[:m]:
        clocks.new_clock(cal, settings, case_id="c", kind="resolution", round_=1, started_at=i)
    dt = time.perf_counter() - t
    print(f"clocks.new_clock():    {m / dt:12,.0f} per second ({dt / m * 1e6:.2f} µs each)")
    p = n // 20
    t = time.perf_counter()
    for i in instants[:p]:
        cal.deadline(i, 5, pauses=[(i + timedelta(days=1), i + timedelta(days=2, hours=3))])
    dt = time.perf_counter() - t
    print(f"deadline(pauses=1):    {p / dt:12,.0f} per second ({dt / p * 1e6:.2f} µs each)")


LOAD_CASES = """
INSERT INTO tracking."case" (id, reference, status, category, product_line, priority,
    department, channel, customer_key, received_at, opened_at, updated_at)
SELECT gen_random_uuid(), 'B-' || g, 'investigating', 'service_quality', 'cards', 'P3',
    'dept_' || (g % 20), 'phone', 'cus_' || g, now() - interval '1 day', now(), now()
FROM generate_series(1, $1) AS g
"""
LOAD_CLOCKS = """
INSERT INTO tracking.case_clock (case_id, kind, round, started_at, due_at, due_date,
    provisional, warn_at, stopped_at, next_check_at)
SELECT id, k.kind, 1, received_at, d.due, d.due::date, false,
    CASE WHEN k.kind = 'resolution' THEN d.due - interval '1 day' END,
    CASE WHEN k.kind = 'acknowledgement' THEN now() - interval '12 hours' END,
    CASE WHEN k.kind = 'acknowledgement' THEN NULL
         WHEN k.kind = 'regulatory' THEN d.due + interval '10 days'
         ELSE d.due - interval '1 day' END
FROM tracking."case" c
CROSS JOIN (VALUES ('resolution'), ('acknowledgement'), ('regulatory')) AS k(kind)
CROSS JOIN LATERAL (SELECT now() + interval '1 day' + random() * interval '9 days' AS due) d
"""
MAKE_DUE = """
UPDATE tracking.case_clock SET due_at = now() - interval '1 minute',
    next_check_at = now() - interval '1 minute', warned_at = NULL, breached_at = NULL
WHERE (case_id, kind) IN (
    SELECT case_id, kind FROM tracking.case_clock WHERE kind = 'resolution' LIMIT $1)
"""


async def stat(conn: asyncpg.Connection, db: str) -> dict[str, int]:
    """Return the database's counters (after the stats collector caught up, ~1 s)."""
    await asyncio.sleep(1.2)
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    row = await conn.fetchrow(
        "SELECT xact_commit, blks_read, blks_hit, tup_returned, tup_fetched, tup_updated, "
        "tup_inserted FROM pg_stat_database WHERE datname = $1",
        db,
    )
    return dict(row) if row else {}


def delta(a: dict[str, int], b: dict[str, int]) -> str:
    """Format the counter differences."""
    return ", ".join(f"{k}={b[k] - a[k]:,}" for k in a)


async def bench_queue(sm: Any) -> None:
    """Time the handlers' queue (``GET /v1/cases``) on the loaded database."""
    cal = WorkingDayCalendar()
    for label, filters, sla_state in (
        ("department (1/20 of the cases)", {"department": "dept_7"}, None),
        ("department + status", {"department": "dept_7", "status": "investigating"}, None),
        ("sla_state=breached", {}, "breached"),
    ):
        t = time.perf_counter()
        async with sm() as session, session.begin():
            page = await case_service.list_cases(
                session=session,
                calendar=cal,
                now=datetime.now(UTC),
                filters=filters,
                due_before=None,
                limit=50,
                offset=0,
                sla_state=sla_state,
            )
        took = time.perf_counter() - t
        print(f"queue {label}: first 50 of {page.total:,} in {took * 1000:.0f} ms")


async def bench_sweep(cases: int, due: int) -> None:
    """Load the scratch database, EXPLAIN the claim, time the sweeps, drop the database."""
    server = PlatformSettings().database_url
    name = f"cfp_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_dsn(server))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = server.rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(migrations.upgrade, "tracking", database_url=url)
        conn = await asyncpg.connect(_dsn(url))
        try:
            t = time.perf_counter()
            await conn.execute("DROP INDEX tracking.case_clock_next_check_idx")
            await conn.execute(LOAD_CASES, cases)
            await conn.execute(LOAD_CLOCKS)
            load = time.perf_counter() - t
            t = time.perf_counter()
            await conn.execute(
                "CREATE INDEX case_clock_next_check_idx ON tracking.case_clock (next_check_at) "
                "WHERE next_check_at IS NOT NULL"
            )
            index = time.perf_counter() - t
            await conn.execute("ANALYZE tracking.case_clock")
            await conn.execute('ANALYZE tracking."case"')
            n_clocks = await conn.fetchval("SELECT count(*) FROM tracking.case_clock")
            size = await conn.fetchval(
                "SELECT pg_size_pretty(pg_total_relation_size('tracking.case_clock'))"
            )
            print(
                f"loaded {cases:,} open cases, {n_clocks:,} clocks ({size}) in {load:.1f} s; "
                f"next-check index built in {index:.1f} s"
            )
            engine = make_engine(url, pool_size=4)
            sm = make_sessionmaker(engine)
            try:
                now = datetime.now(UTC)
                stmt = sla.claim_statement(now, 500)
                compiled = stmt.compile(
                    dialect=engine.dialect, compile_kwargs={"literal_binds": True}
                )
                plan = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}")
                print("plan of the claim (nothing due):")
                for line in plan:
                    print("   ", line[0])
                t = time.perf_counter()
                idle = await sla.sweep_once(sessionmaker=sm, batch_size=500)
                print(
                    f"idle sweep (0 due of {n_clocks:,} clocks): "
                    f"{(time.perf_counter() - t) * 1000:.1f} ms, claimed {idle.claimed}"
                )
                for sweepers in (1, 2):
                    await conn.execute(MAKE_DUE, due)
                    await conn.execute("ANALYZE tracking.case_clock")
                    before = await stat(admin, name)
                    t = time.perf_counter()
                    results = await asyncio.gather(
                        *(sla.sweep_once(sessionmaker=sm, batch_size=500) for _ in range(sweepers))
                    )
                    took = time.perf_counter() - t
                    after = await stat(admin, name)
                    breaches = sum(r.breaches for r in results)
                    outbox = await conn.fetchval(
                        "SELECT count(*) FROM tracking.outbox WHERE published_at IS NULL"
                    )
                    print(
                        f"breach sweep, {sweepers} sweeper(s): {breaches:,} breaches "
                        f"(of {due:,} due) in {took:.2f} s = {breaches / took:,.0f} per second; "
                        f"outbox rows pending {outbox:,}"
                    )
                    print(f"    database load: {delta(before, after)}")
                    await conn.execute("DELETE FROM tracking.outbox")
                    await conn.execute("DELETE FROM tracking.case_event")
                await bench_queue(sm)
                await conn.execute(MAKE_DUE, 500)
                plan = await conn.fetch(
                    "EXPLAIN (ANALYZE, BUFFERS) "
                    + str(
                        sla.claim_statement(datetime.now(UTC), 500).compile(
                            dialect=engine.dialect, compile_kwargs={"literal_binds": True}
                        )
                    )
                )
                print("plan of the claim (500 due):")
                for line in plan:
                    print("   ", line[0])
            finally:
                await engine.dispose()
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        print(f"scratch database {name} dropped")


def main() -> None:
    """Parse arguments and run both benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--computations", type=int, default=200_000)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=10_000)
    args = parser.parse_args()
    bench_due_dates(args.computations)
    asyncio.run(bench_sweep(args.cases, args.due))


if __name__ == "__main__":
    main()
