"""Replay real complaints in the CFPB CSV format into intake (``cfp replay``).

Each row becomes one ``POST /v1/complaints``: the channel from ``Submitted via``, the
description from the narrative (or, for rows without one, from product, issue and
sub-issue), ``received_at`` from ``Date received`` (09:00 in the bank's time zone) either as
in the file or shifted so that the newest row is now, the CFPB complaint id as external
reference, and an ``Idempotency-Key`` made of that id and a hash of the request body, so a
second replay of the same file with the same dates changes nothing, while a replay with
shifted dates records new complaints instead of being refused.
The CFPB publishes no customer identity: each complaint gets customer number
``CFPB-<complaint id>``.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

#: CFPB ``Submitted via`` -> platform channel.
CHANNEL_MAP = {
    "web": "web",
    "referral": "regulator_referral",
    "phone": "phone",
    "postal mail": "letter",
    "fax": "letter",
    "email": "email",
    "web referral": "web",
}


@dataclass
class ReplaySummary:
    """What a replay did.

    Attributes:
        sent: requests made.
        accepted: 201 answers (new complaints, or replays of an earlier identical request).
        replayed: the part of ``accepted`` that intake answered from its idempotency keys
            (nothing new was recorded).
        rejected: rejection reasons (``status code: detail``) with counts.
        accepted_ids: the complaint ids intake returned, in file order.
        rows: the request bodies sent, in file order.
        seconds: wall time of the sending phase.
    """

    sent: int = 0
    accepted: int = 0
    replayed: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    accepted_ids: list[str] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def read_rows(path: Path, limit: int | None = None) -> list[dict[str, str]]:
    """Read CFPB rows (UTF-8 CSV with the official header), at most ``limit``."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = []
        for row in csv.DictReader(fh):
            rows.append(row)
            if limit is not None and len(rows) >= limit:
                break
    return rows


def to_request(
    row: dict[str, str], *, tz: str, shift: timedelta, now: datetime
) -> tuple[str, dict[str, Any]]:
    """Map one CFPB row to ``(idempotency key, complaint body)``."""
    cid = (row.get("Complaint ID") or row.get("Sample ID") or "").strip()
    narrative = (row.get("Consumer complaint narrative") or "").strip()
    if not narrative:
        parts = [row.get("Product"), row.get("Sub-product"), row.get("Issue"), row.get("Sub-issue")]
        narrative = ". ".join(p.strip() for p in parts if p and p.strip())
    day = date.fromisoformat(row["Date received"][:10])
    received = datetime(day.year, day.month, day.day, 9, 0, tzinfo=ZoneInfo(tz)) + shift
    received = min(received.astimezone(UTC), now)
    channel = CHANNEL_MAP.get((row.get("Submitted via") or "web").strip().lower(), "web")
    body: dict[str, Any] = {
        "channel": channel,
        "customer": {"customer_number": f"CFPB-{cid}"},
        "description": narrative[:20000],
        "product": (row.get("Product") or None) and row["Product"][:100],
        "region": (row.get("State") or None) and row["State"][:64],
        "external_ref": f"CFPB-{cid}",
        "received_at": received.isoformat(),
        "language": "en",
    }
    if row.get("Issue"):
        body["subject"] = row["Issue"][:200]
    body = {k: v for k, v in body.items() if v is not None}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    return f"cfpb-{cid}-{digest}", body


