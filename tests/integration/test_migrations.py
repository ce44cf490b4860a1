"""The services' schemas are made and changed by migrations (Alembic), on SQLite and PostgreSQL.

A new database gets every revision; a database made before migrations (by `create_all`,
up to 67d70da) is adopted at its baseline and brought up to date with its rows; one a
newer version migrated is refused with a clear message; and the migrations always make
exactly what the models say, so a model changed without its migration fails here.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Engine, Integer, MetaData, create_engine, inspect, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from normwacht import db_cli
from normwacht.cli import app as cli
from services.api import db as api_db
from services.notifier import store as notifier_store
from services.shared import db, partners
from services.shared.db import (
    Schema,
    SchemaFromANewerVersion,
    SchemaNotAdoptable,
    connect,
    revision,
)
from tests.support.schema import described, made_before_migrations

pytestmark = pytest.mark.integration

SCHEMAS = [api_db.SCHEMA, partners.SCHEMA, notifier_store.SCHEMA]
BEFORE_MIGRATIONS = Path(__file__).parents[1] / "data" / "schema-before-migrations.json"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def differences(engine: Engine, schema: Schema) -> list[object]:
    """What Alembic finds between the database and the schema's models (its own tables)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_name": lambda name, kind, _: (
                    kind != "table" or name in schema.metadata.tables
                ),
            },
        )
        return list(compare_metadata(context, schema.metadata))


def connect_every_schema_and_check(database_url: str, engine: Engine) -> None:
    """Every schema connected to (in one database, as services may share one): each at
    its newest revision, with the tables its models describe."""
    for schema in SCHEMAS:
        connect(database_url, schema).dispose()
    with engine.connect() as connection:
        for schema in SCHEMAS:
            assert revision(connection, schema) == schema.head()
    for schema in SCHEMAS:
        assert differences(engine, schema) == [], schema.name


def test_the_migrations_make_what_the_models_say(database_url: str, engine: Engine) -> None:
    connect_every_schema_and_check(database_url, engine)
    assert "ix_clocks_decided" in {index["name"] for index in inspect(engine).get_indexes("clocks")}


def test_the_baselines_are_the_tables_create_all_made(engine: Engine) -> None:
    """The snapshot was taken with the models of 67d70da, the last made by `create_all`
    (tests/support/schema.py describes a database the same way)."""
    snapshot = json.loads(BEFORE_MIGRATIONS.read_text())[engine.dialect.name]
    for schema in SCHEMAS:
        made_before_migrations(engine, schema)
        assert described(engine, set(schema.metadata.tables)) == snapshot[schema.name]


def test_a_database_made_before_migrations_is_adopted_with_its_rows(
    database_url: str, engine: Engine
) -> None:
    for schema in SCHEMAS:
        made_before_migrations(engine, schema)
    decided = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    with engine.connect() as connection:
        connection.execute(
            text(
                "INSERT INTO clocks (subject, norm, instance, status, standing, channel, "
                "municipality, started_at, deadline, decided_at) VALUES ('CASE-1', "
                "'phone.answer', 1, 'met', 'CASE-1/phone.answer/1/met', 'phone', 'heiloo', "
                ":at, :at, :at)"
            ),
            {"at": decided.replace(tzinfo=None) if engine.dialect.name == "sqlite" else decided},
        )
        connection.commit()
    assert "ix_clocks_decided" not in {
        index["name"] for index in inspect(engine).get_indexes("clocks")
    }

    connect_every_schema_and_check(database_url, engine)
    with Session(engine) as session:
        (clock,) = session.scalars(select(api_db.ClockRow))
        assert (clock.subject, clock.status, clock.decided_at) == ("CASE-1", "met", decided)


def test_a_database_a_newer_version_migrated_is_refused(database_url: str, engine: Engine) -> None:
    connect(database_url, api_db.SCHEMA).dispose()
    with engine.connect() as connection:
        connection.execute(text("UPDATE alembic_version_api SET version_num = 'api_9999'"))
        connection.commit()

    with pytest.raises(SchemaFromANewerVersion, match=r"revision 'api_9999'.*does not know"):
        connect(database_url, api_db.SCHEMA)
    for command_ in ("status", "upgrade"):
        said = CliRunner().invoke(
            cli, ["db", command_, "--schema", "api", "--database-url", database_url]
        )
        assert (said.exit_code, said.output.startswith("error: ")) == (1, True), said.output
        assert "newer version migrated them" in said.output
    # What it does not know, it leaves alone.
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version_api")).all() == [
            ("api_9999",)
        ]


def test_a_database_with_only_some_of_a_schemas_tables_is_refused(
    database_url: str, engine: Engine
) -> None:
    """No version made it so: stamping it would leave the missing tables unmade for good."""
    partners.Base.metadata.tables["partners"].create(engine)

    with pytest.raises(SchemaNotAdoptable, match="holds some of the partners tables"):
        connect(database_url, partners.SCHEMA)
    assert set(inspect(engine).get_table_names()) == {"partners"}


def test_the_tables_before_migrations_are_the_snapshots() -> None:
    snapshot = json.loads(BEFORE_MIGRATIONS.read_text())
    for dialect in ("sqlite", "postgresql"):
        for schema in SCHEMAS:
            assert set(snapshot[dialect][schema.name]) == schema.tables_before_migrations


