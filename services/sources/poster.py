"""Post events to ingest as an integration partner does, riding out its refusals.

- 202: accepted.
- 429 and 503 (and other 5xx, or no connection): wait (`Retry-After` when given, else
  a doubling backoff) and send the same request again; ingest drops duplicates by id.
- 401 and 403 (and other 4xx a retry cannot fix): `IngestRefused`, the adapter stops.
- 413: the batch is split in halves.
- 422: a batch is sent again one event at a time, so that only the invalid events are
  dropped; each refusal is logged by type, id (a pseudonym) and the fields named,
  never with values.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import structlog

from normwacht.core.events import Event

log = structlog.get_logger("normwacht.sources")

BATCH = "application/cloudevents-batch+json"
MAX_RETRY_AFTER_S = 3600.0  # a longer Retry-After is a mistake; ask again within the hour


class IngestRefused(RuntimeError):
    """Ingest refuses this partner or these requests; retrying cannot help."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"ingest refused the request ({status}): {detail}")
        self.status = status


class IngestUnavailable(RuntimeError):
    """Ingest did not accept the events within the time allowed."""


@dataclass(frozen=True)
class Posted:
    accepted: int
    refused: int


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class IngestPoster:
    """Sends events in batches of at most `batch_size` to `{ingest_url}/v1/events`."""

    def __init__(
        self,
        ingest_url: str,
        token: str,
        *,
        batch_size: int = 500,
        timeout_s: float = 30.0,
        max_backoff_s: float = 60.0,
        give_up_after_s: float | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = httpx.Client(
            base_url=ingest_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Content-Type": BATCH},
            timeout=timeout_s,
            transport=transport,
        )
        self._batch_size = batch_size
        self._max_backoff_s = max_backoff_s
        self._give_up_after_s = give_up_after_s
        self._sleep = sleep

    def close(self) -> None:
        self._client.close()

    def post(self, events: Sequence[Event]) -> Posted:
        """Returns once ingest has accepted every event it does not refuse as invalid."""
        accepted = refused = 0
        for first in range(0, len(events), self._batch_size):
            done = self._send(events[first : first + self._batch_size])
            accepted += done.accepted
            refused += done.refused
        return Posted(accepted, refused)

    def _send(self, batch: Sequence[Event]) -> Posted:
        body = json.dumps([e.model_dump(mode="json", exclude_none=True) for e in batch])
        response = self._until_answered(body)
        status = response.status_code
        if status == 202:
            return Posted(len(batch), 0)
        if status == 413 and len(batch) > 1:
            half = len(batch) // 2
            first, second = self._send(batch[:half]), self._send(batch[half:])
            return Posted(first.accepted + second.accepted, first.refused + second.refused)
        if status == 422 and len(batch) > 1:
            return self.post_each(batch)
        if status in (413, 422):
            problem = _problem(response)
            [event] = batch
            log.warning(
                "event_refused",
                status=status,
                problem=problem.get("type"),
                fields=[e.get("pointer") for e in problem.get("errors", []) if isinstance(e, dict)],
                type=event.type,
                id=event.id,
            )
            return Posted(0, 1)
        problem = _problem(response)
        raise IngestRefused(status, str(problem.get("detail") or problem.get("title") or status))

    def post_each(self, batch: Sequence[Event]) -> Posted:
        results = [self._send([event]) for event in batch]
        return Posted(sum(r.accepted for r in results), sum(r.refused for r in results))

    def _until_answered(self, body: str) -> httpx.Response:
        """The first answer that is not 'try again later'.

        `give_up_after_s` bounds the time spent waiting between attempts (the attempts
        themselves are bounded by the request timeout).
        """
        waited = 0.0
        backoff = 1.0
        while True:
            wait: float | None
            try:
                response = self._client.post("/v1/events", content=body)
            except httpx.TransportError as error:
                log.warning("ingest_unreachable", error=type(error).__name__)
                wait = None
            else:
                if response.status_code < 500 and response.status_code != 429:
                    return response
                wait = retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
                log.warning("ingest_busy", status=response.status_code, retry_after=wait)
            if wait is None:
                wait = backoff
                backoff = min(backoff * 2, self._max_backoff_s)
            wait = min(wait, MAX_RETRY_AFTER_S)
            if self._give_up_after_s is not None and waited + wait > self._give_up_after_s:
                raise IngestUnavailable("ingest did not accept the events in time")
            self._sleep(wait)
            waited += wait
