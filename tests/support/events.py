"""CloudEvents for tests, built the way a source system would send them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from normwacht.core.privacy import personal_data_reason


def random_id(prefix: str, length: int = 8) -> str:
    """`prefix` and `length` random hex digits, redrawn until it cannot read as personal data.

    Random hex now and then looks like a postcode with a house number (`1234ab12`, about
    1 in 85 for 8 digits) or holds a BSN, and ingest rightly refuses such an id.
    """
    while personal_data_reason(value := f"{prefix}{uuid.uuid4().hex[:length]}"):
        pass
    return value


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


def cloud_event(
    type_: str,
    at: datetime | str,
    subject: str,
    *,
    municipality: str = "bergen",
    event_id: str | None = None,
    source: str = "urn:buch:test",
    data: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """A CloudEvent of type `nl.buch.<type_>` at `at` (or an RFC 3339 text), as JSON."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),  # a UUID's hex alone may read as a number
        "source": source,
        "type": f"nl.buch.{type_}",
        "time": at if isinstance(at, str) else at.isoformat(),
        "subject": subject,
        "municipality": municipality,
    }
    if data is not None:
        event["data"] = dict(data)
    return event


def call_event(
    subject: str,
    kind: str,
    at: datetime,
    *,
    municipality: str = "bergen",
    event_id: str | None = None,
) -> dict[str, Any]:
    return cloud_event(f"call.{kind}", at, subject, municipality=municipality,
                       event_id=event_id, source="urn:buch:kcc:telephony")  # fmt: skip


def call_pairs(calls: int, start: datetime) -> Iterator[tuple[str, dict[str, Any]]]:
    """(subject, event) for `calls` calls a millisecond apart from `start`, each queued
    and answered 5 s later: the throughput benchmark's stream."""
    for n in range(calls):
        subject = f"TP-{n}"
        queued = start + timedelta(milliseconds=n)
        for kind, at in (("queued", queued), ("answered", queued + timedelta(seconds=5))):
            yield subject, call_event(subject, kind, at)


def as_record(event: dict[str, Any]) -> tuple[bytes, bytes]:
    """(key, value) as ingest writes it."""
    return event["subject"].encode(), json.dumps(event).encode()
