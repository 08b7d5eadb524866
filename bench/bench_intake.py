"""Benchmark ``POST /v1/complaints`` of intake against a plain asyncpg INSERT baseline.

Run from the repository root (local PostgreSQL and Kafka up: ``cfp infra up``):

    uv run python bench/bench_intake.py                       # 15 s per target, 32 in flight
    uv run python bench/bench_intake.py --seconds 30 --concurrency 64 --rounds 2

Targets, each a separate uvicorn process with one worker on a free port, measured in
interleaved rounds (the machine is shared, so all see the same background load; every other
round runs the targets in reverse order, so a drift of the machine's speed favours none):

- ``baseline``: validates the same body (``ComplaintCreate``) and does one plain asyncpg
  ``INSERT`` of it (jsonb) per request, autocommit, nothing else.
- ``intake``: the real service (pseudonymous key, redaction, AES-GCM vault row, outbox event,
  audit row, ``Idempotency-Key`` claimed and remembered, duplicate check), group commit on.
- ``intake-no-group-commit``: the same with ``INTAKE_GROUP_COMMIT_MAX_BATCH=1`` (one
  transaction per request), to show what grouping buys.
- ``intake-relay-apart``: the real service with ``CFP_RELAY_IN_PROCESS=false`` and its outbox
  relay as a process of its own (``cfp relay intake``), whose CPU is printed separately.

The load generator is ``wrk`` (Debian package ``wrk``; ``scripts/bootstrap.sh`` installs
it), a C program that keeps ``--concurrency`` requests in flight over keep-alive
connections from ``--wrk-threads`` event loops; a generated Lua script gives every request
a new customer number, text and ``Idempotency-Key``, and counts every answer that is not
201 as an error. It costs a few hundredths of a millisecond of CPU per request (printed),
so the servers, not the load generator, decide the figures (the earlier httpx generator
needed about 5 ms per request, more than both servers together). Printed per target:
requests per second answered 201, p50 and p99 latency (ms, from wrk, the median over the
rounds), errors, the ratio to the baseline's req/s (and with several rounds each round's
ratio to the baseline run of the same round, with their median), and the CPU time per request (ms,
from ``/proc`` and ``getrusage``) of the server process, of the PostgreSQL backends of the
benchmark database, of wrk, of a separate relay process, of the local Kafka broker and of
the whole machine (``/proc/stat``: everything above plus PostgreSQL's WAL writer, other
processes and the kernel; on two CPUs, throughput is about 2 s / this figure when the
machine is saturated, so it is the steadiest figure to compare between targets and runs);
and the outbox rows still unpublished one second after each run (the relay keeps up when
it is about 0).
A fresh database is created for the run and dropped afterwards; the outbox relay publishes
to topics with a ``bench.`` prefix on the local broker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

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


def _machine_cpu_seconds() -> float:
    """Return the busy CPU time (seconds, all CPUs) of the machine since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


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


_BODY_MARK = "@TAG@"


def _body_template() -> str:
    """Return the JSON body with ``@TAG@`` where each request puts its unique tag."""
    body = {
        "channel": "mobile_app",
        "customer": {
            "customer_number": f"B-{_BODY_MARK}",
            "name": "测试用户",
            "phone": "13800138000",
        },
        "description": (
            f"投诉{_BODY_MARK}：手机银行转账显示成功但对方未收到款项，金额¥1,234.56，"
            f"编号{_BODY_MARK}。"
        ),
        "product": "mobile_banking",
        "amount": {"value": 123456, "currency": "CNY"},
    }
    return json.dumps(body, ensure_ascii=False)


