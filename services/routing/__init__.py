"""Routing service: classification, priority, routing rules, triage and overrides."""