def test_a_service_waits_for_another_migrating_longer_than_sqlites_busy_timeout(
    sqlite_url: str,
) -> None:
    """A migration may hold the write lock for longer than sqlite3's 5 s (an index over
    millions of clocks): a service starting meanwhile waits for it, and then finds the
    work done, rather than failing to start with "database is locked"."""
    engine = create_engine(sqlite_url)
    made_before_migrations(engine, api_db.SCHEMA)
    other = sqlite3.connect(
        sqlite_url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False
    )
    other.execute("PRAGMA journal_mode=WAL")  # as the services left it
    other.execute("BEGIN IMMEDIATE")  # as another service's migration holds it
    release = threading.Timer(7.0, lambda: other.execute("COMMIT"))
    release.start()
    try:
        connect(sqlite_url, api_db.SCHEMA).dispose()
    finally:
        release.join()
        other.close()
    with engine.connect() as connection:
        assert revision(connection, api_db.SCHEMA) == api_db.SCHEMA.head()
    engine.dispose()


def test_each_schema_goes_to_its_own_services_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --database-url: the API's and ingest's for api and partners, the notifier's
    for notifier, as each service reads its variable."""
    monkeypatch.chdir(tmp_path)
    api_file, notifier_file = tmp_path / "api.db", tmp_path / "notifier.db"
    environment = {
        "DATABASE_URL": f"sqlite:///{api_file}",
        "NORMWACHT_NOTIFIER_DATABASE_URL": f"sqlite:///{notifier_file}",
    }
    upgraded = CliRunner().invoke(
        cli, ["db", "upgrade", "--schema", "api", "--schema", "notifier"], env=environment
    )
    assert upgraded.exit_code == 0, upgraded.output

    def tables(file: Path) -> set[str]:
        engine = create_engine(f"sqlite:///{file}")
        try:
            return {name for name in inspect(engine).get_table_names() if "version" not in name}
        finally:
            engine.dispose()

    assert tables(api_file) == set(api_db.Base.metadata.tables)
    assert tables(notifier_file) == set(notifier_store.Base.metadata.tables)
    status = CliRunner().invoke(cli, ["db", "status", "--schema", "notifier"], env=environment)
    assert status.exit_code == 0, status.output
    assert not (tmp_path / ".run").exists()  # neither service's default was touched


def test_the_db_commands_say_where_a_database_stands_and_upgrade_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'normwacht.db'}"
    runner = CliRunner()

    missing = runner.invoke(cli, ["db", "status", "--database-url", url])
    assert (missing.exit_code, "no database at" in missing.output) == (1, True)
    assert not (tmp_path / "normwacht.db").exists()  # status reads, never creates

    engine = create_engine(url)
    made_before_migrations(engine, api_db.SCHEMA)
    behind = runner.invoke(cli, ["db", "status", "--database-url", url])
    assert behind.exit_code == 1
    assert behind.output.splitlines() == [
        f"api\t-\t{api_db.SCHEMA.head()}\tbehind: normwacht db upgrade",
        f"partners\t-\t{partners.SCHEMA.head()}\tbehind: normwacht db upgrade",
    ]

    upgraded = runner.invoke(cli, ["db", "upgrade", "--database-url", url])
    assert upgraded.exit_code == 0, upgraded.output
    current = runner.invoke(cli, ["db", "status", "--database-url", url])
    assert current.exit_code == 0, current.output
    assert [line.split("\t")[3] for line in current.output.splitlines()] == ["up to date"] * 2
    assert differences(engine, api_db.SCHEMA) == []
    # The notifier keeps its own database: not made here unless asked for.
    assert "notifier_alerts" not in inspect(engine).get_table_names()
    notifier = runner.invoke(cli, ["db", "status", "--schema", "notifier", "--database-url", url])
    assert notifier.exit_code == 1
    engine.dispose()


def test_a_model_change_gets_its_migration_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`normwacht db revision` writes what the models add; run on a copy of the migrations."""
    migrations = tmp_path / "migrations"
    shutil.copytree(db.MIGRATIONS, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(db, "MIGRATIONS", migrations)
    changed = MetaData()
    for table in api_db.Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["clocks"].append_column(Column("paused_seconds", Integer, nullable=True))
    schema = replace(api_db.SCHEMA, metadata=changed)
    monkeypatch.setattr(db_cli, "API", schema)

    written = CliRunner().invoke(cli, ["db", "revision", "api", "clocks keep their pauses"])

    assert written.exit_code == 0, written.output
    path = Path(written.output.splitlines()[-1])  # after Alembic's own lines
    assert path.parent == migrations / "versions" / "api"
    assert path.name == "api_0004_clocks_keep_their_pauses.py"
    assert "add_column" in path.read_text()
    assert schema.head() == "api_0004"
    url = f"sqlite:///{tmp_path / 'new.db'}"
    connect(url, schema).dispose()
    engine = create_engine(url)
    assert "paused_seconds" in {column["name"] for column in inspect(engine).get_columns("clocks")}
    assert differences(engine, schema) == []
    engine.dispose()
    again = CliRunner().invoke(cli, ["db", "revision", "api", "nothing new"])
    assert again.exit_code == 1
    assert "nothing to write" in again.output
