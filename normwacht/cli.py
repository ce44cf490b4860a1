"""`normwacht`: run the services, check the norm catalogue, answer "when is this due?"."""

from __future__ import annotations

import functools
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from normwacht.core.events import Municipality
from normwacht.db_cli import db_app, existing_database
from normwacht.kafka_cli import kafka_app
from normwacht.partners_cli import DEFAULT_DATABASE, fail
from normwacht.partners_cli import app as partners_app
from services.sources.cli import source_app

if TYPE_CHECKING:
    from pydantic import TypeAdapter

app = typer.Typer(
    no_args_is_help=True, help="Normwacht: live SLA clocks for the BUCH service norms."
)
schemas_app = typer.Typer(no_args_is_help=True, help="The event and outcome JSON Schemas.")
norms_app = typer.Typer(no_args_is_help=True, help="The norm catalogue.")
app.add_typer(schemas_app, name="schemas")
app.add_typer(norms_app, name="norms")
app.add_typer(partners_app, name="partners")
app.add_typer(source_app, name="source")
app.add_typer(kafka_app, name="kafka")
app.add_typer(db_app, name="db")

SCHEMA_DIR = Path("schemas")
MunicipalitiesOption = Annotated[
    Path | None, typer.Option("--municipalities", help="Municipalities file (default: packaged)")
]


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


@app.command()
def notifier() -> None:
    """Run the notifier: outcomes to Alertmanager (health and metrics on 127.0.0.1:8002)."""
    from services.notifier.main import run

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


@norms_app.command("check")
def norms_check(file: Path, municipalities: MunicipalitiesOption = None) -> None:
    """Validate a catalogue file; explain every mistake with its line."""
    from normwacht.catalogue_file import check

    problems = check(file, municipalities)
    for problem in problems:
        typer.echo(str(problem), err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{file}: valid")


@norms_app.command("list")
def norms_list(
    file: Annotated[Path | None, typer.Argument(help="Catalogue file (default: packaged)")] = None,
    municipalities: MunicipalitiesOption = None,
) -> None:
    """Print the catalogue as a table."""
    from rich.console import Console
    from rich.table import Table

    from normwacht.catalogue_file import CatalogueError, load

    try:
        catalogue = load(file, municipalities)
    except CatalogueError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    table = Table("id", "channel", "starts", "met by", "term", "seed (nl)", show_lines=True)
    for norm in catalogue.norms.values():
        term = norm.term.model_dump(exclude_defaults=True) if norm.term else {}
        table.add_row(
            norm.id,
            norm.channel,
            ", ".join(s.event for s in norm.starts) or "website.probe",
            ", ".join(s.event for s in norm.stops) or "-",
            ", ".join(f"{k}={v}" for k, v in term.items())
            or ("availability" if norm.availability else "none"),
            norm.seed,
        )
    Console(width=200).print(table)


ApiDatabaseOption = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar=["DATABASE_URL", "NORMWACHT_API_DATABASE_URL"],
        help="The API's database, as the API reads it.",
    ),
]


@app.command()
def report(
    year: Annotated[int, typer.Argument(min=1970, max=2100, help="The calendar year")],
    municipality: Annotated[
        Municipality | None, typer.Option(help="One municipality (default: all)")
    ] = None,
    csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout, for a spreadsheet")] = False,
    database_url: ApiDatabaseOption = DEFAULT_DATABASE,
) -> None:
    """How well each norm was kept over a year: the API's `GET /v1/report`, from its database.

    A clock counts in the year (Dutch time) in which it was decided, as it stands now;
    the service level is met / (met + breached), against the norm's objective as the
    catalogue sets it now. `open`: running at the year's end (or now, for the year under way).
    """
    from rich.console import Console
    from rich.table import Table
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.orm import Session

    from normwacht.catalogue_file import load
    from normwacht.core.report import year_bounds
    from services.api.report import as_csv, year_lines

    catalogue = load()
    places = [municipality.value] if municipality else list(catalogue.municipalities)
    # Read, never create: a mistyped path must not pass for a year without clocks.
    url = existing_database(database_url)
    engine = create_engine(url)
    try:
        if not inspect(engine).has_table("clocks"):
            raise fail(f"{url.render_as_string(hide_password=True)} holds no API read model")
        with Session(engine) as session:
            lines = year_lines(session, catalogue, year, places)
    finally:
        engine.dispose()
    if csv:
        sys.stdout.write(as_csv(lines))
        return
    headers = ("municipality", "norm", "unit", "met", "breached", "excluded", "cancelled",
               "open", "service level", "objective", "kept")  # fmt: skip
    counted = datetime.now(UTC)
    so_far = "" if counted >= year_bounds(year)[1] else f" so far ({counted:%Y-%m-%d %H:%M} UTC)"
    table = Table(*headers, title=f"Normwacht {year}{so_far}")
    for line in lines:
        tally = (line.met, line.breached, line.excluded, line.cancelled, line.open)
        kept = {True: "yes", False: "[red]no[/red]", None: "-"}[line.objective_met]
        table.add_row(line.municipality, line.norm, line.unit, *map(str, tally),
                      _percent(line.service_level), _percent(line.objective), kept)  # fmt: skip
    Console(width=140).print(table)


