"""Kafka's TLS and SASL settings, and the grants each user gets (no broker here)."""

from __future__ import annotations

import faust
import pytest
from kafka.admin import ACLOperation, ResourceType
from pydantic import ValidationError

from services.shared.kafka import DEAD_LETTER_RETENTION_MS, KafkaSettings
from services.shared.kafka_access import Grant, service_grants


def test_plaintext_by_default_so_make_run_and_the_tests_need_nothing() -> None:
    settings = KafkaSettings()
    assert settings.aiokafka_options() == {"security_protocol": "PLAINTEXT"}
    assert settings.kafka_python_options() == {"security_protocol": "PLAINTEXT"}
    assert settings.faust_credentials() is None
    assert settings.dead_letter_retention_ms == DEAD_LETTER_RETENTION_MS == 604_800_000


def test_scram_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NORMWACHT_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("NORMWACHT_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("NORMWACHT_KAFKA_SASL_USERNAME", "ingest")
    monkeypatch.setenv("NORMWACHT_KAFKA_SASL_PASSWORD", "s3cret-password")
    settings = KafkaSettings()
    assert settings.aiokafka_options() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "ingest",
        "sasl_plain_password": "s3cret-password",
    }
    credentials = settings.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.protocol.value, credentials.mechanism.value) == (
        "SASL_PLAINTEXT",
        "SCRAM-SHA-256",
    )
    assert (credentials.username, credentials.password) == ("ingest", "s3cret-password")
    # Settings are logged now and then: the password must not show.
    assert "s3cret-password" not in repr(settings)
    assert "s3cret-password" not in str(settings.model_dump())


@pytest.mark.parametrize("missing", ["sasl_username", "sasl_password"])
def test_sasl_without_a_complete_login_is_refused_at_start(missing: str) -> None:
    login = {"sasl_username": "ingest", "sasl_password": "pw"}
    del login[missing]
    with pytest.raises(ValidationError, match="needs sasl_username and sasl_password"):
        KafkaSettings(security_protocol="SASL_SSL", **login)  # type: ignore[arg-type]


def test_an_unknown_protocol_is_refused() -> None:
    with pytest.raises(ValidationError):
        KafkaSettings(security_protocol="TLS")


def test_a_partner_may_only_write_the_events_topic() -> None:
    kafka = KafkaSettings()
    assert service_grants(kafka)["partner"] == [
        Grant(ResourceType.TOPIC, "normwacht.events", (ACLOperation.WRITE,))
    ]


def test_no_service_may_touch_the_cluster_or_do_everything() -> None:
    for service, grants in service_grants(KafkaSettings()).items():
        for grant in grants:
            assert grant.resource != ResourceType.CLUSTER, service
            assert ACLOperation.ALL not in grant.operations, service
            # Only the processor's own topics are granted by prefix.
            assert not grant.prefixed or grant.name == "normwacht-sla-", service


def test_only_the_processor_writes_outcomes_and_the_readers_read_in_their_own_group() -> None:
    grants = service_grants(KafkaSettings(), api_group="g-api", notifier_group="g-notifier")
    writers = {
        service
        for service, service_grants_ in grants.items()
        for g in service_grants_
        if g.name == "normwacht.outcomes" and ACLOperation.WRITE in g.operations
    }
    assert writers == {"processor"}
    groups = {
        service: [g.name for g in service_grants_ if g.resource == ResourceType.GROUP]
        for service, service_grants_ in grants.items()
    }
    assert groups == {
        "ingest": [],
        "processor": ["normwacht-sla"],
        "api": ["g-api"],
        "notifier": ["g-notifier"],
        "partner": [],
    }
