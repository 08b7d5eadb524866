"""Classifying and routing complaints and suggestions (ARCHITECTURE.md §1).

The classifier gives category and product line with a confidence; the priority rules give
the priority; the routing rule set in force gives the department. A prediction below the
triage threshold still routes (the 5-working-day clock runs from receipt and must never
wait for a person) but is flagged ``needs_triage`` so a person confirms it from
``GET /v1/triage``. Functions here never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.routing import tables
from services.routing.classifier import ComplaintClassifier
from services.routing.domain import priority as priority_rules
from services.routing.domain.rules import DEFAULT_RULES, RuleSet
from services.routing.settings import RoutingSettings
from shared.events import outbox, registry
from shared.events.contracts.complaints import (
    COMPLAINT_ROUTED_V1,
    SUGGESTION_SCREENED_V1,
    ComplaintReceived,
    ComplaintRouted,
    SuggestionReceived,
    SuggestionScreened,
)
from shared.events.envelope import new_event


@dataclass
class RoutingRuntime:
    """What the handlers need besides the session: settings, classifier, cached rules."""

    settings: RoutingSettings
    classifier: ComplaintClassifier
    rules: RuleSet | None = None
    rules_version: int = 0


async def ensure_default_rules(*, session: AsyncSession) -> None:
    """Store the default rule set as version 1 when no version exists yet."""
    await session.execute(
        pg_insert(tables.routing_rule_set)
        .values(version=1, rules=DEFAULT_RULES, comment="default rules", created_by="system")
        .on_conflict_do_nothing()
    )


async def current_rules(*, session: AsyncSession, runtime: RoutingRuntime) -> tuple[int, RuleSet]:
    """Return the rule set in force (newest version), re-reading it when a new one exists."""
    t = tables.routing_rule_set
    newest = await session.scalar(select(func.max(t.c.version)))
    if newest is None:
        return 0, RuleSet.model_validate(DEFAULT_RULES)
    if runtime.rules is None or newest != runtime.rules_version:
        raw = await session.scalar(select(t.c.rules).where(t.c.version == newest))
        runtime.rules = RuleSet.model_validate(raw)
        runtime.rules_version = newest
    return runtime.rules_version, runtime.rules


async def repeat_count(
    *, session: AsyncSession, customer_key: str, before: Any, window_days: int, exclude: str
) -> int:
    """Count the customer's earlier complaints within ``window_days`` before ``before``."""
    c = tables.classification
    count = await session.scalar(
        select(func.count())
        .select_from(c)
        .where(
            c.c.customer_key == customer_key,
            c.c.kind == "complaint",
            c.c.received_at >= before - timedelta(days=window_days),
            c.c.received_at <= before,
            c.c.subject_id != exclude,
        )
    )
    return int(count or 0)


