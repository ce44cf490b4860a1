"""How the adapters post to ingest: batches, retries on 429/503, stop on 401/403, 422 split.

Ingest's answers are scripted through httpx's in-memory transport and the waits are
recorded instead of slept: what is checked is which requests are sent and how long the
poster asked to wait, never how long anything took.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from normwacht.core.events import Event, Municipality
from normwacht.sources.common import build_event
from services.sources.poster import IngestPoster, IngestRefused, IngestUnavailable, retry_after
from services.sources.settings import SourceSettings


def events(count: int) -> list[Event]:
    return [
        build_event(
            "call.answered",
            event_id=f"e-{n}",
            source="urn:buch:kcc:telephony",
            subject=f"call-{n}",
            time=datetime(2026, 11, 24, 8, 0, tzinfo=UTC),
            municipality=Municipality.HEILOO,
        )
        for n in range(count)
    ]


Answer = Callable[[list[dict[str, object]]], httpx.Response]


class Ingest:
    """Answers each request with the next scripted answer, recording the batches."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.batches: list[list[str]] = []
        self.waits: list[float] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer partner-key"
        assert request.headers["content-type"] == "application/cloudevents-batch+json"
        batch = json.loads(request.content)
        self.batches.append([e["id"] for e in batch])
        return self.answers.pop(0)(batch) if self.answers else accepted(batch)

    def poster(self, **options: float) -> IngestPoster:
        return IngestPoster(
            "http://ingest.test",
            "partner-key",
            batch_size=int(options.pop("batch_size", 500)),
            transport=httpx.MockTransport(self.handle),
            sleep=self.waits.append,
            **options,
        )


def accepted(batch: list[dict[str, object]]) -> httpx.Response:
    return httpx.Response(202, json={"accepted": len(batch), "ids": [e["id"] for e in batch]})


def status(code: int, headers: dict[str, str] | None = None, **problem: object) -> Answer:
    return lambda _: httpx.Response(code, headers=headers, json={"status": code, **problem})


def test_events_go_in_batches_of_at_most_the_batch_size() -> None:
    ingest = Ingest()
    posted = ingest.poster(batch_size=500).post(events(1001))
    assert (posted.accepted, posted.refused) == (1001, 0)
    assert [len(b) for b in ingest.batches] == [500, 500, 1]
    assert ingest.batches[2] == ["e-1000"]


def test_busy_ingest_is_asked_again_after_its_retry_after_or_a_growing_backoff() -> None:
    ingest = Ingest(
        status(429, {"Retry-After": "7"}),
        status(503, {"Retry-After": "1"}),
        status(503),
        status(502),
    )
    posted = ingest.poster(max_backoff_s=60).post(events(3))
    assert posted.accepted == 3
    assert ingest.waits == [7.0, 1.0, 1.0, 2.0]
    assert len(ingest.batches) == 5
    assert all(batch == ingest.batches[0] for batch in ingest.batches)  # the same request


def test_no_connection_is_retried_too() -> None:
    calls: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) < 3:
            raise httpx.ConnectError("refused", request=request)
        return accepted(json.loads(request.content))

    waits: list[float] = []
    poster = IngestPoster(
        "http://ingest.test", "k", transport=httpx.MockTransport(flaky), sleep=waits.append
    )
    assert poster.post(events(2)).accepted == 2
    assert waits == [1.0, 2.0]


def test_a_refused_partner_stops_with_the_reason() -> None:
    for code, detail in ((401, "a valid bearer token is required"), (403, "municipality")):
        ingest = Ingest(status(code, detail=detail))
        with pytest.raises(IngestRefused, match=detail) as refused:
            ingest.poster().post(events(2))
        assert refused.value.status == code
        assert len(ingest.batches) == 1


def test_an_invalid_batch_is_sent_again_event_by_event_and_only_the_invalid_one_dropped() -> None:
    invalid = status(422, errors=[{"pointer": "/1/subject", "detail": "looks like a phone"}])
    ingest = Ingest(invalid, accepted, invalid, accepted)
    posted = ingest.poster().post(events(3))
    assert (posted.accepted, posted.refused) == (2, 1)
    assert ingest.batches == [["e-0", "e-1", "e-2"], ["e-0"], ["e-1"], ["e-2"]]


def test_a_too_large_batch_is_halved() -> None:
    ingest = Ingest(status(413))
    assert ingest.poster().post(events(4)).accepted == 4
    assert ingest.batches == [["e-0", "e-1", "e-2", "e-3"], ["e-0", "e-1"], ["e-2", "e-3"]]


def test_a_poster_with_a_budget_gives_up_when_ingest_stays_busy() -> None:
    ingest = Ingest(*[status(503, {"Retry-After": "30"})] * 10)
    with pytest.raises(IngestUnavailable):
        ingest.poster(give_up_after_s=45).post(events(1))
    assert ingest.waits == [30.0]  # the second wait would pass the budget


def test_retry_after_is_seconds_or_an_http_date() -> None:
    now = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert retry_after("120", now) == 120.0
    assert retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90.0
    assert retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now) == 0.0
    assert retry_after("soon", now) is None
    assert retry_after(None, now) is None


def test_settings_need_a_long_enough_key_and_map_to_municipalities(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NORMWACHT_SOURCE_HMAC_KEY", raising=False)
    with pytest.raises(ValueError, match="hmac_key"):
        SourceSettings()
    monkeypatch.setenv("NORMWACHT_SOURCE_HMAC_KEY", "too-short")
    with pytest.raises(ValueError, match="32 bytes"):
        SourceSettings()
    monkeypatch.setenv("NORMWACHT_SOURCE_HMAC_KEY", "k" * 32)
    monkeypatch.setenv("NORMWACHT_SOURCE_EMAIL_MAILBOXES", '{"Info@Heiloo.nl": "heiloo"}')
    monkeypatch.setenv("NORMWACHT_SOURCE_OPEN311_URGENT", "boom-spoed, gaslek")
    monkeypatch.setenv("NORMWACHT_SOURCE_OPEN311_ENDPOINTS", '{"https://x.test/v2/": "bergen"}')
    settings = SourceSettings()
    assert settings.email_mailboxes == {"info@heiloo.nl": Municipality.HEILOO}
    assert settings.open311_urgent == frozenset({"boom-spoed", "gaslek"})
    assert settings.open311_endpoints == {"https://x.test/v2": Municipality.BERGEN}
    monkeypatch.setenv("NORMWACHT_SOURCE_ASTERISK_QUEUES", '{"kcc": "amsterdam"}')
    with pytest.raises(ValueError, match="asterisk_queues"):
        SourceSettings()
