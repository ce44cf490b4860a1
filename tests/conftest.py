"""Shared fixtures: a real Kafka broker and PostgreSQL server, started by the project's own scripts.

Each test session starts its own broker (and database) in a temporary folder on
free ports, so tests never collide with a running `make run`. Each test gets its
own topic names, so tests never see each other's records.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.shared.kafka import KafkaSettings
from tests.support.broker import running_broker
from tests.support.postgres import running_postgres
from tests.support.system import fresh_kafka


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_broker(tmp_path_factory.mktemp("kafka")) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_postgres(tmp_path_factory.mktemp("postgres")) as url:
        yield url


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    """Fresh topic names on the session's broker: a test sees only its own records."""
    return fresh_kafka(kafka_bootstrap)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'normwacht.db'}"
