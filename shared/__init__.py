"""The project's own library: plumbing shared by the five services; it imports no service."""
