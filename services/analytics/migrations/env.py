"""Alembic environment of the analytics schema."""

from services.analytics.tables import metadata
from shared.migrations import run_env

run_env(metadata)
