"""Writes to the read model: merging upserts and the per-complaint derivation.

Every write here is idempotent and order-tolerant (docs/analytics.md "Read model"):

- :func:`upsert` inserts a row or merges it with the stored one, column by column, with a
  :class:`Merge` rule (overwrite, keep the first non-null, the earliest or latest instant);
- :func:`refresh_complaint` recomputes the derived columns of ``complaint_fact`` from the
  detail tables, so the result depends only on the set of events seen, never on their order
  or on how often one was delivered.

Functions take the session keyword-only and never commit: the consumer wrapper commits
(STYLE.md §5).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics import tables


class Merge(enum.Enum):
    """How a column of an existing row takes the value of a new event."""

    SET = "set"  # the event's value replaces the stored one (also with NULL)
    FILL = "fill"  # keep the stored value when there is one (COALESCE(stored, new))
    NEW_OR_KEEP = "new_or_keep"  # the event's value unless it is NULL
    EARLIEST = "earliest"  # LEAST of both (NULLs ignored)
    LATEST = "latest"  # GREATEST of both (NULLs ignored)


async def upsert(
    *,
    session: AsyncSession,
    table: Table,
    key: Mapping[str, Any],
    values: Mapping[str, Any],
    rules: Mapping[str, Merge] | None = None,
    default: Merge = Merge.SET,
) -> None:
    """Insert ``key | values`` into ``table`` or merge ``values`` into the existing row.

    Args:
        session: the consumer's session (not committed here).
        table: a table of the analytics schema whose primary key is ``key``'s columns.
        key: primary-key column -> value.
        values: column -> value from the event; missing columns are left untouched.
        rules: per-column :class:`Merge` rule; ``default`` for the others.
        default: rule of columns not in ``rules``.
    """
    rules = rules or {}
    stmt = pg_insert(table).values({**key, **values})
    excluded = stmt.excluded
    set_: dict[str, Any] = {}
    for name in values:
        stored, new = table.c[name], excluded[name]
        rule = rules.get(name, default)
        if rule is Merge.SET:
            set_[name] = new
        elif rule is Merge.FILL:
            set_[name] = func.coalesce(stored, new)
        elif rule is Merge.NEW_OR_KEEP:
            set_[name] = func.coalesce(new, stored)
        elif rule is Merge.EARLIEST:
            set_[name] = func.least(stored, new)
        else:
            set_[name] = func.greatest(stored, new)
    if "updated_at" in table.c:
        set_["updated_at"] = func.now()
    if set_:
        await session.execute(
            stmt.on_conflict_do_update(index_elements=list(table.primary_key.columns), set_=set_)
        )
    else:
        await session.execute(stmt.on_conflict_do_nothing())


def local_day(instant: datetime, tz: str) -> date:
    """Return the calendar day of ``instant`` (aware) in time zone ``tz`` (IANA name)."""
    return instant.astimezone(ZoneInfo(tz)).date()


async def ensure_complaint(*, session: AsyncSession, complaint_id: str) -> None:
    """Create the complaint's fact row if no event of it has arrived yet."""
    await session.execute(
        pg_insert(tables.complaint_fact).values(complaint_id=complaint_id).on_conflict_do_nothing()
    )


_TERMINAL = ", ".join(f"'{s}'" for s in tables.TERMINAL_STATUSES)

