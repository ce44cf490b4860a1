"""CloudEvents for tests, built the way a source system would send them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


def call_event(
    subject: str,
    kind: str,
    at: datetime,
    *,
    municipality: str = "bergen",
    event_id: str | None = None,
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id or uuid.uuid4().hex,
        "source": "urn:buch:kcc:telephony",
        "type": f"nl.buch.call.{kind}",
        "time": at.isoformat(),
        "subject": subject,
        "municipality": municipality,
    }


def as_record(event: dict[str, Any]) -> tuple[bytes, bytes]:
    """(key, value) as ingest writes it."""
    return event["subject"].encode(), json.dumps(event).encode()
