"""Analytics service: read model, reports and business metrics (ARCHITECTURE.md §2)."""