def _lua_script(token: str, keyed: bool) -> str:
    """Return the wrk script: a fresh customer, text and ``Idempotency-Key`` per request.

    Each wrk thread counts the answers that are not 201 (``response``); ``done`` prints
    one ``BENCH`` line with the totals and the latency percentiles (microseconds).
    """
    parts = _body_template().split(_BODY_MARK)
    lua_parts = ", ".join(f"[==[{part}]==]" for part in parts)
    key_line = 'headers["Idempotency-Key"] = tag' if keyed else ""
    return f"""
local parts = {{{lua_parts}}}
local threads = {{}}
counter = 0
non201 = 0
tid = 0
run = "r"

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  run = args[1] or "r"
end

function request()
  counter = counter + 1
  local tag = run .. "-" .. tid .. "-" .. counter
  local body = table.concat(parts, tag)
  local headers = {{}}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer {token}"
  {key_line}
  return wrk.format("POST", "/v1/complaints", headers, body)
end

function response(status, headers, body)
  if status ~= 201 then
    non201 = non201 + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non201")
  end
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %.1f %.1f\\n", summary.requests,
    summary.duration, bad, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Run:
    """One measured run of one target.

    Attributes:
        ok: requests answered 201.
        errors: other answers plus socket errors and timeouts.
        seconds: duration of the run (seconds).
        p50_ms / p99_ms: latency percentiles of all answers (milliseconds).
        broker_cpu: CPU time (seconds) of the local Kafka broker (JVM) during the run.
        machine_cpu: CPU time (seconds) of the whole machine during the run (every
            process, PostgreSQL's WAL writer and the kernel included; from /proc/stat).
        server_cpu / pg_cpu / gen_cpu / relay_cpu: CPU time (seconds) of the server process,
            of the PostgreSQL backends of the benchmark database, of wrk and of the separate
            relay process (``intake-relay-apart``) during the run.
        backlog: outbox rows not yet published one second after the run (intake targets).
    """

    ok: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu: float = 0.0
    pg_cpu: float = 0.0
    gen_cpu: float = 0.0
    relay_cpu: float = 0.0
    broker_cpu: float = 0.0
    machine_cpu: float = 0.0
    backlog: int = 0

    @property
    def rate(self) -> float:
        """Answers 201 per second."""
        return self.ok / self.seconds


def _wrk(
    url: str, script: Path, seconds: float, concurrency: int, threads: int, run_id: str
) -> Run:
    """Run wrk against ``url`` and parse its ``BENCH`` line."""
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{seconds:g}s",
         "--timeout", "30s", "-s", str(script), url, "--", run_id],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    requests, micros, bad, socket_errors, p50, p99 = line.split()[1:]
    return Run(
        ok=int(requests) - int(bad),
        errors=int(bad) + int(socket_errors),
        seconds=int(micros) / 1e6,
        p50_ms=float(p50) / 1000,
        p99_ms=float(p99) / 1000,
    )


def _wait_until_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    """Wait (at most 30 s) until ``url`` answers HTTP.

    Raises:
        RuntimeError: the server exited or never answered.
    """
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/docs", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within 30 s")


def _start_relay(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``cfp relay intake`` (the outbox relay as a process of its own)."""
    return subprocess.Popen(
        [sys.executable, "-c", "from shared.cli import main; main()", "relay", "intake"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def _backlog(url: str) -> int:
    """Return the number of intake outbox rows not yet published."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM intake.outbox WHERE published_at IS NULL")
        )
    finally:
        await conn.close()


def _children_cpu() -> float:
    """CPU seconds (user + system) of the reaped child processes (wrk)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (event loops)")
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
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk (scripts/bootstrap.sh installs it)")

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
    results: dict[str, list[Run]] = {t: [] for t in targets}
    workdir = Path(tempfile.mkdtemp(prefix="bench_intake_"))
    scripts = {
        keyed: workdir / f"post_{'keyed' if keyed else 'plain'}.lua" for keyed in (True, False)
    }
    for keyed, path in scripts.items():
        path.write_text(_lua_script(token, keyed))
    run_tag = uuid.uuid4().hex[:8]
    try:
        for round_no in range(args.rounds):
            # Every other round in reverse order, so that a drift of the machine's speed
            # during the run (seen: the baseline's rate falling from 2739 to 1961 req/s over
            # eight rounds) does not always favour the target measured first.
            for target in targets if round_no % 2 == 0 else targets[::-1]:
                env = dict(base_env)
                if target == "intake-no-group-commit":
                    env["INTAKE_GROUP_COMMIT_MAX_BATCH"] = "1"
                relay = None
                if target == "intake-relay-apart":
                    env["CFP_RELAY_IN_PROCESS"] = "false"
                    relay = _start_relay(env)
                port = free_port()
                proc = _start(target, env, port)
                try:
                    keyed = target != "baseline" and not args.no_idempotency_key
                    url_t = f"http://127.0.0.1:{port}"
                    _wait_until_up(url_t, proc)
                    run_id = f"{run_tag}{round_no}{target[:1]}{len(target)}"
                    script = scripts[keyed]
                    conc, threads = args.concurrency, args.wrk_threads
                    _wrk(url_t, script, 2.0, conc, threads, run_id + "w")  # warm-up
                    server = str(proc.pid)
                    relay_pid = str(relay.pid) if relay is not None else ""
                    processes = {
                        "server": lambda pid, _cmd, server=server: pid == server,
                        "postgres": lambda _pid, cmd: cmd.startswith("postgres:") and name in cmd,
                        "relay": lambda pid, _cmd, relay_pid=relay_pid: pid == relay_pid,
                        "broker": lambda _pid, cmd: "java" in cmd and "kafka.Kafka" in cmd,
                    }
                    before = {k: _cpu_seconds(m) for k, m in processes.items()}
                    gen_before = _children_cpu()
                    machine_before = _machine_cpu_seconds()
                    run = _wrk(url_t, script, args.seconds, conc, threads, run_id)
                    run.machine_cpu = _machine_cpu_seconds() - machine_before
                    run.gen_cpu = _children_cpu() - gen_before
                    after = {k: _cpu_seconds(m) for k, m in processes.items()}
                    run.broker_cpu = after["broker"] - before["broker"]
                    run.server_cpu = after["server"] - before["server"]
                    run.pg_cpu = after["postgres"] - before["postgres"]
                    run.relay_cpu = after["relay"] - before["relay"]
                    if target != "baseline":
                        time.sleep(1.0)
                        run.backlog = asyncio.run(_backlog(url))
                    results[target].append(run)
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
                    if relay is not None:
                        relay.terminate()
                        relay.wait(timeout=30)
    finally:
        asyncio.run(_drop_db(server_url, name))
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"POST /v1/complaints, wrk -t{args.wrk_threads} -c{args.concurrency}, "
        f"{args.seconds:g} s x {args.rounds} round(s), one uvicorn worker, "
        f"{os.cpu_count()} CPUs (shared), synchronous_commit={args.synchronous_commit}"
    )
    print(
        f"{'target':<24}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'ratio':>8}"
        f"{'srv CPU ms/req':>16}{'pg CPU ms/req':>15}{'wrk CPU ms/req':>16}"
        f"{'relay CPU ms/req':>18}{'broker CPU ms/req':>19}{'all CPU ms/req':>16}{'backlog':>9}"
    )
    base_runs = results.get("baseline") or []
    base_rate = statistics.mean(r.rate for r in base_runs) if base_runs else None
    for target, runs in results.items():
        rate = statistics.mean(r.rate for r in runs)
        errors = sum(r.errors for r in runs)
        ratio = f"{rate / base_rate:.2f}" if base_rate else "-"
        # Percentiles of the rounds: the median of each round's figure.
        p50 = statistics.median(r.p50_ms for r in runs)
        p99 = statistics.median(r.p99_ms for r in runs)
        done = sum(r.ok for r in runs) or 1
        srv = 1000 * sum(r.server_cpu for r in runs) / done
        pg = 1000 * sum(r.pg_cpu for r in runs) / done
        gen = 1000 * sum(r.gen_cpu for r in runs) / done
        relay_cpu = 1000 * sum(r.relay_cpu for r in runs) / done
        broker = 1000 * sum(r.broker_cpu for r in runs) / done
        machine = 1000 * sum(r.machine_cpu for r in runs) / done
        backlog = max(r.backlog for r in runs)
        print(
            f"{target:<24}{rate:>8.0f}{p50:>9.1f}{p99:>9.1f}{errors:>8}{ratio:>8}"
            f"{srv:>16.2f}{pg:>15.2f}{gen:>16.2f}{relay_cpu:>18.2f}{broker:>19.2f}"
            f"{machine:>16.2f}{backlog:>9}"
        )
        if args.rounds > 1:
            each = " ".join(f"{r.rate:.0f}" for r in runs)
            print(f"{'':<24}req/s per round: {each}")
            if base_runs and target != "baseline":
                # Each round's ratio to the same round's baseline run (just before it, or
                # after it in a reversed round): the machine's speed drifts over minutes,
                # so paired ratios spread less than the means.
                paired = [r.rate / b.rate for r, b in zip(runs, base_runs, strict=True)]
                print(
                    f"{'':<24}ratio per round: {' '.join(f'{x:.2f}' for x in paired)} "
                    f"(median {statistics.median(paired):.2f})"
                )


if __name__ == "__main__":
    main()
