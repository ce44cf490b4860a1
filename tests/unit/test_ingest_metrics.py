"""Ingest's refusals in `normwacht_ingest_requests_rejected_total`: every refused request
counted once, by its status, whichever route refused it (`/v1/events` or a webhook).

Ingest runs in process with a publisher that never reaches Kafka and a partner registry
in a SQLite file; the Zaken API the ZGW receiver asks is a tiny local server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from normwacht.core.events import Event, Municipality
from services.ingest.app import BATCH, SINGLE, create_app
from services.ingest.publisher import EventPublisher
from services.ingest.settings import IngestSettings
from services.ingest.webhooks import MetaSettings, Webhooks, ZgwSettings
from services.shared.partners import Registry, Role
from services.shared.partners import connect as connect_partners
from tests.support.vendors import (
    APP_SECRET,
    KEY,
    VERIFY_TOKEN,
    ZAAKTYPE,
    ZAKEN_API_AUTH,
    ZakenApi,
    meta_body,
    signed,
    zaken_api,
    zgw_body,
)

REJECTED = "normwacht_ingest_requests_rejected_total"


class FakePublisher(EventPublisher):
    """Kafka's acknowledgement, or its failure when `failing`; no broker."""

    def __init__(self) -> None:  # no producer: nothing to connect to
        self.failing = False
        self.published: list[Event] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, events: Sequence[Event]) -> None:
        if self.failing:
            raise ConnectionError("broker unreachable")
        self.published.extend(events)


@dataclass
class Ingest:
    app: FastAPI
    client: TestClient
    publisher: FakePublisher
    keys: dict[str, str]
    zaken: ZakenApi

    def rejected(self) -> dict[str, float]:
        """The counter's value per status, as scraped."""
        return {
            sample.labels["status"]: sample.value
            for metric in self.app.state.metrics.registry.collect()
            for sample in metric.samples
            if sample.name == REJECTED
        }

    def refused_once(self, status: int, answer: Any, before: dict[str, float]) -> None:
        """`answer` was refused with `status`, and counted once under it (nothing else)."""
        assert answer.status_code == status, answer.text
        after = self.rejected()
        changed = {s: after[s] - before.get(s, 0.0) for s in after if after[s] != before.get(s)}
        assert changed == {str(status): 1.0}

    def bearer(self, partner: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[partner]}"}


@pytest.fixture
def ingest(tmp_path: Path) -> Iterator[Ingest]:
    url = f"sqlite:///{tmp_path / 'partners.db'}"
    engine = connect_partners(url)
    registry = Registry(engine)
    keys = {
        "kcc": registry.add("kcc", Role.WRITE, sources=["urn:buch:kcc:telephony"],
                            types=["nl.buch.call.*"], municipalities=["uitgeest"],
                            rate=1000, burst=1000),
        "slow": registry.add("slow", Role.WRITE, sources=["urn:buch:kcc:telephony"],
                             types=["nl.buch.call.*"], municipalities=["uitgeest"],
                             rate=0.001, burst=1),
        "reader": registry.add("reader", Role.READ, municipalities=["uitgeest"],
                               rate=1000, burst=1000),
        "meta": registry.add("meta", Role.WRITE, sources=["urn:buch:social:meta"],
                             types=["nl.buch.social.*"], municipalities=["castricum"],
                             rate=1000, burst=1000),
        "open-zaak": registry.add("open-zaak", Role.WRITE, sources=["urn:buch:zgw:*"],
                                  types=["nl.buch.complaint.*"], municipalities=["uitgeest"],
                                  rate=1000, burst=1000),
    }  # fmt: skip
    settings = IngestSettings(
        environment="production",
        database_url=url,
        partners_refresh_s=0,
        max_batch_events=2,
        max_body_bytes=4_000,
        data_dir=tmp_path,
    )
    publisher = FakePublisher()
    with zaken_api(ZAKEN_API_AUTH) as zaken:
        webhooks = Webhooks(
            meta=MetaSettings(
                app_secret=APP_SECRET,
                verify_token=VERIFY_TOKEN,
                # Meta's partner may send for Castricum only: Heiloo's page is out of scope.
                municipalities={"106540352242922": Municipality.HEILOO},
                max_body_bytes=4_000,
                hmac_key=KEY,
            ),
            zgw=ZgwSettings(
                zaaktypen={ZAAKTYPE: "complaint"},
                municipalities={"001234511": "uitgeest"},
                zaken_api_url=zaken.base,
                zaken_api_authorization=ZAKEN_API_AUTH,
                hmac_key=KEY,
            ),
        )
        app = create_app(settings, publisher, webhooks)
        with TestClient(app) as client:
            yield Ingest(app, client, publisher, keys, zaken)
    engine.dispose()


def call(event_id: str = "e-1", **extra: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "urn:buch:kcc:telephony",
        "type": "nl.buch.call.queued",
        "time": "2026-11-24T09:00:00+01:00",
        "subject": "KCC-1",
        "municipality": "uitgeest",
        **extra,
    }


def post_events(
    ingest: Ingest,
    body: object,
    partner: str | None = "kcc",
    media_type: str = SINGLE,
    path: str = "/v1/events",
) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": media_type} | (ingest.bearer(partner) if partner else {})
    return ingest.client.post(path, content=content, headers=headers)


