"""A supervisor's override in routing (``complaints.rerouted``) moves the case."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tracking import tables
from services.tracking.handlers import CaseNotOpenedYet, apply_reroute
from services.tracking.tests.tracking_helpers import open_case
from shared.events.contracts.complaints import ComplaintRerouted


def rerouted(case_id: str, **kw: str) -> ComplaintRerouted:
    values = {
        "complaint_id": case_id,
        "reference": "C-REROUTE",
        "category": "fraud_security",
        "product_line": "cards",
        "priority": "P1",
        "department": "fraud_investigations",
        "previous_department": "retail_ops",
        "rerouted_at": datetime.now(UTC),
        "rerouted_by": "sup-1",
        "rule_version": 3,
    }
    values.update(kw)
    return ComplaintRerouted.model_validate(values)


async def test_reroute_moves_the_case_and_records_it(tsm: async_sessionmaker[AsyncSession]) -> None:
    case_id = await open_case(tsm, datetime(2026, 9, 30, 2, 0, tzinfo=UTC))
    async with tsm() as session, session.begin():
        assert await apply_reroute(session=session, rerouted=rerouted(case_id)) is True
    async with tsm() as session:
        case = (await session.execute(select(tables.case).where(tables.case.c.id == case_id))).one()
        events = (
            await session.execute(
                select(tables.case_event.c.action, tables.case_event.c.details)
                .where(tables.case_event.c.case_id == case_id)
                .order_by(tables.case_event.c.id)
            )
        ).all()
    assert (case.department, case.category, case.priority) == (
        "fraud_investigations",
        "fraud_security",
        "P1",
    )
    assert case.needs_triage is False
    assert events[-1].action == "reroute"
    assert events[-1].details["department"] == ["retail_ops", "fraud_investigations"]


async def test_reroute_of_an_unknown_case_is_retried_not_lost(
    tsm: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(CaseNotOpenedYet):
        async with tsm() as session, session.begin():
            await apply_reroute(
                session=session, rerouted=rerouted("8f8e2a44-3c3b-4a39-9a5e-2f6f7f2b9d11")
            )
