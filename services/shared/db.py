"""What the services' databases share (SQLAlchemy 2): aware UTC datetimes and the engine."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
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


def connect(url: str, metadata: MetaData) -> Engine:
    """An engine with `metadata`'s tables in place. SQLite gets WAL so readers never block
    the writer."""
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

    create_tables(engine, metadata)
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


#: The PostgreSQL advisory lock (any number the project owns) under which tables are made.
SCHEMA_LOCK = 0x4E6F726D  # "Norm"


def create_tables(engine: Engine, metadata: MetaData) -> None:
    """`metadata`'s tables that are missing, made by one process at a time.

    Services that share a database start together (`make run` starts ingest and the api
    at once), and two making the same table at once fail ("table partners already
    exists"). Under the lock, the second finds the first's tables and makes nothing.
    The lock is taken only when a table is missing: a restart need not wait for a writer.
    """
    with engine.connect() as connection:
        if set(metadata.tables) <= set(inspect(connection).get_table_names()):
            return
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        elif engine.dialect.name == "sqlite":
            # The database's write lock, taken now rather than at the first write: the
            # checks for existing tables then see what the other made (sqlite3 leaves an
            # explicit BEGIN alone; a busy connection waits its timeout, 5 s).
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        metadata.create_all(connection)
        connection.commit()
