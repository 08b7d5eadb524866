"""Intake with its outbox relay as a process of its own (``cfp relay intake``).

With ``CFP_RELAY_IN_PROCESS=false`` the service only records (the outbox rows stay
unpublished); ``cfp relay intake``, a separate process, publishes each row exactly once,
exports the relay's metrics on its own /metrics and stops cleanly on SIGTERM. Runs on a
database and topics of its own, so no other relay of this test run can take the rows.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from intake_samples import complaint_body
from sqlalchemy import func, select

from services.intake import tables
from services.intake.main import create_app
from services.intake.settings import IntakeSettings
from shared import devinfra, migrations
from shared.db import make_engine
from shared.devinfra import REPO_ROOT
from shared.events.contracts.complaints import COMPLAINT_RECEIVED_V1
from shared.events.registry import COMPLAINTS_RECEIVED, all_topics
from shared.runner import free_port
from tests.conftest import app_client


async def _read(bootstrap: str, topic: str, count: int, timeout: float) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    got: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(got) < count and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got.extend(records)
        # Anything more (a second publication) would arrive within this extra second.
        for records in (await consumer.getmany(timeout_ms=1000)).values():
            got.extend(records)
    finally:
        await consumer.stop()
    return got


def _metric(text: str, sample: str) -> float:
    """Return the value of ``sample`` (``name`` or ``name{labels}``) in a /metrics page."""
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        if key == sample:
            return float(value)
    raise AssertionError(f"{sample} not in /metrics")


async def test_a_separate_relay_process_publishes_each_recorded_complaint_once(
    server_url: str,
    kafka_bootstrap: str,
    intake_settings: Callable[..., IntakeSettings],
    token_for: Any,
) -> None:
    name = f"cfp_relay_{uuid.uuid4().hex[:8]}"
    url = devinfra.create_database(server_url, name)
    prefix = f"r{uuid.uuid4().hex[:8]}."
    proc: asyncio.subprocess.Process | None = None
    engine = make_engine(url, pool_size=1)
    try:
        await asyncio.to_thread(migrations.upgrade, "intake", database_url=url)
        devinfra.create_topics(kafka_bootstrap, all_topics(), prefix=prefix)
        settings = intake_settings(
            database_url=url, kafka_topic_prefix=prefix, relay_in_process=False
        )
        app = create_app(settings)
        ids = []
        async for client in app_client(app):
            assert app.state.relay is None
            for n in range(5):
                body = complaint_body(description=f"第{n}笔转账失败但是扣款了。")
                r = await client.post(
                    "/v1/complaints", json=body, headers=token_for("intake_client")
                )
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text

        o = tables.outbox
        pending = select(func.count()).select_from(o).where(o.c.published_at.is_(None))
        async with engine.connect() as conn:
            assert await conn.scalar(pending) == 5  # the service published nothing itself

        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KAFKA_TOPIC_PREFIX": prefix,
            "CFP_RELAY_IN_PROCESS": "false",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from shared.cli import main; main()", "relay", "intake",
            "--metrics-port", str(port), cwd=REPO_ROOT, env=env,
        )  # fmt: skip
        records = await _read(kafka_bootstrap, prefix + COMPLAINTS_RECEIVED, 5, timeout=60)
        assert sorted(json.loads(r.value)["data"]["complaint_id"] for r in records) == sorted(ids)
        assert sorted(r.key.decode() for r in records) == sorted(ids)
        async with engine.connect() as conn:
            assert await conn.scalar(pending) == 0

        for _ in range(50):  # the gauges are refreshed by the relay's next idle pass
            async with httpx.AsyncClient() as http:
                metrics = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            if _metric(metrics, "outbox_pending_events") == 0:
                break
            await asyncio.sleep(0.2)
        published = f'{{event_type="{COMPLAINT_RECEIVED_V1}",topic="{COMPLAINTS_RECEIVED}"}}'
        assert _metric(metrics, "events_published_total" + published) == 5
        assert _metric(metrics, "outbox_pending_events") == 0

        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        proc = None
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        await engine.dispose()
        devinfra.drop_database(server_url, name)
        devinfra.delete_topics(kafka_bootstrap, prefix=prefix)
