"""The scrape-time refresh on two connections gives the figures of one transaction.

``build_metrics_concurrently`` runs the refresh's statements on two connections sharing one
exported snapshot; on real PostgreSQL its families must equal ``build_metrics`` in a single
transaction, and the collector's refresh (which uses it) must expose them.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import Metric

from services.analytics import synthetic
from services.analytics.metrics import BusinessCollector, build_metrics, build_metrics_concurrently

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)


def _samples(families: list[Metric]) -> list[tuple[str, list[Any]]]:
    return [
        (m.name, sorted((s.name, sorted(s.labels.items()), s.value) for s in m.samples))
        for m in families
        if m.name != "analytics_metrics_refresh_seconds"
    ]


async def test_concurrent_refresh_equals_one_transaction(model_sm: Any, apply: Any) -> None:
    rng = random.Random(17)
    events = []
    for _ in range(60):
        plan = synthetic.plan_complaint(rng, synthetic.received_instant(rng, days=40, end=NOW))
        events += synthetic.complaint_events(plan)
    for _ in range(10):
        events += synthetic.suggestion_events(rng, synthetic.received_instant(rng, days=40))
    await apply(model_sm, events)
    async with model_sm() as session, session.begin():
        single = await build_metrics(session)
    concurrent = await build_metrics_concurrently(model_sm)
    assert _samples(concurrent) == _samples(single)
    received = {
        s.labels["channel"]: s.value
        for m in single
        if m.name == "analytics_complaints_received"
        for s in m.samples
        if s.name.endswith("_total")
    }
    assert sum(received.values()) == 60
    collector = BusinessCollector(min_interval_seconds=0)
    await collector.refresh(model_sm, force=True)
    assert _samples(list(collector.collect())) == _samples(single)
