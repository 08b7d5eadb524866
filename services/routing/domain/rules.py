"""Routing rules: which department handles a complaint (ARCHITECTURE.md §1 "routing").

A rule set is an ordered list of rules; the first whose condition holds names the
department. Conditions nest: ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}``,
leaf tests ``{"field": "category", "in": ["fraud_security"]}`` or
``{"field": "channel", "equals": "regulator_referral"}``, and ``{"always": true}``. Fields:
``category``, ``product_line``, ``priority``, ``channel``, ``kind``. Rule sets are
validated before they are stored: every combination of category, product line, priority
and channel must reach some department (so a catch-all last rule is the usual shape), and
every value named must exist in the taxonomy.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.events.contracts.complaints import CHANNELS

PRIORITIES = ("P1", "P2", "P3", "P4")
FIELDS = ("category", "product_line", "priority", "channel", "kind")


class _Cond(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Leaf(_Cond):
    """``field`` equals one of ``in`` (or equals ``equals``)."""

    field: Literal["category", "product_line", "priority", "channel", "kind"]
    in_: list[str] | None = Field(None, alias="in")
    equals: str | None = None

    @model_validator(mode="after")
    def _one_test(self) -> Leaf:
        if (self.in_ is None) == (self.equals is None):
            raise ValueError("a field test needs exactly one of 'in' or 'equals'")
        return self

    def values(self) -> list[str]:
        """Return the values the test accepts."""
        return self.in_ if self.in_ is not None else [self.equals or ""]

    def holds(self, facts: dict[str, str]) -> bool:
        """Return True when the fact matches."""
        return facts.get(self.field) in self.values()


class Always(_Cond):
    """Always true (a catch-all)."""

    always: Literal[True]

    def holds(self, facts: dict[str, str]) -> bool:
        """Return True."""
        return True


class All(_Cond):
    """All sub-conditions hold."""

    all: list[Condition] = Field(min_length=1)

    def holds(self, facts: dict[str, str]) -> bool:
        """Return True when every sub-condition holds."""
        return all(c.holds(facts) for c in self.all)


class AnyOf(_Cond):
    """At least one sub-condition holds."""

    any: list[Condition] = Field(min_length=1)

    def holds(self, facts: dict[str, str]) -> bool:
        """Return True when some sub-condition holds."""
        return any(c.holds(facts) for c in self.any)


class Not(_Cond):
    """The sub-condition does not hold."""

    not_: Condition = Field(alias="not")

    def holds(self, facts: dict[str, str]) -> bool:
        """Return True when the sub-condition fails."""
        return not self.not_.holds(facts)


Condition = Annotated[Union[Leaf, Always, All, AnyOf, Not], Field(union_mode="left_to_right")]  # noqa: UP007
All.model_rebuild()
AnyOf.model_rebuild()
Not.model_rebuild()


class Rule(BaseModel):
    """One routing rule: if ``when`` holds, ``department`` handles the complaint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64)
    department: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    when: Condition
    description: str | None = None


