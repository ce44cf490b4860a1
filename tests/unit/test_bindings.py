"""The CloudEvents bindings: each HTTP mode and the Kafka modes, decoded with the SDK,
validated by our models, errors pointing where the partner can find them."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

import pytest
from cloudevents.core.bindings import http, kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from normwacht.core.events import EVENT_TYPES, Event
from services.shared.bindings import (
    KAFKA_CONTENT_TYPE,
    Mode,
    from_http,
    from_kafka_record,
    http_mode,
    to_kafka_record,
)
from services.shared.problems import invalid

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def attributes(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": "report-1",
        "source": "urn:buch:meldingen",
        "type": "nl.buch.report.received",
        "time": "2026-03-02T09:15:00+01:00",
        "subject": "MELDING-1",
        "municipality": "bergen",
        "data": {"urgent": True},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def structured(**overrides: Any) -> list[Event]:
    return from_http(Mode.STRUCTURED, {}, json.dumps(attributes(**overrides)).encode())


def binary_headers(**overrides: str | None) -> dict[str, str]:
    """A binary-mode request's headers, as the SDK's HTTP binding writes them."""
    fields = attributes()
    del fields["data"]
    event = CloudEvent({**fields, "time": _time(fields["time"])})
    headers = {**http.to_binary(event, JSONFormat()).headers, "content-type": "application/json"}
    for name, value in overrides.items():
        header = name.replace("_", "-")
        if value is None:
            del headers[header]
        else:
            headers[header] = value
    return headers


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def pointers(decode: Callable[[], object]) -> list[str]:
    """The JSON pointers of the 422 that ingest would answer."""
    with pytest.raises(ValidationError) as refused:
        decode()
    problem = invalid(refused.value.errors(include_url=False), skip=frozenset(EVENT_TYPES))
    return [error["pointer"] for error in problem.extensions["errors"]]


# HTTP: which mode


@pytest.mark.parametrize(
    ("headers", "mode"),
    [
        ({"content-type": "application/cloudevents+json"}, Mode.STRUCTURED),
        ({"content-type": "application/cloudevents+json; charset=UTF-8"}, Mode.STRUCTURED),
        ({"content-type": 'application/cloudevents+json;charset="utf-8"'}, Mode.STRUCTURED),
        ({"content-type": "application/cloudevents-batch+json; charset=utf-8"}, Mode.BATCH),
        ({"content-type": "application/json", "ce-specversion": "1.0"}, Mode.BINARY),
        ({"content-type": "application/cloudevents+json; charset=iso-8859-1"}, None),
        ({"content-type": "text/plain"}, None),
        ({"content-type": "application/json"}, None),
        ({}, None),
    ],
)
def test_the_content_type_and_ce_headers_decide_the_mode(
    headers: dict[str, str], mode: Mode | None
) -> None:
    assert http_mode(headers) == mode


# HTTP: structured and batch


def test_structured_mode_keeps_dataschema_traceparent_and_a_charset() -> None:
    [event] = structured(
        dataschema="https://normwacht.example/schemas/event.schema.json",
        traceparent=TRACEPARENT,
        datacontenttype="application/json; charset=utf-8",
    )
    assert event.dataschema == "https://normwacht.example/schemas/event.schema.json"
    assert event.traceparent == TRACEPARENT
    assert event.datacontenttype == "application/json; charset=utf-8"
    assert event.data_fields() == {"urgent": True}


def test_other_extensions_are_accepted_and_dropped() -> None:
    [event] = structured(tracestate="rojo=00f067aa0ba902b7", partnerref="0612345678", hops=3)
    written = event.model_dump_json()
    assert "tracestate" not in written
    assert "0612345678" not in written
    assert "hops" not in written


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        ("traceparent", "not-a-trace"),
        ("dataschema", "https://schemas.example/event.json?mail=jan@example.nl"),
        ("dataschema", "event.json"),
        ("datacontenttype", "application/xml"),
        ("datacontenttype", "application/json; charset=latin-1"),
        ("caller_phone", "0612345678"),  # not an extension name: no `_` in those
        ("partnerref", ["a", "list"]),  # extensions are strings, integers or booleans
    ],
)
def test_malformed_attributes_are_refused_by_name(attribute: str, value: object) -> None:
    assert pointers(lambda: structured(**{attribute: value})) == [f"/{attribute}"]


def test_unknown_data_fields_are_refused_in_every_mode() -> None:
    assert pointers(lambda: structured(data={"urgent": True, "street": "Dorpsstraat 1"})) == [
        "/data/street"
    ]
    body = b'{"urgent": true, "street": "Dorpsstraat 1"}'
    assert pointers(lambda: from_http(Mode.BINARY, binary_headers(), body)) == ["/data/street"]


def test_structured_mode_points_at_what_cannot_be_decoded() -> None:
    assert pointers(lambda: from_http(Mode.STRUCTURED, {}, b'{"specversion": "1.0",')) == [""]
    assert pointers(lambda: structured(time="yesterday")) == ["/time"]
    assert pointers(lambda: structured(time=1_772_439_300)) == ["/time"]
    assert pointers(lambda: structured(data=None, data_base64="e30=")) == ["/data_base64"]
    assert pointers(lambda: from_http(Mode.STRUCTURED, {}, b"[]")) == [""]


def test_a_batch_points_at_the_index_and_may_be_empty() -> None:
    good, bad = attributes(), attributes(id="report-2", subject="jan@example.nl")
    body = json.dumps([good, bad]).encode()
    assert pointers(lambda: from_http(Mode.BATCH, {}, body)) == ["/1/subject"]
    late = attributes(id="report-3", time="2026-03-02T09:15:00")  # no offset
    body = json.dumps([good, late]).encode()
    assert pointers(lambda: from_http(Mode.BATCH, {}, body)) == ["/1/time"]
    assert from_http(Mode.BATCH, {}, b"[]") == []
    assert [e.id for e in from_http(Mode.BATCH, {}, json.dumps([good]).encode())] == ["report-1"]


# HTTP: binary


def test_binary_mode_reads_the_ce_headers_and_the_body_as_data() -> None:
    headers = binary_headers(
        content_type="application/json; charset=utf-8", ce_traceparent=TRACEPARENT
    )
    [event] = from_http(Mode.BINARY, headers, b'{"urgent": true}')
    assert (event.type, event.subject, event.municipality.value) == (
        "nl.buch.report.received",
        "MELDING-1",
        "bergen",
    )
    assert event.time.isoformat() == "2026-03-02T09:15:00+01:00"
    assert event.data_fields() == {"urgent": True}
    assert event.traceparent == TRACEPARENT
    assert event.datacontenttype == "application/json; charset=utf-8"


@pytest.mark.parametrize(
    "content_type",
    ["Application/JSON", "application/JSON; charset=utf-8", "application/json; Charset=UTF-8"],
)
def test_binary_mode_reads_media_types_whatever_their_case(content_type: str) -> None:
    """Media types and charsets are case-insensitive (RFC 9110)."""
    [event] = from_http(Mode.BINARY, binary_headers(content_type=content_type), b'{"urgent": true}')
    assert event.data_fields() == {"urgent": True}
    record = sdk_binary_record()
    headers = {**record.headers, "content-type": content_type.encode()}
    assert from_kafka_record(headers, record.value).data_fields() == {"urgent": True}


DEEP = b"[" * 100_000 + b"]" * 100_000


def test_binary_mode_refuses_data_nested_too_deep_to_read() -> None:
    # Over HTTP, and on Kafka (where an error other than this would stop the processor).
    assert pointers(lambda: from_http(Mode.BINARY, binary_headers(), DEEP)) == ["/data"]
    record = sdk_binary_record()
    assert pointers(lambda: from_kafka_record(record.headers, DEEP)) == ["/data"]
    deep_object = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    assert pointers(lambda: from_http(Mode.BINARY, binary_headers(), deep_object)) == ["/data"]
    # Structured mode: pydantic's own limit.
    with pytest.raises(ValidationError):
        from_http(Mode.STRUCTURED, {"content-type": "application/cloudevents+json"}, DEEP)


def test_binary_mode_without_a_body_has_no_data() -> None:
    headers = binary_headers(ce_type="nl.buch.report.resolved")
    [event] = from_http(Mode.BINARY, headers, b"")
    assert event.type == "nl.buch.report.resolved"


@pytest.mark.parametrize(
    ("overrides", "pointer"),
    [
        ({"ce_subject": None}, "/headers/ce-subject"),
        ({"ce_time": None}, "/headers/ce-time"),
        ({"ce_type": None}, "/headers/ce-type"),
        ({"ce_municipality": None}, "/headers/ce-municipality"),
        ({"ce_type": "nl.buch.report.teleported"}, "/headers/ce-type"),
        ({"ce_time": "2026-03-02T09:15:00"}, "/headers/ce-time"),
        ({"ce_time": "soon"}, "/headers/ce-time"),
        # What the SDK's `fromisoformat` takes and RFC 3339 (structured mode) does not.
        ({"ce_time": "2026-03-02T09:15+01:00"}, "/headers/ce-time"),
        ({"ce_time": "2026-03-02T09:15:00+0100"}, "/headers/ce-time"),
        ({"ce_time": "20260302T091500Z"}, "/headers/ce-time"),
        ({"ce_time": "2026-W10-1T09:15:00Z"}, "/headers/ce-time"),
        ({"ce_time": "2026-03-02T24:00:00Z"}, "/headers/ce-time"),
        ({"ce_subject": "jan%40example.nl"}, "/headers/ce-subject"),  # percent-decoded
        ({"content_type": "text/plain"}, "/headers/content-type"),
    ],
)
def test_binary_mode_points_at_the_header(overrides: dict[str, str | None], pointer: str) -> None:
    headers = binary_headers(**overrides)
    assert pointers(lambda: from_http(Mode.BINARY, headers, b'{"urgent": true}')) == [pointer]


def test_binary_mode_takes_a_percent_encoded_time() -> None:
    headers = binary_headers(ce_time="2026-03-02T09%3A15%3A00%2B01%3A00")
    [event] = from_http(Mode.BINARY, headers, b'{"urgent": true}')
    assert event.time.isoformat() == "2026-03-02T09:15:00+01:00"


def test_binary_mode_says_that_the_body_is_data() -> None:
    headers = binary_headers()
    assert pointers(lambda: from_http(Mode.BINARY, headers, b"{not json")) == ["/data"]
    required = binary_headers(ce_type="nl.buch.letter.received")
    assert pointers(lambda: from_http(Mode.BINARY, required, b"")) == ["/data"]


# Kafka


def test_ingest_writes_structured_mode_that_the_sdk_reads_as_such() -> None:
    [event] = structured(traceparent=TRACEPARENT)
    key, value, headers = to_kafka_record(event)
    assert key == b"MELDING-1"
    assert headers == [("content-type", KAFKA_CONTENT_TYPE.encode())]
    # The SDK takes a record with any ce_ header for binary mode: there are none.
    read = kafka.from_kafka(kafka.KafkaMessage(dict(headers), key, value), JSONFormat())
    assert read.get_attributes()["traceparent"] == TRACEPARENT
    assert read.get_data() == {"urgent": True}
    assert from_kafka_record(headers, value) == event


def test_records_without_content_type_are_structured_json() -> None:
    """What ingest wrote before it set the content type, `ce_type`/`ce_source` included."""
    value = json.dumps(attributes()).encode()
    legacy = [("ce_type", b"nl.buch.report.received"), ("ce_source", b"urn:buch:meldingen")]
    assert from_kafka_record(legacy, value).id == "report-1"
    assert from_kafka_record(None, value).id == "report-1"


def sdk_binary_record(**overrides: Any) -> kafka.KafkaMessage:
    fields = attributes(**overrides)
    data = fields.pop("data", None)
    event = CloudEvent({**fields, "time": _time(fields["time"])}, data)
    return kafka.to_binary(event, JSONFormat(), lambda e: e.get_subject())


def test_binary_records_as_the_sdk_writes_them_are_read() -> None:
    record = sdk_binary_record(traceparent=TRACEPARENT)
    assert "ce_specversion" in record.headers
    event = from_kafka_record(record.headers, record.value)
    assert (event.subject, event.data_fields(), event.traceparent) == (
        "MELDING-1",
        {"urgent": True},
        TRACEPARENT,
    )
    as_list = list(record.headers.items())
    assert from_kafka_record(as_list, record.value) == event


def test_invalid_binary_records_name_the_header() -> None:
    record = sdk_binary_record(subject="0612345678")
    assert pointers(lambda: from_kafka_record(record.headers, record.value)) == [
        "/headers/ce_subject"
    ]
    missing = {k: v for k, v in sdk_binary_record().headers.items() if k != "ce_municipality"}
    assert pointers(lambda: from_kafka_record(missing, b"{}")) == ["/headers/ce_municipality"]
    for time in (b"2026-03-02T09:15+01:00", b"2026-03-02T24:00:00Z"):
        other = {**sdk_binary_record().headers, "ce_time": time}
        assert pointers(partial(from_kafka_record, other, b"{}")) == ["/headers/ce_time"]
    garbled = {**sdk_binary_record().headers, "ce_source": b"\xff"}
    assert pointers(lambda: from_kafka_record(garbled, b"{}")) == ["/headers/ce_source"]
    assert pointers(lambda: from_kafka_record({}, b"\x00 not json")) == [""]
