"""The event vocabulary: CloudEvents 1.0 envelopes with a typed `data` per event type.

Defined once here; `normwacht schemas export` writes them as JSON Schema into
`schemas/`, and ingest and the processor validate against these same models.

Privacy is part of the contract: every `data` model forbids unknown fields, so a
sender cannot slip names, phone numbers or message text into Kafka; the subject must
be an opaque case id; and the few free-form values (a contact, a next step) must be
codes, not prose. Those codes, `id`, `source` and `dataschema` go through the same check
as the subject (`personal_data_reason`: phone numbers, BSNs, e-mail addresses, postcodes
with a house number), and a contact may not be a name written as `first.last`.

Dates and booleans in `data` are strict, as the JSON Schema says: a date is the text
`YYYY-MM-DD` (never a number, a date-time or digits read as Unix seconds), a boolean is
`true` or `false` (never `"yes"`, `"on"` or `1`).

The envelope takes what CloudEvents 1.0 allows: `dataschema` (an absolute URI, kept),
`datacontenttype` `application/json` with an optional `charset=utf-8`, and extension
attributes (names `[a-z0-9]{1,20}`, string, integer or boolean values). Of the
extensions only `traceparent` (W3C Trace Context, a fixed hex format) is kept; every
other one, `tracestate` included, is checked for its form and then dropped, never
stored or forwarded: their values are free text that could carry personal data, and
nothing here reads them. `municipality` is our own extension and is required.

Released names are only ever added to, never renamed: partners build against them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    WithJsonSchema,
    create_model,
    model_validator,
)

from normwacht.core.instants import EventDate, EventInstant
from normwacht.core.privacy import personal_data_reason

__all__ = [
    "EVENT_MODELS",
    "EVENT_TYPES",
    "TYPE_PREFIX",
    "Event",
    "Municipality",
    "event_json_schema",
    "parse_event",
    "parse_events",
    "validate_event",
]

TYPE_PREFIX = "nl.buch."


class Municipality(StrEnum):
    BERGEN = "bergen"
    UITGEEST = "uitgeest"
    CASTRICUM = "castricum"
    HEILOO = "heiloo"


def _no_personal_data(what: str, instead: str, rule: str = "may not hold personal data") -> Any:
    """A validator refusing a value that `personal_data_reason` finds personal."""

    def check(value: str) -> str:
        if reason := personal_data_reason(value):
            raise ValueError(f"{what} {rule}, and {reason}; {instead}")
        return value

    return AfterValidator(check)


def _opaque(
    what: str,
    instead: str = "send a case system's number or a pseudonym instead (never personal data)",
) -> Any:
    return _no_personal_data(what, instead, rule="must be an opaque identifier")


# `first.last`, `p.de.vries`: a name as an e-mail address writes it, not a team's code.
_DOTTED_NAME = re.compile(r"team:[A-Za-z]+(?:\.[A-Za-z]+)+")
# An employee is named by number only: `employee:jan-de-vries` or `employee:JanJansen` is
# a person's name however it is written.
_EMPLOYEE_NUMBER = re.compile(r"employee:[0-9]{1,20}")


def _no_name(value: object) -> object:
    """Refuses a name with a reason, before the pattern would refuse it without one."""
    if not isinstance(value, str):
        return value  # the pattern's type check names it
    if _DOTTED_NAME.fullmatch(value):
        raise ValueError(
            "a contact names a team or an employee number, never a person, and this reads as "
            "a name written first.last; send `team:<code>` (e.g. team:vergunningen, words "
            "joined by - or _) or `employee:<number>`"
        )
    if value.startswith("employee:") and not _EMPLOYEE_NUMBER.fullmatch(value):
        raise ValueError(
            "a contact names a team or an employee number, never a person, and `employee:` "
            "takes digits only (at most 20); send `employee:<number>` (e.g. employee:10423) "
            "or `team:<code>`"
        )
    return value


CaseId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"),
    _opaque("subject"),
    Field(
        description="Opaque case id: letters, digits and . _ : - only, at most 128 characters; "
        "never personal data, so no phone numbers, citizen service numbers (BSN), e-mail "
        "addresses or postcodes with a house number, with or without separators.",
        examples=["KCC-2026-000123"],
    ),
]
EventId = Annotated[
    str,
    StringConstraints(pattern=r"^[!-~]{1,200}$"),
    _opaque("id"),
    Field(
        description="Unique per `source`; a repeated (`source`, `id`) is a duplicate. "
        "Printable ASCII without spaces, at most 200 characters, never personal data "
        "(the same checks as `subject`).",
        examples=["9f1c2d3e-5b6a-4c7d-8e9f-0a1b2c3d4e5f"],
    ),
]
Contact = Annotated[
    str,
    StringConstraints(pattern=r"^(team:[A-Za-z0-9._\-]{1,48}|employee:[0-9]{1,20})$"),
    _no_personal_data(
        "a contact",
        "send `team:<code>` or `employee:<number>` (an employee number, never a phone number)",
    ),
    BeforeValidator(_no_name),
    Field(
        description="Who handles it: `team:<code>` or `employee:<number>` (digits only), never "
        "a name (not `first.last`, not `employee:jan-de-vries`) and never personal data (the "
        "same checks as `subject`).",
        examples=["team:vergunningen", "employee:10423"],
    ),
]
Code = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,63}$"),
    _no_personal_data(
        "a code", "send a short code, e.g. kcc-algemeen, site_visit or www.heiloo.nl"
    ),
    Field(
        description="A short code, not prose, and never personal data (the same checks as "
        "`subject`).",
        examples=["site_visit"],
    ),
]
IsoDuration = Annotated[
    str,
    StringConstraints(pattern=r"^P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?$", min_length=3),
    Field(description="An ISO 8601 duration in days or more.", examples=["P8W"]),
]


class _Data(BaseModel):
    """Base of every `data` object: closed, so no personal data can ride along."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoData(_Data):
    """An event whose type says everything; `data` is absent or `{}`."""


