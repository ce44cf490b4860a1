"""`normwacht source ...`: run an adapter that reads a source system and posts to ingest.

Heavy imports stay inside the commands, so that `normwacht --help` stays quick.
"""

from __future__ import annotations

import signal
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from normwacht.core.events import Municipality

if TYPE_CHECKING:
    from services.sources.poster import IngestPoster
    from services.sources.settings import SourceSettings

source_app = typer.Typer(
    no_args_is_help=True,
    help="Adapters for the source systems: telephony, e-mail, public-space reports.",
)

StateOption = Annotated[
    Path | None,
    typer.Option("--state", help="State file (default: in NORMWACHT_SOURCE_STATE_DIR)"),
]
OnceOption = Annotated[
    bool, typer.Option("--once", help="Post what is there now and exit instead of following")
]


def _settings() -> SourceSettings:
    from pydantic import ValidationError  # noqa: PLC0415

    from services.shared.logging import configure_logging  # noqa: PLC0415
    from services.sources.settings import SourceSettings  # noqa: PLC0415

    configure_logging()
    try:
        return SourceSettings()
    except ValidationError as error:
        for problem in error.errors(include_url=False, include_input=False):
            field = ".".join(str(p) for p in problem["loc"])
            typer.echo(f"NORMWACHT_SOURCE_{field.upper()}: {problem['msg']}", err=True)
        raise typer.Exit(2) from None


def _poster(settings: SourceSettings, give_up_after_s: float | None = None) -> IngestPoster:
    from services.sources.poster import IngestPoster  # noqa: PLC0415

    return IngestPoster(
        settings.ingest_url,
        settings.token.get_secret_value(),
        batch_size=settings.batch_size,
        timeout_s=settings.request_timeout_s,
        max_backoff_s=settings.max_backoff_s,
        give_up_after_s=give_up_after_s,
    )


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _refused(error: Exception) -> typer.Exit:
    typer.echo(f"stopped: {error}; check NORMWACHT_SOURCE_TOKEN and the partner's scopes", err=True)
    return typer.Exit(3)


@source_app.command("asterisk-queue-log")
def asterisk_queue_log(file: Path, state: StateOption = None, once: OnceOption = False) -> None:
    """Follow an Asterisk queue_log (like tail -F) and post its call.* events."""
    from normwacht.sources.asterisk import QueueLogMapping  # noqa: PLC0415
    from services.sources.asterisk import QueueLogFollower  # noqa: PLC0415
    from services.sources.poster import IngestRefused  # noqa: PLC0415

    settings = _settings()
    if not settings.asterisk_queues:
        typer.echo("NORMWACHT_SOURCE_ASTERISK_QUEUES maps no queue to a municipality", err=True)
        raise typer.Exit(2)
    mapping = QueueLogMapping(
        settings.pseudonyms(settings.asterisk_source),
        settings.asterisk_queues,
        settings.asterisk_queue_codes,
    )
    poster = _poster(settings)
    follower = QueueLogFollower(
        file,
        state or settings.state_dir / "asterisk-queue-log.json",
        mapping,
        poster,
        max_lines=settings.batch_size,
        # Posting once, there is no later poll to wait for: what is there is read now.
        rotation_grace_s=0 if once else settings.asterisk_rotation_grace_s,
    )
    try:
        if once:
            follower.poll()
        else:
            follower.run(_stop_on_signals(), settings.asterisk_poll_s)
    except IngestRefused as error:
        raise _refused(error) from None
    finally:
        follower.close()
        poster.close()


@source_app.command("smtp")
def smtp(
    host: Annotated[str | None, typer.Option(help="Default: NORMWACHT_SOURCE_SMTP_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: NORMWACHT_SOURCE_SMTP_PORT")] = None,
) -> None:
    """Receive copies of the mailboxes' traffic over SMTP and post email.* events."""
    from normwacht.sources.mail import MailMapping  # noqa: PLC0415
    from services.sources.smtp import MailboxCopyHandler, ThreadMap, smtp_controller  # noqa: PLC0415

    settings = _settings()
    if not settings.email_mailboxes:
        typer.echo("NORMWACHT_SOURCE_EMAIL_MAILBOXES maps no mailbox to a municipality", err=True)
        raise typer.Exit(2)
    mapping = MailMapping(settings.pseudonyms(settings.email_source), settings.email_mailboxes)
    poster = _poster(settings, give_up_after_s=settings.smtp_post_timeout_s)
    threads = ThreadMap(settings.state_dir / "email-threads.sqlite")
    handler = MailboxCopyHandler(mapping, poster, threads)
    controller = smtp_controller(
        handler, host or settings.smtp_host, port if port is not None else settings.smtp_port
    )
    stop = _stop_on_signals()
    controller.start()
    try:
        while not stop.wait(0.5):
            if handler.refused is not None:
                raise _refused(handler.refused)
    finally:
        controller.stop()
        threads.close()
        poster.close()


@source_app.command("open311")
def open311(
    url: str,
    state: StateOption = None,
    municipality: Annotated[
        Municipality | None,
        typer.Option(help="Default: from NORMWACHT_SOURCE_OPEN311_ENDPOINTS"),
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option(help="Without a state file: ask for requests updated after this"),
    ] = None,
    once: OnceOption = False,
) -> None:
    """Poll an Open311 GeoReport v2 endpoint and post report.* events."""
    from normwacht.sources.open311 import ReportMapping  # noqa: PLC0415
    from services.sources.open311 import Open311Poller, default_state_path  # noqa: PLC0415
    from services.sources.poster import IngestRefused  # noqa: PLC0415

    settings = _settings()
    url = url.rstrip("/")
    where = municipality or settings.open311_endpoints.get(url)
    if where is None:
        typer.echo(
            f"{url}: no municipality; "
            "pass --municipality or set NORMWACHT_SOURCE_OPEN311_ENDPOINTS",
            err=True,
        )
        raise typer.Exit(2)
    if since is not None and since.tzinfo is None:
        typer.echo("--since needs an offset, e.g. 2026-11-24T09:00:00+01:00", err=True)
        raise typer.Exit(2)
    mapping = ReportMapping(
        settings.pseudonyms(settings.open311_source), where, settings.open311_urgent
    )
    poster = _poster(settings)
    poller = Open311Poller(
        url,
        state or default_state_path(settings.state_dir, url),
        mapping,
        poster,
        jurisdiction_id=settings.open311_jurisdiction_id,
        since=since,
        timeout_s=settings.request_timeout_s,
    )
    try:
        if once:
            poller.poll()
        else:
            poller.run(_stop_on_signals(), settings.open311_poll_s)
    except IngestRefused as error:
        raise _refused(error) from None
    finally:
        poller.close()
        poster.close()
