"""Partners end to end: the CLI on SQLite and PostgreSQL, ingest on the real broker, the API.

Ingest reads the registry on every request here (`partners_refresh_s=0`), so a revocation
or rotation is seen by the next request.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from normwacht.cli import app as cli
from normwacht.core.engine import Kind, Outcome
from services.api.app import create_app as create_api
from services.api.db import Base as ApiBase
from services.api.db import connect as connect_api
from services.api.db import record_outcomes
from services.api.settings import ApiSettings
from services.ingest.access import NoWritePartner
from services.ingest.app import SINGLE
from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from services.shared import partners
from services.shared.bindings import BATCH
from services.shared.kafka import KafkaSettings
from services.shared.partners import DEVELOPMENT_TOKEN, Registry, Role, connect, parse_key
from tests.support.kafka_io import read_topic
from tests.support.services import eventually

pytestmark = pytest.mark.integration

KCC_SOURCE = "urn:buch:kcc:telephony"


@pytest.fixture
def registry(sqlite_url: str) -> Iterator[Registry]:
    engine = connect(sqlite_url)
    yield Registry(engine)
    engine.dispose()


def add_writer(registry: Registry, name: str = "kcc", **overrides: Any) -> str:
    scope: dict[str, Any] = {
        "sources": ["urn:buch:kcc:*"],
        "types": ["nl.buch.call.*"],
        "municipalities": ["heiloo"],
        "rate": 1000.0,
        "burst": 1000,
    }
    return registry.add(name, Role.WRITE, **(scope | overrides))


def bearer(key: str | bytes) -> dict[str, Any]:
    return {"Authorization": b"Bearer " + key if isinstance(key, bytes) else f"Bearer {key}"}


# --- the CLI ----------------------------------------------------------------------------


def run(database_url: str, *args: str) -> Any:
    return CliRunner().invoke(cli, ["partners", *args, "--database-url", database_url])


def test_partners_are_added_listed_rotated_and_revoked_from_the_cli(database_url: str) -> None:
    added = run(
        database_url, "add", "kcc", "--role", "write", "--source", "urn:buch:kcc:*",
        "--type", "nl.buch.call.*", "--municipality", "heiloo", "--rate", "50", "--burst", "100",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    key = added.stdout.strip()
    assert parse_key(key) is not None
    assert "shown this once" in added.stderr
    reader = run(database_url, "add", "ops-heiloo", "--role", "read", "--municipality", "heiloo")
    assert reader.exit_code == 0, reader.output

    engine = connect(database_url)
    try:
        registry = Registry(engine)
        now = datetime.now(UTC)
        assert registry.snapshot().partner(key, now) is not None
        stored = [row.secret_hash for row in registry_keys(engine)]

        listed = run(database_url, "list")
        assert listed.exit_code == 0, listed.output
        assert "kcc" in listed.stdout
        assert "ops-heiloo" in listed.stdout
        assert "urn:buch:kcc:*" in listed.stdout
        assert key not in listed.stdout
        assert not any(digest in listed.stdout for digest in stored)

        rotated = run(database_url, "rotate", "kcc")
        assert rotated.exit_code == 0, rotated.output
        new = rotated.stdout.strip()
        assert parse_key(new) is not None
        assert new != key
        assert registry.snapshot().partner(key, now) is None  # no grace: gone at once
        assert registry.snapshot().partner(new, now) is not None

        graced = run(database_url, "rotate", "kcc", "--keep-old-for", "1h")
        assert graced.exit_code == 0, graced.output
        newest = graced.stdout.strip()
        assert registry.snapshot().partner(new, now) is not None  # still, for an hour
        assert registry.snapshot().partner(newest, now) is not None

        assert run(database_url, "revoke", "kcc").exit_code == 0
        assert registry.snapshot().partner(newest, now) is None
        assert registry.snapshot().partner(new, now) is None
        assert "kcc" in run(database_url, "list").stdout  # kept, marked revoked
    finally:
        engine.dispose()


def registry_keys(engine: Any) -> list[partners.KeyRow]:
    with Session(engine) as session:
        return list(session.scalars(select(partners.KeyRow)))


def test_the_cli_refuses_duplicates_unknown_names_and_bad_scopes(database_url: str) -> None:
    def add(name: str, *scope: str) -> Any:
        return run(database_url, "add", name, "--role", "write", *scope)

    good = ("--source", "urn:buch:kcc:*", "--type", "nl.buch.call.*", "--municipality", "heiloo")
    assert add("kcc", *good).exit_code == 0
    duplicate = add("kcc", *good)
    assert duplicate.exit_code == 1
    assert "exists already" in duplicate.stderr
    for bad, reason in (
        (("--source", "kcc", "--type", "nl.buch.call.*", "--municipality", "heiloo"),
         "source 'kcc'"),
        (("--source", "urn:buch:kcc:*", "--type", "nl.buch.cal.*", "--municipality", "heiloo"),
         "type 'nl.buch.cal.*'"),
        (("--source", "urn:buch:kcc:*", "--type", "nl.buch.call.*", "--municipality", "alkmaar"),
         "municipality 'alkmaar'"),
        (("--type", "nl.buch.call.*", "--municipality", "heiloo"),  # no source at all
         "needs --source and --type"),
    ):  # fmt: skip
        refused = add("other", *bad)
        assert refused.exit_code == 2, (bad, refused.output)
        assert reason in refused.output, (bad, refused.output)
    bad_role = run(database_url, "add", "x", "--role", "admin", "--municipality", "heiloo")
    assert bad_role.exit_code == 2
    for command in ("rotate", "revoke"):
        unknown = run(database_url, command, "nobody")
        assert unknown.exit_code == 1
        assert "no partner named 'nobody'" in unknown.stderr
    assert run(database_url, "rotate", "kcc", "--keep-old-for", "soon").exit_code == 2
    assert "other" not in run(database_url, "list").stdout


# --- ingest -----------------------------------------------------------------------------


def call(
    subject: str = "KCC-1",
    event_id: str = "e-1",
    source: str = KCC_SOURCE,
    kind: str = "call.queued",
    municipality: str = "heiloo",
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": f"nl.buch.{kind}",
        "time": "2026-11-24T09:00:00+01:00",
        "subject": subject,
        "municipality": municipality,
    }


@pytest.fixture
def ingest_settings(
    kafka_settings: KafkaSettings, tmp_path: Path, sqlite_url: str
) -> IngestSettings:
    return IngestSettings(
        kafka=kafka_settings,
        data_dir=tmp_path / "ingest",
        database_url=sqlite_url,
        partners_refresh_s=0,
        audit_every_s=0.05,
    )


@pytest.fixture
def ingest(ingest_settings: IngestSettings, registry: Registry) -> Iterator[TestClient]:
    """Production ingest; the `kcc` partner is there so that it starts."""
    add_writer(registry, "starter")
    with TestClient(create_ingest(ingest_settings)) as client:
        yield client


def post(client: TestClient, body: object, key: str | bytes | None, batch: bool = True) -> Any:
    headers = {"Content-Type": BATCH if batch else SINGLE}
    return client.post(
        "/v1/events",
        content=json.dumps(body),
        headers=headers | (bearer(key) if key is not None else {}),
    )


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def test_events_in_scope_are_accepted_and_audited_without_their_contents(
    ingest: TestClient, registry: Registry, kafka_settings: KafkaSettings
) -> None:
    key = add_writer(registry)
    batch = [call("KCC-SECRET-1", "e-1"), call("KCC-SECRET-2", "e-2", source="urn:buch:kcc:x")]
    with structlog.testing.capture_logs() as logs:
        response = post(ingest, batch, key)
    assert response.status_code == 202, response.text
    assert len(read_topic(kafka_settings.bootstrap, kafka_settings.events_topic, expect=2)) == 2

    [audit] = eventually(lambda: registry.audits("kcc") or None)  # written in batches
    assert (audit.count, audit.sources) == (2, ("urn:buch:kcc:telephony", "urn:buch:kcc:x"))
    with registry.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM partner_audit")).all()
    assert "KCC-SECRET" not in repr(rows)
    assert "e-1" not in repr([row[1:] for row in rows])  # no event ids either
    [line] = [entry for entry in logs if entry["event"] == "request_audited"]
    assert (line["partner"], line["count"]) == ("kcc", 2)
    assert "KCC-SECRET" not in repr(line)


@pytest.mark.parametrize(
    ("outside", "attribute"),
    [
        ({"source": "urn:buch:mail"}, "source"),
        ({"kind": "email.received"}, "type"),
        ({"municipality": "bergen"}, "municipality"),
    ],
)
def test_an_event_out_of_scope_refuses_the_whole_request(
    ingest: TestClient,
    registry: Registry,
    kafka_settings: KafkaSettings,
    outside: dict[str, str],
    attribute: str,
) -> None:
    key = add_writer(registry)
    refused = problem(
        post(ingest, [call(event_id="in"), call(event_id="out", **outside)], key), 403
    )
    assert (refused["attribute"], refused["pointer"]) == (attribute, f"/1/{attribute}")
    assert attribute in refused["detail"]
    single = problem(post(ingest, call(**outside), key, batch=False), 403)
    assert single["pointer"] == f"/{attribute}"
    assert read_topic(kafka_settings.bootstrap, kafka_settings.events_topic) == []
    # Once a later accepted request's row is written, it is the only one.
    assert post(ingest, [call(event_id="later")], key).status_code == 202
    [audit] = eventually(lambda: registry.audits("kcc") or None)
    assert audit.count == 1


def test_credentials_that_do_not_work_get_401_never_500(
    ingest: TestClient, registry: Registry
) -> None:
    key = add_writer(registry)
    for credentials in (
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        bearer("tökén".encode()),
        bearer("nwk_€".encode()),
        bearer("garbage"),
        bearer(key[:-1] + ("A" if key[-1] != "A" else "B")),  # a wrong secret
        bearer(DEVELOPMENT_TOKEN),  # production: never the development token
    ):
        response = ingest.post(
            "/v1/events",
            content=json.dumps(call()),
            headers={"Content-Type": SINGLE, **credentials},
        )
        refused = problem(response, 401)
        assert response.headers["www-authenticate"].startswith('Bearer realm="normwacht"')
        assert "bearer" in refused["detail"]
    assert post(ingest, [call()], key).status_code == 202


def test_revoked_and_rotated_away_keys_get_401_and_a_grace_keeps_the_old_one(
    ingest: TestClient, registry: Registry
) -> None:
    old = add_writer(registry)
    new = registry.rotate("kcc")
    problem(post(ingest, [call()], old), 401)
    assert post(ingest, [call()], new).status_code == 202

    graced = registry.rotate("kcc", keep_old_for=timedelta(hours=1))
    assert post(ingest, [call(event_id="e-2")], new).status_code == 202  # within its grace
    assert post(ingest, [call(event_id="e-3")], graced).status_code == 202
    # A grace that is over (rotated two hours ago with an hour's grace): the old key is gone.
    past = Registry(registry.engine, clock=lambda: datetime.now(UTC) - timedelta(hours=2))
    newest = past.rotate("kcc", keep_old_for=timedelta(hours=1))
    problem(post(ingest, [call()], graced), 401)
    assert post(ingest, [call(event_id="e-4")], newest).status_code == 202

    registry.revoke("kcc")
    problem(post(ingest, [call()], newest), 401)


def test_a_read_key_may_not_post(ingest: TestClient, registry: Registry) -> None:
    key = registry.add("ops", Role.READ, municipalities=["*"], rate=10, burst=10)
    assert "read" in problem(post(ingest, [call()], key), 403)["detail"]


def test_over_the_rate_limit_gets_429_with_retry_after(
    ingest: TestClient, registry: Registry
) -> None:
    key = add_writer(registry, rate=0.01, burst=2)
    assert post(ingest, [call(event_id="e-1")], key).status_code == 202
    assert post(ingest, [call(event_id="e-2")], key).status_code == 202
    response = post(ingest, [call(event_id="e-3")], key)
    problem(response, 429)
    assert int(response.headers["retry-after"]) >= 1
    other = add_writer(registry, "other")  # limits are per partner
    assert post(ingest, [call(event_id="e-4")], other).status_code == 202


def test_production_ingest_refuses_to_start_without_an_active_write_partner(
    ingest_settings: IngestSettings, registry: Registry
) -> None:
    with (
        pytest.raises(NoWritePartner, match="normwacht partners add"),
        TestClient(create_ingest(ingest_settings)),
    ):
        pass
    registry.add("ops", Role.READ, municipalities=["*"], rate=1, burst=1)
    add_writer(registry, "gone")
    registry.revoke("gone")
    with (
        pytest.raises(NoWritePartner, match="NORMWACHT_INGEST_ENVIRONMENT=development"),
        TestClient(create_ingest(ingest_settings)),
    ):
        pass

    # The command says so plainly, before it touches Kafka.
    env = {
        **os.environ,
        "DATABASE_URL": ingest_settings.database_url,
        "NORMWACHT_INGEST_ENVIRONMENT": "production",
    }
    started = subprocess.run(
        [sys.executable, "-m", "normwacht", "ingest"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode != 0
    assert "normwacht partners add" in started.stderr


def test_development_ingest_starts_without_partners_and_takes_the_development_token(
    ingest_settings: IngestSettings, registry: Registry
) -> None:
    settings = ingest_settings.model_copy(update={"environment": "development"})
    with TestClient(create_ingest(settings)) as client:
        assert post(client, [call(municipality="bergen")], DEVELOPMENT_TOKEN).status_code == 202
        key = add_writer(registry)  # registered partners work there too, within their scope
        assert post(client, [call(event_id="e-2")], key).status_code == 202
        problem(post(client, [call(municipality="bergen")], key), 403)
    assert [a.partner for a in registry.audits()] == ["development", "kcc"]


# --- the API ----------------------------------------------------------------------------

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def breach(subject: str, municipality: str) -> Outcome:
    return Outcome(
        subject=subject,
        norm="phone.answer",
        instance=1,
        kind=Kind.BREACHED,
        channel="phone",
        municipality=municipality,
        started_at=T0,
        deadline=T0 + timedelta(seconds=20),
        decided_at=T0 + timedelta(seconds=20),
    )


@pytest.fixture
def api_database(database_url: str) -> Iterator[Registry]:
    """Two breached cases, one in heiloo and one in bergen, and the partner registry."""
    engine = connect_api(database_url)
    ApiBase.metadata.drop_all(engine)
    ApiBase.metadata.create_all(engine)
    partners.migrate(engine)
    with Session(engine) as session:
        record_outcomes(session, [breach("H-1", "heiloo"), breach("B-1", "bergen")], T0)
        session.commit()
    yield Registry(engine)
    engine.dispose()


def api_client(database_url: str, environment: str = "production") -> TestClient:
    settings = ApiSettings(database_url=database_url, environment=environment, partners_refresh_s=0)
    return TestClient(create_api(settings, consume=False))


def test_a_reader_sees_only_its_municipalities(database_url: str, api_database: Registry) -> None:
    heiloo = bearer(
        api_database.add("ops-heiloo", Role.READ, municipalities=["heiloo"], rate=100, burst=100)
    )
    everyone = bearer(
        api_database.add("ops-all", Role.READ, municipalities=["*"], rate=100, burst=100)
    )
    with api_client(database_url) as api:
        assert api.get("/v1/cases/H-1", headers=heiloo).json()["municipality"] == "heiloo"
        hidden = problem(api.get("/v1/cases/B-1", headers=heiloo), 404)
        absent = problem(api.get("/v1/cases/NOPE", headers=heiloo), 404)
        assert hidden["type"] == absent["type"]  # as if it did not exist
        items = api.get("/v1/breaches", headers=heiloo).json()["items"]
        assert [b["subject"] for b in items] == ["H-1"]
        asked = api.get("/v1/breaches", params={"municipality": "bergen"}, headers=heiloo)
        assert asked.json()["items"] == []
        assert api.get("/v1/norms", headers=heiloo).status_code == 200
        everything = api.get("/v1/breaches", headers=everyone).json()["items"]
        assert {b["subject"] for b in everything} == {"H-1", "B-1"}
        assert api.get("/v1/cases/B-1", headers=everyone).status_code == 200

        report = api.get("/v1/report", params={"year": T0.year}, headers=heiloo).json()["norms"]
        assert {line["municipality"] for line in report} == {"heiloo"}
        assert [line["breached"] for line in report if line["norm"] == "phone.answer"] == [1]
        out_of_scope = api.get("/v1/report", params={"year": T0.year, "municipality": "bergen"},
                               headers=heiloo)  # fmt: skip
        assert problem(out_of_scope, 403)["type"].endswith("municipality-out-of-scope")
        report = api.get("/v1/report", params={"year": T0.year}, headers=everyone).json()["norms"]
        assert sum(line["breached"] for line in report) == 2


def test_the_api_needs_a_read_key_except_for_health(
    database_url: str, api_database: Registry
) -> None:
    writer = bearer(add_writer(api_database))
    reader = api_database.add("ops", Role.READ, municipalities=["*"], rate=100, burst=100)
    with api_client(database_url) as api:
        assert api.get("/healthz").status_code == 200
        for path in ("/v1/cases/H-1", "/v1/breaches", "/v1/norms", "/v1/report?year=2026"):
            for credentials in ({}, bearer("tökén".encode()), bearer(DEVELOPMENT_TOKEN)):
                # Credentials first: a query it does not take changes nothing about that.
                for query in ({}, {"municipalty": "heiloo"}):
                    response = api.get(path, params=query, headers=credentials)
                    problem(response, 401)
                    assert response.headers["www-authenticate"].startswith("Bearer")
            problem(api.get(path, headers=writer), 403)
            assert api.get(path, headers=bearer(reader)).status_code == 200
            unknown = api.get(path, params={"municipalty": "heiloo"}, headers=bearer(reader))
            assert problem(unknown, 422)["type"].endswith("unknown-query-parameter")
        api_database.revoke("ops")
        problem(api.get("/v1/norms", headers=bearer(reader)), 401)


def test_a_reader_over_its_rate_gets_429_with_retry_after(
    database_url: str, api_database: Registry
) -> None:
    slow = bearer(api_database.add("ops", Role.READ, municipalities=["*"], rate=0.01, burst=2))
    other = bearer(api_database.add("ops-2", Role.READ, municipalities=["*"], rate=100, burst=100))
    with api_client(database_url) as api:
        for _ in range(2):
            assert api.get("/v1/report", params={"year": T0.year}, headers=slow).status_code == 200
        over = api.get("/v1/report", params={"year": T0.year}, headers=slow)
        assert problem(over, 429)["type"].endswith("rate-limited")
        assert int(over.headers["retry-after"]) >= 1
        assert api.get("/v1/norms", headers=other).status_code == 200  # per partner


def test_the_development_token_reads_everything_in_development(
    database_url: str, api_database: Registry
) -> None:
    with api_client(database_url, "development") as api:
        items = api.get("/v1/breaches", headers=bearer(DEVELOPMENT_TOKEN)).json()["items"]
        assert {b["subject"] for b in items} == {"H-1", "B-1"}
        assert api.get("/v1/cases/B-1", headers=bearer(DEVELOPMENT_TOKEN)).status_code == 200
        problem(api.get("/v1/breaches"), 401)


def test_an_unknown_query_parameter_is_a_422_not_ignored(
    ingest: TestClient, registry: Registry
) -> None:
    key = add_writer(registry)
    answer = ingest.post(
        "/v1/events?dry_run=true",
        content=json.dumps([call()]),
        headers={"Content-Type": BATCH} | bearer(key),
    )
    assert problem(answer, 422)["type"].endswith("unknown-query-parameter")
    for credentials in ({}, bearer("garbage")):  # credentials are answered first
        refused = ingest.post(
            "/v1/events?dry_run=true",
            content=json.dumps([call()]),
            headers={"Content-Type": BATCH} | credentials,
        )
        problem(refused, 401)
