"""Time the outbox relay alone: CPU of the relaying process per event published.

Run from the repository root with PostgreSQL and Kafka up (``uv run cfp infra up``):

    uv run python bench/bench_relay.py [--rows 20000] [--rounds 5] [--batch-size 500]

Each round stages ``--rows`` outbox rows shaped like intake's ``complaints.received`` events
(about 1.9 kB of envelope, three headers, a distinct key per row) in a scratch schema, then
runs :meth:`OutboxRelay.relay_once` until the outbox is empty, publishing to a scratch topic
of three partitions (``acks=all``, idempotent, as in the services). Prints per round the
relaying process's CPU (``time.process_time``: the database reads and marks, the producer's
batching and network writes) and that of the PostgreSQL backends serving it (from
``/proc``, so the database must run on this machine) in microseconds per event, and the
events per second; then the medians and the minimums. The schema and the topic are dropped
at the end. Compare two versions of the relay in the same session: the machine's speed
drifts between sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import MetaData, text
from sqlalchemy.schema import CreateSchema, DropSchema

from shared import devinfra
from shared.db import make_engine, make_sessionmaker
from shared.events.outbox import outbox_table
from shared.kafka.relay import OutboxRelay

TOPIC = "complaints.received"

#: An intake ``complaints.received.v1`` envelope as stored in the outbox (ids replaced per row).
_PAYLOAD = {
    "id": "00000000-0000-4000-8000-000000000000",
    "data": {
        "region": "Guangdong",
        "channel": "phone",
        "product": "信用卡 credit card",
        "subject": "年费扣款有误 annual fee charged twice",
        "currency": "CNY",
        "language": "zh",
        "reference": "C-261207-B9BX9M",
        "branch_code": "GU007",
        "description": "我的信用卡本月被重复收取年费两次，客服电话一直打不通，"
        "请尽快退还多收的费用。" * 3,
        "occurred_at": "2026-12-01T08:00:00Z",
        "received_at": "2026-12-07T01:00:00Z",
        "amount_minor": 30000,
        "complaint_id": "00000000-0000-4000-8000-000000000001",
        "customer_key": "cus_4ae258d5fcc03fc60e0dd59ec9091fa6",
        "external_ref": "CC-2026-000123",
        "attachment_count": 0,
        "vulnerable_customer": False,
    },
    "time": "2026-12-07T01:00:00Z",
    "type": "complaints.received.v1",
    "source": "/services/intake",
    "subject": "00000000-0000-4000-8000-000000000001",
    "dataschema": None,
    "specversion": "1.0",
    "traceparent": None,
    "correlationid": "81dca0e9-5a8f-4ae0-b09e-6eba10c3026f",
    "datacontenttype": "application/json",
}


async def _stage(sm: object, schema: str, rows: int) -> None:
    """Insert ``rows`` unsent outbox rows (one statement; ids and keys fresh per row)."""
    async with sm() as session, session.begin():  # type: ignore[operator]
        await session.execute(
            text(
                f"""
                INSERT INTO "{schema}".outbox (id, topic, key, type, payload, headers)
                SELECT u.id, :topic, u.key::text, 'complaints.received.v1',
                       jsonb_set(jsonb_set(CAST(:payload AS jsonb), '{{id}}', to_jsonb(u.id::text)),
                                 '{{subject}}', to_jsonb(u.key::text)),
                       jsonb_build_array(
                           jsonb_build_array('content-type', 'application/cloudevents+json'),
                           jsonb_build_array('ce_type', 'complaints.received.v1'),
                           jsonb_build_array('ce_id', u.id::text))
                FROM (SELECT gen_random_uuid() AS id, gen_random_uuid() AS key
                      FROM generate_series(1, :rows)) AS u
                """
            ),
            {"topic": TOPIC, "payload": json.dumps(_PAYLOAD, ensure_ascii=False), "rows": rows},
        )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (a PostgreSQL backend on this machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _backends_cpu(engine: object) -> float:
    """CPU seconds so far of the PostgreSQL backends serving this benchmark's relay.

    ``engine`` is a probe engine of its own (another application name), so that the relay's
    pooled connections are not the ones asking.
    """
    async with engine.connect() as conn:  # type: ignore[attr-defined]
        pids = (
            await conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = 'bench-relay'")
            )
        ).scalars()
        return sum(_cpu_seconds(pid) for pid in pids)


async def run(rows: int, rounds: int, batch_size: int) -> None:
    """Stage and relay ``rounds`` times; print CPU per event and events per second."""
    url = devinfra.ensure_postgres()
    bootstrap = devinfra.ensure_kafka()
    tag = uuid.uuid4().hex[:8]
    schema, prefix = f"bench_relay_{tag}", f"benchrelay{tag}."
    devinfra.create_topics(bootstrap, {TOPIC: 3}, prefix=prefix)
    engine = make_engine(url, pool_size=2, application_name="bench-relay")
    sm = make_sessionmaker(engine)
    probe = make_engine(url, pool_size=1, application_name="bench-relay-probe")
    metadata = MetaData(schema=schema)
    table = outbox_table(metadata)
    async with engine.begin() as conn:
        await conn.execute(CreateSchema(schema))
        await conn.run_sync(metadata.create_all)
    relay = OutboxRelay(
        table=table,
        sessionmaker=sm,
        bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        client_id="bench-relay",
        batch_size=batch_size,
    )
    cpu_us: list[float] = []
    pg_us: list[float] = []
    try:
        await relay.relay_once()  # producer started, metadata fetched: not timed
        for i in range(rounds):
            await _stage(sm, schema, rows)
            pg0 = await _backends_cpu(probe)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            sent = 0
            while n := await relay.relay_once():
                sent += n
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            assert sent == rows, f"published {sent} of {rows}"
            cpu_us.append(cpu / rows * 1e6)
            pg_us.append((await _backends_cpu(probe) - pg0) / rows * 1e6)
            print(
                f"round {i + 1}: {rows} events, relay {cpu_us[-1]:.1f} us CPU per event, "
                f"PostgreSQL {pg_us[-1]:.1f} us, {rows / wall:.0f} events/s"
            )
        print(
            f"relay CPU per event: median {statistics.median(cpu_us):.1f} us, "
            f"min {min(cpu_us):.1f} us; PostgreSQL backends: median "
            f"{statistics.median(pg_us):.1f} us, min {min(pg_us):.1f} us "
            f"({rounds} rounds of {rows}, batch size {batch_size})"
        )
    finally:
        await relay.stop()
        async with engine.begin() as conn:
            await conn.execute(DropSchema(schema, cascade=True))
        await engine.dispose()
        await probe.dispose()
        devinfra.delete_topics(bootstrap, prefix=prefix)


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000, help="events per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=500, help="rows per relay pass")
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.rounds, args.batch_size))


if __name__ == "__main__":
    main()
