"""Event payloads, one module per producing aggregate; changed only additively within v1."""
