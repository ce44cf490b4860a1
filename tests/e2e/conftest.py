"""One broker (the session's), and per test module its own topics, processor, ingest and api."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.broker import free_ports
from tests.support.services import running_service
from tests.support.system import System, create_topics, fresh_kafka, services_env


@pytest.fixture(scope="module")
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    kafka = fresh_kafka(kafka_bootstrap)
    tmp_path = tmp_path_factory.mktemp("system")
    # Taken together, so that the three differ.
    ports = dict(zip(("ingest", "processor", "api"), free_ports(3), strict=True))
    env = services_env(kafka, tmp_path, ports)
    create_topics(kafka, env["NORMWACHT_PROCESSOR_APP_ID"])
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    with (
        running_service("processor", env, urls["processor"] + "/healthz", tmp_path),
        running_service("ingest", env, urls["ingest"] + "/healthz", tmp_path),
        running_service("api", env, urls["api"] + "/healthz", tmp_path),
    ):
        yield System(urls["ingest"], urls["processor"], urls["api"], kafka)
