"""Asterisk queue_log lines to call.* events: the mapping, ids and what never passes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from normwacht.core.events import Event, Municipality, parse_event
from normwacht.sources.asterisk import QueueLogMapping, Skipped, map_line
from normwacht.sources.common import Pseudonyms
from tests.support.sources import FIXTURES, KEY, personal_values_in

SOURCE = "urn:buch:kcc:telephony"
MAPPING = QueueLogMapping(
    Pseudonyms(KEY, SOURCE),
    {
        "kcc-heiloo": Municipality.HEILOO,
        "KCC_Bergen": Municipality.BERGEN,
        "kcc-uitgeest": Municipality.UITGEEST,
        "kcc-castricum": Municipality.CASTRICUM,
    },
    {"KCC_Bergen": "kcc-bergen"},
)


def lines() -> list[str]:
    return (FIXTURES / "asterisk" / "queue_log").read_text().splitlines()


def mapped() -> list[Event | Skipped]:
    return [map_line(line, MAPPING) for line in lines()]


def test_the_fixture_gives_the_call_events_in_order() -> None:
    events = [e for e in mapped() if not isinstance(e, Skipped)]
    assert [e.type.removeprefix("nl.buch.") for e in events] == [
        "call.queued", "call.answered", "call.transferred",
        "call.queued", "call.abandoned",
        "call.queued", "call.abandoned",
        "call.queued", "call.abandoned",
        "call.queued", "call.abandoned",
        "call.queued", "call.answered", "call.transferred",
        "call.queued", "call.answered", "call.ended",
        "call.queued", "call.answered", "call.transferred", "call.ended",
    ]  # fmt: skip


def test_other_lines_are_skipped_with_a_reason() -> None:
    reasons = [r.reason for r in mapped() if isinstance(r, Skipped)]
    assert reasons == [
        "ignored_event",  # QUEUESTART
        "ignored_event",  # ADDMEMBER
        "ignored_event",  # PAUSE
        "ignored_event",  # DID
        "ignored_event",  # RINGNOANSWER
        "unmapped_queue",  # test-queue
    ]
    assert map_line("garbage", MAPPING) == Skipped("malformed")
    assert map_line("soon|1.2|kcc-heiloo|NONE|CONNECT|1|2|3", MAPPING) == Skipped("malformed")
    assert map_line("1764061200|NONE|kcc-heiloo|NONE|CONNECT|1", MAPPING) == Skipped("no_call")


def test_a_call_is_one_case_with_its_time_and_municipality() -> None:
    first, answered, transferred = (e for e in mapped()[4:8] if not isinstance(e, Skipped))
    assert first.subject == answered.subject == transferred.subject
    assert first.subject.startswith("call-")
    assert first.time == datetime.fromtimestamp(1764061200, UTC)
    assert answered.time == datetime.fromtimestamp(1764061215, UTC)
    assert first.municipality is Municipality.HEILOO
    assert first.source == SOURCE
    other_calls = {e.subject for e in mapped()[8:] if not isinstance(e, Skipped)}
    assert first.subject not in other_calls
    assert len(other_calls) == 7


def test_the_queue_is_a_code_from_its_name_or_the_configured_one() -> None:
    queued = [e for e in mapped() if isinstance(e, Event) and e.type == "nl.buch.call.queued"]
    assert [e.data_fields().get("queue") for e in queued[:2]] == ["kcc-heiloo", "kcc-bergen"]
    assert queued[1].municipality is Municipality.BERGEN
    assert MAPPING.queue_code("Algemeen KCC") is None  # neither a code nor configured
    assert MAPPING.queue_code("0612345678") is None  # a code, but it looks like a number


def test_ids_are_deterministic_and_differ_per_line_and_key() -> None:
    again = [map_line(line, MAPPING) for line in lines()]
    assert again == mapped()
    ids = [e.id for e in mapped() if isinstance(e, Event)]
    assert len(set(ids)) == len(ids)
    other_key = QueueLogMapping(
        Pseudonyms(b"another-key-of-at-least-32-bytes!!", SOURCE), MAPPING.municipalities
    )
    line = lines()[4]
    mine, theirs = map_line(line, MAPPING), map_line(line, other_key)
    assert isinstance(mine, Event)
    assert isinstance(theirs, Event)
    assert (mine.id, mine.subject) != (theirs.id, theirs.subject)
    with_crlf = map_line(line + "\r\n", MAPPING)
    assert isinstance(with_crlf, Event)
    assert with_crlf.id == mine.id


def test_no_caller_id_agent_or_dialled_number_passes() -> None:
    events = [e for e in mapped() if isinstance(e, Event)]
    wire = json.dumps([e.model_dump(mode="json") for e in events])
    assert personal_values_in(wire, "asterisk") == []
    transferred = [e for e in events if e.type == "nl.buch.call.transferred"]
    assert all(e.data_fields() == {} for e in transferred)  # not even the extension
    for event in events:  # and ingest takes each as it is
        assert parse_event(event.model_dump_json()) == event


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Pseudonyms(b"short", SOURCE)
