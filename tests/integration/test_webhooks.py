"""The Meta and ZGW webhooks on the real broker, through a small app that includes their routers.

`deliver` here writes with ingest's own publisher, as ingest's accept path will; the
Zaken API the ZGW receiver asks for statuses is a tiny HTTP server in the test (the
vendor side, not Kafka).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Header
from fastapi.testclient import TestClient

from normwacht.core.events import Event, Municipality
from services.ingest.app import create_app as create_ingest
from services.ingest.publisher import EventPublisher
from services.ingest.settings import IngestSettings
from services.ingest.webhooks import Deliver, MetaSettings, ZgwSettings, meta_router, zgw_router
from services.ingest.webhooks import Webhooks as IngestWebhooks
from services.shared.kafka import KafkaSettings, ensure_topics
from services.shared.partners import Registry, Role
from services.shared.partners import connect as connect_partners
from services.shared.problems import PROBLEM_JSON, Problem, install_problem_handlers
from tests.support.broker import free_port
from tests.support.kafka_io import Record, read_topic
from tests.support.services import eventually
from tests.support.vendors import (
    ABONNEMENT_AUTH,
    APP_SECRET,
    CONTACTED,
    KEY,
    PERSONAL,
    VERIFY_TOKEN,
    ZAAKTYPE,
    ZAKEN_API_AUTH,
    ZakenApi,
    meta_body,
    signed,
    zaken_api,
    zgw_body,
)

pytestmark = pytest.mark.integration

# --- the app ----------------------------------------------------------------------------------


def authorise(authorization: Annotated[str | None, Header()] = None) -> str:
    """Stands in for ingest's partner authentication: the abonnement's key names the sender."""
    if authorization != ABONNEMENT_AUTH:
        raise Problem(401, "unauthorized", "Unauthorized", "a valid key is required")
    return "open-zaak"


@dataclass
class Webhooks:
    client: TestClient
    senders: list[str]


@contextmanager
def webhooks(
    kafka: KafkaSettings, zaken: ZakenApi, deliver: Deliver | None = None
) -> Iterator[Webhooks]:
    publishers: list[EventPublisher] = []  # made on the app's loop, as aiokafka wants
    senders: list[str] = []

    async def publish(events: Sequence[Event], sender: str) -> None:
        senders.append(sender)
        await publishers[0].publish(events)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(ensure_topics, kafka)
        publishers.append(EventPublisher(kafka.bootstrap, kafka.events_topic))
        await publishers[0].start()
        try:
            yield
        finally:
            await publishers[0].stop()

    meta = MetaSettings(
        app_secret=APP_SECRET,
        verify_token=VERIFY_TOKEN,
        municipalities={"106540352242922": Municipality.HEILOO, "104953332293541": "castricum"},
        hmac_key=KEY,
    )
    zgw = ZgwSettings(
        zaaktypen={ZAAKTYPE: "complaint"},
        statustypen={CONTACTED: {"type": "complaint.contacted", "data": {"by": "phone"}}},
        municipalities={"001234511": "uitgeest"},
        zaken_api_url=zaken.base,
        zaken_api_authorization=ZAKEN_API_AUTH,
        hmac_key=KEY,
    )
    app = FastAPI(lifespan=lifespan)
    install_problem_handlers(app)
    app.include_router(meta_router(meta, deliver or publish))
    app.include_router(zgw_router(zgw, deliver or publish, authorise))
    with TestClient(app) as client:
        yield Webhooks(client, senders)


@pytest.fixture
def zaken() -> Iterator[ZakenApi]:
    with zaken_api(ZAKEN_API_AUTH) as api:
        yield api


@pytest.fixture
def hooks(kafka_settings: KafkaSettings, zaken: ZakenApi) -> Iterator[Webhooks]:
    with webhooks(kafka_settings, zaken) as running:
        yield running


def post_meta(hooks: Webhooks, name: str) -> Any:
    body = meta_body(name)
    return hooks.client.post("/v1/webhooks/meta", content=body, headers=signed(body))


def post_zgw(hooks: Webhooks, body: bytes, auth: str | None = ABONNEMENT_AUTH) -> Any:
    headers = {"Content-Type": "application/json"} | ({"Authorization": auth} if auth else {})
    return hooks.client.post("/v1/webhooks/zgw", content=body, headers=headers)


def events_on(kafka: KafkaSettings, expect: int = 0) -> list[Record]:
    return read_topic(kafka.bootstrap, kafka.events_topic, expect=expect)


def assert_nothing_personal(records: list[Record]) -> None:
    for record in records:
        for value in PERSONAL:
            assert value not in record.value
            assert value not in (record.key or b"")


# --- Meta ------------------------------------------------------------------------------------


def test_meta_verification_echoes_the_challenge_for_the_right_token(hooks: Webhooks) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    answer = hooks.client.get("/v1/webhooks/meta", params=query)
    assert answer.status_code == 200
    assert answer.text == "1158201444"
    assert answer.headers["content-type"].startswith("text/plain")
    wrong = hooks.client.get("/v1/webhooks/meta", params={**query, "hub.verify_token": "guess"})
    assert wrong.status_code == 403
    assert wrong.headers["content-type"] == PROBLEM_JSON
    assert "1158201444" not in wrong.text


def test_a_whatsapp_conversation_is_on_the_topic_as_one_case(
    hooks: Webhooks, kafka_settings: KafkaSettings
) -> None:
    received = post_meta(hooks, "whatsapp_text_message")
    assert received.status_code == 200, received.text
    assert received.json() == {"received": 1, "ignored": 0}
    assert post_meta(hooks, "whatsapp_status_sent").json() == {"received": 1, "ignored": 0}
    assert post_meta(hooks, "whatsapp_status_delivered_read").json() == {
        "received": 0,
        "ignored": 0,
    }
    records = events_on(kafka_settings, expect=2)
    assert [json.loads(r.value)["type"] for r in records] == [
        "nl.buch.social.received",
        "nl.buch.social.replied",
    ]
    assert records[0].key == records[1].key
    assert json.loads(records[0].value)["municipality"] == "heiloo"
    assert hooks.senders == ["meta", "meta"]
    assert_nothing_personal(records)


def test_a_messenger_conversation_is_on_the_topic_as_one_case(
    hooks: Webhooks, kafka_settings: KafkaSettings
) -> None:
    assert post_meta(hooks, "messenger_message").status_code == 200
    assert post_meta(hooks, "messenger_echo").status_code == 200
    records = events_on(kafka_settings, expect=2)
    first, second = (json.loads(r.value) for r in records)
    assert (first["type"], second["type"]) == ("nl.buch.social.received", "nl.buch.social.replied")
    assert first["data"] == {"platform": "facebook"}
    assert first["subject"] == second["subject"]
    assert_nothing_personal(records)


def test_an_unsigned_or_wrongly_signed_delivery_writes_nothing(
    hooks: Webhooks, kafka_settings: KafkaSettings
) -> None:
    body = meta_body("whatsapp_text_message")
    missing = hooks.client.post("/v1/webhooks/meta", content=body)
    assert missing.status_code == 401
    assert missing.headers["content-type"] == PROBLEM_JSON
    forged = hooks.client.post("/v1/webhooks/meta", content=body, headers=signed(body, "guess"))
    assert forged.status_code == 403
    assert forged.json()["type"] == "urn:normwacht:problem:signature-invalid"
    # The signature is checked before the body is read: not even bad JSON gets a 400.
    garbage = hooks.client.post("/v1/webhooks/meta", content=b"{", headers=signed(body))
    assert garbage.status_code == 403
    # Deliveries we ignore are answered 200, or Meta would retry them for days.
    assert post_meta(hooks, "whatsapp_unknown_number").json() == {"received": 0, "ignored": 1}
    assert post_meta(hooks, "whatsapp_reaction").json() == {"received": 0, "ignored": 1}
    bad_json = hooks.client.post("/v1/webhooks/meta", content=b"{", headers=signed(b"{"))
    assert bad_json.status_code == 400
    assert events_on(kafka_settings) == []
    assert hooks.senders == []


def test_a_failed_delivery_is_a_5xx_so_meta_retries(
    kafka_settings: KafkaSettings, zaken: ZakenApi
) -> None:
    async def broken(events: Sequence[Event], sender: str) -> None:
        # Ingest's own publisher, with no broker where it looks: a port nothing listens on.
        publisher = EventPublisher(f"127.0.0.1:{free_port()}", kafka_settings.events_topic)
        try:
            await publisher.start()
            await publisher.publish(events)
        finally:
            await publisher.stop()

    async def refusing(events: Sequence[Event], sender: str) -> None:
        raise Problem(403, "out-of-scope", "Out of scope", "municipality is out of scope")

    with webhooks(kafka_settings, zaken, broken) as hooks:
        answer = post_meta(hooks, "whatsapp_text_message")
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "1"
        assert events_on(kafka_settings) == []
    with webhooks(kafka_settings, zaken, refusing) as hooks:
        answer = post_meta(hooks, "whatsapp_text_message")
        assert answer.status_code == 403
        assert answer.json()["type"] == "urn:normwacht:problem:out-of-scope"


# --- ZGW -------------------------------------------------------------------------------------


def test_a_complaint_and_its_status_are_on_the_topic_as_one_case(
    hooks: Webhooks, kafka_settings: KafkaSettings, zaken: ZakenApi
) -> None:
    status_url = json.loads(zgw_body("status_created", zaken))["resourceUrl"]
    zaken.serve(status_url, zgw_body("status", zaken))
    assert post_zgw(hooks, zgw_body("zaak_created", zaken)).status_code == 204
    answer = post_zgw(hooks, zgw_body("status_created", zaken))
    assert answer.status_code == 204, answer.text
    records = events_on(kafka_settings, expect=2)
    received, contacted = (json.loads(r.value) for r in records)
    assert received["type"] == "nl.buch.complaint.received"
    assert contacted["type"] == "nl.buch.complaint.contacted"
    assert contacted["data"] == {"by": "phone"}
    assert contacted["time"] == "2026-03-17T13:45:00Z"
    assert received["subject"] == contacted["subject"]
    assert records[0].key == records[1].key == received["subject"].encode()
    assert received["municipality"] == "uitgeest"
    assert hooks.senders == ["open-zaak", "open-zaak"]
    # The status was read with the Zaken API's credentials, not the abonnement's.
    assert zaken.seen == [(status_url.removeprefix(zaken.base.split("/zaken/")[0]), ZAKEN_API_AUTH)]
    assert_nothing_personal(records)


def test_zgw_notifications_that_are_refused_or_ignored_write_nothing(
    hooks: Webhooks, kafka_settings: KafkaSettings, zaken: ZakenApi
) -> None:
    created = zgw_body("zaak_created", zaken)
    status = zgw_body("status_created", zaken)
    assert post_zgw(hooks, created, auth=None).status_code == 401
    assert post_zgw(hooks, created, auth="Bearer guess").status_code == 401
    # The abonnement's check, other actions and unconfigured types: 204 and nothing written.
    assert post_zgw(hooks, zgw_body("test_notification", zaken)).status_code == 204
    assert post_zgw(hooks, zgw_body("zaak_updated", zaken)).status_code == 204
    other_type = json.loads(status) | {"kenmerken": {"bronorganisatie": "001234511"}}
    assert post_zgw(hooks, json.dumps(other_type).encode()).status_code == 204
    # A status the Zaken API does not have: 502, so the notification can be sent again.
    missing = post_zgw(hooks, status)
    assert missing.status_code == 502
    assert missing.headers["content-type"] == PROBLEM_JSON
    # A statustype nobody configured: read, then ignored.
    url = json.loads(status)["resourceUrl"]
    zaken.serve(
        url, json.dumps(json.loads(zgw_body("status", zaken)) | {"statustype": "x"}).encode()
    )
    assert post_zgw(hooks, status).status_code == 204
    # A status set in the year 9999: the Zaken API's resource is unusable, as one without
    # its date (502), not the notification (400).
    zaken.serve(
        url,
        json.dumps(
            json.loads(zgw_body("status", zaken)) | {"datumStatusGezet": "9999-12-30T12:00:00Z"}
        ).encode(),
    )
    far_status = post_zgw(hooks, status)
    assert far_status.status_code == 502, far_status.text
    assert "datumStatusGezet" in far_status.json()["detail"]
    # Not a notification at all.
    invalid = post_zgw(hooks, b'{"kanaal": "zaken"}')
    assert invalid.status_code == 400
    assert invalid.json()["type"] == "urn:normwacht:problem:invalid-notification"
    # A notification whose event would not be one (made in the year 9999): its fault, 400.
    far = json.loads(created) | {"aanmaakdatum": "9999-12-30T12:00:00Z"}
    refused = post_zgw(hooks, json.dumps(far).encode())
    assert refused.status_code == 400, refused.text
    assert "/time" in refused.json()["detail"]
    assert events_on(kafka_settings) == []
    assert hooks.senders == []


def test_a_status_elsewhere_is_never_fetched_with_our_credentials(
    hooks: Webhooks, kafka_settings: KafkaSettings, zaken: ZakenApi
) -> None:
    with zaken_api(ZAKEN_API_AUTH) as elsewhere:
        body = zgw_body("status_created", zaken).replace(
            zaken.base.encode(), elsewhere.base.encode()
        )
        lookalike = json.loads(body)
        lookalike["resourceUrl"] = zaken.base + ".evil.example/statussen/1"
        for notification in (body, json.dumps(lookalike).encode()):
            answer = post_zgw(hooks, notification)
            assert answer.status_code == 422
            assert answer.json()["type"] == "urn:normwacht:problem:resource-not-trusted"
        assert elsewhere.seen == []
    assert zaken.seen == []
    assert events_on(kafka_settings) == []


# --- mounted in ingest: the registered partner's scope, audit and revocation apply ------------


def ingest_with_webhooks(
    kafka: KafkaSettings, zaken: ZakenApi, database_url: str, tmp_path: Path
) -> TestClient:
    settings = IngestSettings(
        environment="production",
        kafka=kafka,
        database_url=database_url,
        partners_refresh_s=0,
        audit_every_s=0.05,
        data_dir=tmp_path,
    )
    meta = MetaSettings(
        app_secret=APP_SECRET,
        verify_token=VERIFY_TOKEN,
        municipalities={"106540352242922": Municipality.HEILOO},
        hmac_key=KEY,
    )
    zgw = ZgwSettings(
        zaaktypen={ZAAKTYPE: "complaint"},
        municipalities={"001234511": "uitgeest"},
        zaken_api_url=zaken.base,
        zaken_api_authorization=ZAKEN_API_AUTH,
        hmac_key=KEY,
    )
    return TestClient(create_ingest(settings, webhooks=IngestWebhooks(meta=meta, zgw=zgw)))


def test_ingest_delivers_webhooks_as_their_registered_partners(
    kafka_settings: KafkaSettings, zaken: ZakenApi, sqlite_url: str, tmp_path: Path
) -> None:
    engine = connect_partners(sqlite_url)
    registry = Registry(engine)
    registry.add("meta", Role.WRITE, sources=["urn:buch:social:meta"], types=["nl.buch.social.*"],
                 municipalities=["heiloo"], rate=100, burst=100)  # fmt: skip
    zgw_key = registry.add("open-zaak", Role.WRITE, sources=["urn:buch:zgw:*"],
                           types=["nl.buch.complaint.*"], municipalities=["uitgeest"],
                           rate=100, burst=100)  # fmt: skip
    with ingest_with_webhooks(kafka_settings, zaken, sqlite_url, tmp_path) as client:
        body = meta_body("whatsapp_text_message")
        assert client.post("/v1/webhooks/meta", content=body, headers=signed(body)).json() == {
            "received": 1,
            "ignored": 0,
        }
        notification = zgw_body("zaak_created", zaken)
        headers = {"Content-Type": "application/json"}
        assert (
            client.post("/v1/webhooks/zgw", content=notification, headers=headers).status_code
            == 401
        )
        # Credentials are answered before the query, and then a query it does not take.
        meta_unknown = "/v1/webhooks/meta?bogus=1"
        assert client.post(meta_unknown, content=body).status_code == 401
        refused = client.post(meta_unknown, content=body, headers=signed(body))
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"].endswith("unknown-query-parameter")
        unknown = "/v1/webhooks/zgw?kanaal=zaken"
        assert client.post(unknown, content=notification, headers=headers).status_code == 401
        refused = client.post(
            unknown, content=notification, headers=headers | {"Authorization": f"Bearer {zgw_key}"}
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"].endswith("unknown-query-parameter")
        posted = client.post(
            "/v1/webhooks/zgw",
            content=notification,
            headers=headers | {"Authorization": f"Bearer {zgw_key}"},
        )
        assert posted.status_code == 204, posted.text
        records = events_on(kafka_settings, expect=2)
        assert sorted(json.loads(r.value)["type"] for r in records) == [
            "nl.buch.complaint.received",
            "nl.buch.social.received",
        ]
        assert_nothing_personal(records)
        audits = eventually(lambda: registry.audits() if len(registry.audits()) == 2 else None)
        assert sorted(a.partner for a in audits) == ["meta", "open-zaak"]

        registry.revoke("meta")  # turns the webhook off
        refused = client.post("/v1/webhooks/meta", content=body, headers=signed(body))
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith("sender-not-registered")
        assert len(events_on(kafka_settings)) == 2
    engine.dispose()
