"""No personal value of any adapter's fixtures is kept anywhere by the whole system.

Every adapter's fixtures go in the way production feeds them: the Asterisk queue_log
through `normwacht source asterisk-queue-log`, mail copies over SMTP, an Open311 server
polled, Meta deliveries signed and ZGW notifications with a Zaken API behind them, into
a real ingest, processor and API on the real broker. When the processor and the API have
read everything, the services stop and every record of every topic of this run (the
processor's changelogs and internal topics included), every key and value of the
processor's RocksDB state, every row of the database and every file the services and the
adapters keep is scanned for every personal value of the fixtures.
"""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition

from normwacht.core.events import Municipality
from normwacht.sources.common import Pseudonyms
from normwacht.sources.mail import MailMapping
from normwacht.sources.open311 import ReportMapping
from services.shared.kafka import KafkaSettings
from services.sources.open311 import Open311Poller
from services.sources.poster import IngestPoster
from services.sources.smtp import MailboxCopyHandler, ThreadMap, smtp_controller
from tests.support.broker import free_port, free_ports
from tests.support.services import running_service
from tests.support.sources import FIXTURES, PERSONAL
from tests.support.sources import KEY as SOURCE_KEY
from tests.support.stored import database_values, files, found, kafka_records, rocksdb_entries
from tests.support.system import TOKEN, create_topics, fresh_kafka, services_env
from tests.support.vendors import (
    APP_SECRET,
    CONTACTED,
    VERIFY_TOKEN,
    ZAAKTYPE,
    ZAKEN_API_AUTH,
    Open311Server,
    ZakenApi,
    meta_body,
    signed,
    zaken_api,
    zgw_body,
)
from tests.support.vendors import PERSONAL as WEBHOOK_PERSONAL

pytestmark = pytest.mark.e2e

QUEUES = {"kcc-heiloo": "heiloo", "KCC_Bergen": "bergen", "kcc-uitgeest": "uitgeest",
          "kcc-castricum": "castricum"}  # fmt: skip
META_IDS = {"106540352242922": "heiloo", "104953332293541": "castricum"}
EVERY_PERSONAL_VALUE = {value for values in PERSONAL.values() for value in values} | {
    value.decode() for value in WEBHOOK_PERSONAL
}


def lag(bootstrap: str, group: str, topic: str) -> int:
    """Records of `topic` that `group` has not yet committed (read without joining it)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(partitions)
        return sum(end - (consumer.committed(tp) or 0) for tp, end in ends.items())
    finally:
        consumer.close()


def settled(kafka: KafkaSettings, groups: dict[str, str], timeout_s: float = 120.0) -> None:
    """Wait until each group (by its topic) has committed every record there is."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = {group: lag(kafka.bootstrap, group, topic) for group, topic in groups.items()}
        if not any(left.values()):
            return
        assert time.monotonic() < deadline, f"not read after {timeout_s} s: {left}"
        time.sleep(1.0)


