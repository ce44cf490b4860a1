"""The notifier as a process, on the real broker and a real Alertmanager.

The outcomes topic has one partition, so records are read in the order written: after
writing a *marker* (a breach of a fresh case) and seeing its alert in Alertmanager,
everything written before it has been handled. Alertmanager's v2 API lists only alerts
whose `endsAt` has not passed, so "resolved" is an alert seen firing that is gone.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.shared.kafka import KafkaSettings, ensure_topics
from tests.support.broker import free_port
from tests.support.kafka_io import produce
from tests.support.monitoring import running_alertmanager
from tests.support.services import eventually, running_service
from tests.support.system import fresh_kafka, kafka_env

pytestmark = pytest.mark.integration

ALERTMANAGER_CONFIG = """\
route:
  receiver: nobody
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: nobody
"""

NORMS = {  # norm: channel
    "email.answer": "email",  # notify: notice
    "report.urgent": "public_space",  # notify: page
    "phone.answer": "phone",  # notify: count
}


@dataclass(frozen=True)
class Setup:
    kafka: KafkaSettings
    workdir: Path
    config: Path
    alertmanager_port: int
    database_url: str


@pytest.fixture
def setup(kafka_bootstrap: str, tmp_path: Path) -> Setup:
    kafka = fresh_kafka(kafka_bootstrap, prefix="n", partitions=1)
    ensure_topics(kafka)
    config = tmp_path / "alertmanager.yml"
    config.write_text(ALERTMANAGER_CONFIG)
    return Setup(kafka, tmp_path, config, free_port(), f"sqlite:///{tmp_path / 'notifier.db'}")


@contextmanager
def alertmanager(setup: Setup) -> Iterator[str]:
    """Alertmanager, always on the same port, so the notifier finds it after a restart."""
    with running_alertmanager(setup.config, setup.workdir, port=setup.alertmanager_port) as run:
        yield run.url


@contextmanager
def notifier(
    setup: Setup,
    *,
    resend_s: float = 1.0,
    group: str = "notifier-test",
    extra_env: dict[str, str] | None = None,
) -> Iterator[str]:
    port = free_port()
    env = (
        (extra_env or {})
        | kafka_env(setup.kafka)
        | {
            "NORMWACHT_NOTIFIER_PORT": str(port),
            "NORMWACHT_NOTIFIER_ALERTMANAGER_URL": f"http://127.0.0.1:{setup.alertmanager_port}",
            "NORMWACHT_NOTIFIER_DATABASE_URL": setup.database_url,
            "NORMWACHT_NOTIFIER_RESEND_INTERVAL": str(resend_s),
            "NORMWACHT_NOTIFIER_GROUP_ID": group,
            "NORMWACHT_NOTIFIER_API_URL": "http://api.test:8001",
        }
    )
    logs = setup.workdir / f"notifier-{port}"
    logs.mkdir()
    url = f"http://127.0.0.1:{port}"
    with running_service("notifier", env, f"{url}/healthz", logs):
        yield url


def outcome(
    subject: str,
    kind: str,
    norm: str = "email.answer",
    *,
    deadline: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    deadline = deadline or datetime.now(UTC) - timedelta(minutes=1)
    return {
        "subject": subject,
        "norm": norm,
        "instance": 1,
        "kind": kind,
        "channel": NORMS[norm],
        "municipality": "bergen",
        "started_at": (deadline - timedelta(hours=1)).isoformat(),
        "deadline": deadline.isoformat(),
        "decided_at": deadline.isoformat(),
        **extra,
    }


def publish(setup: Setup, *records: dict[str, Any] | bytes) -> None:
    produce(
        setup.kafka.bootstrap,
        setup.kafka.outcomes_topic,
        [
            (
                None if isinstance(r, bytes) else r["subject"].encode(),
                r if isinstance(r, bytes) else json.dumps(r).encode(),
            )
            for r in records
        ],
    )


def alerts(alertmanager_url: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Alertmanager's active alerts by (subject, alertname)."""
    response = httpx.get(f"{alertmanager_url}/api/v2/alerts", timeout=5.0)
    response.raise_for_status()
    return {(a["labels"]["subject"], a["labels"]["alertname"]): a for a in response.json()}


def firing(alertmanager_url: str, subject: str, alertname: str = "NormBreached") -> bool:
    try:
        return (subject, alertname) in alerts(alertmanager_url)
    except httpx.HTTPError:
        return False


def sync(setup: Setup, alertmanager_url: str) -> None:
    """Write a marker and wait until it fires: everything written before is handled."""
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    publish(setup, outcome(marker, "breached"))
    eventually(lambda: firing(alertmanager_url, marker))