def test_an_accepted_request_is_not_counted(ingest: Ingest) -> None:
    before = ingest.rejected()
    assert post_events(ingest, call()).status_code == 202
    assert ingest.rejected() == before
    assert len(ingest.publisher.published) == 1


def test_each_refused_post_of_events_is_counted_once_by_status(ingest: Ingest) -> None:
    refusals: list[tuple[int, Any]] = [
        (401, lambda: post_events(ingest, call(), partner=None)),
        (403, lambda: post_events(ingest, call(), partner="reader")),  # a read-only key
        (403, lambda: post_events(ingest, call(municipality="bergen"))),  # out of scope
        (413, lambda: post_events(ingest, b"[" + b" " * 5_000 + b"]", media_type=BATCH)),
        (413, lambda: post_events(ingest, [call("a"), call("b"), call("c")], media_type=BATCH)),
        (415, lambda: post_events(ingest, call(), media_type="text/plain")),
        (422, lambda: post_events(ingest, call(time="not a time"))),
        (422, lambda: post_events(ingest, call(), path="/v1/events?debug=1")),
        (404, lambda: post_events(ingest, call(), path="/v1/event")),  # a wrong path
        (405, lambda: ingest.client.get("/v1/events", headers=ingest.bearer("kcc"))),
    ]
    for status, request in refusals:
        before = ingest.rejected()
        ingest.refused_once(status, request(), before)
    # Over the rate: the first request takes the burst, the second is refused.
    assert post_events(ingest, call(), partner="slow").status_code == 202
    before = ingest.rejected()
    ingest.refused_once(429, post_events(ingest, call(), partner="slow"), before)
    # Kafka does not acknowledge.
    ingest.publisher.failing = True
    before = ingest.rejected()
    ingest.refused_once(503, post_events(ingest, call()), before)
    assert len(ingest.publisher.published) == 1  # the slow partner's first


DEEP = b"[" * 2_000 + b"]" * 2_000
"""JSON nested deeper than Python's parser goes (it raises RecursionError, not ValueError)."""


def test_each_refused_meta_delivery_is_counted_once_by_status(ingest: Ingest) -> None:
    body = meta_body("whatsapp_text_message")
    path = "/v1/webhooks/meta"
    wrong_token = {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"}
    refusals: list[tuple[int, Any]] = [
        (401, lambda: ingest.client.post(path, content=body)),  # unsigned
        (403, lambda: ingest.client.post(path, content=body, headers=signed(body, "guess"))),
        (400, lambda: ingest.client.post(path, content=b"{", headers=signed(b"{"))),
        (400, lambda: ingest.client.post(path, content=DEEP, headers=signed(DEEP))),
        (413, lambda: ingest.client.post(path, content=b" " * 5_000, headers=signed(b""))),
        (422, lambda: ingest.client.post(f"{path}?x=1", content=body, headers=signed(body))),
        # Heiloo's page is outside the scope of the partner Meta delivers as.
        (403, lambda: ingest.client.post(path, content=body, headers=signed(body))),
        # Meta's verification request with the wrong token.
        (403, lambda: ingest.client.get(path, params=wrong_token)),
    ]
    for status, request in refusals:
        before = ingest.rejected()
        ingest.refused_once(status, request(), before)
    # A delivery we ignore is answered 200 (or Meta retries it): not a refusal.
    before = ingest.rejected()
    ignored = meta_body("whatsapp_reaction")
    assert ingest.client.post(path, content=ignored, headers=signed(ignored)).status_code == 200
    assert ingest.rejected() == before
    assert ingest.publisher.published == []


def test_each_refused_zgw_notification_is_counted_once_by_status(ingest: Ingest) -> None:
    zaken = ingest.zaken
    created = zgw_body("zaak_created", zaken)
    status = zgw_body("status_created", zaken)
    elsewhere = json.loads(status) | {"resourceUrl": "https://elsewhere.example/statussen/1"}
    json_headers = {"Content-Type": "application/json"}
    key = json_headers | ingest.bearer("open-zaak")

    def post(body: bytes, headers: dict[str, str] = key, query: str = "") -> Any:
        return ingest.client.post(f"/v1/webhooks/zgw{query}", content=body, headers=headers)

    refusals: list[tuple[int, Any]] = [
        (401, lambda: post(created, json_headers)),
        (400, lambda: post(b'{"kanaal": "zaken"}')),
        (422, lambda: post(json.dumps(elsewhere).encode())),  # not below our Zaken API
        (422, lambda: post(created, query="?kanaal=zaken")),
        (502, lambda: post(status)),  # the Zaken API does not have the status
    ]
    for code, request in refusals:
        before = ingest.rejected()
        ingest.refused_once(code, request(), before)
    # Used and ignored notifications are answered 204: not refusals.
    before = ingest.rejected()
    assert post(zgw_body("test_notification", zaken)).status_code == 204
    assert post(created).status_code == 204
    assert ingest.rejected() == before
    # Kafka does not take the event.
    ingest.publisher.failing = True
    ingest.refused_once(503, post(created), before)


def test_requests_outside_the_ingest_routes_are_not_counted(ingest: Ingest) -> None:
    before = ingest.rejected()
    assert ingest.client.get("/healthz", params={"x": "1"}).status_code == 422
    assert ingest.client.get("/nowhere").status_code == 404
    assert ingest.client.get("/metrics").status_code == 200
    assert ingest.rejected() == before
