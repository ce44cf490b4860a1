"""Both CloudEvents bindings on the real broker: binary and structured mode over HTTP end up
in Kafka in structured mode; records a partner writes to Kafka directly in binary mode
are processed, and an invalid one is dead-lettered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cloudevents.core.bindings import http, kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from fastapi.testclient import TestClient
from kafka import KafkaProducer

from services.ingest.app import create_app
from services.ingest.settings import DEVELOPMENT_TOKEN, IngestSettings
from services.shared.bindings import KAFKA_CONTENT_TYPE
from services.shared.kafka import KafkaSettings
from tests.integration.test_processor import outcome_kinds
from tests.support.events import ago
from tests.support.kafka_io import read_topic

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {DEVELOPMENT_TOKEN}"}
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def sdk_event(
    subject: str, kind: str, at: datetime, data: dict[str, Any] | None = None, **extra: Any
) -> CloudEvent:
    """A call event as a partner builds it with the SDK."""
    attributes = {
        "specversion": "1.0",
        "id": f"{subject}-{kind}",
        "source": "urn:buch:kcc:telephony",
        "type": f"nl.buch.call.{kind}",
        "time": at,
        "subject": subject,
        "municipality": "bergen",
        **extra,
    }
    return CloudEvent(attributes, data)


@pytest.fixture
def client(kafka_settings: KafkaSettings, tmp_path: Path) -> Iterator[TestClient]:
    settings = IngestSettings(
        kafka=kafka_settings,
        data_dir=tmp_path,
        environment="development",
        database_url=f"sqlite:///{tmp_path / 'partners.db'}",
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_binary_and_structured_requests_reach_kafka_in_structured_mode(
    client: TestClient, kafka_settings: KafkaSettings
) -> None:
    event = sdk_event(
        "BIN-1", "queued", ago(5), {"queue": "kcc"}, datacontenttype="application/json"
    )
    binary = http.to_binary(event, JSONFormat())
    assert binary.headers["content-type"] == "application/json"  # datacontenttype, by the SDK
    response = client.post("/v1/events", content=binary.body, headers={**binary.headers, **AUTH})
    assert response.status_code == 202, response.text

    structured = {
        "specversion": "1.0",
        "id": "struct-1",
        "source": "urn:buch:kcc:telephony",
        "type": "nl.buch.call.queued",
        "time": ago(5).isoformat(),
        "subject": "STRUCT-1",
        "municipality": "heiloo",
        "datacontenttype": "application/json; charset=utf-8",
        "dataschema": "https://normwacht.example/schemas/event.schema.json",
        "traceparent": TRACEPARENT,
        "tracestate": "rojo=00f067aa0ba902b7",
        "data": {"queue": "kcc"},
    }
    response = client.post(
        "/v1/events",
        content=json.dumps(structured),
        headers={"Content-Type": "application/cloudevents+json; charset=utf-8", **AUTH},
    )
    assert response.status_code == 202, response.text

    # Refused, and nothing written: a binary request without its subject, and a body in
    # no mode at all.
    headless = {k: v for k, v in binary.headers.items() if k != "ce-subject"}
    response = client.post("/v1/events", content=binary.body, headers={**headless, **AUTH})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["pointer"] == "/headers/ce-subject"
    response = client.post(
        "/v1/events", content=b"call queued", headers={"Content-Type": "text/plain", **AUTH}
    )
    assert response.status_code == 415
    assert "binary mode" in response.json()["detail"]

    records = read_topic(kafka_settings.bootstrap, kafka_settings.events_topic, expect=2)
    assert len(records) == 2
    by_subject = {r.key: r for r in records}
    for record in records:
        assert record.headers == {"content-type": KAFKA_CONTENT_TYPE.encode()}
        read = kafka.from_kafka(
            kafka.KafkaMessage(record.headers, record.key, record.value), JSONFormat()
        )
        assert read.get_subject() == (record.key or b"").decode()
    from_binary = json.loads(by_subject[b"BIN-1"].value)
    assert (from_binary["id"], from_binary["data"]) == ("BIN-1-queued", {"queue": "kcc"})
    kept = json.loads(by_subject[b"STRUCT-1"].value)
    assert kept["traceparent"] == TRACEPARENT
    assert kept["dataschema"] == structured["dataschema"]
    assert kept["datacontenttype"] == "application/json; charset=utf-8"
    assert "tracestate" not in kept  # an extension other than traceparent: dropped


def test_records_written_to_kafka_in_binary_mode_are_processed(
    processor: str, kafka_settings: KafkaSettings
) -> None:
    def binary(event: CloudEvent) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        message = kafka.to_binary(event, JSONFormat(), lambda e: e.get_subject())
        key = message.key.encode() if isinstance(message.key, str) else message.key or b""
        return key, message.value, list(message.headers.items())

    records = [
        binary(sdk_event("UNANSWERED", "queued", ago(25))),
        binary(sdk_event("ANSWERED", "queued", ago(30), traceparent=TRACEPARENT)),
        binary(sdk_event("ANSWERED", "answered", ago(25))),
        binary(sdk_event("HUNG-UP", "queued", ago(30))),
        binary(sdk_event("HUNG-UP", "abandoned", ago(26))),
    ]
    personal = binary(sdk_event("0612345678", "queued", ago(20), id="personal-1"))
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap, acks="all")
    try:
        for key, value, headers in [*records, personal]:
            producer.send(kafka_settings.events_topic, key=key, value=value, headers=headers)
        producer.flush()
    finally:
        producer.close()

    # As test_processor's structured records: 7 of phone.answer, 1 of phone.transfers.
    assert outcome_kinds(kafka_settings, expect=8) == {
        "UNANSWERED": ["opened", "breached"],
        "ANSWERED": ["opened", "met"],
        "HUNG-UP": ["opened", "excluded"],
    }
    [dead] = read_topic(kafka_settings.bootstrap, kafka_settings.dead_letter_topic, expect=1)
    assert dead.headers["normwacht-error"] == b"invalid_event"
    assert b"ce_subject" in dead.headers["normwacht-error-detail"]
    assert b"phone number" in dead.headers["normwacht-error-detail"]
    assert dead.value == personal[1]
