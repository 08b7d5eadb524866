"""Request and response bodies of intake (ARCHITECTURE.md §5).

Unknown fields are refused (422) so that a misspelt field from a client never silently
drops data. Text fields refuse NUL and the other C0 and C1 control characters (tab, newline
and carriage return are allowed in free text) and unpaired surrogates (which a JSON
``\ud800`` escape can produce and which UTF-8 cannot store); the 422 problem names the
field. Everything else, Chinese, emoji, right-to-left text, zero-width joiners and
private-use characters included, is kept byte for byte.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from shared.events.contracts.complaints import Channel

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
#: Clock skew tolerated between a client and intake for ``received_at`` (seconds).
CLOCK_SKEW_SECONDS = 120
#: Instants before this year are refused (422) rather than stored (PostgreSQL's range and
#: the UTC conversion of year-1 instants would fail).
EARLIEST_YEAR = 1900


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain NUL, other control characters or unpaired surrogates")
    return value


def _no_control_line(value: str) -> str:
    if _CONTROL_LINE.search(value):
        raise ValueError("must not contain control characters or line breaks")
    return value


FreeText = Annotated[str, AfterValidator(_no_control)]
Line = Annotated[str, AfterValidator(_no_control_line)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CustomerIn(_Strict):
    """The customer as the channel knows them. Stored only encrypted in the vault."""

    customer_number: Line = Field(min_length=1, max_length=64, examples=["6222020200112233"])
    name: Line | None = Field(None, max_length=200)
    phone: Line | None = Field(None, max_length=40)
    email: Line | None = Field(None, max_length=254)
    id_number: Line | None = Field(None, max_length=40)
    account_number: Line | None = Field(None, max_length=40)
    vulnerable: bool = Field(False, description="elderly, disability or other vulnerability")


class AmountIn(_Strict):
    """A money amount: ``value`` in minor units (fen, cents) of ISO 4217 ``currency``."""

    value: int = Field(ge=0, le=10**15)
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["CNY"])


class AttachmentIn(_Strict):
    """Attachment metadata (the file itself lives in the document store of the channel)."""

    name: Line = Field(min_length=1, max_length=255)
    content_type: Line = Field(min_length=3, max_length=100)
    size_bytes: int = Field(ge=0, le=100 * 1024 * 1024)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class SubmissionCreate(_Strict):
    """Common body of complaints and suggestions."""

    channel: Channel
    customer: CustomerIn
    description: FreeText = Field(min_length=1, max_length=20000)
    subject: Line | None = Field(None, max_length=200)
    product: Line | None = Field(None, max_length=100)
    branch_code: Line | None = Field(None, max_length=32)
    region: Line | None = Field(None, max_length=64)
    language: str | None = Field(None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
    external_ref: Line | None = Field(None, max_length=100)
    received_at: datetime | None = Field(
        None, description="receipt instant for letters and back-dated channels; never future"
    )
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=20)

    @field_validator("received_at")
    @classmethod
    def _received_at_not_future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return value
        if value.tzinfo is None:
            raise ValueError("must carry a time zone offset, e.g. 2026-09-30T10:00:00+08:00")
        if value.year < EARLIEST_YEAR:
            raise ValueError(f"must not be before the year {EARLIEST_YEAR}")
        if value > datetime.now(UTC) + timedelta(seconds=CLOCK_SKEW_SECONDS):
            raise ValueError("must not be in the future")
        return value


class ComplaintCreate(SubmissionCreate):
    """Body of ``POST /v1/complaints``."""

    occurred_at: datetime | None = None
    amount: AmountIn | None = None

    @field_validator("occurred_at")
    @classmethod
    def _occurred_at_aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return value
        if value.tzinfo is None:
            raise ValueError("must carry a time zone offset")
        if not EARLIEST_YEAR <= value.year <= 9000:
            raise ValueError(f"must be between the years {EARLIEST_YEAR} and 9000")
        return value


class SuggestionCreate(SubmissionCreate):
    """Body of ``POST /v1/suggestions``."""


class SubmissionAccepted(BaseModel):
    """Reply to a successful submission (201)."""

    id: str
    reference: str
    received_at: datetime
    status: Literal["received"] = "received"
    duplicate_of: str | None = None


class CustomerRead(BaseModel):
    """The customer, masked unless the caller's role may see personal data."""

    customer_key: str
    customer_number: str | None = None
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    id_number: str | None = None
    account_number: str | None = None
    masked: bool = True


class SubmissionRead(BaseModel):
    """A recorded complaint or suggestion (``GET /v1/complaints/{id}``)."""

    id: str
    kind: Literal["complaint", "suggestion"]
    reference: str
    channel: str
    status: str
    received_at: datetime
    recorded_at: datetime
    description: str
    preview: str = Field(description="start of the description; never splits a character")
    subject: str | None
    product: str | None
    branch_code: str | None
    region: str | None
    language: str | None
    external_ref: str | None
    occurred_at: datetime | None = None
    amount: AmountIn | None = None
    attachments: list[AttachmentIn]
    duplicate_of: str | None
    customer: CustomerRead
