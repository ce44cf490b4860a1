"""Poll an Open311 GeoReport v2 endpoint and post its service requests' events to ingest.

`GET {URL}/requests.json?updated_after=...` from the newest `updated_datetime` seen,
kept in a state file once ingest accepted the events, so a restart asks only for what
changed since. Servers differ on whether `updated_after` includes the instant itself;
a request seen twice gives the same event ids, so either is fine.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import structlog

from normwacht.sources.common import mapped
from normwacht.sources.open311 import ReportMapping, latest_update, map_request, parse_time
from services.sources.poster import IngestPoster
from services.sources.state import read_state, write_state

log = structlog.get_logger("normwacht.sources.open311")


def default_state_path(state_dir: Path, url: str) -> Path:
    return state_dir / f"open311-{hashlib.sha256(url.encode()).hexdigest()[:16]}.json"


class Open311Poller:
    def __init__(
        self,
        url: str,
        state_path: Path,
        mapping: ReportMapping,
        poster: IngestPoster,
        *,
        jurisdiction_id: str | None = None,
        since: datetime | None = None,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._url = url.rstrip("/")
        self._state_path = state_path
        self._mapping = mapping
        self._poster = poster
        self._jurisdiction_id = jurisdiction_id
        self._client = httpx.Client(timeout=timeout_s, transport=transport)
        saved = read_state(state_path)
        self._cursor = parse_time(saved.get("updated_after")) or since

    @property
    def cursor(self) -> datetime | None:
        return self._cursor

    def close(self) -> None:
        self._client.close()

    def run(self, stop: threading.Event, poll_s: float) -> None:
        try:
            while not stop.is_set():
                try:
                    self.poll()
                # RecursionError: a body nested thousands deep; the next poll tries again.
                except (httpx.HTTPError, ValueError, RecursionError) as error:
                    log.warning("open311_unavailable", error=type(error).__name__)
                stop.wait(poll_s)
        finally:
            self.close()

    def poll(self) -> int:
        """Fetch and post until the endpoint has nothing newer; the number of requests seen."""
        seen = 0
        while True:
            requests = self._fetch()
            seen += len(requests)
            self._ship(requests)
            newest = latest_update(requests, datetime.now(UTC))
            if newest is None or (self._cursor is not None and newest <= self._cursor):
                return seen
            self._cursor = newest
            write_state(self._state_path, {"url": self._url, "updated_after": newest.isoformat()})

    def _fetch(self) -> list[dict[str, Any]]:
        params: dict[str, str] = {}
        if self._cursor is not None:
            params["updated_after"] = self._cursor.isoformat()
        if self._jurisdiction_id:
            params["jurisdiction_id"] = self._jurisdiction_id
        response = self._client.get(f"{self._url}/requests.json", params=params)
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, list):
            raise ValueError("requests.json did not answer a JSON array")
        return [r for r in body if isinstance(r, dict)]

    def _ship(self, requests: list[dict[str, Any]]) -> None:
        events, skipped = mapped(requests, lambda request: map_request(request, self._mapping))
        if events:
            self._poster.post(events)
        log.info(
            "open311_polled", requests=len(requests), events=len(events), skipped=dict(skipped)
        )
