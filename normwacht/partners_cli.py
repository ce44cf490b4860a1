"""`normwacht partners add|list|rotate|revoke`: the integration partners and their keys."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.shared.partners import (
    PartnerExists,
    Registry,
    Role,
    ScopeError,
    UnknownPartner,
    connect,
)

app = typer.Typer(no_args_is_help=True, help="Integration partners: their scopes and keys.")

DatabaseOption = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="DATABASE_URL",
        help="The services' database (the API's), where the partners are registered.",
    ),
]
DEFAULT_DATABASE = "sqlite:///.run/normwacht.db"
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `1h30m`, `7d`: a positive duration."""
    match = _DURATION.match(text.strip())
    if not text.strip() or not match:
        raise typer.BadParameter(f"{text!r}: a duration such as 90s, 30m, 1h30m or 7d")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if duration <= timedelta(0):
        raise typer.BadParameter(f"{text!r}: the duration must be above zero")
    return duration


def _registry(database_url: str) -> Registry:
    return Registry(connect(database_url))


def fail(message: str) -> typer.Exit:
    """An error on stderr and exit code 1, for `raise fail(...)`."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _show_key(name: str, key: str) -> None:
    """The key alone on stdout (for `KEY=$(normwacht partners add ...)`), the notice on stderr."""
    typer.echo(
        f"Key of partner {name!r}. It is shown this once and stored only as a hash: "
        "keep it in the partner's secret store now.",
        err=True,
    )
    typer.echo(key)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Unique name, e.g. kcc-telephony.")],
    role: Annotated[
        str, typer.Option("--role", help="write: post events to ingest; read: read the API.")
    ],
    municipality: Annotated[
        list[str],
        typer.Option(
            "--municipality",
            help="bergen, uitgeest, castricum, heiloo, or * for all (repeat for more).",
        ),
    ],
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            help="Source URI, a prefix ending in * (urn:buch:kcc:*), or * (write; repeatable).",
        ),
    ] = None,
    type_: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            help="Event type, a prefix ending in * (nl.buch.call.*), or * (write; repeatable).",
        ),
    ] = None,
    rate: Annotated[float, typer.Option("--rate", help="Requests per second.")] = 50.0,
    burst: Annotated[int, typer.Option("--burst", help="Requests at once above the rate.")] = 100,
    database_url: DatabaseOption = DEFAULT_DATABASE,
) -> None:
    """Register a partner and print its key, once."""
    if role not in (Role.WRITE.value, Role.READ.value):
        raise typer.BadParameter(f"{role!r}: write or read", param_hint="--role")
    if role == Role.WRITE.value and not (source and type_):
        raise typer.BadParameter(
            "a write partner needs --source and --type (write * for all, explicitly)"
        )
    registry = _registry(database_url)
    try:
        key = registry.add(
            name,
            Role(role),
            sources=source or (),
            types=type_ or (),
            municipalities=municipality,
            rate=rate,
            burst=burst,
        )
    except ScopeError as error:
        raise typer.BadParameter(str(error)) from None
    except PartnerExists as error:
        raise fail(str(error)) from None
    finally:
        registry.engine.dispose()
    _show_key(name, key)


@app.command("list")
def list_(database_url: DatabaseOption = DEFAULT_DATABASE) -> None:
    """The partners, their scopes and limits (never their keys)."""
    registry = _registry(database_url)
    try:
        partners, keys = registry.partners(), registry.active_keys()
    finally:
        registry.engine.dispose()
    table = Table(
        "name", "role", "sources", "types", "municipalities", "rate/s", "burst", "keys",
        "created", "rotated", "revoked",
    )  # fmt: skip
    for p in partners:
        table.add_row(
            p.name,
            p.role,
            "\n".join(p.sources) or "-",
            "\n".join(p.types) or "-",
            "\n".join(p.municipalities),
            f"{p.rate:g}",
            str(p.burst),
            str(keys.get(p.name, 0)),
            f"{p.created_at:%Y-%m-%d %H:%M}",
            f"{p.rotated_at:%Y-%m-%d %H:%M}" if p.rotated_at else "-",
            f"{p.revoked_at:%Y-%m-%d %H:%M}" if p.revoked_at else "-",
        )
    Console(width=200).print(table)


@app.command("rotate")
def rotate(
    name: str,
    keep_old_for: Annotated[
        str | None,
        typer.Option(
            "--keep-old-for",
            help="Keep the old key working this long (90s, 30m, 1h, 7d); default: not at all.",
        ),
    ] = None,
    database_url: DatabaseOption = DEFAULT_DATABASE,
) -> None:
    """Issue a new key; the old one stops working now (or after --keep-old-for)."""
    grace = parse_duration(keep_old_for) if keep_old_for is not None else None
    registry = _registry(database_url)
    try:
        key = registry.rotate(name, grace)
    except UnknownPartner as error:
        raise fail(str(error)) from None
    finally:
        registry.engine.dispose()
    _show_key(name, key)
    typer.echo(
        f"The old key works until {grace} from now." if grace else "The old key no longer works.",
        err=True,
    )


@app.command("revoke")
def revoke(name: str, database_url: DatabaseOption = DEFAULT_DATABASE) -> None:
    """Revoke a partner: its keys stop working (within the services' refresh interval)."""
    registry = _registry(database_url)
    try:
        registry.revoke(name)
    except UnknownPartner as error:
        raise fail(str(error)) from None
    finally:
        registry.engine.dispose()
    typer.echo(
        f"partner {name!r} revoked; ingest and the API refuse its keys within their refresh "
        "interval (NORMWACHT_*_PARTNERS_REFRESH_S, 5 s by default)"
    )
