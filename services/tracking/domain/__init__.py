"""Domain logic of tracking (no HTTP, never commits)."""
