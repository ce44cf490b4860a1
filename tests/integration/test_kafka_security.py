"""The pipeline on a broker with TLS, SCRAM and ACLs (`KAFKA_SECURE=1 kafka.sh start`).

Every service runs as its own user with exactly the grants of `service_grants` (what
docs/ARCHITECTURE.md lists), so a grant the pipeline needs and lacks fails here. A partner
that writes to Kafka directly may write the events topic and nothing else; a client
without credentials, or with a wrong password, gets nowhere.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiokafka.errors
import pytest
from aiokafka import AIOKafkaConsumer
from fastapi.testclient import TestClient
from kafka import KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import TopicAuthorizationFailedError
from typer.testing import CliRunner

from normwacht.cli import app as cli
from normwacht.core.engine import Outcome
from services.ingest.app import SINGLE, create_app
from services.ingest.settings import DEVELOPMENT_TOKEN, IngestSettings
from services.shared.kafka import KafkaSettings, ensure_topics, started
from services.shared.kafka_access import service_grants
from services.shared.outcomes import outcome_consumer
from services.sla_processor.app import changelog_topics
from tests.support.broker import SecureBroker, free_port, running_secure_broker
from tests.support.events import ago, as_record, call_event
from tests.support.services import eventually, running_service
from tests.support.system import fresh_kafka, kafka_env

pytestmark = pytest.mark.integration

API_GROUP = "normwacht-api"


@dataclass(frozen=True)
class Pipeline:
    broker: SecureBroker
    topics: KafkaSettings
    app_id: str
    users: dict[str, KafkaSettings]  # service (or "partner") -> its settings, as its user


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    with running_secure_broker(tmp_path_factory.mktemp("secure-kafka")) as broker:
        yield broker


@pytest.fixture(scope="module")
def pipeline(broker: SecureBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """Topics made by the admin, a user per service with its grants, and the processor
    running as its user."""
    topics = fresh_kafka(broker.bootstrap)
    app_id = f"normwacht-sla-{uuid.uuid4().hex[:8]}"
    ensure_topics(broker.admin(topics), compacted=changelog_topics(app_id))
    users = {}
    grants = service_grants(topics, processor_app_id=app_id, api_group=API_GROUP)
    for service, service_grant in grants.items():
        user, password = f"{service}-{app_id}", secrets.token_urlsafe(16)
        broker.add_user(user, password, service_grant)
        users[service] = broker.settings(user, password, topics)

    workdir = tmp_path_factory.mktemp("secure-processor")
    port = free_port()
    env = {
        **kafka_env(users["processor"]),
        "NORMWACHT_PROCESSOR_APP_ID": app_id,
        "NORMWACHT_PROCESSOR_DATA_DIR": str(workdir / "state"),
        "NORMWACHT_PROCESSOR_WEB_PORT": str(port),
    }
    with running_service("processor", env, f"http://127.0.0.1:{port}/healthz", workdir):
        yield Pipeline(broker, topics, app_id, users)


def read_outcomes(kafka: KafkaSettings, expected: set[str], timeout_s: float = 60.0) -> set[str]:
    """Outcome ids, read (and committed) as the API reads them, until `expected` are in."""

    async def run() -> set[str]:
        consumer = outcome_consumer(
            kafka.bootstrap, kafka.outcomes_topic, API_GROUP, "t-api", **kafka.aiokafka_options()
        )
        ids: set[str] = set()
        async with started(consumer):
            async with asyncio.timeout(timeout_s):
                while not expected <= ids:
                    batches = await consumer.getmany(timeout_ms=500)
                    for records in batches.values():
                        for record in records:
                            outcome = Outcome.model_validate_json(record.value or b"")
                            ids.add(outcome.id)
                    await consumer.commit()
        return ids

    return asyncio.run(run())


def test_ingest_and_a_partner_feed_the_processor_each_as_its_own_user(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    settings = IngestSettings(
        environment="development",
        kafka=pipeline.users["ingest"],
        data_dir=tmp_path / "ingest",
        database_url=f"sqlite:///{tmp_path / 'ingest.db'}",
    )
    with TestClient(create_app(settings)) as client:
        for kind, seconds in (("queued", 30), ("answered", 25)):
            response = client.post(
                "/v1/events",
                content=json.dumps(call_event("SECURE-INGEST", kind, ago(seconds))),
                headers={"Content-Type": SINGLE, "Authorization": f"Bearer {DEVELOPMENT_TOKEN}"},
            )
            assert response.status_code == 202, response.text

    partner = pipeline.users["partner"]
    producer = KafkaProducer(
        bootstrap_servers=partner.bootstrap, acks="all", **partner.kafka_python_options()
    )
    try:
        key, value = as_record(call_event("SECURE-PARTNER", "queued", ago(25)))
        producer.send(partner.events_topic, key=key, value=value).get(timeout=30)
    finally:
        producer.close()

    # The partner's call is breached by the processor's timer: its due-record goes
    # through the events topic, which the processor's user may write.
    expected = {"SECURE-INGEST/phone.answer/1/met", "SECURE-PARTNER/phone.answer/1/breached"}
    assert expected <= read_outcomes(pipeline.users["api"], expected)


def test_a_partner_may_write_the_events_topic_and_nothing_else(pipeline: Pipeline) -> None:
    partner = pipeline.users["partner"]
    producer = KafkaProducer(
        bootstrap_servers=partner.bootstrap,
        acks="all",
        retries=0,
        max_block_ms=10_000,
        **partner.kafka_python_options(),
    )
    try:
        for topic in [partner.outcomes_topic, *changelog_topics(pipeline.app_id)]:
            with pytest.raises(TopicAuthorizationFailedError):
                producer.send(topic, key=b"X", value=b"{}").get(timeout=30)
    finally:
        producer.close()

    async def read(topic: str) -> None:
        # Without a group: a group of its own would be refused first (see below).
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=partner.bootstrap, **partner.aiokafka_options()
        )
        async with started(consumer):  # refused here for a topic it may not even describe
            for _ in range(20):  # or at the first fetch, for the events it may write
                await consumer.getmany(timeout_ms=500)

    for topic in [
        partner.outcomes_topic,
        partner.events_topic,
        f"{pipeline.app_id}-cases-changelog",
    ]:
        with pytest.raises(aiokafka.errors.TopicAuthorizationFailedError):
            asyncio.run(read(topic))


def test_a_partner_cannot_join_a_service_group(pipeline: Pipeline) -> None:
    partner = pipeline.users["partner"]

    async def join() -> None:
        consumer = AIOKafkaConsumer(
            partner.events_topic,
            bootstrap_servers=partner.bootstrap,
            group_id=f"{pipeline.app_id}",
            **partner.aiokafka_options(),
        )
        async with started(consumer), asyncio.timeout(30):
            await consumer.getmany(timeout_ms=5000)

    with pytest.raises(aiokafka.errors.GroupAuthorizationFailedError):
        asyncio.run(join())


INTRUDER = """
import json, sys
from kafka import KafkaProducer
from kafka.errors import KafkaError
bootstrap, topic, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
try:
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_block_ms=10_000, **options)
    producer.send(topic, key=b"INTRUDER", value=b"{}").get(timeout=15)
