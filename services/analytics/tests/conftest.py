"""Fixtures of the analytics tests: fresh analytics-only databases, event application helpers.

Each test module that asks for ``analytics_db_factory`` gets databases of its own (only the
analytics migrations applied), so these tests never share read-model rows with other tests
of the same pytest run. The platform fixtures of the repository's ``tests/conftest.py`` are
re-exported (pytest applies that file only below ``tests/``).
"""

# ruff: noqa: F811  (pytest fixtures are parameters named like the imported fixtures)
from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.analytics import tables
from services.analytics.handlers import handlers
from shared import migrations
from shared.db import make_engine, make_sessionmaker
from shared.events.envelope import Envelope
from tests.conftest import (  # noqa: F401  (fixtures, found by name)
    database_url,
    jwt_secret,
    kafka_bootstrap,
    platform_env,
    server_url,
    token_for,
    topic_prefix,
)


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _admin(server_url: str, sql: str) -> None:
    conn = await asyncpg.connect(_dsn(server_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def analytics_db_factory(server_url: str) -> Iterator[Callable[[], str]]:
    """Return ``make() -> url`` creating a fresh database with analytics' migrations."""
    created: list[str] = []

    def make() -> str:
        # Called from sync fixtures and from async tests: run in a thread of its own, since
        # asyncio.run (here and in the Alembic env) refuses a running loop.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(_make).result()

    def _make() -> str:
        name = f"cfp_analytics_{uuid.uuid4().hex[:10]}"
        asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
        created.append(name)
        url = server_url.rsplit("/", 1)[0] + "/" + name
        migrations.upgrade("analytics", database_url=url)
        return url

    yield make
    for name in created:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def model_db(analytics_db_factory: Callable[[], str]) -> str:
    """A fresh analytics database for one test module."""
    return analytics_db_factory()


@pytest.fixture(scope="module")
async def model_engine(model_db: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the module's analytics database."""
    engine = make_engine(model_db, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def model_sm(model_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A session factory on an emptied read model."""
    sm = make_sessionmaker(model_engine)
    async with sm() as session, session.begin():
        names = ", ".join(f"analytics.{t.name}" for t in tables.MODEL_TABLES)
        await session.execute(text(f"TRUNCATE {names}, analytics.processed_events"))
    return sm


async def apply_events(
    sm: async_sessionmaker[AsyncSession], events: list[tuple[str, Envelope[Any]]]
) -> None:
    """Run analytics' handler of each event in its own transaction (no dedup table).

    Each envelope goes through JSON and the handler's payload model, as on the wire.
    """
    for _, envelope in events:
        registration = handlers.by_type[envelope.type]
        wire = Envelope[registration.payload].model_validate_json(  # type: ignore[name-defined]
            envelope.model_dump_json()
        )
        async with sm() as session, session.begin():
            await registration.handler(wire, session=session)


async def snapshot(sm: async_sessionmaker[AsyncSession]) -> dict[str, list[tuple[Any, ...]]]:
    """Return every model table's rows (without ``updated_at``), sorted.

    Surrogate ids are replaced by what they stand for, so that two models holding the same
    figures compare equal: a cell's ``cell_id`` (0015: given in the order cells are met) by
    the cell's six values, a ``customer_id`` (0016) by the customer key and a
    ``category_id`` (0016) by the category label. The id tables themselves
    (``complaint_cell``, ``complaint_customer``, ``complaint_category``) are left out: they
    also keep the ids of a complaint's earlier states (e.g. the cell before routing), which
    hold no rows.
    """
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with sm() as session, session.begin():
        k, c, g = tables.complaint_cell, tables.complaint_customer, tables.complaint_category
        ids: dict[str, dict[Any, Any]] = {
            "cell_id": {
                cell_id: tuple(dims)
                for cell_id, dims in (await session.execute(select(k.c.cell_id, k.c.dims))).all()
            },
            "customer_id": dict(
                (await session.execute(select(c.c.customer_id, c.c.customer_key))).all()
            ),
            "category_id": dict(
                (await session.execute(select(g.c.category_id, g.c.category))).all()
            ),
        }
        for t in tables.MODEL_TABLES:
            if t is k or t is c or t is g:
                continue
            cols = [col for col in t.c if col.name != "updated_at"]
            rows = (await session.execute(t.select().with_only_columns(*cols))).all()
            names = [col.name for col in cols]
            out[t.name] = sorted(
                (
                    tuple(ids[n][v] if n in ids else v for n, v in zip(names, r, strict=True))
                    for r in rows
                ),
                key=repr,
            )
    return out


@pytest.fixture(scope="session")
def apply() -> Any:
    """The :func:`apply_events` helper as a fixture."""
    return apply_events


@pytest.fixture(scope="session")
def snap() -> Any:
    """The :func:`snapshot` helper as a fixture."""
    return snapshot
