"""Shared fixtures: a real Kafka broker and PostgreSQL server, started by the project's own scripts.

Each test session starts its own broker (and database) in a temporary folder on
free ports, so tests never collide with a running `make run`. Each test gets its
own topic names, so tests never see each other's records. The broker creates no topic by
use (as deployed): a fixture creates them, as `normwacht kafka create-topics` would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.shared.kafka import KafkaSettings
from tests.support.broker import running_broker
from tests.support.postgres import emptied, running_postgres
from tests.support.system import create_topics, fresh_kafka


@pytest.fixture(scope="session", autouse=True)
def due_record_key() -> Iterator[None]:
    """Every processor a test starts signs its due-records with one key, as a deployment's
    workers do (inherited through the environment by the processes tests start)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NORMWACHT_PROCESSOR_DUE_RECORD_KEY", "test-" + "0" * 59)
        yield


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_broker(tmp_path_factory.mktemp("kafka")) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_postgres(tmp_path_factory.mktemp("postgres")) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """A new database, once on each: SQLite (the default) and PostgreSQL."""
    if request.param == "sqlite":
        return sqlite_url
    url: str = request.getfixturevalue("empty_postgres_url")
    return url


@pytest.fixture
def empty_postgres_url(postgres_url: str) -> str:
    """The session's PostgreSQL server with no tables: one server serves every test, and
    each starts as on a new database."""
    return emptied(postgres_url)


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    """Fresh topics on the session's broker, a test seeing only its own records: the public
    ones created, as `normwacht kafka create-topics` does before the services start (a
    processor's changelogs need its app id: `create_topics(kafka, app_id)`)."""
    kafka = fresh_kafka(kafka_bootstrap)
    create_topics(kafka)
    return kafka


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'normwacht.db'}"
