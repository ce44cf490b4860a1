"""Each source adapter end to end: vendor input -> adapter shell -> real ingest -> Kafka.

Ingest runs as its own process in development mode on the session's broker; the
adapters post to it over HTTP as a partner does, and the events are read back from the
topic. Every record is scanned for the personal values of the fixtures.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from normwacht.core.events import Event, Municipality
from normwacht.sources.asterisk import QueueLogMapping, map_line
from normwacht.sources.common import Pseudonyms
from normwacht.sources.mail import MailMapping
from normwacht.sources.open311 import ReportMapping, parse_time
from services.shared.kafka import KafkaSettings
from services.sources.asterisk import QueueLogFollower
from services.sources.open311 import Open311Poller
from services.sources.poster import IngestPoster
from services.sources.smtp import MailboxCopyHandler, ThreadMap, smtp_controller
from tests.support.broker import free_port
from tests.support.events import random_id
from tests.support.kafka_io import read_topic
from tests.support.services import eventually, running_service
from tests.support.sources import FIXTURES, KEY, personal_values_in
from tests.support.stored import kafka_records
from tests.support.system import TOKEN, create_topics, fresh_kafka, kafka_env
from tests.support.vendors import Open311Server

pytestmark = pytest.mark.integration

QUEUES = {
    "kcc-heiloo": Municipality.HEILOO,
    "KCC_Bergen": Municipality.BERGEN,
    "kcc-uitgeest": Municipality.UITGEEST,
    "kcc-castricum": Municipality.CASTRICUM,
}


@dataclass(frozen=True)
class Ingest:
    url: str
    kafka: KafkaSettings

    def poster(self, **options: Any) -> IngestPoster:
        return IngestPoster(self.url, TOKEN, **options)

    def events(self, source: str, expect: int) -> list[dict[str, Any]]:
        """The events of `source` on the topic, once there are at least `expect`."""

        def found() -> list[dict[str, Any]] | None:
            records = read_topic(self.kafka.bootstrap, self.kafka.events_topic, expect=1)
            events = [json.loads(r.value) for r in records]
            mine = [e for e in events if e["source"] == source]
            return mine if len(mine) >= expect else None

        return eventually(found, timeout_s=60)

    def personal_values(self, adapter: str) -> list[str]:
        """The adapter's fixtures' personal values found in the events topic: every
        record up to the end offsets, keys and headers too."""
        topic = self.kafka.events_topic
        blob = b"\n".join(data for _, data in kafka_records(self.kafka.bootstrap, topic.__eq__))
        return personal_values_in(blob.decode("utf-8", errors="replace"), adapter)


@pytest.fixture(scope="module")
def ingest(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingest]:
    kafka = fresh_kafka(kafka_bootstrap)
    workdir = tmp_path_factory.mktemp("sources-ingest")
    port = free_port()
    env = {
        **kafka_env(kafka),
        "NORMWACHT_INGEST_ENVIRONMENT": "development",
        "NORMWACHT_INGEST_PORT": str(port),
        "NORMWACHT_INGEST_DATA_DIR": str(workdir / "ingest"),
    }
    create_topics(kafka)
    url = f"http://127.0.0.1:{port}"
    with running_service("ingest", env, f"{url}/healthz", workdir):
        yield Ingest(url, kafka)


def ids(events: list[dict[str, Any]]) -> list[str]:
    """Sorted: events of different cases sit in different partitions."""
    return sorted(e["id"] for e in events)


def a_source() -> str:
    """A source URI of this test alone, so tests sharing the topic never see each other."""
    return random_id("urn:buch:test:")


# --- Asterisk queue_log ---------------------------------------------------------------


def test_queue_log_is_followed_across_restarts_rotation_and_truncation(
    ingest: Ingest, tmp_path: Path
) -> None:
    source = a_source()
    mapping = QueueLogMapping(Pseudonyms(KEY, source), QUEUES, {"KCC_Bergen": "kcc-bergen"})
    lines = (FIXTURES / "asterisk" / "queue_log").read_text().splitlines(keepends=True)
    log_file, state = tmp_path / "queue_log", tmp_path / "state" / "queue_log.json"
    poster = ingest.poster()

    clock = [0.0]  # seconds, as time.monotonic

    def follower() -> QueueLogFollower:
        return QueueLogFollower(
            log_file, state, mapping, poster, max_lines=4,
            rotation_grace_s=5, monotonic=lambda: clock[0],
        )  # fmt: skip

    def expected(upto: int) -> list[str]:
        mapped = (map_line(line, mapping) for line in lines[:upto])
        return [e.id for e in mapped if isinstance(e, Event)]

    # A first run reads what is there; a half-written line waits for its end.
    log_file.write_text("".join(lines[:10]) + lines[10].rstrip("\n"))
    first = follower()
    assert first.poll() == 10
    assert ids(ingest.events(source, len(expected(10)))) == sorted(expected(10))
    first.close()

    # After a restart it resumes at the offset it saved: nothing is sent twice.
    with log_file.open("a") as file:
        file.write("\n" + "".join(lines[11:14]))
    second = follower()
    assert second.poll() == 4
    assert ids(ingest.events(source, len(expected(14)))) == sorted(expected(14))

    # Rotated (renamed, a new one created). Asterisk goes on writing the old file until it
    # reopens its logs: the old file is read until it has had no new line for the grace.
    log_file.rename(tmp_path / "queue_log.1")
    log_file.write_text("".join(lines[15:18]))
    assert second.poll() == 0  # the rotation is seen; the grace begins
    clock[0] += 4
    with (tmp_path / "queue_log.1").open("a") as file:
        file.write(lines[14])  # written after the rename, before Asterisk reopened
    assert second.poll() == 1
    clock[0] += 4.9
    assert second.poll() == 0  # quiet for less than the grace since that line
    clock[0] += 0.1
    assert second.poll() == 3
    assert ids(ingest.events(source, len(expected(18)))) == sorted(expected(18))
    second.close()

    # Rotated while the adapter was down: the old file is found beside the new one.
    with log_file.open("a") as file:
        file.write(lines[18])
    (tmp_path / "queue_log.1").unlink()
    log_file.rename(tmp_path / "queue_log.1")
    log_file.write_text("".join(lines[19:21]))
    third = follower()
    assert third.poll() == 1  # the rest of the old file
    clock[0] += 5
    assert third.poll() == 2
    assert ids(ingest.events(source, len(expected(21)))) == sorted(expected(21))

    # Truncated in place (copytruncate): read again from the start.
    log_file.write_text(lines[21])
    assert third.poll() == 1
    assert ids(ingest.events(source, len(expected(22)))) == sorted(expected(22))
    third.close()
    poster.close()

    events = ingest.events(source, len(expected(22)))
    assert len(events) == len({e["id"] for e in events})  # each line once
    assert ingest.personal_values("asterisk") == []


def test_a_queue_log_is_read_past_a_stretch_without_newlines(
    ingest: Ingest, tmp_path: Path
) -> None:
    """A block of NULs after a crash (longer than the follower reads at once) is skipped
    to the next line; the lines after it are still posted."""
    source = a_source()
    mapping = QueueLogMapping(Pseudonyms(KEY, source), QUEUES, {"KCC_Bergen": "kcc-bergen"})
    lines = (FIXTURES / "asterisk" / "queue_log").read_text().splitlines(keepends=True)
    log_file = tmp_path / "queue_log"
    log_file.write_bytes(
        "".join(lines[:4]).encode() + b"\0" * (3 << 20) + b"\n" + "".join(lines[4:8]).encode()
    )
    poster = ingest.poster()
    follower = QueueLogFollower(log_file, tmp_path / "state.json", mapping, poster)
    try:
        follower.poll()
    finally:
        follower.close()
        poster.close()
    mapped = (map_line(line, mapping) for line in lines[:8])
    expected = sorted(e.id for e in mapped if isinstance(e, Event))
    assert ids(ingest.events(source, len(expected))) == expected


def test_the_asterisk_command_posts_a_file_once(ingest: Ingest, tmp_path: Path) -> None:
    source = a_source()
    env = {
        **os.environ,
        "NORMWACHT_SOURCE_INGEST_URL": ingest.url,
        "NORMWACHT_SOURCE_HMAC_KEY": KEY.decode(),
        "NORMWACHT_SOURCE_ASTERISK_SOURCE": source,
        "NORMWACHT_SOURCE_ASTERISK_QUEUES": json.dumps(QUEUES),
        "NORMWACHT_SOURCE_STATE_DIR": str(tmp_path / "state"),
    }
    command = [sys.executable, "-m", "normwacht", "source", "asterisk-queue-log"]
    log_file = FIXTURES / "asterisk" / "queue_log"
    done = subprocess.run(
        [*command, str(log_file), "--once"], env=env, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    assert len(ingest.events(source, 21)) == 21
    assert json.loads((tmp_path / "state" / "asterisk-queue-log.json").read_text()) == {
        "inode": log_file.stat().st_ino,
        "offset": log_file.stat().st_size,
    }

    refused = subprocess.run(
        [*command, str(log_file), "--once", "--state", str(tmp_path / "other.json")],
        env={**env, "NORMWACHT_SOURCE_TOKEN": "not-a-partner-key"},
        capture_output=True,
        check=False,
    )
    assert refused.returncode == 3
    assert b"ingest refused the request (401)" in refused.stderr
    assert not (tmp_path / "other.json").exists()

    no_key = subprocess.run(
        [*command, str(log_file), "--once"],
        env={k: v for k, v in env.items() if k != "NORMWACHT_SOURCE_HMAC_KEY"},
        capture_output=True,
        check=False,
    )
    assert no_key.returncode == 2
    assert b"NORMWACHT_SOURCE_HMAC_KEY" in no_key.stderr


# --- E-mail over SMTP -----------------------------------------------------------------


def test_copies_of_a_mail_thread_become_email_events(
    ingest: Ingest,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    source, started = a_source(), datetime.now(UTC)
    mapping = MailMapping(
        Pseudonyms(KEY, source),
        {"info@heiloo.nl": Municipality.HEILOO, "info@bergen.nl": Municipality.BERGEN},
    )
    poster = ingest.poster(give_up_after_s=30)
    threads = ThreadMap(tmp_path / "threads.sqlite")
    port = free_port()
    controller = smtp_controller(MailboxCopyHandler(mapping, poster, threads), "127.0.0.1", port)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            for mail in sorted((FIXTURES / "email").glob("*.eml")):
                refused = client.sendmail(
                    "journal@heiloo.nl", ["copies@normwacht"], mail.read_bytes()
                )
                assert refused == {}
    finally:
        controller.stop()
        threads.close()
        poster.close()

    events = ingest.events(source, 4)
    heiloo = [e for e in events if e["municipality"] == "heiloo"]  # one case: one partition
    assert [e["type"] for e in heiloo] == [
        "nl.buch.email.received",
        "nl.buch.email.acknowledged",
        "nl.buch.email.answered",
    ]
    assert len({e["subject"] for e in heiloo}) == 1
    [bergen] = [e for e in events if e["municipality"] == "bergen"]
    assert bergen["type"] == "nl.buch.email.received"
    assert bergen["subject"] != heiloo[0]["subject"]
    # The fixtures' Date headers are far from now: taken for a wrong clock, so the
    # arrival of the copy counts.
    assert all(datetime.fromisoformat(e["time"]) >= started for e in events)
    assert ingest.personal_values("email") == []
    kept = (tmp_path / "threads.sqlite").read_bytes().decode(errors="replace")
    assert personal_values_in(kept, "email") == []
    logged = caplog.text + capsys.readouterr().out + capsys.readouterr().err
    assert "mail_copied" in logged
    assert personal_values_in(logged, "email") == []


def test_a_copy_is_deferred_while_ingest_is_away(tmp_path: Path) -> None:
    mapping = MailMapping(Pseudonyms(KEY, a_source()), {"info@heiloo.nl": Municipality.HEILOO})
    away = IngestPoster(f"http://127.0.0.1:{free_port()}", TOKEN, give_up_after_s=0)
    threads = ThreadMap(tmp_path / "threads.sqlite")
    port = free_port()
    controller = smtp_controller(MailboxCopyHandler(mapping, away, threads), "127.0.0.1", port)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            for name in ("1-inbound.eml", "4-answer.eml"):
                # The answer copied while its thread's first mail waits is no stranger:
                # deferred too, not taken as a reply outside any known thread.
                mail = (FIXTURES / "email" / name).read_bytes()
                with pytest.raises(smtplib.SMTPDataError) as deferred:
                    client.sendmail("journal@heiloo.nl", ["copies@normwacht"], mail)
                assert deferred.value.smtp_code == 451, name
            # A copy whose headers the parser cannot take is no event, and no bounce.
            broken = b'To: info@heiloo.nl, "a" <\r\nFrom: x@example.nl\r\n\r\nHallo\r\n'
            assert client.sendmail("journal@heiloo.nl", ["copies@normwacht"], broken) == {}
    finally:
        controller.stop()
        threads.close()
        away.close()


# --- Open311 --------------------------------------------------------------------------


@pytest.fixture
def open311_server() -> Iterator[Open311Server]:
    server = Open311Server()
    yield server
    server.close()


def fixture_requests(page: int) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads(
        (FIXTURES / "open311" / f"requests-{page}.json").read_text()
    )
    return loaded


def test_open311_requests_are_followed_by_their_updates(
    ingest: Ingest, open311_server: Open311Server, tmp_path: Path
) -> None:
    source = a_source()
    mapping = ReportMapping(Pseudonyms(KEY, source), Municipality.HEILOO, frozenset({"boom-spoed"}))
    state = tmp_path / "open311.json"
    poster = ingest.poster()

    open311_server.requests = fixture_requests(1)
    first = Open311Poller(open311_server.url, state, mapping, poster)
    assert first.poll() >= 3
    first.close()
    assert "updated_after" not in open311_server.queries[0]
    # The server includes `updated_after` itself, so the last request comes twice: same ids.
    first_types = {e["id"]: e["type"] for e in ingest.events(source, 3)}
    assert sorted(first_types.values()) == [
        "nl.buch.report.received",
        "nl.buch.report.received",
        "nl.buch.report.resolved",
    ]

    # Later, after a restart: only what changed since is asked for.
    updated = {r["service_request_id"] for r in fixture_requests(2)}
    open311_server.requests = [
        *(r for r in fixture_requests(1) if r.get("service_request_id") not in updated),
        *fixture_requests(2),
    ]
    open311_server.queries.clear()
    second = Open311Poller(open311_server.url, state, mapping, poster)
    second.poll()
    second.close()
    poster.close()
    [asked, *_] = open311_server.queries
    assert parse_time(asked["updated_after"][0]) == parse_time("2026-11-25T11:00:00+01:00")

    seen = ingest.events(source, 6)
    events = list({e["id"]: e for e in seen}.values())
    assert len(events) == 5  # 3 + 2 new: a request seen again gives the same ids
    assert len({json.dumps(e, sort_keys=True) for e in seen}) == 5  # and the same events
    urgent = [e for e in events if e.get("data", {}).get("urgent")]
    assert [e["time"] for e in urgent] == ["2026-11-26T23:10:00Z"]
    resolved = [e for e in events if e["type"] == "nl.buch.report.resolved"]
    assert len({e["subject"] for e in resolved}) == 2
    assert parse_time(json.loads(state.read_text())["updated_after"]) == datetime.fromisoformat(
        "2026-11-26T23:10:00+00:00"
    )
    assert ingest.personal_values("open311") == []