class RuleSet(BaseModel):
    """An ordered rule list; the first matching rule wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = Field(min_length=1, max_length=500)

    def route(self, facts: dict[str, str]) -> Rule | None:
        """Return the first rule whose condition holds for ``facts``, or None."""
        for rule in self.rules:
            if rule.when.holds(facts):
                return rule
        return None

    def problems(self, categories: list[str], product_lines: list[str]) -> list[str]:
        """Return why this rule set is invalid (empty when valid).

        Checks: rule ids unique; every value named exists; every combination of kind
        (complaint, suggestion), category, product line, priority and channel reaches a
        department.

        Args:
            categories: the taxonomy's category codes.
            product_lines: the taxonomy's product-line codes.

        Returns:
            Human-readable problems, at most one per rule and value kind plus one for the
            uncovered combinations (counted, with the first as an example).
        """
        found: list[str] = []
        ids = [r.id for r in self.rules]
        if len(ids) != len(set(ids)):
            found.append("rule ids must be unique")
        known = {
            "category": set(categories),
            "product_line": set(product_lines),
            "priority": set(PRIORITIES),
            "channel": set(CHANNELS),
            "kind": {"complaint", "suggestion"},
        }
        for rule in self.rules:
            for leaf in _leaves(rule.when):
                unknown = set(leaf.values()) - known[leaf.field]
                if unknown:
                    found.append(f"rule {rule.id}: unknown {leaf.field} {sorted(unknown)}")
        uncovered = []
        for kind, cat, pl, prio, ch in itertools.product(
            ("complaint", "suggestion"), categories, product_lines, PRIORITIES, CHANNELS
        ):
            facts = {"kind": kind, "category": cat, "product_line": pl, "priority": prio}
            if self.route({**facts, "channel": ch}) is None:
                uncovered.append({**facts, "channel": ch})
        if uncovered:
            found.append(
                f"{len(uncovered)} combinations reach no department, e.g. {uncovered[0]}; "
                "end with a catch-all rule {'always': true}"
            )
        return found


def _leaves(cond: Any) -> list[Leaf]:
    if isinstance(cond, Leaf):
        return [cond]
    if isinstance(cond, All):
        return [x for c in cond.all for x in _leaves(c)]
    if isinstance(cond, AnyOf):
        return [x for c in cond.any for x in _leaves(c)]
    if isinstance(cond, Not):
        return _leaves(cond.not_)
    return []


def _r(id_: str, dept: str, when: dict[str, Any], description: str) -> dict[str, Any]:
    return {"id": id_, "department": dept, "when": when, "description": description}


#: The rules a fresh installation starts with (version 1); supervisors change them with
#: ``PUT /v1/rules``.
DEFAULT_RULES: dict[str, Any] = {
    "rules": [
        _r(
            "fraud",
            "fraud_investigations",
            {"field": "category", "in": ["fraud_security"]},
            "fraud, scams, unauthorised transactions, lost or stolen cards",
        ),
        _r(
            "privacy",
            "data_protection_office",
            {"field": "category", "in": ["privacy"]},
            "personal information misuse",
        ),
        _r(
            "regulator",
            "complaints_escalation",
            {
                "any": [
                    {"field": "channel", "equals": "regulator_referral"},
                    {"field": "priority", "equals": "P1"},
                ]
            },
            "regulator referrals and top-priority complaints",
        ),
        _r(
            "staff",
            "service_quality_team",
            {"field": "category", "in": ["staff_attitude"]},
            "staff conduct",
        ),
        _r("cards", "card_services", {"field": "product_line", "in": ["cards"]}, "cards"),
        _r("loans", "lending", {"field": "product_line", "in": ["loans"]}, "loans"),
        _r(
            "payments",
            "payments_operations",
            {"field": "product_line", "in": ["payments"]},
            "payments, transfers, remittance",
        ),
        _r(
            "digital",
            "digital_channels",
            {
                "any": [
                    {"field": "product_line", "in": ["digital_banking"]},
                    {"field": "category", "in": ["technical_failure"]},
                ]
            },
            "online and mobile banking, technical failures",
        ),
        _r(
            "deposits",
            "retail_banking_operations",
            {"field": "product_line", "in": ["deposits"]},
            "deposits and accounts",
        ),
        _r(
            "wealth",
            "wealth_management",
            {"field": "product_line", "in": ["wealth"]},
            "wealth and investment",
        ),
        _r(
            "collections",
            "collections",
            {"field": "product_line", "in": ["debt_collection"]},
            "debt collection",
        ),
        _r(
            "credit_reports",
            "credit_reporting",
            {"field": "product_line", "in": ["credit_reporting"]},
            "credit reports",
        ),
        _r("default", "complaints_desk", {"always": True}, "everything else"),
    ]
}
