"""HTTP API of the followup service."""