def feed_asterisk(ingest: str, state_dir: Path) -> None:
    env = {
        **os.environ,
        "NORMWACHT_SOURCE_INGEST_URL": ingest,
        "NORMWACHT_SOURCE_HMAC_KEY": SOURCE_KEY.decode(),
        "NORMWACHT_SOURCE_ASTERISK_QUEUES": json.dumps(QUEUES),
        "NORMWACHT_SOURCE_ASTERISK_QUEUE_CODES": json.dumps({"KCC_Bergen": "kcc-bergen"}),
        "NORMWACHT_SOURCE_STATE_DIR": str(state_dir),
    }
    command = [sys.executable, "-m", "normwacht", "source", "asterisk-queue-log"]
    log_file = FIXTURES / "asterisk" / "queue_log"
    done = subprocess.run(
        [*command, str(log_file), "--once"], env=env, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr.decode()


def feed_mail(ingest: str, state_dir: Path) -> None:
    mapping = MailMapping(
        Pseudonyms(SOURCE_KEY, "urn:buch:kcc:email"),
        {"info@heiloo.nl": Municipality.HEILOO, "info@bergen.nl": Municipality.BERGEN},
    )
    poster = IngestPoster(ingest, TOKEN, give_up_after_s=30)
    threads = ThreadMap(state_dir / "threads.sqlite")
    port = free_port()
    controller = smtp_controller(MailboxCopyHandler(mapping, poster, threads), "127.0.0.1", port)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            for mail in sorted((FIXTURES / "email").glob("*.eml")):
                client.sendmail("journal@heiloo.nl", ["copies@normwacht"], mail.read_bytes())
    finally:
        controller.stop()
        threads.close()
        poster.close()


def feed_open311(ingest: str, state_dir: Path) -> None:
    server = Open311Server()
    server.requests = [
        *json.loads((FIXTURES / "open311" / "requests-1.json").read_text()),
        *json.loads((FIXTURES / "open311" / "requests-2.json").read_text()),
    ]
    poster = IngestPoster(ingest, TOKEN)
    mapping = ReportMapping(
        Pseudonyms(SOURCE_KEY, "urn:buch:meldingen"), Municipality.HEILOO, frozenset()
    )
    poller = Open311Poller(server.url, state_dir / "open311.json", mapping, poster)
    try:
        assert poller.poll() > 0
    finally:
        poller.close()
        poster.close()
        server.close()


def feed_webhooks(ingest: str, zaken: ZakenApi) -> None:
    for fixture in sorted((FIXTURES / "meta").glob("*.json")):
        body = meta_body(fixture.stem)
        answer = httpx.post(f"{ingest}/v1/webhooks/meta", content=body, headers=signed(body))
        assert answer.status_code == 200, answer.text
    status_url = json.loads(zgw_body("status_created", zaken))["resourceUrl"]
    zaken.serve(status_url, zgw_body("status", zaken))
    for name in ("zaak_created", "status_created", "zaak_updated"):
        answer = httpx.post(
            f"{ingest}/v1/webhooks/zgw",
            content=zgw_body(name, zaken),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        )
        assert answer.status_code == 204, answer.text


@pytest.fixture
def zaken() -> Iterator[ZakenApi]:
    with zaken_api(ZAKEN_API_AUTH) as api:
        yield api


def test_no_personal_value_of_any_adapter_is_kept_anywhere(
    kafka_bootstrap: str, zaken: ZakenApi, tmp_path: Path
) -> None:
    kafka = fresh_kafka(kafka_bootstrap)
    ports = dict(zip(("ingest", "processor", "api"), free_ports(3), strict=True))
    env = services_env(kafka, tmp_path, ports) | {
        "NORMWACHT_SOURCE_HMAC_KEY": SOURCE_KEY.decode(),
        "NORMWACHT_META_APP_SECRET": APP_SECRET,
        "NORMWACHT_META_VERIFY_TOKEN": VERIFY_TOKEN,
        "NORMWACHT_META_MUNICIPALITIES": json.dumps(META_IDS),
        "NORMWACHT_ZGW_ZAKEN_API_URL": zaken.base,
        "NORMWACHT_ZGW_ZAKEN_API_AUTHORIZATION": ZAKEN_API_AUTH,
        "NORMWACHT_ZGW_ZAAKTYPEN": json.dumps({ZAAKTYPE: "complaint"}),
        "NORMWACHT_ZGW_STATUSTYPEN": json.dumps(
            {CONTACTED: {"type": "complaint.contacted", "data": {"by": "phone"}}}
        ),
        "NORMWACHT_ZGW_MUNICIPALITIES": json.dumps({"001234511": "uitgeest"}),
    }
    create_topics(kafka, env["NORMWACHT_PROCESSOR_APP_ID"])
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    adapters = tmp_path / "adapters"
    adapters.mkdir()
    with ExitStack() as running:
        for name in ("processor", "ingest", "api"):
            running.enter_context(running_service(name, env, urls[name] + "/healthz", tmp_path))
        feed_asterisk(urls["ingest"], adapters)
        feed_mail(urls["ingest"], adapters)
        feed_open311(urls["ingest"], adapters)
        feed_webhooks(urls["ingest"], zaken)
        settled(
            kafka,
            {
                env["NORMWACHT_PROCESSOR_APP_ID"]: kafka.events_topic,
                "normwacht-api": kafka.outcomes_topic,
            },
        )
        cases = httpx.get(
            f"{urls['api']}/v1/breaches", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert cases.status_code == 200
    # Stopped: RocksDB is unlocked and every file is written.

    run = kafka.events_topic.split(".")[0]
    stored = [
        *kafka_records(kafka_bootstrap, lambda topic: run in topic),
        *rocksdb_entries(tmp_path / "processor"),
        *database_values(env["DATABASE_URL"]),
        *files(adapters),
        *files(tmp_path / "ingest"),
    ]
    sources = {
        json.loads(data).get("source")  # the processor's due-records have none
        for where, data in stored
        if where.startswith(f"kafka {kafka.events_topic}/") and where.endswith(" value")
    } - {None}
    assert sources == {
        "urn:buch:kcc:telephony",
        "urn:buch:kcc:email",
        "urn:buch:meldingen",
        "urn:buch:social:meta",
        "urn:buch:zgw:zaken",
    }, "every adapter's events must have reached the topic"
    # The scan reads what is there: a case id of the ZGW adapter is in all three stores.
    zgw_case = next(
        json.loads(data)["subject"]
        for where, data in stored
        if where.endswith(" value") and b'"urn:buch:zgw:zaken"' in data
    )
    places = {hit.split(" in ", 1)[1].split()[0] for hit in found({zgw_case}, iter(stored))}
    assert places >= {"kafka", "rocksdb", "db"}
    assert found(EVERY_PERSONAL_VALUE, iter(stored)) == []
