"""The submission aggregate: complaints and suggestions as recorded."""
