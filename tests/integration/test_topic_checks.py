"""Topics are a deployment step: the broker makes none by use, the services none at all.

Each service checks at start that the topics it needs exist with the partitions it needs
and refuses to start otherwise, naming every problem and how to mend it; topics made by
`normwacht kafka create-topics` let them start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaTimeoutError
from typer.testing import CliRunner

from normwacht.cli import app as cli
from services.shared.kafka import KafkaSettings, TopicsNotReady, check_topics
from services.sla_processor.app import changelog_topics
from services.sla_processor.main import needed_topics
from services.sla_processor.settings import ProcessorSettings
from tests.support.broker import free_ports
from tests.support.services import running_service
from tests.support.system import create_topics, fresh_kafka, services_env

pytestmark = pytest.mark.integration

SERVICES = ("processor", "ingest", "api", "notifier")


def environment(kafka: KafkaSettings, workdir: Path) -> tuple[dict[str, str], dict[str, int]]:
    """Every service's environment on these topics, and the port of each."""
    ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    return services_env(kafka, workdir, ports), ports


def test_the_broker_creates_no_topic_that_a_client_names(kafka_bootstrap: str) -> None:
    topic = f"nobody-made-this-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, max_block_ms=3_000)
    try:
        with pytest.raises(KafkaTimeoutError):  # no metadata for it ever comes
            producer.send(topic, b"a record")
    finally:
        producer.close()
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        assert topic not in admin.list_topics()
    finally:
        admin.close()


def test_every_missing_topic_and_partition_count_is_named(kafka_bootstrap: str) -> None:
    kafka = fresh_kafka(kafka_bootstrap, partitions=3)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics(
            [
                NewTopic(kafka.events_topic, num_partitions=3, replication_factor=1),
                NewTopic(kafka.outcomes_topic, num_partitions=2, replication_factor=1),
            ]
        )
    finally:
        admin.close()
    needed = {kafka.events_topic: 3, kafka.outcomes_topic: 3, kafka.dead_letter_topic: None}
    with pytest.raises(TopicsNotReady) as refused:
        check_topics(kafka, needed)
    message = str(refused.value)
    assert f"{kafka.outcomes_topic}: 2 partitions, needs 3" in message
    assert f"{kafka.dead_letter_topic}: missing" in message
    assert f"{kafka.events_topic}:" not in message  # as needed
    assert "normwacht kafka create-topics" in message
    assert "NORMWACHT_KAFKA_PARTITIONS (here 3)" in message
    # Any count will do where None is asked, and the check created nothing.
    check_topics(kafka, {kafka.events_topic: 3, kafka.outcomes_topic: None})
    with pytest.raises(TopicsNotReady, match="missing"):
        check_topics(kafka, {kafka.dead_letter_topic: None})


def test_the_processor_refuses_changelogs_partitioned_unlike_the_events(
    kafka_bootstrap: str,
) -> None:
    kafka = fresh_kafka(kafka_bootstrap, partitions=3)
    settings = ProcessorSettings(kafka=kafka, app_id=f"normwacht-sla-{uuid.uuid4().hex[:8]}")
    create_topics(kafka)
    # As made by a processor configured for one partition.
    create_topics(kafka.model_copy(update={"partitions": 1}), settings.app_id)
    with pytest.raises(TopicsNotReady) as refused:
        check_topics(kafka, needed_topics(settings))
    problems = str(refused.value).splitlines()[1:-1]
    assert problems == [
        f"  {changelog}: 1 partitions, needs 3" for changelog in changelog_topics(settings.app_id)
    ]


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_refuses_to_start_without_its_topics(
    service: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    kafka = fresh_kafka(kafka_bootstrap)
    env, _ = environment(kafka, tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "normwacht", service],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0, result.stdout + result.stderr
    assert f"normwacht {service} refuses to start" in result.stderr
    assert "normwacht kafka create-topics" in result.stderr
    missing = {
        "processor": [
            kafka.events_topic,
            kafka.outcomes_topic,
            kafka.dead_letter_topic,
            *changelog_topics(env["NORMWACHT_PROCESSOR_APP_ID"]),
        ],
        "ingest": [kafka.events_topic],
        "api": [kafka.outcomes_topic],
        "notifier": [kafka.outcomes_topic],
    }[service]
    for topic in missing:
        assert f"  {topic}: missing" in result.stderr
    with pytest.raises(TopicsNotReady):  # it made none of them either
        check_topics(kafka, dict.fromkeys(missing, None))


def test_the_services_start_on_the_topics_of_normwacht_kafka_create_topics(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka = fresh_kafka(kafka_bootstrap)
    env, ports = environment(kafka, tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    created = CliRunner().invoke(cli, ["kafka", "create-topics"])
    assert created.exit_code == 0, created.output
    changelogs = changelog_topics(env["NORMWACHT_PROCESSOR_APP_ID"])
    listed = created.stdout.strip().splitlines()[-1]  # after the log of what it created
    assert set(listed.split(", ")) == {
        kafka.events_topic, kafka.outcomes_topic, kafka.dead_letter_topic, *changelogs
    }  # fmt: skip
    with ExitStack() as running:
        for service, port in ports.items():
            health = f"http://127.0.0.1:{port}/healthz"
            running.enter_context(running_service(service, env, health, tmp_path))
