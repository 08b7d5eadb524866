"""Alembic environment of the followup schema."""

from services.followup.tables import metadata
from shared.migrations import run_env

run_env(metadata)
