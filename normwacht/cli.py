"""`normwacht`: run the services and work with the schemas."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    no_args_is_help=True, help="Normwacht: live SLA clocks for the BUCH service norms."
)
schemas_app = typer.Typer(no_args_is_help=True, help="The event and outcome JSON Schemas.")
app.add_typer(schemas_app, name="schemas")

SCHEMA_DIR = Path("schemas")


@app.command()
def ingest() -> None:
    """Run the ingest HTTP service (127.0.0.1:8000)."""
    from services.ingest.main import run

    run()


@app.command()
def processor() -> None:
    """Run one SLA processor worker (metrics on 127.0.0.1:6066)."""
    from services.sla_processor.main import run

    run()


@app.command()
def api() -> None:
    """Run the API HTTP service (127.0.0.1:8001)."""
    from services.api.main import run

    run()


@schemas_app.command("export")
def schemas_export(directory: Path = SCHEMA_DIR) -> None:
    """Write the JSON Schemas from the models."""
    from normwacht.schemas import export

    for path in export(directory):
        typer.echo(path)


@schemas_app.command("check")
def schemas_check(directory: Path = SCHEMA_DIR) -> None:
    """Fail when the exported JSON Schemas differ from the models."""
    from normwacht.schemas import stale

    if names := stale(directory):
        typer.echo(f"stale: {', '.join(names)}; run `normwacht schemas export`", err=True)
        raise typer.Exit(1)
    typer.echo("schemas are current")
