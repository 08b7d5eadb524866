"""The shared Prometheus metrics (STYLE.md §8), defined once for every service.

Names follow ``<namespace>_<what>_<unit>``; labels hold bounded values only (route
templates, methods, status codes, topics, event types, outcomes), never ids or raw paths.
The emitting service is the scrape target's ``job``/``service`` label, not a metric label.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration in seconds, by route template, method and status code.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
EVENTS_PUBLISHED = Counter(
    "events_published_total", "Events sent to Kafka by the outbox relay.", ["topic", "event_type"]
)
EVENTS_PUBLISH_FAILURES = Counter(
    "events_publish_failures_total", "Outbox relay send attempts that failed.", ["topic"]
)
EVENTS_CONSUMED = Counter(
    "events_consumed_total",
    "Events taken from Kafka, by outcome: ok, duplicate, ignored, retry, dlq.",
    ["topic", "event_type", "outcome"],
)
EVENT_HANDLING_DURATION = Histogram(
    "event_handling_duration_seconds",
    "Time to handle one event including its database transaction, in seconds.",
    ["topic", "event_type"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
EVENTS_DEAD_LETTERED = Counter(
    "events_dead_lettered_total", "Events sent to a dead-letter topic.", ["topic"]
)
OUTBOX_PENDING = Gauge("outbox_pending_events", "Outbox rows not yet published.")
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox row, in seconds."
)
CONSUMER_LAG = Gauge(
    "events_consumer_lag_messages",
    "Messages between the consumer group's position and the partition end, per topic.",
    ["topic"],
)


def render_latest() -> tuple[bytes, str]:
    """Return the exposition body and its content type for ``GET /metrics``."""
    return generate_latest(), CONTENT_TYPE_LATEST
