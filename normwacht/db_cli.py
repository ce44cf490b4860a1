"""`normwacht db status|upgrade|revision`: the services' database schemas and their migrations.

The services bring their own tables up to date when they start (services/shared/db.py);
`upgrade` does the same beforehand, for an operator who migrates before a roll-out, and
`status` says where a database stands. `revision` is for developers: it writes the
migration that takes the tables from the newest revision to what the models now say.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from alembic import command
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url

from normwacht.partners_cli import fail
from services.api.db import SCHEMA as API
from services.api.settings import ApiSettings
from services.notifier.settings import NotifierSettings
from services.notifier.store import SCHEMA as NOTIFIER
from services.shared.db import (
    Schema,
    SchemaFromANewerVersion,
    SchemaNotAdoptable,
    connect,
    revision,
)
from services.shared.partners import SCHEMA as PARTNERS

db_app = typer.Typer(no_args_is_help=True, help="The services' database schemas (migrations).")

SCHEMAS = ("api", "partners", "notifier")
SchemaOption = Annotated[
    list[str] | None,
    typer.Option(
        "--schema",
        help=f"One of {', '.join(SCHEMAS)}; repeat for several (default: api and partners, "
        "the API's and ingest's database; the notifier's: --schema notifier)",
    ),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="The database (default: each schema's service's, as that service reads it: "
        "DATABASE_URL for api and partners, NORMWACHT_NOTIFIER_DATABASE_URL for notifier).",
        show_default=False,
    ),
]


def schemas(names: list[str] | None, hint: str = "--schema") -> list[Schema]:
    known = {schema.name: schema for schema in (API, PARTNERS, NOTIFIER)}
    for name in names or []:
        if name not in known:
            raise typer.BadParameter(f"{name!r}: one of {', '.join(SCHEMAS)}", param_hint=hint)
    return [known[name] for name in names or ["api", "partners"]]


def database_of(schema: Schema, given: str | None) -> str:
    """The database `given`, else the one the schema's service uses."""
    if given:
        return given
    if schema is NOTIFIER:
        return NotifierSettings().database_url
    return ApiSettings().database_url  # ingest reads the same variables


def existing_database(database_url: str) -> URL:
    """The URL of a database that exists: to read, never to create (a mistyped SQLite
    path would otherwise pass for an empty database)."""
    url = make_url(database_url)
    file = url.database if url.get_backend_name() == "sqlite" else None
    if file and file != ":memory:" and not Path(file).exists():
        raise fail(f"no database at {file}")
    return url


@db_app.command()
def status(schema: SchemaOption = None, database_url: DatabaseOption = None) -> None:
    """Each schema's revision in the database against the newest this version knows.
    Exit code 1 if one is behind (`normwacht db upgrade`) or ahead (a newer version's)."""
    behind = False
    for each in schemas(schema):
        engine = create_engine(existing_database(database_of(each, database_url)))
        try:
            with engine.connect() as connection:
                current = revision(connection, each)
        except SchemaFromANewerVersion as error:
            raise fail(str(error)) from None
        finally:
            engine.dispose()
        head = each.head()
        state = "up to date" if current == head else "behind: normwacht db upgrade"
        behind |= current != head
        typer.echo(f"{each.name}\t{current or '-'}\t{head}\t{state}")
    if behind:
        raise typer.Exit(1)


@db_app.command()
def upgrade(schema: SchemaOption = None, database_url: DatabaseOption = None) -> None:
    """Make or bring up to date the schemas' tables, as the services do when they start."""
    for each in schemas(schema):
        try:
            connect(database_of(each, database_url), each).dispose()
        except (SchemaFromANewerVersion, SchemaNotAdoptable) as error:
            raise fail(str(error)) from None
        typer.echo(f"{each.name}\t{each.head()}")


@db_app.command("revision")
def revision_(
    schema: Annotated[str, typer.Argument(help=f"One of {', '.join(SCHEMAS)}")],
    message: Annotated[str, typer.Argument(help="What the migration does, in a few words")],
) -> None:
    """Write the migration from the newest revision to what the models now say (developers).

    Alembic compares the models with an empty SQLite database migrated to the newest
    revision; read what it wrote, as it misses some changes (a renamed column reads as
    one dropped and one added). tests/integration/test_migrations.py fails until the
    migrations make what the models say.
    """
    (chosen,) = schemas([schema], hint="SCHEMA")
    head = chosen.head()
    number = int(head.rsplit("_", 1)[1]) + 1 if head else 1
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'head.db'}")
        try:
            with engine.connect() as connection:
                config = chosen.config(connection)
                command.upgrade(config, "head")
                connection.commit()
                hooks = {"ruff_fix": "check --fix", "ruff_format": "format"}
                config.set_section_option("post_write_hooks", "hooks", ", ".join(hooks))
                for hook, arguments in hooks.items():
                    config.set_section_option("post_write_hooks", f"{hook}.type", "module")
                    config.set_section_option("post_write_hooks", f"{hook}.module", "ruff")
                    options = f"{arguments} REVISION_SCRIPT_FILENAME"
                    config.set_section_option("post_write_hooks", f"{hook}.options", options)
                written = command.revision(
                    config, message=message, autogenerate=True, rev_id=f"{schema}_{number:04d}",
                    process_revision_directives=_skip_if_empty,
                )  # fmt: skip
        finally:
            engine.dispose()
    if written is None or isinstance(written, list):
        raise fail(f"nothing to write: the {schema} migrations make what the models say")
    typer.echo(written.path)


def _skip_if_empty(context: object, revision: object, directives: list[Any]) -> None:
    if directives[0].upgrade_ops.is_empty():
        directives.clear()