class CallQueuedData(_Data):
    queue: Code | None = Field(default=None, description="Telephony queue, e.g. `kcc-algemeen`.")


class CallTransferredData(_Data):
    to: Contact | None = None


class EmailInterimData(_Data):
    """Counts as an answer in time only with both a contact and a promised date."""

    contact: Contact | None = None
    promised_by: EventDate | None = Field(
        default=None, description="Answer promised by the end of."
    )


class LetterReceivedData(_Data):
    kind: Literal["question", "application", "other"]


class LetterAcknowledgedData(_Data):
    """For an application the acknowledgement counts only with contact, term and next step."""

    contact: Contact | None = None
    term: IsoDuration | None = None
    next_step: Code | None = None


class VisitCheckedInData(_Data):
    appointment_at: EventInstant | None = Field(
        default=None, description="The appointment's time; absent for a walk-in."
    )


class SocialReceivedData(_Data):
    platform: Literal["facebook", "twitter", "whatsapp"]


class ComplaintReceivedData(_Data):
    via: Literal["phone", "letter", "email", "counter", "web", "social"] | None = None


class ComplaintContactedData(_Data):
    by: Literal["phone", "email", "letter", "visit"]


class ObjectionReceivedData(_Data):
    term_start: EventDate | None = Field(
        default=None,
        description="First day of the decision term (Awb: the day after the objection "
        "period ends); absent: the term runs from the day after receipt.",
    )
    advisory_committee: StrictBool = False


class ReportReceivedData(_Data):
    urgent: StrictBool = False
    via: Literal["web", "phone", "counter", "app"] | None = None


class AppointmentScheduledData(_Data):
    at: EventInstant


class WebsiteProbeData(_Data):
    target: Code = Field(
        description="Which website, e.g. `www.heiloo.nl` as a code; a website's name, never an "
        "address (`jan.jansen.gmail.com`)."
    )
    up: StrictBool