async def route_complaint(
    *, session: AsyncSession, runtime: RoutingRuntime, complaint: ComplaintReceived
) -> ComplaintRouted:
    """Classify and route one complaint, store the classification, stage ``complaints.routed``.

    Redelivery is handled by the consumer's processed-events table; a second classification
    of the same complaint (e.g. after a replay into a fresh consumer group) keeps the first.
    """
    s = runtime.settings
    text = " ".join(p for p in (complaint.subject, complaint.description) if p)
    prediction = runtime.classifier.predict(
        text, language=complaint.language, product_hint=complaint.product
    )
    repeats = await repeat_count(
        session=session,
        customer_key=complaint.customer_key,
        before=complaint.received_at,
        window_days=s.repeat_window_days,
        exclude=complaint.complaint_id,
    )
    prio = priority_rules.assess(
        category=prediction.category,
        text=text,
        channel=complaint.channel,
        amount_minor=complaint.amount_minor,
        high_amount_minor=s.high_amount_minor,
        vulnerable_customer=complaint.vulnerable_customer,
        repeat_count=repeats,
    )
    version, rules = await current_rules(session=session, runtime=runtime)
    facts = {
        "category": prediction.category,
        "product_line": prediction.product_line,
        "priority": prio.priority,
        "channel": complaint.channel,
        "kind": "complaint",
    }
    rule = rules.route(facts)
    department = rule.department if rule else "complaints_desk"
    needs_triage = prediction.confidence < s.triage_threshold or rule is None
    explanation = {
        **prediction.explanation,
        "priority_rules": list(prio.fired),
        "routing_rule": rule.id if rule else None,
        "repeat_complaints_in_window": repeats,
    }
    inserted = await session.execute(
        pg_insert(tables.classification)
        .values(
            subject_id=complaint.complaint_id,
            kind="complaint",
            reference=complaint.reference,
            customer_key=complaint.customer_key,
            channel=complaint.channel,
            received_at=complaint.received_at,
            category=prediction.category,
            product_line=prediction.product_line,
            priority=prio.priority,
            department=department,
            confidence=prediction.confidence,
            needs_triage=needs_triage,
            explanation=explanation,
            rule_version=version,
            classifier_version=runtime.classifier.version,
            description=complaint.description,
            amount_minor=complaint.amount_minor,
        )
        .on_conflict_do_nothing()
        .returning(tables.classification.c.subject_id)
    )
    routed = ComplaintRouted(
        complaint_id=complaint.complaint_id,
        reference=complaint.reference,
        channel=complaint.channel,
        received_at=complaint.received_at,
        customer_key=complaint.customer_key,
        category=prediction.category,
        product_line=prediction.product_line,
        priority=prio.priority,
        department=department,
        confidence=round(prediction.confidence, 4),
        needs_triage=needs_triage,
        rule_version=version,
        classifier_version=runtime.classifier.version,
        branch_code=complaint.branch_code,
        region=complaint.region,
        language=prediction.language,
        amount_minor=complaint.amount_minor,
        currency=complaint.currency,
    )
    if inserted.first() is not None:
        await outbox.add(
            session,
            tables.outbox,
            new_event(
                source="routing",
                type_=COMPLAINT_ROUTED_V1,
                subject=complaint.complaint_id,
                data=routed,
            ),
            topic=registry.COMPLAINTS_ROUTED,
        )
    return routed


async def screen_suggestion(
    *, session: AsyncSession, runtime: RoutingRuntime, suggestion: SuggestionReceived
) -> None:
    """Type a suggestion, choose its department, stage ``suggestions.screened``."""
    text = " ".join(p for p in (suggestion.subject, suggestion.description) if p)
    prediction = runtime.classifier.predict(
        text, language=suggestion.language, product_hint=suggestion.product
    )
    version, rules = await current_rules(session=session, runtime=runtime)
    facts = {
        "category": prediction.category,
        "product_line": prediction.product_line,
        "priority": "P3",
        "channel": suggestion.channel,
        "kind": "suggestion",
    }
    rule = rules.route(facts)
    department = rule.department if rule else "complaints_desk"
    inserted = await session.execute(
        pg_insert(tables.classification)
        .values(
            subject_id=suggestion.suggestion_id,
            kind="suggestion",
            reference=suggestion.reference,
            customer_key=suggestion.customer_key,
            channel=suggestion.channel,
            received_at=suggestion.received_at,
            category=prediction.category,
            product_line=prediction.product_line,
            priority="P3",
            department=department,
            confidence=prediction.confidence,
            needs_triage=False,
            explanation={**prediction.explanation, "routing_rule": rule.id if rule else None},
            rule_version=version,
            classifier_version=runtime.classifier.version,
            description=suggestion.description,
        )
        .on_conflict_do_nothing()
        .returning(tables.classification.c.subject_id)
    )
    if inserted.first() is not None:
        await outbox.add(
            session,
            tables.outbox,
            new_event(
                source="routing",
                type_=SUGGESTION_SCREENED_V1,
                subject=suggestion.suggestion_id,
                data=SuggestionScreened(
                    suggestion_id=suggestion.suggestion_id,
                    reference=suggestion.reference,
                    channel=suggestion.channel,
                    received_at=suggestion.received_at,
                    customer_key=suggestion.customer_key,
                    category=prediction.category,
                    product_line=prediction.product_line,
                    department=department,
                    confidence=round(prediction.confidence, 4),
                ),
            ),
            topic=registry.SUGGESTIONS_SCREENED,
        )
