"""Breaches reach people: the whole chain as real processes.

Broker, processor, ingest and notifier as `make run` starts them; Debian's Prometheus and
Alertmanager with the project's own rules, routes and receivers (only the receivers'
addresses pointed at this test's webhook and SMTP server, and Prometheus scraping every
second); then what a person receives is what is checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any

import httpx
import pytest

from normwacht.ops.dashboards import DASHBOARD_DIR, panel_queries
from tests.support.broker import free_ports
from tests.support.events import ago, call_event, cloud_event
from tests.support.monitoring import (
    alertmanager_config,
    prometheus_config,
    running_alertmanager,
    running_prometheus,
)
from tests.support.receivers import Mailbox, Webhook, running_smtp, running_webhook
from tests.support.services import eventually, running_service
from tests.support.system import TOKEN, System, create_topics, fresh_kafka, post, services_env

pytestmark = pytest.mark.e2e

URGENT_TERM_S = 2 * 3600
SILENT_AFTER_S = 3


@dataclass(frozen=True)
class Watched:
    system: System
    notifier: str
    prometheus: str
    alertmanager: str
    webhook: Webhook
    mailbox: Mailbox


@pytest.fixture(scope="module")
def watched(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watched]:
    kafka = fresh_kafka(kafka_bootstrap)
    tmp_path = tmp_path_factory.mktemp("watched")
    ports = dict(zip(("ingest", "processor", "notifier"), free_ports(3), strict=True))
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    with running_webhook() as webhook, running_smtp() as mailbox:
        am_config = alertmanager_config(tmp_path, webhook.url, mailbox.port)
        with running_alertmanager(am_config, tmp_path) as alertmanager:
            env = {
                **services_env(kafka, tmp_path, ports),
                # Website probes come around the clock: their silence counts in real time,
                # so this test does not depend on the hour it runs at.
                "NORMWACHT_INGEST_SILENT_AFTER": f'{{"website": {SILENT_AFTER_S}}}',
                "NORMWACHT_NOTIFIER_ALERTMANAGER_URL": alertmanager.url,
            }
            create_topics(kafka, env["NORMWACHT_PROCESSOR_APP_ID"])
            targets = {
                "normwacht-processor": f"127.0.0.1:{ports['processor']}",
                "normwacht-ingest": f"127.0.0.1:{ports['ingest']}",
                "normwacht-notifier": f"127.0.0.1:{ports['notifier']}",
                "alertmanager": alertmanager.url.removeprefix("http://"),
            }
            prom_config = prometheus_config(
                tmp_path, targets, alertmanager.url.removeprefix("http://")
            )
            with (
                running_service("processor", env, urls["processor"] + "/healthz", tmp_path),
                running_service("ingest", env, urls["ingest"] + "/healthz", tmp_path),
                running_service("notifier", env, urls["notifier"] + "/healthz", tmp_path),
                running_prometheus(prom_config, tmp_path) as prometheus,
            ):
                system = System(urls["ingest"], urls["processor"], "", kafka)
                yield Watched(
                    system, urls["notifier"], prometheus.url, alertmanager.url, webhook, mailbox
                )


def _alerts(webhook: Webhook, status: str, **labels: str) -> list[dict[str, Any]]:
    return [
        alert
        for _, payload_status, alert in webhook.alerts()
        if alert["status"] == status and all(alert["labels"].get(k) == v for k, v in labels.items())
    ]


def _mails(mailbox: Mailbox, *words: str) -> list[Message]:
    return [m for m in mailbox.messages() if all(w in m.as_string() for w in words)]


def test_an_urgent_report_left_alone_pages_and_is_resolved_when_action_comes(
    watched: Watched,
) -> None:
    subject = "E2E-URGENT-1"
    # Received just under 2 hours ago: its deadline passes a few seconds from now.
    received = cloud_event("report.received", ago(URGENT_TERM_S - 4), subject,
                           municipality="heiloo", data={"urgent": True})  # fmt: skip
    post(watched.system, [received])
    page = {"alertname": "NormBreached", "norm": "report.urgent", "subject": subject}

    firing = eventually(lambda: _alerts(watched.webhook, "firing", **page) or None, 90)
    assert firing[0]["labels"] == {
        **page,
        "channel": "public_space",
        "municipality": "heiloo",
        "severity": "page",
        "clock": "1",
    }
    # The same page by e-mail, to on-call; the case id is all it says about the case.
    [mail] = eventually(
        lambda: _mails(watched.mailbox, subject, "FIRING", "NormBreached") or None, 60
    )
    assert mail["To"] == "on-call@example.org"

    # Action starts, late: the breach stands, and the page is resolved.
    post(watched.system, [cloud_event("report.action_started", ago(0), subject,
                                      municipality="heiloo")])  # fmt: skip
    eventually(lambda: _alerts(watched.webhook, "resolved", **page) or None, 150)
    eventually(lambda: _mails(watched.mailbox, subject, "RESOLVED", "NormBreached") or None, 60)


def test_a_source_that_stops_sending_raises_the_silence_alert(watched: Watched) -> None:
    source = "urn:buch:e2e-uptime"
    site = {"target": "www-heiloo-nl", "up": True}
    probe = cloud_event("website.probe", ago(0), "www-heiloo-nl", source=source, data=site)
    post(watched.system, [probe])

    def silent() -> list[dict[str, Any]] | None:
        alerts = httpx.get(f"{watched.prometheus}/api/v1/alerts").json()["data"]["alerts"]
        mine = [
            a
            for a in alerts
            if a["labels"]["alertname"] == "SourceSilent"
            and a["labels"].get("source") == source
            and a["state"] == "firing"
        ]
        return mine or None

    [alert] = eventually(silent, 90)
    assert alert["labels"]["channel"] == "website"
    assert alert["labels"]["team"] == "operations"
    # Routed to operations, and there it arrives.
    eventually(
        lambda: _alerts(watched.webhook, "firing", alertname="SourceSilent", source=source) or None,
        90,
    )


def test_every_dashboard_panel_shows_data_from_the_running_system(watched: Watched) -> None:
    """Every series a panel reads gets traffic first: calls met and breached, a visitor
    called, a request refused."""

    def scraped() -> bool:
        query = {"query": 'up{job="normwacht-processor"} == 1'}
        body = httpx.get(f"{watched.prometheus}/api/v1/query", params=query).json()
        return bool(body["data"]["result"])

    eventually(scraped, 30)  # so that the counters below are seen going up, not born at 1
    traffic = [
        call_event("E2E-DASH-MET", "queued", ago(30), municipality="uitgeest"),
        call_event("E2E-DASH-MET", "answered", ago(25), municipality="uitgeest"),
        call_event("E2E-DASH-LATE", "queued", ago(60), municipality="uitgeest"),
        call_event("E2E-DASH-LATE", "answered", ago(30), municipality="uitgeest"),
        # Never answered: the deadline timer breaches it (the publication delay panel).
        call_event("E2E-DASH-TIMER", "queued", ago(17), municipality="uitgeest"),
        cloud_event("visit.checked_in", ago(120), "E2E-DASH-VISIT", municipality="uitgeest"),
        cloud_event("visit.called", ago(60), "E2E-DASH-VISIT", municipality="uitgeest"),
    ]
    post(watched.system, traffic)
    refused = httpx.post(f"{watched.system.ingest}/v1/events", content=b"[]",
                         headers={"Content-Type": "application/cloudevents-batch+json",
                                  "Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert refused.status_code == 422
    queries = [
        (path.name, title, expr)
        for path in sorted(DASHBOARD_DIR.glob("*.json"))
        for title, expr in panel_queries(json.loads(path.read_text()))
    ]
    assert queries

    missing: list[tuple[str, str, str]] = []

    def query(expr: str) -> list[Any]:
        body = httpx.get(f"{watched.prometheus}/api/v1/query", params={"query": expr}).json()
        assert body["status"] == "success", (expr, body)
        return list(body["data"]["result"])

    def all_have_data() -> bool:
        missing.clear()
        # Panels held to office hours are rightly empty while every office is closed (this
        # test runs at any hour); tests/integration/test_dashboards_promql.py fills them.
        closed = not query("max(normwacht_office_open) == 1")
        for dashboard, title, expr in queries:
            if not query(expr) and not (closed and "normwacht_office_open" in expr):
                missing.append((dashboard, title, expr))
        return not missing

    try:
        eventually(all_have_data, 60, interval_s=2)
    except AssertionError:
        pytest.fail(f"panels without data: {missing}")