class CasePausedData(_Data):
    reason: Literal["waiting_for_resident", "waiting_for_third_party", "other"]


# Every event type and the shape of its `data`; `None` marks data that may be left out.
_DATA: Mapping[str, tuple[type[_Data], bool]] = {
    "call.queued": (CallQueuedData, False),
    "call.answered": (NoData, False),
    "call.abandoned": (NoData, False),
    "call.transferred": (CallTransferredData, False),
    "call.ended": (NoData, False),
    "callback.promised": (NoData, False),
    "callback.made": (NoData, False),
    "email.received": (NoData, False),
    "email.acknowledged": (NoData, False),
    "email.interim_sent": (EmailInterimData, False),
    "email.answered": (NoData, False),
    "letter.received": (LetterReceivedData, True),
    "letter.acknowledged": (LetterAcknowledgedData, False),
    "letter.contact_needed": (NoData, False),
    "letter.contacted": (NoData, False),
    "letter.answered": (NoData, False),
    "visit.checked_in": (VisitCheckedInData, False),
    "visit.called": (NoData, False),
    "visit.home_requested": (NoData, False),
    "visit.home_scheduled": (NoData, False),
    "social.received": (SocialReceivedData, True),
    "social.replied": (NoData, False),
    "complaint.received": (ComplaintReceivedData, False),
    "complaint.contacted": (ComplaintContactedData, True),
    "complaint.answered": (NoData, False),
    "objection.received": (ObjectionReceivedData, False),
    "objection.committee_assigned": (NoData, False),
    "objection.contacted": (NoData, False),
    "objection.extended": (NoData, False),
    "objection.decided": (NoData, False),
    "report.received": (ReportReceivedData, False),
    "report.action_started": (NoData, False),
    "report.delay_notified": (NoData, False),
    "report.resolved": (NoData, False),
    "appointment.scheduled": (AppointmentScheduledData, True),
    "appointment.kept": (NoData, False),
    "appointment.cancelled_notice": (NoData, False),
    "website.probe": (WebsiteProbeData, True),
    "case.paused": (CasePausedData, True),
    "case.resumed": (NoData, False),
    "case.withdrawn": (NoData, False),
}


def _trace_id(value: str) -> str:
    # W3C Trace Context: an all-zero trace id or parent id is invalid.
    _, trace_id, parent_id, _ = value.split("-")
    if set(trace_id) == {"0"} or set(parent_id) == {"0"}:
        raise ValueError("a traceparent's trace id and parent id may not be all zeros")
    return value


