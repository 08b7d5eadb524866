"""Events: the CloudEvents envelope, the outbox, processed events, topics and contracts."""
