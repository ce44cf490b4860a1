"""The CloudEvents bindings, in one place: HTTP and Kafka, decoded with the `cloudevents` SDK.

Binary mode (HTTP and Kafka) is decoded by the SDK: which headers hold attributes,
percent-decoding, `content-type` as `datacontenttype`, `time` as a timestamp, `data` as
JSON; our models (`normwacht.core.events`) then validate what it decoded. It is built
with a factory that keeps what it is given: the SDK's own event class would make up an
`id` and a `time` for a message without them.

Structured and batch mode are the JSON event format, which our models parse and
validate in one pass (pydantic-core, from the bytes). Through the SDK they cost twice
as much: it parses the JSON and the time itself, and our models validate what it
decoded again; a batch of 500 took 18 ms instead of 7 here, which kept ingest at a
third of a bare producer's rate (issue 11 asks for half; docs/BENCHMARKS.md).
`tests/unit/test_bindings.py` checks that the SDK reads what we write and that both
readings of a structured event agree.

Every failure is a `pydantic.ValidationError` whose locations read as JSON pointers for
problem details (`services.shared.problems.invalid`) and as the dead-letter detail:
into the body in structured and batch mode (`/time`, `/1/subject`); in binary mode the
header (`/headers/ce-subject`, `/headers/content-type`) or the field of `data`, which
is the body (`/data/urgent`).

HTTP: structured mode is `application/cloudevents+json` (one event), batch mode
`application/cloudevents-batch+json` (a JSON array of them), both UTF-8 (a `charset`
parameter may say so); binary mode is any other content type with `ce-` headers, the
body being `data` (`application/json`).

Kafka: ingest writes structured mode: the event as JSON in the value and
`content-type: application/cloudevents+json; charset=utf-8`, and no `ce_` headers. The
Kafka binding says the content type decides the mode, but the SDK's own reader (and
others) take any record with a `ce_` header for binary mode and would read the whole
event as its `data`; ingest's former `ce_type`/`ce_source` headers were read by no one,
so they are gone. The reader takes a record as structured when its content type starts
with `application/cloudevents`, or when it has no `ce_specversion` header (records
ingest wrote before it set the content type: structured JSON, some with `ce_type` and
`ce_source`); otherwise as binary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import Any, cast
from urllib.parse import unquote

import pydantic_core
from cloudevents.core.base import EventFactory
from cloudevents.core.bindings import http, kafka
from cloudevents.core.formats.json import JSONFormat
from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from normwacht.core.events import EVENT_TYPES, Event, parse_event, parse_events, validate_event

__all__ = [
    "BATCH",
    "KAFKA_CONTENT_TYPE",
    "STRUCTURED",
    "Mode",
    "from_http",
    "from_kafka_record",
    "http_mode",
    "to_kafka_record",
]

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
KAFKA_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
UNSUPPORTED = (
    f"send {STRUCTURED} (one event), {BATCH} (a JSON array of events), or binary mode "
    "(the attributes in ce- headers, data as application/json in the body), in UTF-8"
)
"""What a 415 says: the three modes."""

_NOT_A_TIME = (
    "time is an RFC 3339 timestamp with seconds and an offset, e.g. 2026-03-02T09:15:00+01:00"
)
_FORMAT = JSONFormat()
_TAGS = frozenset(EVENT_TYPES)
Loc = tuple[int | str, ...]


class Mode(StrEnum):
    STRUCTURED = "structured"
    BATCH = "batch"
    BINARY = "binary"


class _Decoded:
    """What the SDK decoded, kept as it was given: no defaults, no checks (ours follow)."""

    def __init__(
        self, attributes: dict[str, Any], data: dict[str, Any] | str | bytes | None = None
    ) -> None:
        self.attributes = attributes
        self.data = data

    def get_attributes(self) -> dict[str, Any]:
        return self.attributes

    def get_data(self) -> dict[str, Any] | str | bytes | None:
        return self.data

    def fields(self) -> dict[str, Any]:
        """The attributes and `data`, as our models take them (no `data` is absent data)."""
        return self.attributes if self.data is None else {**self.attributes, "data": self.data}


# The SDK calls its factory with (attributes, data) and uses only these two getters of
# what it returns while decoding.
_DECODED = cast(EventFactory, _Decoded)


def _invalid(errors: Iterable[tuple[Loc, str]]) -> ValidationError:
    line_errors: list[InitErrorDetails] = [
        {"type": PydanticCustomError("cloudevent", message), "loc": loc, "input": None}
        for loc, message in errors
    ]
    return ValidationError.from_exception_data("CloudEvent", line_errors)


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    media_type, *params = value.split(";")
    parsed = {}
    for param in params:
        name, _, param_value = param.partition("=")
        parsed[name.strip().lower()] = param_value.strip().strip('"').lower()
    return media_type.strip().lower(), parsed


def _canonical(content_type: str) -> str:
    """A binary-mode content type as the SDK and `datacontenttype` read it: media types
    and charsets are case-insensitive (RFC 9110), `Application/JSON` is application/json."""
    media_type, params = _media_type(content_type)
    if media_type != "application/json" or set(params) - {"charset"}:
        return content_type  # refused as it is, with its own words
    charset = params.get("charset")
    return media_type if charset is None else f"{media_type}; charset={charset}"


# HTTP


def http_mode(headers: Mapping[str, str]) -> Mode | None:
    """The request's content mode by its headers, or None for none of them (a 415)."""
    media_type, params = _media_type(headers.get("content-type", ""))
    if media_type in (STRUCTURED, BATCH):
        if params.get("charset", "utf-8") != "utf-8":  # JSON is UTF-8 (RFC 8259)
            return None
        return Mode.STRUCTURED if media_type == STRUCTURED else Mode.BATCH
    if any(name.lower().startswith(http.CE_PREFIX) for name in headers):
        return Mode.BINARY
    return None