def metric(notifier_url: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples that carry `labels`."""
    text = httpx.get(f"{notifier_url}/metrics", timeout=5.0).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def test_breaches_open_alerts_for_notice_and_page_norms_only(setup: Setup) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=30)
    with alertmanager(setup) as am, notifier(setup):
        publish(
            setup,
            outcome("e-1", "opened"),
            outcome("e-1", "breached"),
            outcome("u-1", "breached", "report.urgent"),
            outcome("p-1", "breached", "phone.answer"),  # count: no per-case alert
            outcome("old-1", "breached", deadline=long_ago),  # older than max_age
            b"not an outcome",  # logged and skipped
        )
        sync(setup, am)
        active = alerts(am)
        email, urgent = active["e-1", "NormBreached"], active["u-1", "NormBreached"]
        assert email["labels"] == {
            "alertname": "NormBreached",
            "norm": "email.answer",
            "channel": "email",
            "municipality": "bergen",
            "severity": "notice",
            "subject": "e-1",
            "clock": "1",
        }
        assert urgent["labels"] == {
            "alertname": "NormBreached",
            "norm": "report.urgent",
            "channel": "public_space",
            "municipality": "bergen",
            "severity": "page",
            "subject": "u-1",
            "clock": "1",
        }
        assert urgent["status"]["state"] == "active"
        assert urgent["annotations"]["outcome_id"] == "u-1/report.urgent/1/breached"
        assert urgent["annotations"]["summary"].startswith("report.urgent breached: case u-1, ")
        assert urgent["generatorURL"] == "http://api.test:8001/v1/cases/u-1"
        subjects = {subject for subject, _ in active}
        assert not subjects & {"p-1", "old-1"}
        assert len([s for s in subjects if not s.startswith("marker-")]) == 2


def test_corrections_and_late_stops_resolve(setup: Setup) -> None:
    with alertmanager(setup) as am, notifier(setup) as service:
        publish(
            setup,
            outcome("m-1", "breached"),
            outcome("s-1", "at_risk", "report.urgent"),
            outcome("s-1", "breached", "report.urgent"),
            outcome("o-1", "breached"),
        )
        eventually(lambda: all(firing(am, s) for s in ("m-1", "s-1", "o-1")))
        assert not firing(am, "s-1", "NormAtRisk")  # the breach resolved the warning

        publish(
            setup,
            outcome("m-1", "met", corrects="breached"),
            outcome("s-1", "stopped_late", "report.urgent"),
            outcome("o-1", "opened", corrects="breached"),
        )
        sync(setup, am)
        assert not {"m-1", "s-1", "o-1"} & {subject for subject, _ in alerts(am)}
        resolved = metric(service, "normwacht_notifier_alerts_posted_total", state="resolved")
        assert resolved >= 4  # s-1's warning and the three breaches


def test_an_outcome_read_twice_neither_doubles_nor_reopens_an_alert(setup: Setup) -> None:
    def opened(service: str) -> float:
        return metric(service, "normwacht_notifier_alerts_posted_total", state="firing")

    # A long resend interval: every firing post counted below is an open.
    with alertmanager(setup) as am:
        with notifier(setup, resend_s=600) as service:
            publish(setup, outcome("d-1", "breached"), outcome("d-1", "breached"))
            sync(setup, am)
            assert opened(service) == 2  # d-1 once, and the marker

            publish(setup, outcome("d-1", "met", corrects="breached"), outcome("d-1", "breached"))
            sync(setup, am)
            assert not firing(am, "d-1")
            assert opened(service) == 3  # and the second marker
            assert metric(service, "normwacht_notifier_firing_alerts") == 2

        # The whole topic again, under another consumer group: nothing reopens.
        with notifier(setup, resend_s=600, group="another-group") as replay:
            sync(setup, am)
            assert not firing(am, "d-1")
            # The startup resend of the two markers, and the third marker.
            assert opened(replay) == 3
            assert metric(replay, "normwacht_notifier_firing_alerts") == 3


def test_what_fires_is_sent_again_after_restarts(setup: Setup) -> None:
    with notifier(setup):
        with alertmanager(setup) as am:
            publish(setup, outcome("k-1", "breached", "report.urgent"))
            eventually(lambda: firing(am, "k-1"))
            starts_at = alerts(am)["k-1", "NormBreached"]["startsAt"]

        # Alertmanager restarted: it forgot its alerts, the notifier sends them again.
        with alertmanager(setup) as am:
            eventually(lambda: firing(am, "k-1"))

    with alertmanager(setup) as am:
        assert not firing(am, "k-1")
        # The notifier restarted too: its database still has the alert.
        with notifier(setup):
            eventually(lambda: firing(am, "k-1"))
            assert alerts(am)["k-1", "NormBreached"]["startsAt"] == starts_at


def test_outcomes_wait_for_alertmanager_to_come_back(setup: Setup) -> None:
    with notifier(setup) as service:
        with alertmanager(setup) as am:
            sync(setup, am)
        publish(
            setup,
            outcome("w-1", "breached"),
            outcome("w-2", "breached", "report.urgent"),
            outcome("w-2", "met", "report.urgent", corrects="breached"),
            outcome("w-3", "at_risk"),
        )
        eventually(lambda: metric(service, "normwacht_notifier_post_failures_total") >= 2)
        assert httpx.get(f"{service}/healthz").json()["alertmanager_reachable"] is False
        assert httpx.head(f"{service}/healthz").status_code == 200  # as GET (HeadAsGet)

        with alertmanager(setup) as am:
            eventually(lambda: firing(am, "w-1") and firing(am, "w-3", "NormAtRisk"))
            sync(setup, am)
            assert not firing(am, "w-2")
            assert metric(service, "normwacht_notifier_notification_delay_seconds_count") >= 1


def test_an_outage_longer_than_kafka_waits_loses_nothing_and_reading_goes_on(
    setup: Setup,
) -> None:
    """Alertmanager down for longer than max.poll.interval: Kafka takes the partitions away
    while a batch waits; the commit fails, the notifier joins again and reads on."""
    patience = {"NORMWACHT_NOTIFIER_MAX_POLL_INTERVAL": "2"}
    with notifier(setup, extra_env=patience) as service:
        with alertmanager(setup) as am:
            sync(setup, am)
        publish(setup, outcome("x-1", "breached"))
        # Backoff 0.5, 1, 2, 4 s: by the fifth failure the batch waited well over 2 s.
        eventually(lambda: metric(service, "normwacht_notifier_post_failures_total") >= 5, 60)
        with alertmanager(setup) as am:
            eventually(lambda: firing(am, "x-1"), 60)
            publish(setup, outcome("x-2", "breached"))
            eventually(lambda: firing(am, "x-2"), 60)
        health = httpx.get(f"{service}/healthz")
        assert (health.status_code, health.json()["consuming"]) == (200, True)
