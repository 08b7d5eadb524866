"""Kafka plumbing: the idempotent producer, the outbox relay and the idempotent consumer."""
