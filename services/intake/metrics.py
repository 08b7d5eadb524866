"""Intake's own Prometheus metrics (STYLE.md §8); labels are bounded values only."""

from __future__ import annotations

from functools import cache

from prometheus_client import Counter, Histogram

SUBMISSIONS = Counter(
    "intake_submissions_total",
    "Submissions answered, by kind and outcome: recorded, probable_duplicate, replayed.",
    ["kind", "outcome"],
)
RATE_LIMITED = Counter("intake_rate_limited_total", "Requests refused with 429 (rate limit).")
BATCH_SIZE = Histogram(
    "intake_group_commit_batch_size",
    "Submissions recorded per transaction (group commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)


@cache
def submissions(kind: str, outcome: str) -> Counter:
    """Return the child of :data:`SUBMISSIONS` for ``kind`` and ``outcome`` (looked up once)."""
    return SUBMISSIONS.labels(kind, outcome)
