"""A database's schema as plain data, to compare two databases or one with a snapshot."""

from __future__ import annotations

from typing import Any

from alembic import command
from sqlalchemy import Engine, inspect, text

from services.shared.db import Schema


def described(engine: Engine, tables: set[str]) -> dict[str, Any]:
    """`tables` as the database has them: columns (type, NOT NULL), key, indexes."""
    found = inspect(engine)
    return {
        table: {
            "columns": {
                column["name"]: column["type"].compile(dialect=engine.dialect)
                + ("" if column["nullable"] else " NOT NULL")
                for column in found.get_columns(table)
            },
            "primary_key": found.get_pk_constraint(table)["constrained_columns"],
            "indexes": {
                index["name"]: [list(index["column_names"]), bool(index["unique"])]
                for index in found.get_indexes(table)
            },
        }
        for table in sorted(tables & set(found.get_table_names()))
    }


def made_before_migrations(engine: Engine, schema: Schema) -> None:
    """The schema's tables as `create_all` made them before migrations: its baseline
    revision without the version table (tests/integration/test_migrations.py checks it
    against the snapshot)."""
    with engine.connect() as connection:
        command.upgrade(schema.config(connection), schema.baseline)
        connection.execute(text(f"DROP TABLE {schema.version_table}"))
        connection.commit()
