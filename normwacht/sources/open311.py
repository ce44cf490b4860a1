"""Open311 GeoReport v2 service requests to `report.*` events.

Only `service_request_id` (as a pseudonym), `service_code` (to tell an urgent report),
`status` and the two timestamps are read. The description, address, zipcode,
coordinates, media URL and status notes of a request never leave this module.

Every request seen gives `report.received` (dated `requested_datetime`), a closed one
also `report.resolved` (dated `updated_datetime`); their ids depend only on the
request, so seeing a request again after an update gives the same ids, which are
de-duplicated downstream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from normwacht.core.events import Event, Municipality
from normwacht.sources.common import Pseudonyms, Skipped, build_event

__all__ = ["ReportMapping", "Skipped", "latest_update", "map_request", "parse_time"]

# A timestamp without an offset is local time of the municipalities.
LOCAL = ZoneInfo("Europe/Amsterdam")


@dataclass(frozen=True)
class ReportMapping:
    pseudonyms: Pseudonyms
    municipality: Municipality
    urgent_service_codes: frozenset[str] = field(default_factory=frozenset)


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 timestamp as Open311 writes it (`Z` or an offset; none means local)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=LOCAL)


def latest_update(
    requests: Sequence[Mapping[str, Any]], now: datetime | None = None
) -> datetime | None:
    """The newest `updated_datetime` among `requests`: where to continue polling.

    A request still without an id is left out, so that it is asked for again until it
    has one (a server need not change its `updated_datetime` when it gives the id); so
    is one updated after `now` (a wrong clock or a typo): the cursor would pass every
    update made until then.
    """
    times = [
        t
        for r in requests
        if r.get("service_request_id") not in (None, "")
        and (t := parse_time(r.get("updated_datetime")))
        and (now is None or t <= now)
    ]
    return max(times, default=None)


def map_request(request: Mapping[str, Any], mapping: ReportMapping) -> list[Event] | Skipped:
    """The events one service request stands for, or why there are none."""
    request_id = request.get("service_request_id")
    if not isinstance(request_id, str | int) or isinstance(request_id, bool) or request_id == "":
        return Skipped("no_request_id")  # still pending: only a token so far
    request_id = str(request_id)
    requested = parse_time(request.get("requested_datetime"))
    if requested is None:
        return Skipped("no_requested_datetime")
    pseudonyms = mapping.pseudonyms
    subject = pseudonyms.case("request", request_id, prefix="report-")
    code = request.get("service_code")
    urgent = isinstance(code, str) and code in mapping.urgent_service_codes
    events = [
        build_event(
            "report.received",
            event_id=pseudonyms.event(f"received|{request_id}", prefix="o311-"),
            source=pseudonyms.source,
            subject=subject,
            time=requested,
            municipality=mapping.municipality,
            data={"urgent": True} if urgent else None,
        )
    ]
    if request.get("status") == "closed":
        closed = parse_time(request.get("updated_datetime")) or requested
        events.append(
            build_event(
                "report.resolved",
                event_id=pseudonyms.event(f"resolved|{request_id}", prefix="o311-"),
                source=pseudonyms.source,
                subject=subject,
                time=max(closed, requested),
                municipality=mapping.municipality,
            )
        )
    return events
