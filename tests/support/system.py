"""The whole system as a user runs it, for end-to-end tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from services.shared.kafka import KafkaSettings

TOKEN = "normwacht-dev-token"
BATCH_LIMIT = 500


@dataclass(frozen=True)
class System:
    ingest: str
    processor: str
    api: str
    kafka: KafkaSettings


def post(system: System, events: list[dict[str, Any]]) -> None:
    """Post events to ingest in batches it accepts, in order."""
    for first in range(0, len(events), BATCH_LIMIT):
        response = httpx.post(
            f"{system.ingest}/v1/events",
            content=json.dumps(events[first : first + BATCH_LIMIT]),
            headers={
                "Content-Type": "application/cloudevents-batch+json",
                "Authorization": f"Bearer {TOKEN}",
            },
            timeout=30.0,
        )
        assert response.status_code == 202, response.text
