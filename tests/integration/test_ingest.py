"""Ingest on the real broker: 202 means the events are on Kafka; bad input writes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.ingest.app import BATCH, SINGLE, SourcesFile, create_app
from services.ingest.settings import DEVELOPMENT_TOKEN, IngestSettings
from services.shared.kafka import KafkaSettings
from tests.support.kafka_io import read_topic
from tests.support.threads import at_once

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {DEVELOPMENT_TOKEN}"}


def call(
    subject: str = "KCC-1", kind: str = "queued", event_id: str = "e-1", **extra: Any
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "urn:buch:kcc:telephony",
        "type": f"nl.buch.call.{kind}",
        "time": "2026-11-24T09:00:00+01:00",
        "subject": subject,
        "municipality": "uitgeest",
        **extra,
    }


@pytest.fixture
def settings(kafka_settings: KafkaSettings, tmp_path: Path) -> IngestSettings:
    return IngestSettings(
        kafka=kafka_settings,
        max_batch_events=5,
        max_body_bytes=20_000,
        data_dir=tmp_path,
        environment="development",  # the development token (partners: test_partners.py)
        database_url=f"sqlite:///{tmp_path / 'partners.db'}",
    )


@pytest.fixture
def client(settings: IngestSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def post(client: TestClient, body: object, media_type: str = SINGLE, **headers: str) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        "/v1/events", content=content, headers={"Content-Type": media_type, **AUTH, **headers}
    )


def test_one_event_is_on_kafka_keyed_by_subject(
    client: TestClient, kafka_settings: KafkaSettings
) -> None:
    response = post(client, call(subject="KCC-7"))
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1, "ids": ["e-1"]}
    [record] = read_topic(kafka_settings.bootstrap, kafka_settings.events_topic, expect=1)
    assert record.key == b"KCC-7"
    assert json.loads(record.value)["subject"] == "KCC-7"
    # The Kafka binding's structured mode: a content type and no ce_ headers.
    assert record.headers == {"content-type": b"application/cloudevents+json; charset=utf-8"}


def test_a_batch_keeps_each_case_in_one_partition_in_order(
    client: TestClient, kafka_settings: KafkaSettings
) -> None:
    batch = [
        call(subject=f"KCC-{n % 2}", kind=kind, event_id=f"e-{n}")
        for n, kind in enumerate(["queued", "queued", "answered", "answered"])
    ]
    response = post(client, batch, BATCH)
    assert response.status_code == 202, response.text
    records = read_topic(kafka_settings.bootstrap, kafka_settings.events_topic, expect=4)
    by_case: dict[bytes | None, list[tuple[int, str]]] = {}
    for r in records:
        by_case.setdefault(r.key, []).append((r.partition, json.loads(r.value)["type"]))
    assert len(records) == 4
    assert set(by_case) == {b"KCC-0", b"KCC-1"}
    for events in by_case.values():
        assert len({partition for partition, _ in events}) == 1
        assert [t for _, t in events] == ["nl.buch.call.queued", "nl.buch.call.answered"]


def problem_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:normwacht:problem:")
    return body


def test_bad_input_gets_a_clear_4xx_and_nothing_reaches_kafka(
    client: TestClient, kafka_settings: KafkaSettings
) -> None:
    malformed = problem_of(post(client, b'{"specversion": "1.0",'), 422)
    assert "JSON" in malformed["detail"] or "json" in malformed["detail"]

    missing = call()
    del missing["time"]
    assert problem_of(post(client, missing), 422)["errors"][0]["pointer"] == "/time"

    unknown = problem_of(post(client, call(kind="teleported")), 422)
    assert unknown["errors"][0]["pointer"] == "/type"

    personal = problem_of(post(client, [call(), call(subject="jan@example.nl")], BATCH), 422)
    assert personal["errors"][0]["pointer"] == "/1/subject"

    wrong_token = problem_of(post(client, call(), Authorization="Bearer nope"), 401)
    assert "bearer" in wrong_token["detail"]
    no_token = client.post(
        "/v1/events", content=json.dumps(call()), headers={"Content-Type": SINGLE}
    )
    assert no_token.headers["www-authenticate"].startswith("Bearer")
    problem_of(no_token, 401)

    too_many = problem_of(post(client, [call(event_id=f"e{n}") for n in range(6)], BATCH), 413)
    assert "at most 5 events" in too_many["detail"]
    problem_of(post(client, b"[" + b" " * 30_000 + b"]", BATCH), 413)
    problem_of(post(client, call(), "text/plain"), 415)
    problem_of(post(client, [], BATCH), 422)

    assert read_topic(kafka_settings.bootstrap, kafka_settings.events_topic) == []


def test_health_metrics_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.head("/healthz").status_code == 200  # uptime checkers, `curl -I`
    post(client, call(subject="KCC-M"))
    metrics = client.get("/metrics").text
    assert 'normwacht_ingest_events_accepted_total{type="nl.buch.call.queued"} 1.0' in metrics
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]
    assert set(content) == {SINGLE, BATCH, "application/json"}  # the last: binary mode


def test_what_ingest_heard_of_each_source_survives_a_restart(settings: IngestSettings) -> None:
    """A source silent since before a restart must still be reported silent after it."""
    wanted = 'normwacht_ingest_last_event_timestamp_seconds{channel="phone",source="urn:buch:kcc"}'
    with TestClient(create_app(settings)) as first:
        event = call("RESTART-1", source="urn:buch:kcc")
        assert post(first, event).status_code == 202
        heard = [ln for ln in first.get("/metrics").text.splitlines() if ln.startswith(wanted)]
    assert heard
    with TestClient(create_app(settings)) as second:
        again = [ln for ln in second.get("/metrics").text.splitlines() if ln.startswith(wanted)]
    assert again == heard


def test_the_sources_file_written_from_two_threads_at_once_stays_whole(tmp_path: Path) -> None:
    """At shutdown ingest writes the sources file while the periodic write may still run
    in its thread; both go through the same partial file."""
    file = SourcesFile(tmp_path / "sources.json")
    writes = [[{"source": f"urn:writer:{n}", "events": n}] for n in range(2)]

    def writer(rows: list[dict[str, Any]]) -> Callable[[], None]:
        def write() -> None:
            for taken in range(300):
                file.write(rows, taken)

        return write

    assert at_once([writer(rows) for rows in writes]) == []
    assert file.read() in writes


def test_an_older_snapshot_never_overwrites_a_newer_one(tmp_path: Path) -> None:
    file = SourcesFile(tmp_path / "sources.json")
    file.write([{"source": "urn:newer"}], taken=2.0)
    file.write([{"source": "urn:older"}], taken=1.0)  # the periodic write, finishing late
    assert file.read() == [{"source": "urn:newer"}]
