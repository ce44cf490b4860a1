"""What the services' databases share (SQLAlchemy 2): aware UTC datetimes, the engine, and
the migrations that make and change each service's tables (Alembic)."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    MetaData,
    TypeDecorator,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import OperationalError


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (naive) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class Schema:
    """A service's tables and the migrations that make and change them.

    Each schema has its own chain of revisions (migrations/versions/<name>) and its own
    version table, so services can share a database or keep their own, and each brings
    its tables up to date without knowing the others'.
    """

    name: str
    metadata: MetaData
    baseline: str
    """The revision that makes the tables as they were before migrations: a database
    made then (by `create_all`) has them without a version table, and is adopted."""
    tables_before_migrations: frozenset[str]
    """The tables `baseline` makes: a database must hold all of them to be adopted."""

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.name}"

    def config(self, connection: Connection | None = None) -> Config:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("version_locations", str(MIGRATIONS / "versions" / self.name))
        config.set_main_option("path_separator", "os")
        config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
        config.set_main_option("truncate_slug_length", "40")
        config.attributes.update(schema=self, connection=connection)
        return config

    def head(self) -> str | None:
        return _scripts(self).get_current_head()


class SchemaFromANewerVersion(RuntimeError):
    """The database was migrated by a newer Normwacht than this one."""


class SchemaNotAdoptable(RuntimeError):
    """The database holds some of a schema's tables, but not as any version made them."""


def connect(url: str, schema: Schema) -> Engine:
    """An engine with `schema`'s tables made or brought up to date. SQLite gets WAL so
    readers never block the writer."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            _switch_to_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    try:
        migrate(engine, schema)
    except BaseException:
        engine.dispose()  # its pooled connections closed, not left to the collector
        raise
    return engine


#: How long a connection waits to switch a new SQLite database to WAL (sqlite3's own
#: busy timeout: 5 s).
WAL_SWITCH_WAIT_S = 5.0


def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    """WAL, waiting while another connection holds a lock. Only a new database switches
    (the mode is kept in the file); the switch needs the database to itself and, unlike
    a write, gives up at once instead of waiting the busy timeout (seen: two services
    starting on one new database, `make run`)."""
    deadline = time.monotonic() + WAL_SWITCH_WAIT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


#: The PostgreSQL advisory lock (any number the project owns) under which schemas change.
SCHEMA_LOCK = 0x4E6F726D  # "Norm"


def migrate(engine: Engine, schema: Schema) -> None:
    """Bring `schema`'s tables to the newest revision, one process at a time.

    Services that share a database start together (`make run` starts ingest and the api
    at once), and two making the same table at once fail ("table partners already
    exists"). Under the lock, the second finds the first's work done and does nothing.
    The lock is taken only when there is work: a restart need not wait for a writer.
    """
    scripts = _scripts(schema)  # read once: each read loads every revision file
    with engine.connect() as connection:
        if revision(connection, schema, scripts) == scripts.get_current_head():
            return
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        elif engine.dialect.name == "sqlite":
            _write_lock(connection)
        config = schema.config(connection)
        if revision(connection, schema, scripts) is None and (
            found := set(schema.metadata.tables) & set(inspect(connection).get_table_names())
        ):
            if missing := schema.tables_before_migrations - found:
                raise SchemaNotAdoptable(
                    f"the database holds some of the {schema.name} tables "
                    f"({', '.join(sorted(found))}) but not {', '.join(sorted(missing))}, and "
                    "no record of a migration: no version of Normwacht made it so. Restore it "
                    "from a backup, or drop those tables to have them made anew."
                )
            command.stamp(config, schema.baseline)  # made by create_all, before migrations
        command.upgrade(config, "head")
        connection.commit()


#: How long a service waits for another's migration of a SQLite database (PostgreSQL's
#: advisory lock waits without a limit).
MIGRATION_WAIT_S = 600.0


def _write_lock(connection: Connection) -> None:
    """SQLite's write lock, taken now rather than at the first write, so that what is
    read next is what another process made (sqlite3 leaves an explicit BEGIN alone).
    A busy database gives up after its busy timeout (5 s): a migration may take longer
    (an index over millions of rows), so keep asking."""
    deadline = time.monotonic() + MIGRATION_WAIT_S
    while True:
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise


def revision(
    connection: Connection, schema: Schema, scripts: ScriptDirectory | None = None
) -> str | None:
    """The schema's revision in this database (None: not made by a migration)."""
    found = MigrationContext.configure(
        connection, opts={"version_table": schema.version_table}
    ).get_current_revision()
    scripts = scripts or _scripts(schema)
    if found is not None and found not in {script.revision for script in scripts.walk_revisions()}:
        raise SchemaFromANewerVersion(
            f"the database's {schema.name} tables are at revision {found!r}, which this "
            f"version of Normwacht does not know (it knows up to {scripts.get_current_head()!r}): "
            "a newer version migrated them. Run that version, or restore a backup made "
            "before the upgrade."
        )
    return found


def _scripts(schema: Schema) -> ScriptDirectory:
    """The schema's migrations, read afresh (not cached: `normwacht db revision` adds one)."""
    return ScriptDirectory.from_config(schema.config())
