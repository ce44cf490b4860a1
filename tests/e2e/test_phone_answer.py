"""The whole system as a user runs it: broker, processor, ingest and api as real processes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.shared.kafka import KafkaSettings
from tests.support.broker import free_port
from tests.support.events import ago, call_event
from tests.support.kafka_io import read_topic
from tests.support.services import eventually, running_service

pytestmark = pytest.mark.e2e

TOKEN = "normwacht-dev-token"


@dataclass(frozen=True)
class System:
    ingest: str
    processor: str
    api: str
    kafka: KafkaSettings


@pytest.fixture
def system(kafka_settings: KafkaSettings, tmp_path: Path) -> Iterator[System]:
    ports = {name: free_port() for name in ("ingest", "processor", "api")}
    env = {
        "NORMWACHT_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "NORMWACHT_KAFKA_EVENTS_TOPIC": kafka_settings.events_topic,
        "NORMWACHT_KAFKA_OUTCOMES_TOPIC": kafka_settings.outcomes_topic,
        "NORMWACHT_KAFKA_DEAD_LETTER_TOPIC": kafka_settings.dead_letter_topic,
        "NORMWACHT_KAFKA_PARTITIONS": str(kafka_settings.partitions),
        "NORMWACHT_PROCESSOR_APP_ID": f"normwacht-e2e-{uuid.uuid4().hex[:8]}",
        "NORMWACHT_PROCESSOR_DATA_DIR": str(tmp_path / "processor"),
        "NORMWACHT_PROCESSOR_WEB_PORT": str(ports["processor"]),
        "NORMWACHT_INGEST_PORT": str(ports["ingest"]),
        "NORMWACHT_API_PORT": str(ports["api"]),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'api.db'}",
    }
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    with (
        running_service("processor", env, urls["processor"] + "/healthz", tmp_path),
        running_service("ingest", env, urls["ingest"] + "/healthz", tmp_path),
        running_service("api", env, urls["api"] + "/healthz", tmp_path),
    ):
        yield System(urls["ingest"], urls["processor"], urls["api"], kafka_settings)


def post(system: System, events: list[dict[str, object]]) -> None:
    response = httpx.post(
        f"{system.ingest}/v1/events",
        content=json.dumps(events),
        headers={
            "Content-Type": "application/cloudevents-batch+json",
            "Authorization": f"Bearer {TOKEN}",
        },
    )
    assert response.status_code == 202, response.text


def test_a_breach_a_met_call_and_an_excluded_call(system: System) -> None:
    post(
        system,
        [
            # Queued 19 s ago, nobody picks up: the breach is due in about a second.
            call_event("E2E-BREACH", "queued", ago(19), municipality="castricum"),
            call_event("E2E-MET", "queued", ago(12), municipality="castricum"),
            call_event("E2E-MET", "answered", ago(3), municipality="castricum"),
            call_event("E2E-EXCLUDED", "queued", ago(10), municipality="castricum"),
            call_event("E2E-EXCLUDED", "abandoned", ago(8), municipality="castricum"),
        ],
    )
    labels = 'channel="phone",municipality="castricum",norm="phone.answer"'

    def metrics_show_everything() -> str | None:
        text = httpx.get(f"{system.processor}/metrics").text
        wanted = [
            f"normwacht_sla_{kind}_total{{{labels}}} 1.0"
            for kind in ("breaches", "met", "excluded")
        ]
        return text if all(line in text for line in wanted) else None

    eventually(metrics_show_everything, timeout_s=30)

    records = read_topic(system.kafka.bootstrap, system.kafka.outcomes_topic, expect=6)
    decided = {
        (o["subject"], o["kind"])
        for o in map(json.loads, (r.value for r in records))
        if o["norm"] == "phone.answer" and o["kind"] not in ("opened", "at_risk")
    }
    assert decided == {("E2E-BREACH", "breached"), ("E2E-MET", "met"), ("E2E-EXCLUDED", "excluded")}

    def breach_listed() -> list[dict[str, object]]:
        items: list[dict[str, object]] = httpx.get(f"{system.api}/v1/breaches").json()["items"]
        return items

    [breach] = eventually(breach_listed)
    assert (breach["subject"], breach["norm"], breach["municipality"]) == (
        "E2E-BREACH",
        "phone.answer",
        "castricum",
    )
    met = eventually(lambda: httpx.get(f"{system.api}/v1/cases/E2E-MET").json().get("clocks"))
    assert met[0]["status"] == "met"
    excluded = eventually(
        lambda: httpx.get(f"{system.api}/v1/cases/E2E-EXCLUDED").json().get("clocks")
    )
    assert excluded[0]["status"] == "excluded"
