"""Errors of follow-up visits (rendered as problem+json by shared.errors)."""

from __future__ import annotations

from shared.errors import AppError


class VisitNotFound(AppError):
    """No visit with that id."""

    code = "visit_not_found"
    status = 404
    title = "Follow-up visit not found"


class VisitNotActive(AppError):
    """The visit already ended (completed or cancelled): no further attempt is recorded."""

    code = "visit_not_active"
    status = 409
    title = "Follow-up visit is not active"


class AttemptNotDue(AppError):
    """An unreachable attempt before the next attempt time (tries are spaced by working days)."""

    code = "attempt_not_due"
    status = 409
    title = "Next attempt is not due yet"
