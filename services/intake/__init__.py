"""The intake service (ARCHITECTURE.md §2): records complaints and suggestions."""
