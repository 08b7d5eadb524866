"""Domain errors of routing (rendered as problem+json by the service shell)."""

from __future__ import annotations

from shared.errors import AppError


class InvalidRuleSet(AppError):
    """A rule set failed validation (unknown codes, duplicate ids, uncovered combinations).

    The problem document carries ``problems``: the list of what is wrong.
    """

    code = "invalid_rule_set"
    status = 422
    title = "Invalid routing rule set"


class RuleSetVersionConflict(AppError):
    """``base_version`` of a rules update is not the version in force any more."""

    code = "rule_set_version_conflict"
    status = 409
    title = "The rule set changed meanwhile"


class ClassificationNotFound(AppError):
    """No classification is stored for that complaint id."""

    code = "classification_not_found"
    status = 404
    title = "Classification not found"


class NotAComplaint(AppError):
    """An override names a suggestion; only complaints are rerouted."""

    code = "not_a_complaint"
    status = 409
    title = "Only complaints can be overridden"


class InvalidOverride(AppError):
    """An override names codes outside the taxonomy."""

    code = "invalid_override"
    status = 422
    title = "Invalid override"
