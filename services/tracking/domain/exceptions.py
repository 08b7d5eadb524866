"""Domain errors of tracking (rendered as problem+json by ``shared.errors``)."""

from __future__ import annotations

from shared.errors import AppError, Conflict, NotFound


class CaseNotFound(NotFound):
    """No case with that id."""

    code = "case_not_found"
    title = "Case not found"


class SuggestionNotFound(NotFound):
    """No suggestion with that id."""

    code = "suggestion_not_found"
    title = "Suggestion not found"


class IllegalTransition(Conflict):
    """The action is not allowed in the current state.

    The problem document carries ``current_state`` and ``allowed_actions``.
    """

    code = "illegal_transition"
    title = "Action not allowed in the current state"


class VersionConflict(Conflict):
    """``expected_version`` does not match: someone else changed the case first."""

    code = "version_conflict"
    title = "The record changed since it was read"


class RecusalRequired(Conflict):
    """The handler or actor is a staff member the complaint is about."""

    code = "recusal_required"
    title = "Staff member must recuse"


class ForbiddenAction(AppError):
    """The caller's role or relation to the case does not permit the action."""

    code = "action_forbidden"
    status = 403
    title = "Action not permitted for this caller"


class InvalidAction(AppError):
    """The action's fields are inconsistent (e.g. compensation without an amount)."""

    code = "invalid_action"
    status = 422
    title = "Invalid action"


class CalendarConflict(Conflict):
    """A calendar override conflicts with an existing one, or none exists to remove."""

    code = "calendar_conflict"
    title = "Calendar override conflict"
