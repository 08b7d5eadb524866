"""HTTP layer of intake."""
