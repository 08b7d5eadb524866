"""Followup service: follow-up visits and customer satisfaction."""
