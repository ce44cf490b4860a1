"""`normwacht kafka`: the topics, made before the services start, and users on a broker
with ACLs (`KAFKA_SECURE=1`).

Services create no topics and the broker none by use: `create-topics` is a deployment
step (`make run` runs it first). On a secured broker run it as the broker's admin:
`NORMWACHT_KAFKA_*` carry the admin's credentials (its password is in
`$KAFKA_DATA/admin.password`). What each kind of user may do is
`services.shared.kafka_access.service_grants`, as docs/ARCHITECTURE.md lists it.
"""

from __future__ import annotations

import secrets
from typing import Annotated

import typer

from services.shared.kafka import KafkaSettings, ensure_topics
from services.shared.kafka_access import add_scram_user, grant, service_grants
from services.sla_processor.app import changelog_topics
from services.sla_processor.settings import ProcessorSettings

kafka_app = typer.Typer(no_args_is_help=True, help="Topics; users and grants on a secured broker.")

KINDS = ("ingest", "processor", "api", "notifier", "partner")


@kafka_app.command("add-user")
def add_user(
    name: Annotated[str, typer.Argument(help="The SCRAM user name, e.g. partner-kcc")],
    kind: Annotated[str, typer.Option("--as", help=f"What it may do: {', '.join(KINDS)}")],
) -> None:
    """Create a SCRAM-SHA-512 user with the grants of its kind; print its password once."""
    if kind not in KINDS:
        raise typer.BadParameter(f"one of {', '.join(KINDS)}", param_hint="--as")
    admin = KafkaSettings()
    grants = service_grants(admin, processor_app_id=ProcessorSettings().app_id)[kind]
    password = secrets.token_urlsafe(24)
    add_scram_user(admin, name, password)
    grant(admin, name, grants)
    typer.echo(password)
    typer.echo(f"user {name!r} may: " + "; ".join(
        f"{'/'.join(op.name for op in g.operations)} {g.resource.name.lower()} {g.name}"
        + ("*" if g.prefixed else "")
        for g in grants
    ) + ". The password is shown this once.", err=True)  # fmt: skip


@kafka_app.command("create-topics")
def create_topics() -> None:
    """Create the public topics and the processor's changelogs (of
    NORMWACHT_PROCESSOR_APP_ID), partitioned as NORMWACHT_KAFKA_PARTITIONS, if missing."""
    settings = KafkaSettings()
    changelogs = changelog_topics(ProcessorSettings().app_id)
    ensure_topics(settings, compacted=changelogs)
    typer.echo(", ".join([*settings.topic_specs(), *changelogs]))
