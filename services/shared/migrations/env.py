"""Alembic's environment for every service's schema (services/shared/db.py runs it).

No alembic.ini: `db.migrate` hands over the connection, already in a transaction and
holding the schema lock, and the `Schema` whose version table and tables are meant.
`normwacht db revision` writes a new migration through the same environment.
"""

from __future__ import annotations

from typing import Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext

from services.shared.db import Schema, UTCDateTime

schema: Schema = context.config.attributes["schema"]


def _ours(name: str | None, kind: str, parent: object) -> bool:
    """Compare only this schema's tables: services may share a database."""
    return kind != "table" or name in schema.metadata.tables


def _render(kind: str, value: object, _: AutogenContext) -> str | Literal[False]:
    """A migration states the column as the database holds it: UTCDateTime only converts
    values, and a migration must not change when that code does."""
    if kind == "type" and isinstance(value, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=schema.metadata,
    version_table=schema.version_table,
    include_name=_ours,
    render_as_batch=True,  # SQLite alters a table by copying it; batch mode does that
    compare_type=True,
    render_item=_render,
)
with context.begin_transaction():  # within the caller's transaction: no new one
    context.run_migrations()
