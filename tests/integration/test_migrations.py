"""The services' schemas are made and changed by migrations (Alembic), on SQLite and PostgreSQL.

A new database gets every revision; a database made before migrations (by `create_all`,
up to 67d70da) is adopted at its baseline and brought up to date with its rows; one a
newer version migrated is refused with a clear message; and the migrations always make
exactly what the models say, so a model changed without its migration fails here.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
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
from services.shared.db import Schema, SchemaFromANewerVersion, connect, revision
from tests.support.schema import described

pytestmark = pytest.mark.integration

SCHEMAS = [api_db.SCHEMA, partners.SCHEMA, notifier_store.SCHEMA]
BEFORE_MIGRATIONS = Path(__file__).parents[1] / "data" / "schema-before-migrations.json"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    if request.param == "sqlite":
        return sqlite_url
    url: str = request.getfixturevalue("empty_postgres_url")
    return url


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


def made_before_migrations(engine: Engine, schema: Schema) -> None:
    """The schema's tables as `create_all` made them before migrations: its baseline
    revision without the version table (checked against the snapshot below)."""
    with engine.connect() as connection:
        command.upgrade(schema.config(connection), schema.baseline)
        connection.execute(text(f"DROP TABLE {schema.version_table}"))
        connection.commit()


def test_the_migrations_make_what_the_models_say(database_url: str, engine: Engine) -> None:
    for schema in SCHEMAS:  # in one database, as services may share one
        connect(database_url, schema).dispose()
    with engine.connect() as connection:
        for schema in SCHEMAS:
            assert revision(connection, schema) == schema.head()
    for schema in SCHEMAS:
        assert differences(engine, schema) == [], schema.name
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

    for schema in SCHEMAS:
        connect(database_url, schema).dispose()

    with engine.connect() as connection:
        for schema in SCHEMAS:
            assert revision(connection, schema) == schema.head()
    for schema in SCHEMAS:
        assert differences(engine, schema) == [], schema.name
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
    status = CliRunner().invoke(cli, ["db", "status", "--database-url", database_url])
    assert status.exit_code == 1
    assert "newer version migrated them" in status.output
    # What it does not know, it leaves alone.
    with engine.connect() as connection:
        assert revision(connection, partners.SCHEMA) is None
        assert connection.execute(text("SELECT version_num FROM alembic_version_api")).all() == [
            ("api_9999",)
        ]


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
    schema = Schema("api", changed, baseline=api_db.SCHEMA.baseline)
    monkeypatch.setattr(db_cli, "API", schema)

    written = CliRunner().invoke(cli, ["db", "revision", "api", "clocks keep their pauses"])

    assert written.exit_code == 0, written.output
    path = Path(written.output.splitlines()[-1])  # after Alembic's own lines
    assert path.parent == migrations / "versions" / "api"
    assert path.name == "api_0003_clocks_keep_their_pauses.py"
    assert "add_column" in path.read_text()
    assert schema.head() == "api_0003"
    url = f"sqlite:///{tmp_path / 'new.db'}"
    connect(url, schema).dispose()
    engine = create_engine(url)
    assert "paused_seconds" in {column["name"] for column in inspect(engine).get_columns("clocks")}
    assert differences(engine, schema) == []
    engine.dispose()
    again = CliRunner().invoke(cli, ["db", "revision", "api", "nothing new"])
    assert again.exit_code == 1
    assert "nothing to write" in again.output
