"""An SMTP receiver for copies of the general mailbox's traffic (journaling, a BCC rule).

Each copy is parsed, mapped and posted to ingest before the receiver answers `250`; if
ingest does not accept the event in time it answers `451`, so the sending server
delivers the copy again later (the event id is the same, so nothing is counted twice).
Messages are never stored: only the thread map, keyed hashes of Message-IDs to thread
case ids, is kept in SQLite under the state directory.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path

import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import ValidationError

from normwacht.sources.mail import MailMapping, map_message
from services.sources.poster import IngestPoster, IngestRefused, IngestUnavailable

log = structlog.get_logger("normwacht.sources.smtp")

_PARSER = BytesParser(policy=policy.default)


class ThreadMap:
    """Message key -> thread case id, in SQLite (both are keyed hashes, never addresses)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        with self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS threads"
                " (message TEXT PRIMARY KEY, thread TEXT NOT NULL)"
            )

    def get(self, message_key: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT thread FROM threads WHERE message = ?", (message_key,)
            ).fetchone()
        return str(row[0]) if row else None

    def add(self, pairs: Iterable[tuple[str, str]]) -> None:
        with self._lock, self._db:
            self._db.executemany("INSERT OR IGNORE INTO threads VALUES (?, ?)", list(pairs))

    def close(self) -> None:
        with self._lock:
            self._db.close()


class MailboxCopyHandler:
    """aiosmtpd handler: one copied message, one event at most."""

    def __init__(self, mapping: MailMapping, poster: IngestPoster, threads: ThreadMap) -> None:
        self._mapping = mapping
        self._poster = poster
        self._threads = threads
        self.refused: IngestRefused | None = None
        """Set when ingest refuses this partner: the receiver should stop."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode()
        # Headers only: they are all the mapping reads, and a body of many MIME parts took
        # seconds to parse on the receiver's event loop.
        message = _PARSER.parsebytes(raw, headersonly=True)
        try:
            result = map_message(message, datetime.now(UTC), self._mapping, self._threads.get)
        except (ValidationError, TypeError, ValueError, LookupError, AttributeError):
            # A header the parser cannot take (a broken address list) raises from inside
            # the email package: a copy we cannot read is no event, not a bounce.
            log.warning("mail_skipped", reason="invalid")
            return "250 OK: not an event"
        # The thread is known before its first mail is out: a staff answer copied while
        # that mail waits for ingest (451, sent again later) must still find its case.
        self._threads.add(result.threads)
        if result.event is not None:
            try:
                await asyncio.to_thread(self._poster.post, [result.event])
            except IngestUnavailable:
                log.warning("mail_deferred", type=result.event.type)
                return "451 4.3.0 Try again later"
            except IngestRefused as error:
                log.error("ingest_refused_partner", status=error.status, error=str(error))
                self.refused = error
                return "451 4.3.0 Try again later"
        log.info("mail_copied", taken_as=result.reason)
        return "250 OK"


def smtp_controller(handler: MailboxCopyHandler, host: str, port: int) -> Controller:
    """A receiver on host:port (start it; stop it when done)."""
    # aiosmtpd logs every SMTP command at INFO, `MAIL FROM:<resident's address>` too.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    return Controller(handler, hostname=host, port=port)
