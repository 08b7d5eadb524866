"""Intake's own Prometheus metrics (STYLE.md §8); labels are bounded values only."""

from __future__ import annotations

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
