"""The Open311 poller keeps polling whatever a server answers."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from normwacht.core.events import Municipality
from normwacht.sources.common import Pseudonyms
from normwacht.sources.open311 import ReportMapping
from services.sources.open311 import Open311Poller
from services.sources.poster import IngestPoster
from tests.support.sources import KEY


def test_a_body_nested_too_deep_to_read_is_one_failed_poll(tmp_path: Path) -> None:
    stop = threading.Event()
    polls: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        polls.append(request.url.path)
        if len(polls) == 2:
            stop.set()
        return httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000)

    mapping = ReportMapping(Pseudonyms(KEY, "urn:buch:test"), Municipality.HEILOO, frozenset())
    poster = IngestPoster("http://127.0.0.1:9", "no-token")  # never reached: nothing to post
    poller = Open311Poller(
        "http://open311.example/v2", tmp_path / "state.json", mapping, poster,
        transport=httpx.MockTransport(server),
    )  # fmt: skip
    try:
        poller.run(stop, poll_s=0.01)  # returns once stopped, not on the first bad body
    finally:
        poster.close()
    assert polls == ["/v2/requests.json"] * 2
