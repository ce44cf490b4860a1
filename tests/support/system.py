"""The whole system as a user runs it, for end-to-end tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from services.shared.kafka import KafkaSettings, ensure_topics
from services.sla_processor.app import changelog_topics

TOKEN = "normwacht-dev-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
"""The development token: the services run in development mode (`services_env`)."""
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


def fresh_kafka(bootstrap: str, prefix: str = "t", partitions: int = 3) -> KafkaSettings:
    """New topic names on a broker: whoever uses them sees only their own records."""
    run = f"{prefix}{uuid.uuid4().hex[:8]}"
    return KafkaSettings(
        bootstrap=bootstrap,
        events_topic=f"{run}.events",
        outcomes_topic=f"{run}.outcomes",
        dead_letter_topic=f"{run}.events.dlq",
        partitions=partitions,
    )


def create_topics(kafka: KafkaSettings, processor_app_id: str | None = None) -> None:
    """What `normwacht kafka create-topics` does before the services start (they create
    none): the public topics and, for a processor of this app id, its tables' changelogs."""
    ensure_topics(kafka, compacted=changelog_topics(processor_app_id) if processor_app_id else ())


def kafka_env(kafka: KafkaSettings) -> dict[str, str]:
    """The environment that points a service at these topics."""
    return {
        "NORMWACHT_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "NORMWACHT_KAFKA_EVENTS_TOPIC": kafka.events_topic,
        "NORMWACHT_KAFKA_OUTCOMES_TOPIC": kafka.outcomes_topic,
        "NORMWACHT_KAFKA_DEAD_LETTER_TOPIC": kafka.dead_letter_topic,
        "NORMWACHT_KAFKA_PARTITIONS": str(kafka.partitions),
        **security_env(kafka),
    }


def security_env(kafka: KafkaSettings) -> dict[str, str]:
    """The environment for these TLS and SASL settings (none for PLAINTEXT)."""
    env: dict[str, str] = {"NORMWACHT_KAFKA_SECURITY_PROTOCOL": kafka.security_protocol}
    if kafka.uses_sasl and kafka.sasl_username and kafka.sasl_password:
        env |= {
            "NORMWACHT_KAFKA_SASL_MECHANISM": kafka.sasl_mechanism,
            "NORMWACHT_KAFKA_SASL_USERNAME": kafka.sasl_username,
            "NORMWACHT_KAFKA_SASL_PASSWORD": kafka.sasl_password.get_secret_value(),
        }
    files = {
        "CAFILE": kafka.ssl_cafile,
        "CERTFILE": kafka.ssl_certfile,
        "KEYFILE": kafka.ssl_keyfile,
    }
    env |= {f"NORMWACHT_KAFKA_SSL_{name}": str(path) for name, path in files.items() if path}
    return env


def services_env(kafka: KafkaSettings, workdir: Path, ports: Mapping[str, int]) -> dict[str, str]:
    """The environment for the services named in `ports` (processor, ingest, api, notifier)
    on these topics, each with its own port and its state under `workdir`."""
    port_variables = {
        "processor": "NORMWACHT_PROCESSOR_WEB_PORT",
        "ingest": "NORMWACHT_INGEST_PORT",
        "api": "NORMWACHT_API_PORT",
        "notifier": "NORMWACHT_NOTIFIER_PORT",
    }
    return {
        **kafka_env(kafka),
        "NORMWACHT_PROCESSOR_APP_ID": f"normwacht-{kafka.events_topic.split('.')[0]}",
        "NORMWACHT_PROCESSOR_DATA_DIR": str(workdir / "processor"),
        "NORMWACHT_INGEST_DATA_DIR": str(workdir / "ingest"),
        "DATABASE_URL": f"sqlite:///{workdir / 'api.db'}",
        "NORMWACHT_NOTIFIER_DATABASE_URL": f"sqlite:///{workdir / 'notifier.db'}",
        # As `make run`: ingest and the API take the development token.
        "NORMWACHT_INGEST_ENVIRONMENT": "development",
        "NORMWACHT_API_ENVIRONMENT": "development",
        **{port_variables[name]: str(port) for name, port in ports.items()},
    }
