"""What every adapter's mapping shares: keyed ids and building a validated event."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from normwacht.core.events import EVENT_MODELS, TYPE_PREFIX, Event, Municipality
from normwacht.core.privacy import pseudonym

__all__ = ["MIN_KEY_BYTES", "Pseudonyms", "build_event"]

MIN_KEY_BYTES = 32


@dataclass(frozen=True)
class Pseudonyms:
    """Keyed ids for one source: the same vendor record always gives the same ids.

    `source` (the CloudEvents source URI) is part of every namespace, so two systems of
    the same kind (two telephone exchanges) never share a case id by accident.
    """

    key: bytes
    source: str

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_BYTES:
            raise ValueError(f"the HMAC key must be at least {MIN_KEY_BYTES} bytes")

    def case(self, kind: str, vendor_id: str, prefix: str) -> str:
        return pseudonym(self.key, f"{self.source}|case|{kind}", vendor_id, prefix=prefix)

    def event(self, vendor_record: str, prefix: str) -> str:
        return pseudonym(self.key, f"{self.source}|event", vendor_record, prefix=prefix)


def build_event(
    short_type: str,
    *,
    event_id: str,
    source: str,
    subject: str,
    time: datetime,
    municipality: Municipality,
    data: Mapping[str, Any] | None = None,
) -> Event:
    """Validate an event through the same model ingest uses (raises pydantic.ValidationError)."""
    event_type = TYPE_PREFIX + short_type
    raw: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": event_type,
        "time": time,
        "subject": subject,
        "municipality": municipality,
    }
    if data:
        raw["data"] = dict(data)
    return EVENT_MODELS[event_type].model_validate(raw)


@dataclass(frozen=True)
class Skipped:
    """A vendor record that gives no event, and why (no personal data in `reason`)."""

    reason: str


Item = TypeVar("Item")


def mapped(
    items: Iterable[Item], map_one: Callable[[Item], Event | list[Event] | Skipped]
) -> tuple[list[Event], Counter[str]]:
    """The events `items` stand for, and how many were skipped for which reason (a record
    whose event would be invalid counts as `invalid`)."""
    events: list[Event] = []
    skipped: Counter[str] = Counter()
    for item in items:
        try:
            result = map_one(item)
        except (ValidationError, TypeError, ValueError, KeyError, AttributeError):
            # A vendor's record shaped otherwise than its API says (a list for a code, a
            # number for a text): counted and skipped, never the end of the adapter.
            skipped["invalid"] += 1
            continue
        if isinstance(result, Skipped):
            skipped[result.reason] += 1
        elif isinstance(result, list):
            events.extend(result)
        else:
            events.append(result)
    return events, skipped
