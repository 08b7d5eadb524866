"""HTTP routes of routing (ARCHITECTURE.md §5): taxonomy, rules, dry-run classification,
classifications and the triage queue.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from services.routing import tables
from services.routing.classifier import taxonomy
from services.routing.domain import priority as priority_rules
from services.routing.domain import service as routing_service
from shared.app import SessionDep
from shared.auth import Principal, require_roles
from shared.errors import NotFound

router = APIRouter(prefix="/v1", tags=["routing"])
Staff = Annotated[Principal, require_roles("agent", "supervisor", "analyst", "auditor")]


class ClassifyIn(BaseModel):
    """Body of ``POST /v1/classify``."""

    text: str = Field(min_length=1, max_length=20000)
    language: str | None = None
    channel: str = "web"
    product: str | None = None
    amount_minor: int | None = Field(None, ge=0)
    vulnerable_customer: bool = False


class ClassifyOut(BaseModel):
    """A dry-run classification: nothing is stored or published."""

    category: str
    product_line: str
    priority: str
    department: str
    confidence: float
    needs_triage: bool
    rule_version: int
    classifier_version: str
    explanation: dict[str, Any]


class ClassificationRead(BaseModel):
    """The stored classification of a complaint or suggestion."""

    subject_id: str
    kind: str
    reference: str
    channel: str
    received_at: datetime
    category: str
    product_line: str
    priority: str
    department: str
    confidence: float
    needs_triage: bool
    explanation: dict[str, Any]
    rule_version: int
    classifier_version: str
    classified_at: datetime
    overridden_by: str | None
    overridden_at: datetime | None


class TriagePage(BaseModel):
    """One page of the triage queue, oldest first."""

    total: int
    items: list[ClassificationRead]


@router.get("/taxonomy", summary="Categories, product lines and priorities")
async def get_taxonomy(_: Staff) -> dict[str, Any]:
    """Return the taxonomy with codes and Chinese/English labels."""
    labels = taxonomy.load_taxonomy()
    return {
        "categories": [
            {"code": x.code, "label_zh": x.label_zh, "label_en": x.label_en}
            for x in labels
            if x.kind == "category"
        ],
        "product_lines": [
            {"code": x.code, "label_zh": x.label_zh, "label_en": x.label_en}
            for x in labels
            if x.kind == "product_line"
        ],
        "priorities": ["P1", "P2", "P3", "P4"],
    }


@router.get("/rules", summary="The routing rules in force")
async def get_rules(request: Request, session: SessionDep, _: Staff) -> dict[str, Any]:
    """Return the newest rule set and its version."""
    async with session.begin():
        version, rules = await routing_service.current_rules(
            session=session, runtime=request.app.state.runtime
        )
    return {"version": version, **rules.model_dump(by_alias=True, exclude_none=True)}


@router.post("/classify", response_model=ClassifyOut, summary="Dry run: classify a text")
async def classify(
    body: ClassifyIn, request: Request, session: SessionDep, _: Staff
) -> ClassifyOut:
    """Classify ``text`` as a complaint would be, without storing or publishing anything."""
    runtime: routing_service.RoutingRuntime = request.app.state.runtime
    prediction = runtime.classifier.predict(
        body.text, language=body.language, product_hint=body.product
    )
    prio = priority_rules.assess(
        category=prediction.category,
        text=body.text,
        channel=body.channel,
        amount_minor=body.amount_minor,
        high_amount_minor=runtime.settings.high_amount_minor,
        vulnerable_customer=body.vulnerable_customer,
        repeat_count=0,
    )
    async with session.begin():
        version, rules = await routing_service.current_rules(session=session, runtime=runtime)
    facts = {
        "category": prediction.category,
        "product_line": prediction.product_line,
        "priority": prio.priority,
        "channel": body.channel,
        "kind": "complaint",
    }
    rule = rules.route(facts)
    return ClassifyOut(
        category=prediction.category,
        product_line=prediction.product_line,
        priority=prio.priority,
        department=rule.department if rule else "complaints_desk",
        confidence=prediction.confidence,
        needs_triage=prediction.confidence < runtime.settings.triage_threshold,
        rule_version=version,
        classifier_version=runtime.classifier.version,
        explanation={
            **prediction.explanation,
            "priority_rules": list(prio.fired),
            "routing_rule": rule.id if rule else None,
        },
    )


@router.get(
    "/classifications/{complaint_id}",
    response_model=ClassificationRead,
    summary="The classification of a complaint",
)
async def get_classification(
    complaint_id: str, session: SessionDep, _: Staff
) -> ClassificationRead:
    """Return how the complaint was classified and routed, with the explanation."""
    c = tables.classification
    async with session.begin():
        row = (
            (await session.execute(select(c).where(c.c.subject_id == complaint_id))).first()
            if _is_uuid(complaint_id)
            else None
        )
    if row is None:
        raise NotFound(f"no classification for {complaint_id}")
    return ClassificationRead.model_validate(row._mapping)


@router.get("/triage", response_model=TriagePage, summary="Complaints a person must confirm")
async def get_triage(
    session: SessionDep,
    _: Annotated[Principal, require_roles("agent", "supervisor")],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> TriagePage:
    """Return the triage queue (low-confidence classifications not yet overridden)."""
    c = tables.classification
    where = (c.c.needs_triage.is_(True), c.c.overridden_at.is_(None))
    async with session.begin():
        total = await session.scalar(select(func.count()).select_from(c).where(*where))
        rows = (
            await session.execute(
                select(c).where(*where).order_by(c.c.received_at).limit(limit).offset(offset)
            )
        ).all()
    return TriagePage(
        total=int(total or 0), items=[ClassificationRead.model_validate(r._mapping) for r in rows]
    )


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
