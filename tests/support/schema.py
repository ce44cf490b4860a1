"""A database's schema as plain data, to compare two databases or one with a snapshot."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, inspect


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
