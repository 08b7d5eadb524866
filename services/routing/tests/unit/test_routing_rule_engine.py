"""Routing rule engine: nested all/any/not conditions, first match wins, validation."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.routing.classifier.taxonomy import CATEGORIES, PRODUCT_LINES
from services.routing.domain.rules import DEFAULT_RULES, RuleSet

NESTED: dict[str, Any] = {
    "rules": [
        {
            "id": "urgent_card_fraud",
            "department": "card_fraud_rapid_response",
            "when": {
                "all": [
                    {"field": "category", "in": ["fraud_security"]},
                    {
                        "any": [
                            {"field": "product_line", "equals": "cards"},
                            {
                                "all": [
                                    {"field": "channel", "in": ["mobile_app", "web"]},
                                    {"not": {"field": "priority", "in": ["P3", "P4"]}},
                                ]
                            },
                        ]
                    },
                ]
            },
        },
        {
            "id": "fraud",
            "department": "fraud_investigations",
            "when": DEFAULT_RULES["rules"][0]["when"],
        },
        {
            "id": "suggestions",
            "department": "product_office",
            "when": {"field": "kind", "equals": "suggestion"},
        },
        {"id": "default", "department": "complaints_desk", "when": {"always": True}},
    ]
}


def facts(**kw: str) -> dict[str, str]:
    base = {
        "category": "service_quality",
        "product_line": "deposits",
        "priority": "P3",
        "channel": "branch",
        "kind": "complaint",
    }
    return {**base, **kw}


@pytest.mark.parametrize(
    ("given", "department"),
    [
        (facts(category="fraud_security", product_line="cards"), "card_fraud_rapid_response"),
        (
            facts(category="fraud_security", channel="web", priority="P1"),
            "card_fraud_rapid_response",
        ),
        # web but a low priority: the inner all fails, the any fails, the next rule matches
        (facts(category="fraud_security", channel="web", priority="P4"), "fraud_investigations"),
        (facts(category="fraud_security", channel="branch", priority="P1"), "fraud_investigations"),
        (facts(kind="suggestion"), "product_office"),
        (facts(), "complaints_desk"),
    ],
)
def test_nested_conditions_first_match_wins(given: dict[str, str], department: str) -> None:
    rule = RuleSet.model_validate(NESTED).route(given)
    assert rule is not None
    assert rule.department == department


def test_valid_rule_sets_have_no_problems() -> None:
    for raw in (NESTED, DEFAULT_RULES):
        assert RuleSet.model_validate(raw).problems(list(CATEGORIES), list(PRODUCT_LINES)) == []


def test_default_rules_route_the_typical_cases() -> None:
    rules = RuleSet.model_validate(DEFAULT_RULES)
    route = lambda **kw: rules.route(facts(**kw)).department  # type: ignore[union-attr]  # noqa: E731
    assert route(category="fraud_security") == "fraud_investigations"
    assert route(channel="regulator_referral") == "complaints_escalation"
    assert route(priority="P1") == "complaints_escalation"
    assert route(product_line="cards") == "card_services"
    assert route(category="technical_failure", product_line="other") == "digital_channels"
    assert route(product_line="other") == "complaints_desk"


def test_problems_name_uncovered_combinations_and_unknown_values() -> None:
    no_catch_all = RuleSet.model_validate({"rules": NESTED["rules"][:3]})
    [problem] = no_catch_all.problems(list(CATEGORIES), list(PRODUCT_LINES))
    assert "reach no department" in problem
    assert "'kind': 'complaint'" in problem  # suggestions are all covered by rule 3

    unknown = RuleSet.model_validate(
        {
            "rules": [
                {
                    "id": "x",
                    "department": "d",
                    "when": {"any": [{"not": {"field": "priority", "equals": "P9"}}]},
                },
                {"id": "x", "department": "d", "when": {"always": True}},
            ]
        }
    )
    problems = unknown.problems(list(CATEGORIES), list(PRODUCT_LINES))
    assert "rule ids must be unique" in problems
    assert "rule x: unknown priority ['P9']" in problems


@pytest.mark.parametrize(
    "when",
    [
        {"field": "category"},  # neither in nor equals
        {"field": "category", "in": ["a"], "equals": "a"},  # both
        {"field": "colour", "equals": "red"},  # unknown field
        {"all": []},  # empty group
        {"any": [{"field": "channel", "equals": "web"}], "extra": 1},
        {"always": False},
    ],
)
def test_malformed_conditions_are_refused(when: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RuleSet.model_validate({"rules": [{"id": "a", "department": "d", "when": when}]})


def test_department_codes_are_snake_case() -> None:
    with pytest.raises(ValidationError):
        RuleSet.model_validate(
            {"rules": [{"id": "a", "department": "Card Services", "when": {"always": True}}]}
        )