def from_http(mode: Mode, headers: Mapping[str, str], body: bytes) -> list[Event]:
    """The events of a request in `mode` (see `http_mode`); raises ValidationError.

    An empty batch gives an empty list: whether that is allowed is the caller's to say.
    """
    if mode is Mode.BINARY:
        lowered = {k.lower(): v for k, v in headers.items()}
        if "content-type" in lowered:
            lowered["content-type"] = _canonical(lowered["content-type"])
        message = http.HTTPMessage(headers=lowered, body=body)
        time = message.headers.get(f"{http.CE_PREFIX}time")
        if time is not None:
            time = unquote(time)  # as the SDK reads it: the HTTP binding percent-encodes
        return [_binary(lambda: http.from_binary(message, _FORMAT, _DECODED), http.CE_PREFIX, time)]
    if mode is Mode.STRUCTURED:
        return [parse_event(body)]
    return parse_events(body)


# Kafka


def to_kafka_record(event: Event) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of `event` in structured mode, keyed by its case.

    The value is the event as our models serialise it, the JSON of `schemas/`: the
    SDK's writer would give the same event (tested), at several times the cost per
    event.
    """
    return (
        event.subject.encode(),
        event.model_dump_json(exclude_none=True).encode(),
        [("content-type", KAFKA_CONTENT_TYPE.encode())],
    )


def from_kafka_record(
    headers: Mapping[str, bytes | None] | Iterable[tuple[str, bytes | None]] | None,
    value: bytes | None,
) -> Event:
    """The event of a record in structured or binary mode; raises ValidationError.

    The record key is not an attribute here (the SDK would add it as `partitionkey`):
    the caller compares it with the subject.
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    named = {name.lower(): header for name, header in pairs if header is not None}
    content_type = named.get("content-type", b"")
    body = value or b""
    if content_type.lower().startswith(b"application/cloudevents") or (
        f"{kafka.CE_PREFIX}specversion" not in named
    ):
        return parse_event(body)
    texts: dict[str, bytes] = {}
    for name, header in named.items():
        if name.startswith(kafka.CE_PREFIX) or name == "content-type":
            try:
                header.decode()
            except UnicodeDecodeError:
                raise _invalid([(("headers", name), "a header value is UTF-8 text")]) from None
            texts[name] = header
    if "content-type" in texts:
        texts["content-type"] = _canonical(texts["content-type"].decode()).encode()
    message = kafka.KafkaMessage(headers=texts, key=None, value=body)
    time = texts.get(f"{kafka.CE_PREFIX}time")
    return _binary(
        lambda: kafka.from_binary(message, _FORMAT, _DECODED),
        kafka.CE_PREFIX,
        None if time is None else time.decode(),
    )


# Both


def _binary(decode: Callable[[], object], prefix: str, time: str | None) -> Event:
    """Decode a binary-mode message with `decode` and validate it, errors by header.

    The SDK parses the time header as ISO 8601, which takes much that RFC 3339 does not
    (no seconds, `+0100`, week dates, the hour 24): our models validate `time`, the
    header's text, instead of what the SDK made of it, as in structured mode.
    """
    try:
        decoded = cast(_Decoded, decode())
    except RecursionError:  # the SDK's json.loads of a body nested thousands deep
        raise _invalid([(("data",), "data nests too deeply to be read")]) from None
    except (ValueError, OverflowError):  # the SDK parses only `time`
        raise _invalid([(("headers", f"{prefix}time"), _NOT_A_TIME)]) from None
    if isinstance(decoded.data, str | bytes):  # the SDK's answer to a body that is no JSON
        content_type = decoded.attributes.get("datacontenttype") or "application/json"
        if _media_type(content_type)[0] != "application/json":
            where: Loc = ("headers", "content-type")
            raise _invalid([(where, "binary mode takes data as application/json")])
        raise _invalid([(("data",), "data is a JSON object: the body, as application/json")])
    fields = decoded.fields() if time is None else {**decoded.fields(), "time": time}
    try:
        return validate_event(fields)
    except ValidationError as error:
        raise _invalid(_by_header(e, prefix) for e in error.errors(include_url=False)) from None


def _by_header(error: pydantic_core.ErrorDetails, prefix: str) -> tuple[Loc, str]:
    """Where a binary-mode event's error is: the attribute's header, or `data` (the body)."""
    loc = [part for part in error["loc"] if part not in _TAGS]
    if error["type"] == "union_tag_not_found":  # no type at all
        return ("headers", f"{prefix}type"), f"the {prefix}type header is required"
    if error["type"] == "union_tag_invalid":  # a type we do not know
        loc = ["type"]
    if not loc:
        return ("headers",), error["msg"]
    attribute, *rest = loc
    if attribute == "data":
        if error["type"] == "missing":
            return ("data",), "this type needs data: the body, as application/json"
        return ("data", *rest), error["msg"]
    header = "content-type" if attribute == "datacontenttype" else f"{prefix}{attribute}"
    if error["type"] == "missing":
        return ("headers", header), f"the {header} header is required"
    return ("headers", header, *rest), error["msg"]