Traceparent = Annotated[
    str,
    StringConstraints(pattern=r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"),
    AfterValidator(_trace_id),
    Field(
        description="W3C Trace Context `traceparent` (version 00), kept with the event.",
        examples=["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
    ),
]
DataSchema = Annotated[
    str,
    # No query and no user part: a schema's address needs neither, and both could
    # carry personal data.
    StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s?@]+$", max_length=500),
    _no_personal_data("dataschema", "it names a schema, never a person"),
    Field(
        description="Absolute URI of the schema `data` adheres to, without query or user part; "
        "never personal data (the same checks as `subject`).",
        examples=["https://normwacht.example/schemas/event.schema.json"],
    ),
]
DataContentType = Annotated[
    str,
    # Written out instead of an inline (?i), which JSON Schema's regex dialect lacks.
    StringConstraints(pattern=r'^application/json\s*(;\s*charset="?(utf-8|UTF-8)"?\s*)?$'),
    Field(
        description="`application/json`, optionally with `charset=utf-8`.",
        examples=["application/json; charset=utf-8"],
    ),
]
_EXTENSION_NAME = r"^[a-z0-9]{1,20}$"
_INT32 = range(-(2**31), 2**31)


def _extension_value(value: object) -> str | int | bool:
    if isinstance(value, bool | str) or (isinstance(value, int) and value in _INT32):
        return value
    raise ValueError("an extension attribute is a string, a boolean or an integer (32 bits)")


def _extension_name(name: str) -> str:
    if not re.fullmatch(_EXTENSION_NAME, name):
        raise ValueError(
            "not an attribute of this event, and not a CloudEvents extension attribute "
            "either (their names are 1 to 20 lowercase letters and digits)"
        )
    return name


ExtensionName = Annotated[str, AfterValidator(_extension_name)]
ExtensionValue = Annotated[
    str | int | bool,
    PlainValidator(_extension_value),
    WithJsonSchema({"type": ["string", "integer", "boolean"]}),
]


class _Envelope(BaseModel):
    """CloudEvents 1.0 attributes every event carries."""

    # Extensions are checked (name, value type) and then dropped: see the module docstring.
    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        json_schema_extra={"propertyNames": {"pattern": _EXTENSION_NAME}},
    )
    __pydantic_extra__: dict[ExtensionName, ExtensionValue] = Field(init=False)

    specversion: Literal["1.0"]
    id: EventId
    source: Annotated[
        str,
        StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$", max_length=500),
        _opaque("source", "it names the sending system, never a person (no personal data)"),
    ] = Field(
        description="Absolute URI naming the sending system; never personal data (the same "
        "checks as `subject`: a system, not a caller's number or address).",
        examples=["urn:buch:kcc:telephony"],
    )
    time: EventInstant = Field(
        description="When it happened, RFC 3339 with offset; every clock runs on it."
    )
    subject: CaseId
    municipality: Municipality
    datacontenttype: DataContentType | None = None
    dataschema: DataSchema | None = None
    traceparent: Traceparent | None = None

    type: str
    data: _Data

    @model_validator(mode="after")
    def _drop_extensions(self) -> _Envelope:
        if self.__pydantic_extra__:
            self.__pydantic_extra__.clear()
        return self

    @property
    def dedup_key(self) -> str:
        return f"{self.source} {self.id}"

    def data_fields(self) -> dict[str, Any]:
        """`data` as plain values, for the engine (which never sees pydantic)."""
        return self.data.model_dump(exclude_none=True)


def _model_name(short: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[._]", short))


def _event_model(short: str, data: type[_Data], required: bool) -> type[_Envelope]:
    data_field: Any = (data, ...) if required else (data, Field(default_factory=data))
    model: type[_Envelope] = create_model(
        _model_name(short),
        __base__=_Envelope,
        __doc__=f"`{TYPE_PREFIX}{short}`",
        type=(Literal[TYPE_PREFIX + short], ...),  # type: ignore[arg-type]
        data=data_field,
    )
    return model


EVENT_MODELS: Mapping[str, type[_Envelope]] = {
    TYPE_PREFIX + short: _event_model(short, data, required)
    for short, (data, required) in _DATA.items()
}
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_MODELS)

Event = _Envelope
"""Any validated event; its class is the one `EVENT_MODELS` names for its type."""

_ANY_EVENT: Any = Annotated[Union[tuple(EVENT_MODELS.values())], Field(discriminator="type")]  # noqa: UP007
_EVENT: TypeAdapter[Event] = TypeAdapter(_ANY_EVENT)
_EVENTS: TypeAdapter[list[Event]] = TypeAdapter(list[_ANY_EVENT])


def parse_event(raw: bytes | str) -> Event:
    """Validate one JSON-encoded CloudEvent; raises pydantic.ValidationError."""
    return _EVENT.validate_json(raw)


def parse_events(raw: bytes | str) -> list[Event]:
    """Validate a JSON array of CloudEvents; raises pydantic.ValidationError."""
    return _EVENTS.validate_json(raw)


def validate_event(attributes: Mapping[str, Any]) -> Event:
    """Validate one CloudEvent decoded by a binding (attributes and `data`, as Python values)."""
    return _EVENT.validate_python(attributes)


def event_json_schema() -> dict[str, Any]:
    """JSON Schema of one event (a union discriminated by `type`)."""
    return _EVENT.json_schema()
