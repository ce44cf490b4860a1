"""Services that share one database and start at the same moment, as `make run` starts
ingest and the api: each makes (or migrates) the tables it needs, and none fails because
another was doing so too (seen: "table partners already exists", ingest down)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, inspect

from services.api import db as api_db
from services.shared import partners
from services.shared.db import revision
from tests.support.postgres import emptied
from tests.support.schema import made_before_migrations
from tests.support.threads import at_once

pytestmark = pytest.mark.integration

STARTS = 4  # services at once
ROUNDS = 5  # new databases, each started on by all of them

Connect = Callable[[str], Engine]


def api_start(url: str) -> Engine:
    """What the api's start-up does to its database (app.py's lifespan): its own tables,
    then the partner tables it reads keys from."""
    engine = api_db.connect(url)
    partners.migrate(engine)
    return engine


# Ingest makes the partner tables (services/ingest/main.py, then app.py's lifespan).
SERVICES: list[Connect] = [partners.connect, api_start] * (STARTS // 2)


def start_together(url: str, services: list[Connect]) -> list[Exception]:
    """Every service connects at once, in a thread of its own (a connection each)."""

    def start(connect: Connect) -> Callable[[], None]:
        return lambda: connect(url).dispose()

    return at_once([start(connect) for connect in services])


def expected_tables() -> set[str]:
    return set(partners.Base.metadata.tables) | set(api_db.Base.metadata.tables)


def tables_in(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_services_starting_together_on_a_new_sqlite_database(tmp_path: Path) -> None:
    for round_ in range(ROUNDS):
        url = f"sqlite:///{tmp_path / f'new-{round_}.db'}"
        assert start_together(url, SERVICES) == []
        assert tables_in(url) >= expected_tables()


def test_services_starting_together_on_a_new_postgresql_database(postgres_url: str) -> None:
    for _ in range(ROUNDS):
        # One server serves the session: a new database is one without any tables.
        assert start_together(emptied(postgres_url), SERVICES) == []
        assert tables_in(postgres_url) >= expected_tables()


def revisions(url: str) -> list[str | None]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [revision(connection, schema) for schema in (api_db.SCHEMA, partners.SCHEMA)]
    finally:
        engine.dispose()


def test_services_starting_together_on_databases_made_before_migrations(
    tmp_path: Path, postgres_url: str
) -> None:
    """Each adopts and upgrades under the lock; the others find it done."""
    urls = [f"sqlite:///{tmp_path / f'old-{round_}.db'}" for round_ in range(ROUNDS)]
    for url in [*urls, *[postgres_url] * ROUNDS]:
        engine = create_engine(emptied(url) if url == postgres_url else url)
        for schema in (api_db.SCHEMA, partners.SCHEMA):
            made_before_migrations(engine, schema)
        engine.dispose()
        assert start_together(url, SERVICES) == []
        assert revisions(url) == [api_db.SCHEMA.head(), partners.SCHEMA.head()]
