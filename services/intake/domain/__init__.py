"""Domain of intake: one folder per aggregate."""
