"""Fixtures shared by every test: real PostgreSQL and Kafka, isolated per test run.

Each pytest run gets a fresh database (all services' migrations applied, so migrations are
exercised) and its own topic prefix on the broker, so runs never see each other's data
nor the data of a system started with ``cfp run``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from shared import devinfra, migrations
from shared.auth import mint_token
from shared.config import PlatformSettings
from shared.events.registry import SERVICES, all_topics


@pytest.fixture(scope="session")
def server_url() -> str:
    """URL of the PostgreSQL server (started when not running)."""
    return os.environ.get("DATABASE_URL") or devinfra.ensure_postgres()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Bootstrap servers of the Kafka broker (started when not running)."""
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or devinfra.ensure_kafka()


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database for this run with every service's migrations applied."""
    name = f"cfp_test_{uuid.uuid4().hex[:10]}"
    url = devinfra.create_database(server_url, name)
    for service in SERVICES:
        migrations.upgrade(service, database_url=url)
    yield url
    devinfra.drop_database(server_url, name)


@pytest.fixture(scope="session")
def topic_prefix(kafka_bootstrap: str) -> Iterator[str]:
    """A topic prefix unique to this run, with every platform topic created under it.

    The topics are deleted at the end of the run, so a long-lived local broker does not
    pile up partitions run after run.
    """
    prefix = f"t{uuid.uuid4().hex[:8]}."
    devinfra.create_topics(kafka_bootstrap, all_topics(), prefix=prefix)
    yield prefix
    devinfra.delete_topics(kafka_bootstrap, prefix=prefix)


@pytest.fixture(scope="session")
def platform_env(database_url: str, kafka_bootstrap: str, topic_prefix: str) -> dict[str, str]:
    """Environment that points a service at this run's database and topics."""
    return {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": topic_prefix,
    }


@pytest.fixture(scope="session")
def jwt_secret() -> str:
    """The signing secret the test apps use (the development default)."""
    return PlatformSettings().jwt_secret.get_secret_value()


@pytest.fixture(scope="session")
def token_for(jwt_secret: str) -> Any:
    """Return a function ``token_for(*roles, subject=...)`` -> Authorization header."""

    def make(*roles: str, subject: str = "tester") -> dict[str, str]:
        return {
            "Authorization": "Bearer " + mint_token(jwt_secret, subject=subject, roles=list(roles))
        }

    return make


async def app_client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """Run ``app``'s lifespan and yield an in-process HTTP client for it."""
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
