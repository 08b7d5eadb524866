"""HTTP routes of routing (ARCHITECTURE.md §5).

Taxonomy, rules (read and replace), dry-run classification, classifications, overrides
and the triage queue; ``GET /v1/audit`` comes from ``shared.audit.audit_router``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from services.routing import tables
from services.routing.classifier import taxonomy
from services.routing.domain import priority as priority_rules
from services.routing.domain import service as routing_service
from services.routing.domain.exceptions import ClassificationNotFound
from services.routing.domain.rules import Rule, RuleSet
from shared.app import SessionDep
from shared.auth import Principal, require_roles

router = APIRouter(prefix="/v1", tags=["routing"])
Staff = Annotated[Principal, require_roles("agent", "supervisor", "analyst", "auditor")]
Supervisor = Annotated[Principal, require_roles("supervisor")]


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


class RulesUpdate(BaseModel):
    """Body of ``PUT /v1/rules``: the complete new rule list (first match wins).

    Attributes:
        rules: 1..500 rules; the set must reach a department for every combination of kind,
            category, product line, priority and channel (end with ``{"always": true}``).
        comment: why the rules change (audited).
        base_version: optional; the version the change was made from. When another
            version has been stored since, the update is refused with 409.
    """

    rules: list[Rule] = Field(min_length=1, max_length=500)
    comment: str = Field(min_length=1, max_length=2000)
    base_version: int | None = Field(None, ge=0)


class RulesStored(BaseModel):
    """Answer of ``PUT /v1/rules``."""

    version: int
    previous_version: int


class OverrideIn(BaseModel):
    """Body of ``POST /v1/classifications/{complaint_id}/override``.

    Fields left out keep their value; without ``department`` the rules in force choose it
    from the corrected facts. ``reason`` is required and audited (redacted).
    """

    category: str | None = Field(None, max_length=64)
    product_line: str | None = Field(None, max_length=64)
    priority: Literal["P1", "P2", "P3", "P4"] | None = None
    department: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    reason: str = Field(min_length=3, max_length=2000)


class OverrideOut(BaseModel):
    """Answer of an override: the new classification and whether it was rerouted."""

    complaint_id: str
    rerouted: bool
    category: str
    product_line: str
    priority: str
    department: str
    previous_category: str | None
    previous_product_line: str | None
    previous_priority: str | None
    previous_department: str | None


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
    near_duplicate_of: str | None = None
    near_duplicate_similarity: float | None = None


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


@router.put(
    "/rules",
    response_model=RulesStored,
    summary="Replace the routing rules (new version, audited)",
    responses={409: {"description": "base_version is stale"}, 422: {"description": "invalid"}},
)
async def put_rules(
    body: RulesUpdate, request: Request, session: SessionDep, actor: Supervisor
) -> RulesStored:
    """Validate and store a new rule version; it applies to the next event, no restart.

    Supervisors and admins only. A rule set with unknown codes, duplicate rule ids or a
    combination that reaches no department gets a 422 problem listing ``problems`` and
    nothing is stored.
    """
    runtime: routing_service.RoutingRuntime = request.app.state.runtime
    async with session.begin():
        version = await routing_service.replace_rules(
            session=session,
            runtime=runtime,
            rules=RuleSet(rules=body.rules),
            comment=body.comment,
            actor=actor,
            base_version=body.base_version,
        )
    return RulesStored(version=version, previous_version=version - 1)


@router.post("/classify", response_model=ClassifyOut, summary="Dry run: classify a text")
async def classify(
    body: ClassifyIn, request: Request, session: SessionDep, _: Staff
) -> ClassifyOut:
    """Classify ``text`` as a complaint would be, without storing or publishing anything."""
    runtime: routing_service.RoutingRuntime = request.app.state.runtime
    prediction = await routing_service.classify_text(
        runtime, body.text, language=body.language, product_hint=body.product, channel=body.channel
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
        department=rule.department if rule else routing_service.FALLBACK_DEPARTMENT,
        confidence=prediction.confidence,
        needs_triage=prediction.confidence < runtime.settings.triage_threshold or rule is None,
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
        raise ClassificationNotFound(f"no classification for {complaint_id}")
    return ClassificationRead.model_validate(row._mapping)


@router.post(
    "/classifications/{complaint_id}/override",
    response_model=OverrideOut,
    summary="Correct a complaint's classification and reroute it",
    responses={404: {"description": "unknown complaint"}, 409: {"description": "a suggestion"}},
)
async def override(
    complaint_id: str, body: OverrideIn, request: Request, session: SessionDep, actor: Supervisor
) -> OverrideOut:
    """Apply a supervisor's correction: reroute, audit, leave triage, keep as training data.

    Publishes ``complaints.rerouted`` (through the outbox) when anything changed.
    """
    if not _is_uuid(complaint_id):
        raise ClassificationNotFound(f"no classification for {complaint_id}")
    async with session.begin():
        result = await routing_service.override_classification(
            session=session,
            runtime=request.app.state.runtime,
            complaint_id=complaint_id,
            actor=actor,
            reason=body.reason,
            category=body.category,
            product_line=body.product_line,
            priority=body.priority,
            department=body.department,
        )
    p = result.payload
    return OverrideOut(
        complaint_id=complaint_id,
        rerouted=result.rerouted,
        category=p.category,
        product_line=p.product_line,
        priority=p.priority,
        department=p.department,
        previous_category=p.previous_category,
        previous_product_line=p.previous_product_line,
        previous_priority=p.previous_priority,
        previous_department=p.previous_department,
    )


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
    """Return whether ``value`` parses as a UUID (other ids cannot exist)."""
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