def _percent(share: float | None) -> str:
    """To one decimal, rounded down: 89.96 % next to a 90 % objective it missed reads 89.9 %."""
    return "-" if share is None else f"{math.floor(round(share * 1000, 6)) / 10:.1f}%"


ALERTMANAGER_CONFIG = Path("deploy/alertmanager/alertmanager.yml")


@app.command("alertmanager-intervals")
def alertmanager_intervals(
    check: Annotated[
        bool, typer.Option("--check", help="Only fail (exit 1) when the block is stale.")
    ] = False,
    config: Annotated[
        Path, typer.Option("--config", help="Alertmanager configuration file.")
    ] = ALERTMANAGER_CONFIG,
) -> None:
    """Rewrite the time_intervals block of the Alertmanager configuration from the calendars."""
    from normwacht.catalogue_file import load
    from normwacht.ops.alertmanager import BlockNotFound, rewrite

    text = config.read_text(encoding="utf-8")
    try:
        fresh = rewrite(text, load())
    except BlockNotFound as error:
        typer.echo(f"{config}: {error}", err=True)
        raise typer.Exit(2) from None
    if fresh == text:
        typer.echo(f"{config}: time_intervals are current")
    elif check:
        typer.echo(
            f"{config}: time_intervals are stale; run `normwacht alertmanager-intervals`",
            err=True,
        )
        raise typer.Exit(1)
    else:
        config.write_text(fresh, encoding="utf-8")
        typer.echo(f"{config}: time_intervals rewritten")


@functools.cache
def _start_adapter() -> TypeAdapter[datetime]:
    from pydantic import TypeAdapter

    from normwacht.core.instants import EventInstant

    return TypeAdapter(EventInstant)


def _start_instant(text: str) -> datetime:
    """START as an event's time is read: RFC 3339 with an offset, in the years events may
    carry (a start in the year 9999 has no deadline a datetime can hold)."""
    from pydantic import ValidationError

    try:
        instant: datetime = _start_adapter().validate_python(text)
    except ValidationError as error:
        reason = error.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise ValueError(f"{text!r}: {reason}") from None
    return instant


def _rfc3339(instant: datetime) -> str:
    """`instant` as RFC 3339, to whole seconds when it is the last instant of its day.

    A day-based deadline is the day's last instant, 23:59:59.999999 (the whole day up to
    midnight is in time); people, the README and outside checks read it as 23:59:59.
    Any other instant keeps its fraction. An offset RFC 3339 cannot write (Amsterdam's
    before 1937 was +00:19:32) is given in UTC instead.
    """
    from normwacht.core.calendars import END_OF_DAY

    if instant.timetz().replace(tzinfo=None) == END_OF_DAY:
        instant = instant.replace(microsecond=0)
    offset = instant.utcoffset()
    if offset is not None and offset.seconds % 60:
        instant = instant.astimezone(UTC)
    return instant.isoformat()


@app.command()
def deadlines(
    municipalities: MunicipalitiesOption = None,
    at_risk: Annotated[
        bool,
        typer.Option(
            "--at-risk", help="Also print when each clock is at risk, after a TAB (empty: never)."
        ),
    ] = False,
) -> None:
    """Read `NORM_ID<TAB>START[<TAB>MUNICIPALITY]` lines on stdin; print each deadline.

    START is RFC 3339 with seconds and an offset, in the years 1900 to 2999. Each
    deadline is printed as RFC 3339 with the Europe/Amsterdam offset, one per line, in
    order; a deadline at the end of a day is printed as 23:59:59. With --at-risk each
    line also holds, after a TAB, the moment the clock is at risk (empty for a norm that
    is never at risk). A bad line, or one whose deadline needs the public holidays of a
    year outside 1966-2100 (all the holidays package knows), prints an error on stderr
    (and an empty line on stdout, so lines stay aligned); the exit code is 1 when any
    line was bad.
    """
    from normwacht.catalogue_file import load

    catalogue = load(None, municipalities)
    failed = False
    out = sys.stdout
    for number, line in enumerate(sys.stdin, start=1):
        fields = line.rstrip("\n").split("\t")
        try:
            if len(fields) not in (2, 3):
                raise ValueError("expected NORM_ID<TAB>START[<TAB>MUNICIPALITY]")
            received = _start_instant(fields[1])
            municipality = fields[2] if len(fields) == 3 else None
            if municipality is not None and municipality not in catalogue.municipalities:
                raise ValueError(f"unknown municipality {municipality!r}")
            text = _rfc3339(catalogue.deadline(fields[0], received, municipality))
            if at_risk:
                warned = catalogue.at_risk(fields[0], received, municipality)
                text += "\t" + ("" if warned is None else _rfc3339(warned))
            out.write(text + "\n")
        except KeyError:
            failed = True
            out.write("\n")
            typer.echo(f"line {number}: unknown norm {fields[0]!r}", err=True)
        except ValueError as error:
            failed = True
            out.write("\n")
            typer.echo(f"line {number}: {error}", err=True)
    if failed:
        raise typer.Exit(1)
