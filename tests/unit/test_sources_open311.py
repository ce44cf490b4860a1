"""Open311 GeoReport v2 service requests to report.* events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from normwacht.core.events import Event, Municipality
from normwacht.sources.common import Pseudonyms, mapped
from normwacht.sources.open311 import (
    ReportMapping,
    Skipped,
    latest_update,
    map_request,
    parse_time,
)
from tests.support.sources import FIXTURES, KEY, personal_values_in

MAPPING = ReportMapping(
    Pseudonyms(KEY, "urn:buch:meldingen"), Municipality.HEILOO, frozenset({"boom-spoed"})
)


def requests(page: int) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads(
        (FIXTURES / "open311" / f"requests-{page}.json").read_text()
    )
    return loaded


def events_of(page: int) -> list[Event]:
    mapped = (map_request(r, MAPPING) for r in requests(page))
    return [e for events in mapped if isinstance(events, list) for e in events]


def test_a_new_request_is_received_and_a_closed_one_also_resolved() -> None:
    events = events_of(1)
    assert [e.type for e in events] == [
        "nl.buch.report.received",
        "nl.buch.report.received",
        "nl.buch.report.resolved",
    ]
    first, second, resolved = events
    assert first.time == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert resolved.time == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert second.subject == resolved.subject != first.subject
    assert first.subject.startswith("report-")
    assert {e.municipality for e in events} == {Municipality.HEILOO}
    assert map_request(requests(1)[2], MAPPING) == Skipped("no_request_id")


def test_a_request_seen_again_gives_the_same_ids() -> None:
    first, later = events_of(1), events_of(2)
    assert later[0] == first[0]  # request 638344 again, now with its update
    assert later[1].type == "nl.buch.report.resolved"
    assert later[1].subject == first[0].subject
    assert later[1].time == datetime(2026, 11, 26, 14, 45, tzinfo=UTC)
    ids = [e.id for e in first + later]
    assert len(set(ids)) == 5  # 3 + 2 new: the repeated received shares its id


def test_urgency_comes_from_the_configured_service_codes() -> None:
    urgent = [e for e in events_of(2) if e.data_fields().get("urgent")]
    assert [e.time for e in urgent] == [datetime(2026, 11, 26, 23, 10, tzinfo=UTC)]
    assert all(not e.data_fields().get("urgent") for e in events_of(1))


def test_polling_follows_the_newest_update() -> None:
    # The newest is the closed request's update, not the one still without an id.
    assert latest_update(requests(1)) == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert latest_update(requests(2)) == datetime(2026, 11, 26, 23, 10, tzinfo=UTC)
    assert latest_update([]) is None
    # No offset: local time in the municipalities (winter: UTC+1).
    assert parse_time("2026-11-24T09:00:00") == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert parse_time("yesterday") is None
    assert parse_time(None) is None


def test_no_description_address_name_or_request_number_passes() -> None:
    events = events_of(1) + events_of(2)
    wire = json.dumps([e.model_dump(mode="json") for e in events])
    assert personal_values_in(wire, "open311") == []


def test_requests_without_a_time_are_skipped() -> None:
    request = {**requests(1)[0], "requested_datetime": None}
    assert map_request(request, MAPPING) == Skipped("no_requested_datetime")
    assert map_request({**request, "service_request_id": True}, MAPPING) == Skipped("no_request_id")


def test_a_request_shaped_otherwise_is_skipped_and_the_others_go_on() -> None:
    """A vendor's record unlike its API's (a list for a code) must not end the poller."""
    odd = {**requests(1)[0], "service_code": ["boom-spoed"]}
    assert isinstance(map_request(odd, MAPPING), list)  # mapped, just not as urgent

    def map_or_fail(request: dict[str, Any]) -> list[Event] | Skipped:
        if request is odd:
            raise TypeError("unhashable type: 'list'")  # as a code's lookup once did
        return map_request(request, MAPPING)

    events, skipped = mapped([odd, *requests(1)], map_or_fail)
    assert skipped["invalid"] == 1
    assert [e.id for e in events] == [e.id for e in events_of(1)]


def test_an_update_dated_in_the_future_does_not_move_the_cursor() -> None:
    future = {
        **requests(2)[0],
        "service_request_id": "9999",
        "updated_datetime": "2099-01-01T00:00:00Z",
    }
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert latest_update([*requests(2), future], now) == latest_update(requests(2))
