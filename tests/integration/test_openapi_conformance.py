"""Ingest and the API keep their OpenAPI promises, under input generated from it.

schemathesis generates requests from each service's own OpenAPI document, valid and
invalid (positive and negative modes), and checks every answer: never a 5xx, the status
code declared, the content type and body as declared (problem details included), the
headers declared, invalid input refused and auth not ignored. Ingest writes to a real
broker; the API reads a real SQLite database.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import positive_data_acceptance

from services.api.app import create_app as api_app
from services.api.settings import ApiSettings
from services.ingest.app import create_app as ingest_app
from services.ingest.settings import DEVELOPMENT_TOKEN, IngestSettings
from services.shared.kafka import KafkaSettings

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {DEVELOPMENT_TOKEN}"}
# Deterministic and bounded: the same requests every run, about a minute for both services.
EXAMPLES = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,  # one app per operation is what we want
    ],
)


def _ingest(kafka: KafkaSettings, workdir: Path) -> FastAPI:
    return ingest_app(
        IngestSettings(
            environment="development",
            kafka=kafka,
            data_dir=workdir / "ingest",
            database_url=f"sqlite:///{workdir / 'partners.db'}",
        )
    )


def _api(database_url: str) -> FastAPI:
    return api_app(ApiSettings(environment="development", database_url=database_url), consume=False)


# The schemas come from apps that are never started (creating one does no I/O); the tests
# call apps built on the test's broker and database, whose OpenAPI must be the same.
# (schemathesis.pytest.from_fixture would do this, but fails on pytest 9: `_nodeid`.)
INGEST_OPENAPI = _ingest(KafkaSettings(), Path("unused")).openapi()
API_OPENAPI = _api("sqlite://").openapi()
ingest = schemathesis.openapi.from_dict(INGEST_OPENAPI)
api = schemathesis.openapi.from_dict(API_OPENAPI)


@pytest.fixture
def ingest_under_test(kafka_settings: KafkaSettings, tmp_path: Path) -> Iterator[FastAPI]:
    app = _ingest(kafka_settings, tmp_path)
    assert app.openapi() == INGEST_OPENAPI
    try:
        yield app
    finally:
        shutdown_lifespans()  # schemathesis started the app's lifespan (its producer) once


@pytest.fixture
def api_under_test(sqlite_url: str) -> Iterator[FastAPI]:
    app = _api(sqlite_url)
    assert app.openapi() == API_OPENAPI
    try:
        yield app
    finally:
        shutdown_lifespans()


def call(case: Any, app: FastAPI, excluded: Sequence[Any] = ()) -> None:
    """Send the case to `app` and run every check (but `excluded`) on the answer."""
    # On the operation and its schema (a clone per test), so the checks' own requests (such
    # as the one without credentials) go to the app too.
    case.operation.app = case.operation.schema.app = app
    case.call_and_validate(headers=AUTH, excluded_checks=list(excluded))


@ingest.parametrize()
@EXAMPLES
def test_ingest_conforms_to_its_openapi(case: Any, ingest_under_test: FastAPI) -> None:
    # An event valid by the schema may still be refused (422) by design: JSON Schema cannot
    # say that a subject must not be a phone number or BSN, nor which ce- headers binary mode
    # needs together. Everything else holds, invalid input refused included.
    call(case, ingest_under_test, excluded=[positive_data_acceptance])


@api.parametrize()
@EXAMPLES
def test_api_conforms_to_its_openapi(case: Any, api_under_test: FastAPI) -> None:
    # A cursor is opaque: only a `next_cursor` the API gave is one (another is a 400), which
    # a schema cannot say. Without a cursor, every schema-valid request must be accepted.
    has_cursor = bool((case.query or {}).get("cursor"))
    call(case, api_under_test, excluded=[positive_data_acceptance] if has_cursor else [])
