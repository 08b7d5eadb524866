"""Alembic environment of the routing schema."""

from services.routing.tables import metadata
from shared.migrations import run_env

run_env(metadata)
