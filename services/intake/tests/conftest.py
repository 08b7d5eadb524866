"""Fixtures of intake's tests.

The platform fixtures (``database_url``, ``kafka_bootstrap``, ``topic_prefix``,
``token_for``, ``app_client``) live in the repository's ``tests/conftest.py``, which pytest
applies only below ``tests/``; they are re-exported here for ``services/intake/tests``.
"""

# ruff: noqa: F811  (pytest fixtures are parameters named like the imported fixtures)
from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.main import create_app
from services.intake.settings import IntakeSettings
from shared.db import make_engine
from tests.conftest import (  # noqa: F401  (fixtures, found by name)
    app_client,
    database_url,
    jwt_secret,
    kafka_bootstrap,
    platform_env,
    server_url,
    token_for,
    topic_prefix,
)


@pytest.fixture(scope="session")
def intake_settings(
    database_url: str, kafka_bootstrap: str, topic_prefix: str
) -> Callable[..., IntakeSettings]:
    """Return ``make(**overrides)`` -> settings pointing at this run's database and topics.

    Rate limiting is off unless a test turns it on.
    """

    def make(**overrides: Any) -> IntakeSettings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "kafka_bootstrap_servers": kafka_bootstrap,
            "kafka_topic_prefix": topic_prefix,
            "rate_limit_per_second": 0,
            **overrides,
        }
        return IntakeSettings(**values)

    return make


@pytest.fixture(scope="session")
def intake_client(intake_settings: Callable[..., IntakeSettings]) -> Any:
    """Return an async context manager ``intake_client(**overrides)`` -> running app client."""

    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[AsyncClient]:
        app = create_app(intake_settings(**overrides))
        async for client in app_client(app):
            client.app = app  # type: ignore[attr-defined]
            yield client

    return make


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on this run's database, for assertions."""
    engine = make_engine(database_url, pool_size=2)
    yield engine
    await engine.dispose()
