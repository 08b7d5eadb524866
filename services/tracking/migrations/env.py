"""Alembic environment of the tracking schema."""

from services.tracking.tables import metadata
from shared.migrations import run_env

run_env(metadata)
