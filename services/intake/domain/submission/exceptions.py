"""Intake domain errors (rendered as problem+json by shared.errors)."""

from __future__ import annotations

from shared.errors import AppError


class SubmissionNotFound(AppError):
    """No complaint or suggestion with that id."""

    code = "submission_not_found"
    status = 404
    title = "Submission not found"


class IdempotencyKeyReused(AppError):
    """The ``Idempotency-Key`` was used before with a different body."""

    code = "idempotency_key_reused"
    status = 409
    title = "Idempotency-Key reused with a different request"


class IdempotencyKeyInvalid(AppError):
    """The ``Idempotency-Key`` header is empty or too long."""

    code = "idempotency_key_invalid"
    status = 400
    title = "Invalid Idempotency-Key"


class PayloadTooLarge(AppError):
    """The request body exceeds the configured limit."""

    code = "payload_too_large"
    status = 413
    title = "Request body too large"
