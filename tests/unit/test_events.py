"""The event contract: what ingest accepts and the processor reads."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from normwacht.core.events import EVENT_MODELS, parse_event, parse_events, validate_event


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


@pytest.mark.parametrize(
    ("type_", "data", "field"),
    [
        ("call.queued", {"queue": "0612345678"}, "queue"),
        ("call.queued", {"queue": "kcc-06-12345678"}, "queue"),
        ("call.transferred", {"to": "team:jan.jansen"}, "to"),
        ("call.transferred", {"to": "employee:p.de.vries"}, "to"),
        ("call.transferred", {"to": "employee:0612345678"}, "to"),
        (
            "email.interim_sent",
            {"contact": "team:123456782", "promised_by": "2026-04-20"},
            "contact",
        ),
        ("website.probe", {"target": "jan.jansen.gmail.com", "up": True}, "target"),
        ("letter.acknowledged", {"next_step": "123456782"}, "next_step"),
        ("letter.acknowledged", {"contact": "employee:jan.jansen"}, "contact"),
        # An employee is a number; any other spelling of a name is refused too.
        ("call.transferred", {"to": "employee:jan-de-vries"}, "to"),
        ("call.transferred", {"to": "employee:JanJansen"}, "to"),
        ("letter.acknowledged", {"contact": "employee:p_de_vries"}, "contact"),
        (
            "email.interim_sent",
            {"contact": "employee:10423a", "promised_by": "2026-04-20"},
            "contact",
        ),
    ],
)
def test_personal_data_in_data_codes_is_refused_and_named(
    type_: str, data: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_event(event(type=f"nl.buch.{type_}", data=data))
    (error,) = caught.value.errors()
    assert error["loc"] == (f"nl.buch.{type_}", "data", field)
    assert "personal data" in error["msg"] or "never a person" in error["msg"]


@pytest.mark.parametrize(
    "dataschema",
    [
        "https://schemas.example/0612345678/jan.jansen/event.json",
        "https://bag.example/adres/1234AB/12",
        "https://schemas.example/tel/+31(0)612345678/event.json",
    ],
)
def test_a_dataschema_holding_personal_data_is_refused(dataschema: str) -> None:
    assert error_locations(event(dataschema=dataschema)) == [("nl.buch.call.queued", "dataschema")]


@pytest.mark.parametrize(
    "dataschema",
    [
        "https://normwacht.example/schemas/event.schema.json",
        "https://schemas.example/v2/2026/event.json",
        "urn:buch:schemas:call-queued:1.0",
    ],
)
def test_a_dataschema_naming_a_schema_is_kept(dataschema: str) -> None:
    assert parse_event(event(dataschema=dataschema)).dataschema == dataschema


def test_the_json_schema_says_an_employee_is_a_number() -> None:
    """Partners validating against the exported schema refuse what ingest refuses."""
    schema = EVENT_MODELS["nl.buch.call.transferred"].model_json_schema()
    to = schema["$defs"]["CallTransferredData"]["properties"]["to"]
    pattern = re.compile(to["anyOf"][0]["pattern"])
    assert pattern.match("employee:10423")
    assert pattern.match("team:vergunningen")
    assert not pattern.match("employee:jan-de-vries")


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("call.transferred", {"to": "team:vergunningen"}),
        ("call.transferred", {"to": "employee:4711"}),
        ("call.transferred", {"to": "team:kcc-algemeen"}),
        ("email.interim_sent", {"contact": "employee:10423", "promised_by": "2026-04-20"}),
        (
            "letter.acknowledged",
            {"contact": "team:vergunningen", "term": "P8W", "next_step": "site_visit"},
        ),
        ("website.probe", {"target": "www.heiloo.nl", "up": True}),
        ("website.probe", {"target": "loket.bergen.nl", "up": False}),
        ("website.probe", {"target": "www-bergen-nl", "up": True}),
    ],
)
def test_codes_contacts_and_websites_without_personal_data_are_taken(
    type_: str, data: dict[str, Any]
) -> None:
    assert (
        parse_event(event(type=f"nl.buch.{type_}", data=data)).data_fields().keys() == data.keys()
    )


NOT_A_DATE = [
    1_767_225_600,  # 2026-01-01 in Unix seconds: pydantic would take it
    "1767225600",
    1_767_225_600.0,
    "2026-03-02T00:00:00",  # a date-time at midnight
    "2026-03-02T00:00:00Z",
]
NOT_A_BOOLEAN = ["yes", "on", "true", "1", 1, 0, 1.0, "no", "off", "false"]


@pytest.mark.parametrize("value", NOT_A_DATE)
@pytest.mark.parametrize(
    ("type_", "field"),
    [("objection.received", "term_start"), ("email.interim_sent", "promised_by")],
)
def test_a_date_in_data_is_yyyy_mm_dd_text_only(type_: str, field: str, value: object) -> None:
    raw = event(type=f"nl.buch.{type_}", data={field: value})
    assert error_locations(raw) == [(f"nl.buch.{type_}", "data", field)]
    with pytest.raises(ValidationError):  # as a binding hands it over, in Python
        validate_event(json.loads(raw))


def test_a_date_built_in_python_is_a_date_not_a_datetime() -> None:
    model = EVENT_MODELS["nl.buch.objection.received"]
    body = json.loads(event(type="nl.buch.objection.received", data={}))
    taken = model.model_validate({**body, "data": {"term_start": date(2026, 3, 2)}})
    assert taken.data_fields()["term_start"] == date(2026, 3, 2)
    with pytest.raises(ValidationError):
        model.model_validate({**body, "data": {"term_start": datetime(2026, 3, 2, tzinfo=UTC)}})


@pytest.mark.parametrize("value", NOT_A_BOOLEAN)
@pytest.mark.parametrize(
    ("type_", "field", "rest"),
    [
        ("objection.received", "advisory_committee", {}),
        ("report.received", "urgent", {}),
        ("website.probe", "up", {"target": "www.heiloo.nl"}),
    ],
)
def test_a_boolean_in_data_is_true_or_false_only(
    type_: str, field: str, rest: dict[str, Any], value: object
) -> None:
    raw = event(type=f"nl.buch.{type_}", data={**rest, field: value})
    assert error_locations(raw) == [(f"nl.buch.{type_}", "data", field)]
    with pytest.raises(ValidationError):
        validate_event(json.loads(raw))


@pytest.mark.parametrize("value", [True, False])
def test_json_booleans_and_dates_are_taken(value: bool) -> None:
    raw = event(
        type="nl.buch.objection.received",
        data={"term_start": "2026-03-17", "advisory_committee": value},
    )
    assert parse_event(raw).data_fields() == {
        "term_start": date(2026, 3, 17),
        "advisory_committee": value,
    }
