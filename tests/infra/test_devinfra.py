"""Integration tests of shared.devinfra against the real local PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import os
import pwd
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from shared import devinfra


@pytest.fixture(scope="module")
def database_url() -> str:
    return devinfra.ensure_postgres()


@pytest.fixture(scope="module")
def bootstrap() -> str:
    return devinfra.ensure_kafka()


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _uid_of(pid: int) -> int:
    return Path(f"/proc/{pid}").stat().st_uid


async def test_postgres_answers_select_1(database_url: str) -> None:
    assert database_url.startswith("postgresql+asyncpg://")
    conn = await asyncpg.connect(_dsn(database_url))
    try:
        assert await conn.fetchval("select 1") == 1
        assert await conn.fetchval("select current_database()")
        backend_pid = await conn.fetchval("select pg_backend_pid()")
        if os.environ.get("DATABASE_URL"):
            pytest.skip("external DATABASE_URL: server process is not ours to inspect")
        # Look while the connection is open: the backend process exits with it.
        owner = pwd.getpwuid(_uid_of(backend_pid)).pw_name
    finally:
        await conn.close()
    assert owner != "root"
    if os.geteuid() == 0:
        assert owner == devinfra.PG_OS_USER


async def test_postgres_settings_fit_a_load_test(database_url: str) -> None:
    if os.environ.get("DATABASE_URL"):
        pytest.skip("external DATABASE_URL: settings are not ours")
    conn = await asyncpg.connect(_dsn(database_url))
    try:
        assert int(await conn.fetchval("show max_connections")) >= 300
        assert await conn.fetchval("show shared_buffers") == "256MB"
        assert await conn.fetchval("show listen_addresses") == "127.0.0.1"
    finally:
        await conn.close()


def test_ensure_postgres_is_idempotent(database_url: str) -> None:
    pid_before = devinfra.status()["postgres"]["pid"]
    assert devinfra.ensure_postgres() == database_url
    assert devinfra.status()["postgres"]["pid"] == pid_before


def test_ensure_kafka_is_idempotent(bootstrap: str) -> None:
    pid_before = devinfra.status()["kafka"]["pid"]
    assert devinfra.ensure_kafka() == bootstrap
    assert devinfra.status()["kafka"]["pid"] == pid_before


async def test_ensure_works_inside_a_running_event_loop(database_url: str, bootstrap: str) -> None:
    # Async fixtures and tests call these synchronous helpers from a running loop.
    assert devinfra.ensure_postgres() == database_url
    assert devinfra.ensure_kafka() == bootstrap


async def _partition_count(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return len(described["partitions"])
    finally:
        await admin.close()


async def test_kafka_round_trip_on_created_topic(bootstrap: str) -> None:
    prefix = f"test-infra-{uuid.uuid4().hex[:8]}."
    devinfra.create_topics(bootstrap, {"round-trip": 2}, prefix=prefix)
    devinfra.create_topics(bootstrap, {"round-trip": 2}, prefix=prefix)  # idempotent
    topic = prefix + "round-trip"
    assert await _partition_count(bootstrap, topic) == 2

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello", key=b"k1")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{prefix}group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
    assert (message.key, message.value) == (b"k1", b"hello")


async def test_create_topics_grows_partitions(bootstrap: str) -> None:
    prefix = f"test-infra-{uuid.uuid4().hex[:8]}."
    devinfra.create_topics(bootstrap, {"grow": 1}, prefix=prefix)
    devinfra.create_topics(bootstrap, {"grow": 3}, prefix=prefix)
    assert await _partition_count(bootstrap, prefix + "grow") == 3


def test_platform_topics_include_dead_letters() -> None:
    topics = devinfra.platform_topics()
    assert topics
    assert all(count >= 1 for count in topics.values())
    assert any(name.endswith(".dlq") for name in topics)


async def test_delete_topics_removes_only_the_prefixed_ones(bootstrap: str) -> None:
    prefix = f"del{uuid.uuid4().hex[:8]}."
    devinfra.create_topics(bootstrap, {"a": 1, "b": 2}, prefix=prefix)
    assert devinfra.delete_topics(bootstrap, prefix=prefix) == 2
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for _ in range(50):
            names = [t for t in await admin.list_topics() if t.startswith(prefix)]
            if not names:
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    assert names == []
    with pytest.raises(ValueError, match="prefix"):
        devinfra.delete_topics(bootstrap, prefix="")