except KafkaError as error:
    print(type(error).__name__)
    sys.exit(3)
print("written")
"""


@pytest.mark.parametrize(
    ("who", "gets_in"),
    [
        ("no credentials", False),
        ("TLS without a login", False),
        ("wrong password", False),
        ("the partner itself", True),  # the same attempt, to show it can succeed
    ],
)
def test_no_one_gets_in_without_valid_credentials(
    pipeline: Pipeline, who: str, gets_in: bool
) -> None:
    partner = pipeline.users["partner"]
    tls = {"ssl_cafile": str(partner.ssl_cafile)}
    options = {
        "no credentials": {"security_protocol": "PLAINTEXT"},
        "TLS without a login": {"security_protocol": "SSL", **tls},
        "wrong password": {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": partner.sasl_username,
            "sasl_plain_password": "not-the-password",
            **tls,
        },
        "the partner itself": partner.kafka_python_options() | {"ssl_context": None} | tls,
    }[who]
    # A process of its own: kafka-python leaks the sockets of a producer whose
    # constructor fails, which pytest would report as this test's.
    attempt = subprocess.run(
        [
            sys.executable,
            "-c",
            INTRUDER,
            partner.bootstrap,
            partner.events_topic,
            json.dumps(options),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    outcome = (attempt.returncode, attempt.stdout.strip().splitlines()[-1:])
    refused = outcome[0] == 3  # a KafkaError, named on stdout
    assert outcome == (0, ["written"]) if gets_in else refused, attempt.stdout + attempt.stderr


def test_the_dead_letter_topic_keeps_its_records_only_for_the_set_retention(
    broker: SecureBroker,
) -> None:
    admin_settings = broker.admin(fresh_kafka(broker.bootstrap)).model_copy(
        update={"dead_letter_retention_ms": 3_600_000}
    )
    topic = admin_settings.dead_letter_topic
    admin = KafkaAdminClient(
        bootstrap_servers=broker.bootstrap, **admin_settings.kafka_python_options()
    )
    try:
        # As an older version made it: the broker's retention (a week).
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])

        def retention() -> str:
            resource = ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": None})
            described = admin.describe_configs([resource], config_filter="all")
            return str(described["topic"][topic]["retention.ms"]["value"])

        assert retention() == "604800000"
        ensure_topics(admin_settings)
        # The controller takes the change; the broker answering describes applies it soon after.
        eventually(lambda: retention() == "3600000")
    finally:
        admin.close()


def test_normwacht_kafka_add_user_gives_a_partner_the_events_topic_only(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = pipeline.broker.admin(pipeline.topics)
    for name, value in kafka_env(admin).items():
        monkeypatch.setenv(name, value)
    added = CliRunner().invoke(cli, ["kafka", "add-user", "partner-cli", "--as", "partner"])
    assert added.exit_code == 0, added.output
    password = added.stdout.strip()
    assert "shown this once" in added.stderr
    partner = pipeline.broker.settings("partner-cli", password, pipeline.topics)
    producer = KafkaProducer(
        bootstrap_servers=partner.bootstrap,
        acks="all",
        retries=0,
        max_block_ms=10_000,
        **partner.kafka_python_options(),
    )
    try:
        producer.send(partner.events_topic, key=b"CLI-1", value=b"{}").get(timeout=30)
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(partner.outcomes_topic, key=b"CLI-1", value=b"{}").get(timeout=30)
    finally:
        producer.close()
    refused = CliRunner().invoke(cli, ["kafka", "add-user", "x", "--as", "root"])
    assert refused.exit_code == 2
