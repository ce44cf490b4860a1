"""The event vocabulary: CloudEvents 1.0 envelopes with a typed `data` per event type.

Defined once here; `normwacht schemas export` writes them as JSON Schema into
`schemas/`, and ingest and the processor validate against these same models.

Privacy is part of the contract: every model forbids unknown fields, so a sender
cannot slip names, phone numbers or message text into Kafka, and the subject must
be an opaque case id.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
)

__all__ = [
    "EVENT_TYPES",
    "TYPE_PREFIX",
    "CallAbandoned",
    "CallAnswered",
    "CallEnded",
    "CallQueued",
    "CallTransferred",
    "CallbackMade",
    "CallbackPromised",
    "Event",
    "Municipality",
    "parse_event",
    "parse_events",
]

TYPE_PREFIX = "nl.buch."


class Municipality(StrEnum):
    BERGEN = "bergen"
    UITGEEST = "uitgeest"
    CASTRICUM = "castricum"
    HEILOO = "heiloo"


# Digits only (optionally with a leading +), 8 or more of them: that is a phone
# number or a citizen service number (BSN), both personal data.
_LOOKS_PERSONAL = re.compile(r"^\+?\d{8,}$")


def _opaque_case_id(value: str) -> str:
    if _LOOKS_PERSONAL.match(value):
        raise ValueError(
            "subject looks like a phone number or citizen service number; "
            "send an opaque case id instead"
        )
    return value


CaseId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"),
    AfterValidator(_opaque_case_id),
    Field(
        description="Opaque case id: letters, digits and . _ : - only (no e-mail "
        "addresses, names or phone numbers), at most 128 characters.",
        examples=["KCC-2026-000123"],
    ),
]


class _Data(BaseModel):
    """Base of every `data` object: closed, so no personal data can ride along."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoData(_Data):
    """An event whose type says everything; `data` is absent or `{}`."""


class CallQueuedData(_Data):
    queue: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="Name of the telephony queue, e.g. `kcc-algemeen`."
    )


class CallTransferredData(_Data):
    to: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="Team or employee number the call went to; never a name."
    )


class _Envelope(BaseModel):
    """CloudEvents 1.0 attributes every event carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"]
    id: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="Unique per `source`; a repeated (`source`, `id`) is a duplicate."
    )
    source: Annotated[
        str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$", max_length=500)
    ] = Field(
        description="Absolute URI naming the sending system.",
        examples=["urn:buch:kcc:telephony"],
    )
    time: AwareDatetime = Field(
        description="When it happened, RFC 3339 with offset; every clock runs on it."
    )
    subject: CaseId
    municipality: Municipality
    datacontenttype: Literal["application/json"] | None = None

    @property
    def dedup_key(self) -> str:
        return f"{self.source} {self.id}"


class CallQueued(_Envelope):
    """A call entered the queue: the `phone.answer` clock starts."""

    type: Literal["nl.buch.call.queued"]
    data: CallQueuedData = CallQueuedData()


class CallAnswered(_Envelope):
    """An employee picked up the call."""

    type: Literal["nl.buch.call.answered"]
    data: NoData = NoData()


class CallAbandoned(_Envelope):
    """The caller hung up before anyone picked up."""

    type: Literal["nl.buch.call.abandoned"]
    data: NoData = NoData()


class CallTransferred(_Envelope):
    """A warm transfer to a colleague."""

    type: Literal["nl.buch.call.transferred"]
    data: CallTransferredData = CallTransferredData()


class CallEnded(_Envelope):
    type: Literal["nl.buch.call.ended"]
    data: NoData = NoData()


class CallbackPromised(_Envelope):
    type: Literal["nl.buch.callback.promised"]
    data: NoData = NoData()


class CallbackMade(_Envelope):
    type: Literal["nl.buch.callback.made"]
    data: NoData = NoData()


Event = Annotated[
    CallQueued
    | CallAnswered
    | CallAbandoned
    | CallTransferred
    | CallEnded
    | CallbackPromised
    | CallbackMade,
    Field(discriminator="type"),
]

EVENT_TYPES: tuple[str, ...] = (
    "nl.buch.call.queued",
    "nl.buch.call.answered",
    "nl.buch.call.abandoned",
    "nl.buch.call.transferred",
    "nl.buch.call.ended",
    "nl.buch.callback.promised",
    "nl.buch.callback.made",
)

_EVENT: TypeAdapter[Event] = TypeAdapter(Event)
_EVENTS: TypeAdapter[list[Event]] = TypeAdapter(list[Event])


def parse_event(raw: bytes | str) -> Event:
    """Validate one JSON-encoded CloudEvent; raises pydantic.ValidationError."""
    return _EVENT.validate_json(raw)


def parse_events(raw: bytes | str) -> list[Event]:
    """Validate a JSON array of CloudEvents; raises pydantic.ValidationError."""
    return _EVENTS.validate_json(raw)


def event_json_schema() -> dict[str, object]:
    """JSON Schema of one event (a union discriminated by `type`)."""
    return _EVENT.json_schema()
