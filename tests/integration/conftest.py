"""Fixtures of the integration tests that run the real processor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.shared.kafka import KafkaSettings
from tests.integration.test_processor import processor_env
from tests.support.broker import free_port
from tests.support.services import running_service
from tests.support.system import create_topics


@pytest.fixture
def processor(kafka_settings: KafkaSettings, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = processor_env(kafka_settings, tmp_path / "state", port)
    create_topics(kafka_settings, env["NORMWACHT_PROCESSOR_APP_ID"])
    with running_service("processor", env, f"http://127.0.0.1:{port}/healthz", tmp_path):
        yield f"http://127.0.0.1:{port}"
