"""Benchmark PostgreSQL's cost of ``intake.record_batch`` as the stored keys grow.

Run from the repository root (local PostgreSQL up: ``cfp infra up``):

    uv run python bench/bench_record_batch.py                      # 0, 100k, 1M stored keys
    uv run python bench/bench_record_batch.py --keys 0,20000 --seconds 5

What the group committer sends under load, without HTTP or Kafka: batches of ``--batch``
prepared complaints (every other one with an ``Idempotency-Key``, each from a new customer,
so no probable duplicates) recorded by ``service.record_batch`` on one connection, one
autocommitted statement per batch, back to back for ``--seconds``. Before each level the
key table is filled up to that many live keys (``Idempotency-Key`` rows that expire in a
day: a day of keyed submissions) and analysed. Printed per level: submissions per second,
the PostgreSQL backend's CPU per submission (us, from ``/proc``, so the server must run on
this machine) and the wall time per submission (us, round trip included), and the
sequential scans of ``intake.idempotency_key`` per batch (0 since migration 0005; 0004's
function scanned the whole key table twice per batch, so its cost grew with the keys).

A fresh database is created (durable commits, as in production) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from services.intake.domain.submission import service  # noqa: E402
from services.intake.domain.submission.schemas import ComplaintCreate  # noqa: E402
from services.intake.settings import IntakeSettings  # noqa: E402
from shared import devinfra, migrations  # noqa: E402
from shared.auth import Principal  # noqa: E402
from shared.privacy import Vault  # noqa: E402


def _backend_cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system, seconds) of the PostgreSQL backend ``pid``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _fill_keys(conn: asyncpg.Connection, upto: int) -> None:
    """Add filler keys until ``intake.idempotency_key`` holds ``upto`` rows, then analyse."""
    have = await conn.fetchval("SELECT count(*) FROM intake.idempotency_key")
    if upto > have:
        await conn.execute(
            "INSERT INTO intake.idempotency_key (client, key, request_hash, expires_at, "
            "status_code, response) SELECT 'filler-' || (g % 50), md5(g::text), 'h', "
            "now() + interval '1 day', 201, '{\"id\": \"x\"}'::jsonb "
            "FROM generate_series($1::bigint, $2::bigint) g",
            have + 1,
            upto,
        )
    await conn.execute("VACUUM ANALYZE intake.idempotency_key")


async def _record(
    conn: asyncpg.Connection, items: list[service.Prepared], settings: IntakeSettings
) -> None:
    """Record one batch; after a reference collision draw new ones and retry (as the committer)."""
    while True:
        try:
            await service.record_batch(
                connection=conn, items=items, settings=settings, now=datetime.now(UTC)
            )
            return
        except asyncpg.UniqueViolationError as exc:
            if "submission_reference_key" not in str(exc):
                raise
            for item in items:
                item.redraw_reference(settings.timezone)


async def _level(
    conn: asyncpg.Connection, *, settings: IntakeSettings, seconds: float, batch: int
) -> tuple[float, float, float, float]:
    """Record batches for ``seconds``; return (per second, CPU us, wall us, seq scans/batch)."""
    vault = Vault(settings.vault_keys.get_secret_value())
    principal = Principal(subject="bench-record-batch", roles=frozenset({"intake_client"}))
    pid = await conn.fetchval("SELECT pg_backend_pid()")

    def items() -> list[service.Prepared]:
        out = []
        for i in range(batch):
            tag = uuid.uuid4().hex[:12]
            body = ComplaintCreate.model_validate(
                {
                    "channel": "mobile_app",
                    "customer": {"customer_number": f"B-{tag}", "name": "测试用户"},
                    "description": f"投诉{tag}：转账显示成功但对方未收到款项，金额¥1,234.56",
                    "product": "mobile_banking",
                    "amount": {"value": 123456, "currency": "CNY"},
                }
            )
            out.append(
                service.prepare(
                    kind="complaint",
                    body=body,
                    principal=principal,
                    settings=settings,
                    vault=vault,
                    now=datetime.now(UTC),
                    idempotency_key=tag if i % 2 else None,
                )
            )
        return out

    async def seq_scans() -> int:
        return int(
            await conn.fetchval(
                "SELECT seq_scan FROM pg_stat_user_tables "
                "WHERE schemaname = 'intake' AND relname = 'idempotency_key'"
            )
        )

    for _ in range(10):  # warm-up: past PL/pgSQL's first custom plans
        await _record(conn, items(), settings)
    await conn.execute("SELECT pg_stat_force_next_flush()")
    await asyncio.sleep(1.1)  # let the backend flush its table statistics
    scans_before = await seq_scans()
    ready = [items() for _ in range(max(1, int(seconds * 200)))]  # prepared outside the timing
    cpu_before = _backend_cpu_seconds(pid)
    start = time.perf_counter()
    done = batches = 0
    for prepared in ready:
        await _record(conn, prepared, settings)
        done += len(prepared)
        batches += 1
        if time.perf_counter() - start >= seconds:
            break
    wall = time.perf_counter() - start
    cpu = _backend_cpu_seconds(pid) - cpu_before
    await conn.execute("SELECT pg_stat_force_next_flush()")
    await asyncio.sleep(1.1)
    scans = await seq_scans() - scans_before
    return done / wall, 1e6 * cpu / done, 1e6 * wall / done, scans / batches


async def main() -> None:
    """Run the benchmark and print one line per level of stored keys."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", default="0,100000,1000000", help="comma-separated levels")
    parser.add_argument("--seconds", type=float, default=10.0, help="per level")
    parser.add_argument("--batch", type=int, default=12, help="submissions per batch")
    args = parser.parse_args()
    levels = sorted(int(k) for k in args.keys.split(","))

    server_url = os.environ.get("DATABASE_URL") or devinfra.ensure_postgres()
    dsn = server_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    name = f"cfp_bench_rb_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = on')
    try:
        url = server_url.rsplit("/", 1)[0] + "/" + name
        await asyncio.to_thread(migrations.upgrade, "intake", database_url=url)
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
        settings = IntakeSettings(database_url=url)
        print(
            f"intake.record_batch, batches of {args.batch} (every other keyed), "
            f"{args.seconds:g} s per level, one connection, synchronous_commit=on"
        )
        print(
            f"{'stored keys':>12}{'subm/s':>9}{'pg CPU us/subm':>16}{'wall us/subm':>14}"
            f"{'key seq scans/batch':>21}"
        )
        try:
            for level in levels:
                await _fill_keys(conn, level)
                rate, cpu, wall, scans = await _level(
                    conn, settings=settings, seconds=args.seconds, batch=args.batch
                )
                print(f"{level:>12}{rate:>9.0f}{cpu:>16.1f}{wall:>14.1f}{scans:>21.2f}")
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
