"""The CloudEvents 1.0 envelope every Kafka message carries (STYLE.md §4).

Structured content mode of the CloudEvents Kafka binding: the message value is the whole
event as JSON (``content-type: application/cloudevents+json``), and ``ce_type`` / ``ce_id``
are repeated as headers so that a consumer can skip types it does not handle without
parsing. The Kafka key is ``subject``: the aggregate id (complaint, case, suggestion).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import uuid_utils
from pydantic import BaseModel, ConfigDict, Field

from shared import context

DataT = TypeVar("DataT", bound=BaseModel)

CONTENT_TYPE = "application/cloudevents+json"


class Payload(BaseModel):
    """Base of every event payload: immutable, tolerant of unknown fields (tolerant reader)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Envelope(BaseModel, Generic[DataT]):
    """One event. ``type`` is ``<topic>.v<major>``, e.g. ``complaints.received.v1``.

    Attributes:
        id: unique per event; ``(source, id)`` identifies a duplicate.
        source: producing service, ``/services/<name>``.
        subject: aggregate id; also the Kafka key.
        time: when the fact happened, UTC.
        correlationid: carried from the request or event that caused this one.
        traceparent: W3C trace context, when known.
        data: the typed payload.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    specversion: str = "1.0"
    id: str = Field(default_factory=lambda: str(uuid_utils.uuid4()))
    source: str
    type: str
    subject: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: str = "application/json"
    dataschema: str | None = None
    correlationid: str | None = None
    traceparent: str | None = None
    data: DataT


#: ``Envelope[T]`` per payload class, built once.
_ENVELOPE_OF: dict[type[BaseModel], type[Envelope[Any]]] = {}


def new_event(
    *, source: str, type_: str, subject: str, data: DataT, time: datetime | None = None
) -> Envelope[DataT]:
    """Build an envelope, taking the correlation id and traceparent from the current context.

    Args:
        source: the producing service name (``intake``); stored as ``/services/intake``.
        type_: versioned event type, e.g. ``complaints.received.v1``.
        subject: the aggregate id (also the Kafka key).
        data: the payload model.
        time: when the fact happened (aware); now (UTC) by default.
    """
    cls = _ENVELOPE_OF.get(type(data))
    if cls is None:  # Envelope[T] costs a lookup in pydantic's cache on every call
        cls = _ENVELOPE_OF[type(data)] = Envelope[type(data)]  # type: ignore[misc]
    return cls(
        source=f"/services/{source}",
        type=type_,
        subject=subject,
        time=time or datetime.now(UTC),
        correlationid=context.correlation_id.get(),
        traceparent=context.traceparent.get(),
        data=data,
    )


def to_wire(envelope: Envelope[Any]) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Serialise an envelope for Kafka.

    Returns:
        ``(key, value, headers)``: key = subject (UTF-8), value = structured-mode JSON,
        headers = content-type, ce_type, ce_id.
    """
    value = envelope.model_dump_json().encode()
    return envelope.subject.encode(), value, wire_headers(envelope.type, envelope.id)


def wire_headers(type_: str, id_: str) -> list[tuple[str, bytes]]:
    """Return the Kafka headers of an event (content-type, ce_type, ce_id)."""
    return [
        ("content-type", CONTENT_TYPE.encode()),
        ("ce_type", type_.encode()),
        ("ce_id", id_.encode()),
    ]


def parse_raw(value: bytes) -> dict[str, Any]:
    """Parse a message value into the raw envelope mapping.

    Raises:
        ValueError: not JSON, not an object, or missing ``id``/``type``/``data``.
    """
    try:
        raw = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"message value is not JSON: {exc}") from exc
    if not isinstance(raw, dict) or not {"id", "type", "data", "source", "subject"} <= raw.keys():
        raise ValueError(
            "message value is not a CloudEvents envelope (id, type, source, subject, data)"
        )
    return raw


def header(
    headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...] | None, name: str
) -> str | None:
    """Return header ``name`` decoded as UTF-8, or None when absent."""
    for key, val in headers or ():
        if key == name:
            return val.decode(errors="replace")
    return None
