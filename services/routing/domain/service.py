"""Classifying and routing complaints and suggestions (ARCHITECTURE.md §1).

The classifier gives category and product line with a confidence; the priority rules give
the priority; the routing rule set in force gives the department. A prediction below the
triage threshold still routes (the 5-working-day clock runs from receipt and must never
wait for a person) but is flagged ``needs_triage`` so a person confirms it from
``GET /v1/triage``. Functions here never commit.

The classifier is CPU-bound (about a millisecond to tens of milliseconds per text), so it
runs in a worker thread (:func:`classify_text`): the event loop keeps serving HTTP
requests, the outbox relay and Kafka heartbeats meanwhile.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.routing import tables
from services.routing.classifier import ComplaintClassifier, Prediction
from services.routing.classifier.language import detect_language
from services.routing.classifier.taxonomy import CATEGORIES, PRODUCT_LINES
from services.routing.domain import duplicates
from services.routing.domain import priority as priority_rules
from services.routing.domain.exceptions import (
    ClassificationNotFound,
    InvalidOverride,
    InvalidRuleSet,
    NotAComplaint,
    RuleSetVersionConflict,
)
from services.routing.domain.rules import DEFAULT_RULES, PRIORITIES, RuleSet
from services.routing.settings import RoutingSettings
from shared import audit
from shared.auth import Principal
from shared.events import outbox, registry
from shared.events.contracts.complaints import (
    COMPLAINT_REROUTED_V1,
    COMPLAINT_ROUTED_V1,
    SUGGESTION_SCREENED_V1,
    ComplaintReceived,
    ComplaintRerouted,
    ComplaintRouted,
    SuggestionReceived,
    SuggestionScreened,
)
from shared.events.envelope import new_event
from shared.privacy import redact

FALLBACK_DEPARTMENT = "complaints_desk"
"""Department of a complaint no rule reaches (only possible with a rule set stored around
validation); such a complaint is also put in the triage queue."""


@dataclass
class RoutingRuntime:
    """What the handlers need besides the session: settings, classifier, cached rules."""

    settings: RoutingSettings
    classifier: ComplaintClassifier
    rules: RuleSet | None = None
    rules_version: int = 0
    prepared: dict[str, Prediction] = field(default_factory=dict)


async def prepare_batch(runtime: RoutingRuntime, complaints: list[ComplaintReceived]) -> None:
    """Classify a polled batch of complaints at once (``predict_many``, in a worker thread).

    The predictions wait in ``runtime.prepared`` for :func:`route_complaint`, which takes
    them by complaint id; whatever a batch left behind (duplicates) is dropped by the next
    batch. Results equal one-by-one :meth:`ComplaintClassifier.predict` calls.
    """
    runtime.prepared.clear()
    by_language: dict[str | None, list[ComplaintReceived]] = {}
    for c in complaints:
        by_language.setdefault(c.language, []).append(c)
    for language, group in by_language.items():
        predictions = await asyncio.to_thread(
            runtime.classifier.predict_many,
            [_text(c) for c in group],
            language=language,
            product_hints=[c.product for c in group],
            channels=[c.channel for c in group],
        )
        runtime.prepared.update(
            {c.complaint_id: p for c, p in zip(group, predictions, strict=True)}
        )


def _text(complaint: ComplaintReceived) -> str:
    return " ".join(p for p in (complaint.subject, complaint.description) if p)


async def classify_text(
    runtime: RoutingRuntime,
    text: str,
    *,
    language: str | None,
    product_hint: str | None,
    channel: str | None = None,
) -> Prediction:
    """Run the classifier on ``text`` in a worker thread (it never raises for a ``str``)."""
    return await asyncio.to_thread(
        runtime.classifier.predict,
        text,
        language=language,
        product_hint=product_hint,
        channel=channel,
    )


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
    text = _text(complaint)
    prediction = runtime.prepared.pop(complaint.complaint_id, None) or await classify_text(
        runtime,
        text,
        language=complaint.language,
        product_hint=complaint.product,
        channel=complaint.channel,
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
    department = rule.department if rule else FALLBACK_DEPARTMENT
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
) -> SuggestionScreened:
    """Type a suggestion, choose its department, flag a near-duplicate, stage the event.

    The near-duplicate is the most similar earlier suggestion whose character n-grams
    overlap this one's with at least ``near_duplicate_threshold`` Jaccard similarity
    (:mod:`services.routing.domain.duplicates`). A redelivered suggestion keeps its first
    classification and stages nothing.

    Returns:
        The payload (staged only the first time the suggestion is seen).
    """
    text = " ".join(p for p in (suggestion.subject, suggestion.description) if p)
    prediction = await classify_text(
        runtime,
        text,
        language=suggestion.language,
        product_hint=suggestion.product,
        channel=suggestion.channel,
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
    department = rule.department if rule else FALLBACK_DEPARTMENT
    duplicate = await duplicates.find_and_index(
        session=session,
        suggestion_id=suggestion.suggestion_id,
        received_at=suggestion.received_at,
        text=suggestion.description,
        threshold=runtime.settings.near_duplicate_threshold,
    )
    explanation = {
        **prediction.explanation,
        "routing_rule": rule.id if rule else None,
        "near_duplicate": (
            {"of": duplicate.suggestion_id, "similarity": duplicate.similarity}
            if duplicate
            else None
        ),
    }
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
            explanation=explanation,
            rule_version=version,
            classifier_version=runtime.classifier.version,
            description=suggestion.description,
            near_duplicate_of=duplicate.suggestion_id if duplicate else None,
            near_duplicate_similarity=duplicate.similarity if duplicate else None,
        )
        .on_conflict_do_nothing()
        .returning(tables.classification.c.subject_id)
    )
    screened = SuggestionScreened(
        suggestion_id=suggestion.suggestion_id,
        reference=suggestion.reference,
        channel=suggestion.channel,
        received_at=suggestion.received_at,
        customer_key=suggestion.customer_key,
        category=prediction.category,
        product_line=prediction.product_line,
        department=department,
        confidence=round(prediction.confidence, 4),
        near_duplicate_of=duplicate.suggestion_id if duplicate else None,
        near_duplicate_similarity=duplicate.similarity if duplicate else None,
    )
    if inserted.first() is not None:
        await outbox.add(
            session,
            tables.outbox,
            new_event(
                source="routing",
                type_=SUGGESTION_SCREENED_V1,
                subject=suggestion.suggestion_id,
                data=screened,
            ),
            topic=registry.SUGGESTIONS_SCREENED,
        )
    return screened


# --- rule changes ---------------------------------------------------------------------------


async def replace_rules(
    *,
    session: AsyncSession,
    runtime: RoutingRuntime,
    rules: RuleSet,
    comment: str,
    actor: Principal,
    base_version: int | None = None,
) -> int:
    """Validate a rule set and store it as the next version, audited (``rules.replace``).

    The new version takes effect for the next event any replica handles:
    :func:`current_rules` reads the newest version per event, so no restart is needed.
    Concurrent updates are serialised by a transaction-scoped advisory lock.

    Args:
        session: the request's session, inside a transaction (not committed here).
        runtime: the service runtime (its cached rules are refreshed).
        rules: the new, structurally valid rule set.
        comment: why the rules change (shown in ``GET /v1/rules`` and the audit log).
        actor: the supervisor or admin.
        base_version: when given, the version the caller edited; a newer version in force
            means someone else changed the rules meanwhile.

    Returns:
        The new version number.

    Raises:
        InvalidRuleSet: ``RuleSet.problems`` found problems (listed in ``problems``).
        RuleSetVersionConflict: ``base_version`` is not the version in force.
    """
    problems = rules.problems(list(CATEGORIES), list(PRODUCT_LINES))
    if problems:
        raise InvalidRuleSet("; ".join(problems[:3]), problems=problems)
    t = tables.routing_rule_set
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('routing.routing_rule_set'))")
    )
    current = int(await session.scalar(select(func.max(t.c.version))) or 0)
    if base_version is not None and base_version != current:
        raise RuleSetVersionConflict(
            f"the rules were edited from version {base_version}, but version {current} is in "
            "force; reload and apply the change again",
            current_version=current,
        )
    previous: dict[str, Any] = {}
    if current:
        raw = await session.scalar(select(t.c.rules).where(t.c.version == current))
        previous = {r["id"]: r for r in (raw or {}).get("rules", [])}
    dumped = rules.model_dump(by_alias=True, exclude_none=True, mode="json")
    new = {r["id"]: r for r in dumped["rules"]}
    version = current + 1
    await session.execute(
        t.insert().values(version=version, rules=dumped, comment=comment, created_by=actor.subject)
    )
    await audit.record(
        session,
        tables.audit_log,
        actor=actor,
        action="rules.replace",
        subject_type="routing_rule_set",
        subject_id=str(version),
        details={
            "previous_version": current,
            "version": version,
            "comment": redact(comment),
            "added": sorted(set(new) - set(previous)),
            "removed": sorted(set(previous) - set(new)),
            "changed": sorted(k for k in set(new) & set(previous) if new[k] != previous[k]),
            "order": list(new),
        },
    )
    runtime.rules, runtime.rules_version = rules, version
    return version


# --- overrides ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OverrideResult:
    """What an override did.

    Attributes:
        rerouted: True when something changed and ``complaints.rerouted`` was staged; False
            when the supervisor confirmed the classification as it was.
        payload: the new classification (as published when ``rerouted``).
    """

    rerouted: bool
    payload: ComplaintRerouted


async def override_classification(
    *,
    session: AsyncSession,
    runtime: RoutingRuntime,
    complaint_id: str,
    actor: Principal,
    reason: str,
    category: str | None = None,
    product_line: str | None = None,
    priority: str | None = None,
    department: str | None = None,
) -> OverrideResult:
    """Apply a supervisor's correction of a complaint's classification (issue 4 "Deliver" 6).

    Fields left ``None`` keep their value. Without an explicit ``department`` the routing
    rules in force choose it from the corrected facts (category, product line, priority,
    the complaint's channel). The classification leaves the triage queue, the correction
    is kept as a labelled example for the next training run (``labelled_example``; the
    latest override of a complaint wins), the audit log gets ``classification.override``
    with the old and new values and the redacted reason, and, when something changed,
    ``complaints.rerouted`` is staged. Confirming an unchanged classification clears the
    triage flag and keeps the example but publishes nothing.

    Raises:
        ClassificationNotFound: no classification for ``complaint_id``.
        NotAComplaint: the id is a suggestion's.
        InvalidOverride: a code outside the taxonomy.
    """
    c = tables.classification
    row = (
        await session.execute(select(c).where(c.c.subject_id == complaint_id).with_for_update())
    ).first()
    if row is None:
        raise ClassificationNotFound(f"no classification for complaint {complaint_id}")
    if row.kind != "complaint":
        raise NotAComplaint(f"{complaint_id} is a suggestion; suggestions are not rerouted")
    wrong = [
        f"unknown {what} {value!r}"
        for what, value, allowed in (
            ("category", category, CATEGORIES),
            ("product_line", product_line, PRODUCT_LINES),
            ("priority", priority, PRIORITIES),
        )
        if value is not None and value not in allowed
    ]
    if wrong:
        raise InvalidOverride("; ".join(wrong), problems=wrong)
    new_category = category or row.category
    new_product_line = product_line or row.product_line
    new_priority = priority or row.priority
    rule_version = row.rule_version
    routing_rule: str | None = None
    if department is None:
        unchanged = (new_category, new_product_line, new_priority) == (
            row.category,
            row.product_line,
            row.priority,
        )
        if unchanged:
            department = row.department
        else:
            rule_version, rules = await current_rules(session=session, runtime=runtime)
            rule = rules.route(
                {
                    "category": new_category,
                    "product_line": new_product_line,
                    "priority": new_priority,
                    "channel": row.channel,
                    "kind": "complaint",
                }
            )
            department = rule.department if rule else FALLBACK_DEPARTMENT
            routing_rule = rule.id if rule else None
    before = {
        "category": row.category,
        "product_line": row.product_line,
        "priority": row.priority,
        "department": row.department,
    }
    after = {
        "category": new_category,
        "product_line": new_product_line,
        "priority": new_priority,
        "department": department,
    }
    changed = before != after
    now = datetime.now(UTC)
    override_note = {
        "by": actor.subject,
        "at": now.isoformat(),
        "from": before,
        "routing_rule": routing_rule,
    }
    await session.execute(
        update(c)
        .where(c.c.subject_id == complaint_id)
        .values(
            **after,
            needs_triage=False,
            overridden_by=actor.subject,
            overridden_at=now,
            rule_version=rule_version,
            explanation={**(row.explanation or {}), "override": override_note},
        )
    )
    example = {
        "text": row.description,
        "language": detect_language(row.description),
        "category": new_category,
        "product_line": new_product_line,
        "priority": new_priority,
        "department": department,
        "previous_category": row.category,
        "previous_product_line": row.product_line,
        "classifier_version": row.classifier_version,
        "labelled_by": actor.subject,
        "labelled_at": now,
    }
    e = tables.labelled_example
    await session.execute(
        pg_insert(e)
        .values(complaint_id=complaint_id, **example)
        .on_conflict_do_update(index_elements=[e.c.complaint_id], set_=example)
    )
    await audit.record(
        session,
        tables.audit_log,
        actor=actor,
        action="classification.override",
        subject_type="complaint",
        subject_id=complaint_id,
        details={
            "from": before,
            "to": after,
            "reason": redact(reason),
            "rerouted": changed,
            "was_in_triage": bool(row.needs_triage and row.overridden_at is None),
        },
    )
    payload = ComplaintRerouted(
        complaint_id=complaint_id,
        reference=row.reference,
        **after,
        previous_category=row.category,
        previous_product_line=row.product_line,
        previous_priority=row.priority,
        previous_department=row.department,
        rerouted_at=now,
        rerouted_by=actor.subject,
        rule_version=rule_version,
    )
    if changed:
        await outbox.add(
            session,
            tables.outbox,
            new_event(
                source="routing",
                type_=COMPLAINT_REROUTED_V1,
                subject=complaint_id,
                data=payload,
            ),
            topic=registry.COMPLAINTS_REROUTED,
        )
    return OverrideResult(rerouted=changed, payload=payload)
