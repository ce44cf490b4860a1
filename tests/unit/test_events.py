"""The event contract: what ingest accepts and the processor reads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from normwacht.core.events import EVENT_MODELS, parse_event, parse_events


def event(**overrides: Any) -> str:
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "urn:buch:kcc:telephony",
        "type": "nl.buch.call.queued",
        "time": "2026-11-24T09:00:00+01:00",
        "subject": "KCC-2026-000123",
        "municipality": "castricum",
        "data": {"queue": "kcc-algemeen"},
    }
    body.update(overrides)
    return json.dumps({k: v for k, v in body.items() if v is not None})


def error_locations(raw: str) -> list[tuple[int | str, ...]]:
    with pytest.raises(ValidationError) as caught:
        parse_event(raw)
    return [e["loc"] for e in caught.value.errors()]


def test_a_valid_call_queued_parses_to_its_type() -> None:
    parsed = parse_event(event())
    assert isinstance(parsed, EVENT_MODELS["nl.buch.call.queued"])
    assert parsed.data_fields() == {"queue": "kcc-algemeen"}
    assert parsed.dedup_key == "urn:buch:kcc:telephony e-1"


def test_data_may_be_left_out() -> None:
    assert (
        parse_event(event(type="nl.buch.call.answered", data=None)).type == "nl.buch.call.answered"
    )


@pytest.mark.parametrize(
    "missing", ["id", "source", "time", "subject", "municipality", "specversion"]
)
def test_a_missing_attribute_is_named(missing: str) -> None:
    body = json.loads(event())
    del body[missing]
    assert (body["type"], missing) in error_locations(json.dumps(body))


def test_an_unknown_type_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_event(event(type="nl.buch.call.teleported"))
    [error] = caught.value.errors()
    assert error["type"] == "union_tag_invalid"
    assert "nl.buch.call.queued" in error["msg"]  # it lists the types we know


@pytest.mark.parametrize(
    "subject", ["jan.jansen@example.nl", "0612345678", "+31612345678", "123456782", "a b", ""]
)
def test_personal_data_as_subject_is_refused(subject: str) -> None:
    assert ("nl.buch.call.queued", "subject") in error_locations(event(subject=subject))


def test_unknown_data_fields_are_refused_so_no_personal_data_rides_along() -> None:
    locations = error_locations(event(data={"caller_name": "Jan Jansen"}))
    assert locations == [("nl.buch.call.queued", "data", "caller_name")]


def test_unknown_envelope_attributes_are_refused_or_dropped() -> None:
    """Not an extension name: refused. An extension: accepted, and its value never kept."""
    assert ("nl.buch.call.queued", "caller_phone") in error_locations(event(caller_phone="0612"))
    kept = parse_event(event(callerphone="0612345678"))
    assert "0612345678" not in kept.model_dump_json()


def test_a_time_without_offset_is_refused() -> None:
    assert ("nl.buch.call.queued", "time") in error_locations(event(time="2026-11-24T09:00:00"))


@pytest.mark.parametrize(
    "time",
    [
        1_700_000_000,  # a number: pydantic would take Unix seconds
        "1700000000",  # digits in a string: the same
        "-1",
        "2026-11-24T09:00Z",  # no seconds
        "2026-11-24T09:00:00+0100",  # an offset without its colon
        "2026-11-24",  # a date
        "9999-12-31T23:59:59-23:59",  # after the year 9999 in UTC
        "0001-01-01T00:00:00+14:00",  # before the year 1 in UTC
        "0001-01-01T00:00:00Z",  # an instant, but no event's: outside the years 1900-2999
        "9999-12-30T12:00:00Z",  # its deadlines would lie past the year 9999
    ],
)
def test_a_time_that_is_not_rfc3339_or_not_an_instant_in_utc_is_refused(time: object) -> None:
    assert ("nl.buch.call.queued", "time") in error_locations(event(time=time))


@pytest.mark.parametrize(
    "time", ["2026-11-24T09:00:00Z", "2026-11-24t08:00:00.123456z", "2026-11-24T09:00:00.5+01:00"]
)
def test_rfc3339_times_are_taken(time: str) -> None:
    assert parse_event(event(time=time)).time.year == 2026


@pytest.mark.parametrize(
    "source",
    [
        "urn:buch:kcc:jan@example.nl",
        "urn:buch:kcc:tel:+31612345678",
        "urn:buch:kcc:bsn:123456782",
        "mailto:jan.jansen@gmail.com",
    ],
)
def test_a_source_holding_personal_data_is_refused(source: str) -> None:
    assert ("nl.buch.call.queued", "source") in error_locations(event(source=source))


@pytest.mark.parametrize(
    "source",
    ["urn:buch:kcc:telephony", "https://meldingen.bergen.nl/api/v1", "urn:buch:zaak:2026-000123"],
)
def test_sources_naming_systems_are_taken(source: str) -> None:
    assert parse_event(event(source=source)).source == source


def test_an_unknown_municipality_is_refused() -> None:
    assert ("nl.buch.call.queued", "municipality") in error_locations(event(municipality="alkmaar"))


def test_a_batch_names_the_index_of_the_bad_event() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_events(f"[{event()}, {event(subject='x@y')}]")
    assert [e["loc"] for e in caught.value.errors()] == [(1, "nl.buch.call.queued", "subject")]


@pytest.mark.parametrize("at", ["1700000000", "9999-12-31T23:59:59-23:59", "9999-12-30T12:00:00Z"])
def test_instants_in_an_events_data_are_checked_as_its_time(at: str) -> None:
    raw = event(type="nl.buch.appointment.scheduled", data={"at": at})
    assert ("nl.buch.appointment.scheduled", "data", "at") in error_locations(raw)
