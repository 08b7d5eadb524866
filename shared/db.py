"""Database plumbing: one schema per service, one async engine per process, units of work.

Each service owns one PostgreSQL schema named after it (ARCHITECTURE.md §2) and declares
its tables on the ``MetaData`` that :func:`make_metadata` returns. Service functions take
the session keyword-only and never commit; the route or the consumer wrapper commits at the
boundary (STYLE.md §3), so domain writes and outbox rows commit or roll back together.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

#: Constraint names (best-practices "Set DB keys naming conventions").
NAMING_CONVENTION = {
    "ix": "%(column_0_label)s_idx",
    "uq": "%(table_name)s_%(column_0_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}


def make_metadata(schema: str) -> MetaData:
    """Return a ``MetaData`` bound to ``schema`` with the platform's naming convention."""
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def make_engine(
    database_url: str,
    *,
    pool_size: int = 10,
    application_name: str = "cfp",
    server_settings: Mapping[str, str] | None = None,
) -> AsyncEngine:
    """Create the process's async engine.

    Args:
        database_url: ``postgresql+asyncpg://user:password@host:port/db``.
        pool_size: connections kept open; up to as many again may overflow under load.
        application_name: shown in ``pg_stat_activity`` (the service name).
        server_settings: PostgreSQL settings for every connection (``SET`` at connect),
            e.g. analytics' ``plan_cache_mode``.

    Returns:
        An engine; dispose it in the lifespan's ``finally``.
    """
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={
            "server_settings": {**(server_settings or {}), "application_name": application_name}
        },
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return the session factory (``expire_on_commit=False``, STYLE.md §3)."""
    return async_sessionmaker(engine, expire_on_commit=False)
