"""Fixtures of tracking's tests: apps on this run's database and topics.

The platform fixtures (``database_url``, ``kafka_bootstrap``, ``topic_prefix``, ``token_for``
...) live in the repository's ``tests/conftest.py``, whose scope does not reach
``services/``; it is loaded here by path under its own module name and its fixtures are
re-exported, so ``uv run pytest services/tracking`` works alone and in the full run.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.tracking.main import create_app
from services.tracking.settings import TrackingSettings
from shared.db import make_engine, make_sessionmaker

_ROOT_CONFTEST = Path(__file__).resolve().parents[3] / "tests" / "conftest.py"
_spec = importlib.util.spec_from_file_location("cfp_platform_fixtures", _ROOT_CONFTEST)
assert _spec is not None
assert _spec.loader is not None
_platform = importlib.util.module_from_spec(_spec)
sys.modules["cfp_platform_fixtures"] = _platform
_spec.loader.exec_module(_platform)

server_url = _platform.server_url
kafka_bootstrap = _platform.kafka_bootstrap
database_url = _platform.database_url
topic_prefix = _platform.topic_prefix
platform_env = _platform.platform_env
jwt_secret = _platform.jwt_secret
token_for = _platform.token_for


async def app_client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """Run ``app``'s lifespan and yield an in-process HTTP client for it."""
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture(scope="session")
def tracking_settings_for(
    database_url: str, kafka_bootstrap: str, topic_prefix: str
) -> Callable[..., TrackingSettings]:
    """Return ``make(**overrides)`` -> settings pointing at this run's database and topics."""

    def make(**overrides: Any) -> TrackingSettings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "kafka_bootstrap_servers": kafka_bootstrap,
            "kafka_topic_prefix": topic_prefix,
            "sweep_enabled": False,
        }
        values.update(overrides)
        return TrackingSettings(**values)

    return make


@pytest.fixture(scope="session")
async def tracking_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url, pool_size=4)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def tsm(tracking_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(tracking_engine)


@pytest.fixture(scope="session")
async def tracking_client(
    tracking_settings_for: Callable[..., TrackingSettings],
) -> AsyncIterator[AsyncClient]:
    """One tracking app (no sweep loop) with its relay and consumer, for the whole run."""
    async for client in app_client(create_app(tracking_settings_for())):
        yield client