#: Derivation of the case columns of one complaint from the detail tables. ``t``: the
#: transitions (status = the ``to_status`` of the latest one; a terminal event wins a tie),
#: ``r``: rounds (resolution figures of round 1; clocks done and on time over every round;
#: the latest remedy; compensation summed), ``c``: breached clock rounds (withdrawn breaches
#: excluded), ``v``: completed visits.
_REFRESH_SQL = text(
    f"""
UPDATE analytics.complaint_fact AS f SET
    status = t.status,
    status_at = t.status_at,
    acknowledged_at = t.ack_at,
    ack_seconds = EXTRACT(EPOCH FROM t.ack_at - f.received_at),
    escalation_count = t.escalations,
    extension_count = t.extensions,
    reopen_count = r.reopens,
    resolved_at = r.first_resolved_at,
    resolution_working_days = r.first_working_days,
    resolution_seconds = EXTRACT(EPOCH FROM r.first_resolved_at - f.received_at),
    result_notified_at = r.first_notified_at,
    res_clocks_done = r.done,
    res_clocks_on_time = r.on_time,
    ack_clock_done = (t.ack_at IS NOT NULL)::int,
    ack_clock_on_time = (t.ack_at IS NOT NULL AND c.ack_breaches = 0)::int,
    breaches_resolution = c.res_breaches,
    breaches_acknowledgement = c.ack_breaches,
    breaches_regulatory = c.reg_breaches,
    responsibility = r.responsibility,
    remedy = r.remedy,
    compensation_minor = r.compensation,
    closed_at = CASE WHEN t.status IN ({_TERMINAL}) THEN t.status_at END,
    close_outcome = CASE WHEN t.status IN ({_TERMINAL}) THEN t.close_outcome END,
    visits_done = v.done,
    visits_unreachable = v.unreachable,
    visits_unsatisfied = v.unsatisfied,
    score_n = v.score_n,
    score_sum = v.score_sum,
    score_1 = v.s1, score_2 = v.s2, score_3 = v.s3, score_4 = v.s4, score_5 = v.s5,
    updated_at = now()
FROM (
    SELECT
        (array_agg(to_status ORDER BY at DESC, (to_status IN ({_TERMINAL})) DESC, event_id)
            FILTER (WHERE to_status IS NOT NULL))[1] AS status,
        max(at) FILTER (WHERE to_status IS NOT NULL) AS status_at,
        min(at) FILTER (WHERE action = 'acknowledge' OR to_status = 'acknowledged') AS ack_at,
        count(*) FILTER (WHERE action = 'escalate' OR to_status = 'escalated') AS escalations,
        count(*) FILTER (WHERE kind = 'extension') AS extensions,
        (array_agg(action ORDER BY at DESC, event_id) FILTER (WHERE kind = 'closed'))[1]
            AS close_outcome
    FROM analytics.case_transition_fact WHERE case_id = :id
) AS t, (
    SELECT
        GREATEST(COALESCE(max(round), 1) - 1, 0) AS reopens,
        min(resolved_at) FILTER (WHERE round = 1) AS first_resolved_at,
        min(working_days_taken) FILTER (WHERE round = 1) AS first_working_days,
        min(notified_at) FILTER (WHERE round = 1) AS first_notified_at,
        count(*) FILTER (WHERE COALESCE(notified_at, resolved_at) IS NOT NULL) AS done,
        count(*) FILTER (WHERE COALESCE(notified_on_time, resolved_on_time)) AS on_time,
        (array_agg(responsibility ORDER BY round DESC)
            FILTER (WHERE responsibility IS NOT NULL))[1] AS responsibility,
        (array_agg(remedy ORDER BY round DESC) FILTER (WHERE remedy IS NOT NULL))[1] AS remedy,
        COALESCE(sum(compensation_minor), 0) AS compensation
    FROM analytics.case_round_fact WHERE case_id = :id
) AS r, (
    SELECT
        count(DISTINCT round) FILTER (WHERE clock = 'resolution') AS res_breaches,
        count(DISTINCT round) FILTER (WHERE clock = 'acknowledgement') AS ack_breaches,
        count(DISTINCT round) FILTER (WHERE clock = 'regulatory') AS reg_breaches
    FROM analytics.clock_alert_fact
    WHERE case_id = :id AND alert = 'breach' AND at IS NOT NULL AND NOT withdrawn
) AS c, (
    SELECT
        count(*) AS done,
        count(*) FILTER (WHERE outcome = 'unreachable') AS unreachable,
        count(*) FILTER (WHERE outcome = 'unsatisfied') AS unsatisfied,
        count(score) AS score_n,
        COALESCE(sum(score), 0) AS score_sum,
        count(*) FILTER (WHERE score = 1) AS s1,
        count(*) FILTER (WHERE score = 2) AS s2,
        count(*) FILTER (WHERE score = 3) AS s3,
        count(*) FILTER (WHERE score = 4) AS s4,
        count(*) FILTER (WHERE score = 5) AS s5
    FROM analytics.followup_fact
    WHERE subject_id = :sid AND subject_kind = 'case' AND completed_at IS NOT NULL
) AS v
WHERE f.complaint_id = :id
"""
)


#: ``session.info`` key: when it holds a set, :func:`refresh_complaint` only notes the id and
#: :func:`flush_refreshes` recomputes each noted complaint once (batched rebuilds).
DEFER_KEY = "analytics_deferred_refresh"


async def refresh_complaint(*, session: AsyncSession, complaint_id: str) -> None:
    """Recompute the derived case columns of one complaint from the detail tables.

    Creates the fact row when the complaint's own events have not arrived yet. In a
    session that defers refreshes (``session.info[DEFER_KEY]`` is a set), only notes the id.

    Args:
        session: the consumer's session (not committed here).
        complaint_id: the complaint (= case) id, a UUID string.
    """
    deferred = session.info.get(DEFER_KEY)
    if deferred is not None:
        deferred.add(complaint_id)
        return
    await ensure_complaint(session=session, complaint_id=complaint_id)
    await session.execute(_REFRESH_SQL, {"id": complaint_id, "sid": complaint_id})


def defer_refreshes(session: AsyncSession) -> None:
    """Make :func:`refresh_complaint` only note ids in this session until flushed."""
    session.info[DEFER_KEY] = set()


async def flush_refreshes(*, session: AsyncSession) -> int:
    """Recompute every complaint noted since :func:`defer_refreshes`, once each.

    Returns:
        The number of complaints recomputed.
    """
    deferred: set[str] = session.info.pop(DEFER_KEY, None) or set()
    for complaint_id in sorted(deferred):
        await refresh_complaint(session=session, complaint_id=complaint_id)
    return len(deferred)
