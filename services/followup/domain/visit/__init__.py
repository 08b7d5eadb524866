"""Follow-up visits: scheduling from events, attempts, outcomes, clocks and work lists."""
