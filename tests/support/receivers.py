"""Where Alertmanager's notifications arrive in tests and benchmarks: a webhook and an SMTP server.

Both are real servers on 127.0.0.1 (Python's HTTP server, aiosmtpd), each in its own
thread; what they receive is kept with the wall time it arrived at.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.broker import free_port


@dataclass(frozen=True)
class Received:
    at: float
    """Wall time (Unix seconds) it arrived."""
    body: Any


class _Inbox:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Received] = []

    def add(self, body: Any) -> None:
        with self._lock:
            self._items.append(Received(time.time(), body))

    @property
    def items(self) -> list[Received]:
        with self._lock:
            return list(self._items)


class Webhook(_Inbox):
    """Alertmanager's webhook payloads (version 4), as posted to `url`."""

    url: str

    def alerts(self) -> list[tuple[float, str, dict[str, Any]]]:
        """(arrival, the payload's status, alert) for every alert in every payload."""
        return [
            (item.at, alert["status"], alert)
            for item in self.items
            for alert in item.body.get("alerts", [])
        ]


@contextmanager
def running_webhook(path: str = "/alerts") -> Iterator[Webhook]:
    inbox = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            if self.path != path:
                self.send_response(404)
                self.end_headers()
                return
            inbox.add(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the test reports what matters

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    inbox.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield inbox
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class Mailbox(_Inbox):
    """Mail delivered over SMTP, parsed."""

    port: int

    def messages(self) -> list[Message]:
        return [message_from_bytes(item.body) for item in self.items]


@contextmanager
def running_smtp() -> Iterator[Mailbox]:
    inbox = Mailbox()

    class Handler:
        async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
            self, server: SMTP, session: Session, envelope: Envelope
        ) -> str:
            content = envelope.original_content or b""
            inbox.add(content)
            return "250 OK"

    inbox.port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