def plan_requests(
    rows: list[dict[str, str]], *, tz: str, shift_to_now: bool, now: datetime | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield the requests for ``rows``; with ``shift_to_now`` the newest row lands at now."""
    now = now or datetime.now(UTC)
    shift = timedelta(0)
    if shift_to_now and rows:
        newest = max(date.fromisoformat(r["Date received"][:10]) for r in rows)
        newest_at = datetime(newest.year, newest.month, newest.day, 9, 0, tzinfo=ZoneInfo(tz))
        shift = timedelta(days=(now - newest_at).days)
    for row in rows:
        yield to_request(row, tz=tz, shift=shift, now=now)


async def replay(
    rows: list[dict[str, str]],
    *,
    intake_url: str,
    token: str,
    rate_per_second: float = 50.0,
    concurrency: int = 16,
    tz: str = "Asia/Shanghai",
    shift_to_now: bool = False,
    progress: Any = None,
) -> ReplaySummary:
    """Post every row to intake at about ``rate_per_second``.

    Args:
        rows: CFPB rows.
        intake_url: base URL of intake.
        token: bearer token with the ``intake_client`` role.
        rate_per_second: request start rate (> 0); 0 or less means as fast as possible.
        concurrency: requests in flight at most.
        tz: the bank's time zone (receipt times are 09:00 local of the CFPB date).
        shift_to_now: move all dates so the newest row is received today.
        progress: optional callable ``progress(n)`` called after each request.

    Returns:
        The summary (accepted ids in file order).
    """
    summary = ReplaySummary()
    requests = list(plan_requests(rows, tz=tz, shift_to_now=shift_to_now))
    summary.bodies = [b for _, b in requests]
    ids: list[str | None] = [None] * len(requests)
    sem = asyncio.Semaphore(concurrency)
    interval = 1.0 / rate_per_second if rate_per_second > 0 else 0.0
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}"}

    async with httpx.AsyncClient(base_url=intake_url, headers=headers, timeout=30.0) as client:

        async def send(i: int, key: str, body: dict[str, Any]) -> None:
            async with sem:
                try:
                    r = await client.post(
                        "/v1/complaints", json=body, headers={"Idempotency-Key": key}
                    )
                except httpx.HTTPError as exc:
                    summary.rejected[f"network: {type(exc).__name__}"] += 1
                else:
                    if r.status_code == 201:
                        ids[i] = r.json()["id"]
                        if r.headers.get("Idempotent-Replayed") == "true":
                            summary.replayed += 1
                    else:
                        try:
                            detail = r.json().get("detail", r.text)
                        except ValueError:
                            detail = r.text[:200]
                        summary.rejected[f"{r.status_code}: {detail}"] += 1
                summary.sent += 1
                if progress is not None:
                    progress(1)

        tasks = []
        for i, (key, body) in enumerate(requests):
            if interval:
                delay = started + i * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(i, key, body)))
        await asyncio.gather(*tasks)
    summary.seconds = time.perf_counter() - started
    summary.accepted_ids = [x for x in ids if x]
    summary.accepted = len(summary.accepted_ids)
    return summary


async def classified_counts(*, analytics_url: str, token: str) -> dict[str, int]:
    """Return analytics' all-time complaint counts by category (``unclassified`` included)."""
    async with httpx.AsyncClient(
        base_url=analytics_url, headers={"Authorization": f"Bearer {token}"}, timeout=10.0
    ) as client:
        r = await client.get("/v1/reports/complaints/types")
        r.raise_for_status()
        return {i["category"]: i["count"] for i in r.json()["items"]}


async def wait_for_analytics(
    *,
    analytics_url: str,
    token: str,
    before: dict[str, int],
    new: int,
    timeout_seconds: float = 120.0,
) -> dict[str, int]:
    """Wait until analytics has classified ``new`` more complaints than in ``before``.

    Returns:
        The change of the counts by category since ``before`` (what this replay added,
        when nobody else is writing at the same time).
    """
    deadline = time.monotonic() + timeout_seconds
    target = sum(v for k, v in before.items() if k != "unclassified") + new
    delta: dict[str, int] = {}
    while time.monotonic() < deadline:
        now = await classified_counts(analytics_url=analytics_url, token=token)
        delta = {k: v - before.get(k, 0) for k, v in now.items() if v != before.get(k, 0)}
        if sum(v for k, v in now.items() if k != "unclassified") >= target:
            break
        await asyncio.sleep(0.5)
    return delta
