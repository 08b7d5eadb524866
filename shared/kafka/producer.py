"""The idempotent Kafka producer used by the outbox relay and the DLQ path."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer


def make_producer(bootstrap_servers: str, *, client_id: str) -> AIOKafkaProducer:
    """Create (not start) a producer with ``acks=all`` and idempotence (ARCHITECTURE.md §3).

    Args:
        bootstrap_servers: comma-separated ``host:port`` list.
        client_id: shown in broker logs and metrics (the service name).
    """
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        request_timeout_ms=15000,
    )
