"""Posting alerts to Alertmanager's v2 API, retried until it accepts them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import httpx
import structlog

from services.notifier.metrics import NotifierMetrics
from services.notifier.rules import Alert, payload

log = structlog.get_logger("normwacht.notifier.alertmanager")

FIRST_RETRY_S = 0.5
RETRY_CAP_S = 5.0
CHUNK = 500
"""Alerts per request: a resend after an outage may hold thousands."""
"""Backoff doubles from `FIRST_RETRY_S` up to this; a short cap, since every outcome
waits for Alertmanager: once it is back, alerts should follow within seconds."""


class Alertmanager:
    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        metrics: NotifierMetrics,
        resend_interval: timedelta,
    ) -> None:
        self._url = url.rstrip("/") + "/api/v2/alerts"
        self._client = client
        self._metrics = metrics
        self._resend_interval = resend_interval
        self.reachable: bool | None = None

    async def post(self, alerts: Sequence[Alert]) -> datetime:
        """Post `alerts` until Alertmanager accepts them (2xx); when it did.

        Counts every failure. Never gives up: the caller commits nothing past what is
        not posted, and a shutdown cancels the wait. Each attempt computes the firing
        alerts' `endsAt` afresh, so a late post never arrives already expired.
        """
        for first in range(0, len(alerts), CHUNK):
            await self._post_chunk(alerts[first : first + CHUNK])
        return datetime.now(UTC)

    async def _post_chunk(self, alerts: Sequence[Alert]) -> None:
        delay = FIRST_RETRY_S
        while True:
            try:
                now = datetime.now(UTC)
                body = [payload(alert, now, self._resend_interval) for alert in alerts]
                response = await self._client.post(self._url, json=body)
                if response.is_success:
                    if self.reachable is False:
                        log.info("alertmanager_back")
                    self.reachable = True
                    return
                error = f"HTTP {response.status_code}: {response.text[:500]}"
            except httpx.HTTPError as failure:
                error = f"{type(failure).__name__}: {failure}"
            self._metrics.post_failures.inc()
            self.reachable = False
            log.warning("alertmanager_post_failed", error=error, alerts=len(alerts), retry_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_CAP_S)
