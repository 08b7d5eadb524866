"""End-to-end throughput: complaints per second from POST (intake) to case opened (tracking).

Starts PostgreSQL and Kafka if needed, makes a scratch database and topic prefix, starts
the five services as separate processes on free ports, replays a CFPB-format file at full
speed, and waits until every accepted complaint has a case. Prints the wall time, the
intake acceptance rate, the end-to-end rate, and the spread of the per-complaint pipeline
latency (case opened_at minus the moment its POST was answered).

    uv run python bench/bench_pipeline.py [--file data/sample/cfpb_complaints_sample.csv]
        [--limit N] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from shared import devinfra, migrations
from shared.auth import mint_token
from shared.config import PlatformSettings
from shared.events.registry import SERVICES, all_topics
from shared.replay import read_rows, replay
from shared.runner import ServiceSupervisor

ROOT = Path(__file__).resolve().parent.parent


async def wait_cases(url: str, token: str, ids: set[str], wait_seconds: float) -> dict[str, dict]:
    """Poll tracking's case list until every id in ``ids`` has a case (or time runs out)."""
    cases: dict[str, dict] = {}
    deadline = time.monotonic() + wait_seconds
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as c:
        while time.monotonic() < deadline:
            offset, cases = 0, {}
            while True:
                page = (await c.get("/v1/cases", params={"limit": 500, "offset": offset})).json()
                cases.update({x["id"]: x for x in page["items"]})
                offset += len(page["items"])
                if offset >= page["total"] or not page["items"]:
                    break
            if ids <= cases.keys():
                break
            await asyncio.sleep(0.2)
    return cases


def main() -> None:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", type=Path, default=ROOT / "data/sample/cfpb_complaints_sample.csv")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()

    server = devinfra.ensure_postgres()
    kafka = devinfra.ensure_kafka()
    name = f"cfp_bench_{uuid.uuid4().hex[:8]}"
    db = devinfra.create_database(server, name)
    prefix = f"b{uuid.uuid4().hex[:6]}."
    devinfra.create_topics(kafka, all_topics(), prefix=prefix)
    for service in SERVICES:
        migrations.upgrade(service, database_url=db)
    env = {"DATABASE_URL": db, "KAFKA_BOOTSTRAP_SERVERS": kafka, "KAFKA_TOPIC_PREFIX": prefix}
    sup = ServiceSupervisor(
        env=env, ports=dict.fromkeys(SERVICES, 0), log_dir=ROOT / ".local" / "bench-logs"
    )
    secret = PlatformSettings().jwt_secret.get_secret_value()
    try:
        t0 = time.monotonic()
        sup.start()
        sup.wait_ready(120)
        print(f"services ready in {time.monotonic() - t0:.1f} s")
        rows = read_rows(args.file, args.limit)
        started_wall = datetime.now(UTC)
        started = time.monotonic()
        summary = asyncio.run(
            replay(
                rows,
                intake_url=sup.url("intake"),
                token=mint_token(secret, subject="bench", roles=["intake_client"]),
                rate_per_second=0,
                concurrency=args.concurrency,
            )
        )
        posted = time.monotonic() - started
        cases = asyncio.run(
            wait_cases(
                sup.url("tracking"),
                mint_token(secret, subject="bench", roles=["supervisor"]),
                set(summary.accepted_ids),
                wait_seconds=600,
            )
        )
        done = [cases[i] for i in summary.accepted_ids if i in cases]
        last_open = max(datetime.fromisoformat(c["opened_at"]) for c in done)
        e2e_seconds = (last_open - started_wall).total_seconds()
        lags = sorted(
            (datetime.fromisoformat(c["opened_at"]) - started_wall).total_seconds() for c in done
        )
        print(
            f"complaints: {len(rows)} sent, {summary.accepted} accepted, {len(done)} cases opened"
        )
        print(f"intake: {summary.accepted / posted:.1f} complaints/s accepted ({posted:.2f} s)")
        print(
            f"end to end (first POST -> last case opened): {e2e_seconds:.2f} s = "
            f"{len(done) / e2e_seconds:.1f} complaints/s"
        )
        print(
            f"case opened after replay start: median {statistics.median(lags):.2f} s, "
            f"max {lags[-1]:.2f} s"
        )
    finally:
        sup.stop()
        devinfra.drop_database(server, name)


if __name__ == "__main__":
    main()
