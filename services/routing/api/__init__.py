"""HTTP API of the routing service."""
