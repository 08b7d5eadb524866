"""Domain of the followup service: follow-up visits of cases and suggestions."""
