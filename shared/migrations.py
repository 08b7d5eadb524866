"""Alembic plumbing shared by the services' ``migrations/env.py`` (STYLE.md §3).

Each service keeps its own Alembic folder (``services/<name>/migrations``) whose ``env.py``
calls :func:`run_env` with the service's metadata. The version table lives in the service's
schema and autogenerate only looks at that schema. Migrations run as their own command
(``cfp migrate``), never on import or at service start.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config

from shared.config import PlatformSettings

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


def alembic_config(service: str, database_url: str | None = None) -> Config:
    """Return the Alembic config of ``service`` (its ``alembic.ini``), with the URL set."""
    ini = SERVICES_DIR / service / "alembic.ini"
    cfg = Config(str(ini))
    cfg.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url or PlatformSettings().database_url)
    return cfg


def upgrade(service: str, *, database_url: str | None = None, revision: str = "head") -> None:
    """Run ``alembic upgrade`` for ``service`` (blocking; call from a thread in async code)."""
    command.upgrade(alembic_config(service, database_url), revision)


def downgrade(service: str, *, database_url: str | None = None, revision: str = "base") -> None:
    """Run ``alembic downgrade`` for ``service``."""
    command.downgrade(alembic_config(service, database_url), revision)


def run_env(metadata: MetaData) -> None:
    """Body of a service's ``env.py``: run migrations online against its schema."""
    schema = metadata.schema
    assert schema, "service metadata must carry its schema"
    config = context.config

    def include_name(name: str | None, type_: str, _parent: object) -> bool:
        return name == schema if type_ == "schema" else True

    def do_run(connection: Connection) -> None:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=include_name,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = async_engine_from_config(
            config.get_section(config.config_ini_section, {}),
            prefix="sqlalchemy.",
            poolclass=pool.NullPool,
        )
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
            await connection.commit()
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"),
            target_metadata=metadata,
            version_table_schema=schema,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(run_async())
