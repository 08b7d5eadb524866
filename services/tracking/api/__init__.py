"""HTTP API of tracking."""
