"""The read model on real PostgreSQL: order tolerance, duplicates, derived figures, reports.

Handlers run inside real transactions on a fresh analytics database; events come from
services/analytics/synthetic.py, built with the contracts' payload classes.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text

from services.analytics import reports, synthetic, tables
from shared.events.envelope import Payload, new_event
from shared.events.registry import CASES_SLA_BREACHED, CASES_SLA_WARNING

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)


def _plans(n: int, seed: int = 7) -> list[synthetic.ComplaintPlan]:
    rng = random.Random(seed)
    return [
        synthetic.plan_complaint(rng, synthetic.received_instant(rng, days=60, end=NOW))
        for _ in range(n)
    ]


async def test_any_order_and_duplicates_give_the_same_model(
    model_sm: Any, apply: Any, snap: Any
) -> None:
    plans = _plans(40)
    events = [e for p in plans for e in synthetic.complaint_events(p)]
    rng = random.Random(3)
    sugg = [e for _ in range(10) for e in synthetic.suggestion_events(rng, NOW)]
    await apply(model_sm, events + sugg)
    in_order = await snap(model_sm)
    assert len(in_order["complaint_fact"]) == 40

    async with model_sm() as session, session.begin():
        for t in tables.MODEL_TABLES:
            await session.execute(t.delete())
    shuffled = (events + sugg) * 2  # every event twice ...
    random.Random(11).shuffle(shuffled)  # ... in a random order
    await apply(model_sm, shuffled)
    assert await snap(model_sm) == in_order


async def test_derived_case_figures_follow_the_events(model_sm: Any, apply: Any) -> None:
    plans = _plans(60, seed=21)
    await apply(model_sm, [e for p in plans for e in synthetic.complaint_events(p)])
    f = tables.complaint_fact
    async with model_sm() as session, session.begin():
        rows = {r.complaint_id: r for r in (await session.execute(select(f))).all()}
    for p in plans:
        r = rows[p.complaint_id]
        assert (r.channel, r.category, r.department, r.priority) == (
            p.channel, p.category, p.department, p.priority,
        )  # fmt: skip
        assert r.received_day == p.received_at.astimezone(ZoneInfo("Asia/Shanghai")).date()
        assert r.escalation_count == int(p.escalated)
        assert r.extension_count == int(p.extended)
        assert r.reopen_count == int(p.reopened)
        assert r.breaches_resolution == int(p.breached)
        assert (r.resolved_at is not None) == p.resolved
        assert r.resolution_working_days == p.working_days
        assert r.ack_seconds == (3 * 3600.0 if p.acknowledged else None)
        expected_comp = p.compensation_minor
        assert r.compensation_minor == expected_comp
        if p.resolved:
            assert r.status == "closed" if p.followup else "result_notified"
            assert r.res_clocks_done == (2 if p.reopened else 1)
            assert r.res_clocks_on_time == int(p.on_time) + int(p.reopened)
        else:
            assert r.status in ("opened", "acknowledged", "escalated")
            assert r.closed_at is None
        if p.score is not None:
            assert getattr(r, f"score_{p.score}") == 1
            assert r.score_sum == p.score


async def test_a_withdrawn_breach_no_longer_counts(model_sm: Any, apply: Any) -> None:
    plan = next(p for p in _plans(80, seed=5) if p.breached and p.resolved)
    events = synthetic.complaint_events(plan)
    breach = next(e for t, e in events if t == CASES_SLA_BREACHED)
    withdrawn = new_event(
        source="tracking",
        type_="cases.sla-withdrawn.v1",
        subject=plan.complaint_id,
        data=_Withdrawn(
            case_id=plan.complaint_id,
            clock="resolution",
            alert="breach",
            previous_due_at=breach.data.due_at,
            due_at=breach.data.due_at + timedelta(days=3),
            at=breach.data.at + timedelta(hours=1),
            department=plan.department,
            category=plan.category,
            priority=plan.priority,
        ),
    )
    # The withdrawal arrives before the breach it withdraws: still no breach in the end.
    await apply(model_sm, [(CASES_SLA_WARNING, withdrawn), *events])
    f = tables.complaint_fact
    async with model_sm() as session, session.begin():
        r = (await session.execute(select(f).where(f.c.complaint_id == plan.complaint_id))).one()
    assert r.breaches_resolution == 0


class _Withdrawn(Payload):
    case_id: str
    clock: str
    alert: str
    previous_due_at: datetime
    due_at: datetime
    at: datetime
    department: str
    category: str
    priority: str


async def test_reports_match_the_ground_truth(model_sm: Any, apply: Any) -> None:
    plans = _plans(120, seed=99)
    await apply(model_sm, [e for p in plans for e in synthetic.complaint_events(p)])
    tz = "Asia/Shanghai"
    flt = reports.Filters(tz=tz)
    async with model_sm() as session, session.begin():
        types = await reports.types(session=session, filters=flt)
        by_channel = await reports.types(session=session, filters=flt, dimension="channel")
        monthly = await reports.trend(session=session, filters=flt, granularity="month")
        weekly = await reports.trend(session=session, filters=flt, granularity="week")
        handling = await reports.handling(session=session, filters=flt)
        cross = await reports.cross(session=session, filters=flt, rows="channel", cols="category")
        phone = await reports.handling(
            session=session, filters=reports.Filters(values={"channel": ("phone",)}, tz=tz)
        )
    zone = ZoneInfo(tz)

    def count(key: Any) -> dict[Any, int]:
        out: dict[Any, int] = {}
        for p in plans:
            out[key(p)] = out.get(key(p), 0) + 1
        return out

    assert {i.category: i.count for i in types.items} == count(lambda p: p.category)
    assert {i.category: i.count for i in by_channel.items} == count(lambda p: p.channel)
    assert {i.period: i.count for i in monthly.items} == count(
        lambda p: p.received_at.astimezone(zone).strftime("%Y-%m")
    )
    assert {i.period: i.count for i in weekly.items} == count(
        lambda p: "{}-W{:02d}".format(*p.received_at.astimezone(zone).isocalendar()[:2])
    )
    assert {(c.row, c.col): c.count for c in cross.cells} == count(
        lambda p: (p.channel, p.category)
    )
    assert handling.complaints == 120
    assert handling.resolved == sum(p.resolved for p in plans)
    assert handling.reopened == sum(p.reopened for p in plans)
    assert handling.escalations == sum(p.escalated for p in plans)
    assert handling.extensions == sum(p.extended for p in plans)
    assert handling.compensation_total_minor == sum(p.compensation_minor for p in plans)
    assert handling.clocks["resolution"].breaches == sum(p.breached for p in plans)
    resolved_first = [p for p in plans if p.resolved]
    assert handling.clocks["resolution"].completed == len(resolved_first) + handling.reopened
    scores = [p.score for p in plans if p.score is not None]
    assert handling.satisfaction.answers == len(scores)
    assert handling.satisfaction.mean_score == round(sum(scores) / len(scores), 2)
    wds = sorted(p.working_days for p in resolved_first if p.working_days is not None)
    assert handling.resolution_working_days.count == len(wds)
    assert phone.complaints == sum(p.channel == "phone" for p in plans)


async def test_the_migrations_create_every_index_the_model_declares(model_sm: Any) -> None:
    """``tables.py`` and the migrations agree: each declared index exists with its key
    columns; for 0017's covering indexes (led by channel, priority, department, category)
    the INCLUDE list and the partial condition are checked too."""
    declared = {
        ix.name: [c.name for c in ix.columns]
        for table in tables.metadata.tables.values()
        for ix in table.indexes
    }
    async with model_sm() as session:
        rows = await session.execute(
            text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'analytics'")
        )
        created = dict(rows.all())
    assert set(declared) <= set(created), sorted(set(declared) - set(created))
    for name, columns in declared.items():
        key = created[name].split(" USING btree (", 1)[1].split(")", 1)[0]
        assert [c.strip() for c in key.split(",")] == columns, (name, created[name])
    for lead in ("channel", "priority", "department", "category"):
        name = (
            "complaint_fact_category_dims_idx"
            if lead == "category"
            else f"complaint_fact_{lead}_idx"
        )
        assert f"({lead}, received_day) INCLUDE (" in created[name]
        assert created[name].endswith("WHERE (received_day IS NOT NULL)")
