"""Benchmark ``POST /v1/complaints`` of intake against a plain asyncpg INSERT baseline.

Run from the repository root (local PostgreSQL and Kafka up: ``cfp infra up``):

    uv run python bench/bench_intake.py                       # 15 s per target, 32 in flight
    uv run python bench/bench_intake.py --seconds 30 --concurrency 64 --rounds 2

Targets, each a separate uvicorn process with one worker on a free port, measured in
interleaved rounds (the machine is shared, so all see the same background load):

- ``baseline``: validates the same body (``ComplaintCreate``) and does one plain asyncpg
  ``INSERT`` of it (jsonb) per request, autocommit, nothing else.
- ``intake``: the real service (pseudonymous key, redaction, AES-GCM vault row, outbox event,
  audit row, ``Idempotency-Key`` claimed and remembered, duplicate check), group commit on.
- ``intake-no-group-commit``: the same with ``INTAKE_GROUP_COMMIT_MAX_BATCH=1`` (one
  transaction per request), to show what grouping buys.

The load generator (this process) keeps ``--concurrency`` requests in flight over
keep-alive connections; every request has a new customer and text. It prints requests per
second, p50 and p99 latency (ms), the ratio of each intake variant to the baseline, and
the CPU time per request (ms, from ``/proc``) of the server process and of the PostgreSQL
backends of the benchmark database. The load generator itself (httpx) needs several
milliseconds of CPU per request, more than either server, so on a busy 2-core machine the
req/s figures move with the background load; the CPU columns are the steadier comparison.
A fresh database is created for the run and dropped afterwards; the outbox relay publishes
to topics with a ``bench.`` prefix on the local broker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from services.intake.domain.submission.schemas import ComplaintCreate  # noqa: E402
from shared import devinfra, migrations  # noqa: E402
from shared.auth import mint_token  # noqa: E402
from shared.config import PlatformSettings  # noqa: E402
from shared.events.registry import all_topics  # noqa: E402
from shared.runner import free_port  # noqa: E402

BASELINE_TABLE = "bench_baseline"


def baseline_app() -> Any:
    """Return the baseline ASGI app (``uvicorn --factory bench_intake:baseline_app``)."""
    from fastapi import FastAPI

    dsn = os.environ["BENCH_DSN"]
    state: dict[str, Any] = {}
    app = FastAPI()

    @app.on_event("startup")
    async def start() -> None:
        state["pool"] = await asyncpg.create_pool(dsn, min_size=10, max_size=20)

    @app.on_event("shutdown")
    async def stop() -> None:
        await state["pool"].close()

    @app.post("/v1/complaints", status_code=201)
    async def create(body: ComplaintCreate) -> dict[str, str]:
        submission_id = str(uuid.uuid4())
        await state["pool"].execute(
            f"INSERT INTO {BASELINE_TABLE} (id, body) VALUES ($1, $2)",
            submission_id,
            body.model_dump_json(),
        )
        return {"id": submission_id}

    return app


def _cpu_seconds(match: Any) -> float:
    """Return the CPU time (user + system, seconds) of the processes ``match(pid, cmdline)``."""
    total = 0
    for pid in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if match(pid, cmdline):
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def _start(target: str, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    if target == "baseline":
        app = ["--app-dir", str(REPO_ROOT / "bench"), "bench_intake:baseline_app"]
    else:
        app = ["services.intake.main:create_app"]
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", *app, "--host", "127.0.0.1",
         "--port", str(port), "--no-access-log", "--log-level", "warning", "--workers", "1"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _body(n: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:12]
    return {
        "channel": "mobile_app",
        "customer": {"customer_number": f"B-{tag}", "name": "测试用户", "phone": "13800138000"},
        "description": (
            f"第{n}号投诉：手机银行转账显示成功但对方未收到款项，金额¥1,234.56，编号{tag}。"
        ),
        "product": "mobile_banking",
        "amount": {"value": 123456, "currency": "CNY"},
    }


async def _load(
    url: str, token: str, seconds: float, concurrency: int, keyed: bool
) -> tuple[int, int, list[float]]:
    latencies: list[float] = []
    errors = 0
    counter = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30, headers=headers) as c:
        for _ in range(100):  # wait until up
            try:
                await c.get("/docs")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors, counter
            while time.perf_counter() < stop_at:
                counter += 1
                extra = {"Idempotency-Key": uuid.uuid4().hex} if keyed else {}
                t0 = time.perf_counter()
                try:
                    r = await c.post("/v1/complaints", json=_body(counter), headers=extra)
                    ok = r.status_code == 201
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return int(len(latencies) / elapsed), errors, latencies


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


async def _prepare_db(server_url: str, name: str, synchronous_commit: str) -> str:
    dsn = server_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        # Durable commits (a 201 survives a crash) are what a bank runs; the local dev
        # server defaults to synchronous_commit=off for speed, so set it per database.
        await conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = {synchronous_commit}')
    finally:
        await conn.close()
    url = server_url.rsplit("/", 1)[0] + "/" + name
    await asyncio.to_thread(migrations.upgrade, "intake", database_url=url)
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await conn.execute(
            f"CREATE TABLE {BASELINE_TABLE} (id uuid PRIMARY KEY, body jsonb NOT NULL, "
            "received_at timestamptz NOT NULL DEFAULT now())"
        )
    finally:
        await conn.close()
    return url


async def _drop_db(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="per target and round")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-idempotency-key", action="store_true")
    parser.add_argument(
        "--targets", default="baseline,intake,intake-no-group-commit", help="comma-separated"
    )
    parser.add_argument(
        "--synchronous-commit",
        choices=("on", "off"),
        default="on",
        help="durability of commits in the benchmark database (on: as in production)",
    )
    args = parser.parse_args()

    server_url = os.environ.get("DATABASE_URL") or devinfra.ensure_postgres()
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or devinfra.ensure_kafka()
    prefix = "bench."
    devinfra.create_topics(kafka, all_topics(), prefix=prefix)
    name = f"cfp_bench_{uuid.uuid4().hex[:8]}"
    url = asyncio.run(_prepare_db(server_url, name, args.synchronous_commit))
    settings = PlatformSettings()
    token = mint_token(
        settings.jwt_secret.get_secret_value(), subject="bench", roles=["intake_client"]
    )
    base_env = {
        **os.environ,
        "DATABASE_URL": url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "KAFKA_TOPIC_PREFIX": prefix,
        "BENCH_DSN": url.replace("postgresql+asyncpg://", "postgresql://", 1),
        "INTAKE_RATE_LIMIT_PER_SECOND": "0",
        "LOG_LEVEL": "WARNING",
    }
    targets = args.targets.split(",")
    results: dict[str, list[tuple[int, int, list[float]]]] = {t: [] for t in targets}
    cpu: dict[str, list[tuple[float, float, int]]] = {t: [] for t in targets}
    try:
        for _ in range(args.rounds):
            for target in targets:
                env = dict(base_env)
                if target == "intake-no-group-commit":
                    env["INTAKE_GROUP_COMMIT_MAX_BATCH"] = "1"
                port = free_port()
                proc = _start(target, env, port)
                try:
                    keyed = target != "baseline" and not args.no_idempotency_key
                    url_t = f"http://127.0.0.1:{port}"
                    asyncio.run(_load(url_t, token, 2.0, args.concurrency, keyed))  # warm-up
                    server = str(proc.pid)
                    processes = {
                        "server": lambda pid, _cmd, server=server: pid == server,
                        "postgres": lambda _pid, cmd: cmd.startswith("postgres:") and name in cmd,
                    }
                    before = {k: _cpu_seconds(m) for k, m in processes.items()}
                    run = asyncio.run(_load(url_t, token, args.seconds, args.concurrency, keyed))
                    after = {k: _cpu_seconds(m) for k, m in processes.items()}
                    results[target].append(run)
                    cpu[target].append(
                        (
                            after["server"] - before["server"],
                            after["postgres"] - before["postgres"],
                            len(run[2]),
                        )
                    )
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
    finally:
        asyncio.run(_drop_db(server_url, name))

    print(
        f"POST /v1/complaints, {args.seconds:.0f} s x {args.rounds} round(s), "
        f"{args.concurrency} in flight, one uvicorn worker, {os.cpu_count()} CPUs (shared), "
        f"synchronous_commit={args.synchronous_commit}"
    )
    print(
        f"{'target':<24}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'ratio':>8}"
        f"{'srv CPU ms/req':>16}{'pg CPU ms/req':>15}"
    )
    base_rate = statistics.mean(r[0] for r in results.get("baseline", [(0, 0, [])])) or None
    for target, runs in results.items():
        rate = statistics.mean(r[0] for r in runs)
        lat = [x for r in runs for x in r[2]]
        errors = sum(r[1] for r in runs)
        ratio = f"{rate / base_rate:.2f}" if base_rate else "-"
        p50, p99 = _pct(lat, 50), _pct(lat, 99)
        done = sum(c[2] for c in cpu[target]) or 1
        srv = 1000 * sum(c[0] for c in cpu[target]) / done
        pg = 1000 * sum(c[1] for c in cpu[target]) / done
        print(
            f"{target:<24}{rate:>8.0f}{p50:>9.1f}{p99:>9.1f}{errors:>8}{ratio:>8}"
            f"{srv:>16.2f}{pg:>15.2f}"
        )


if __name__ == "__main__":
    main()
