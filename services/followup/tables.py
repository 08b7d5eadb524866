"""Tables of the followup schema: the outbox and processed events (visits come next)."""

from __future__ import annotations

from shared.db import make_metadata
from shared.events.outbox import outbox_table
from shared.events.processed import processed_events_table

SCHEMA = "followup"
metadata = make_metadata(SCHEMA)

outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
