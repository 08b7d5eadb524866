"""Tracking service: case lifecycle, clocks, SLA sweep, calendar overrides, suggestions."""
