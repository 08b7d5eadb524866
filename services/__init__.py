"""The five services: intake, routing, tracking, followup, analytics (one package each)."""
