"""Every dashboard panel's query runs on a real Prometheus.

Prometheus scrapes the processor's and the notifier's real metric definitions (their
registries, served here by prometheus_client), so a query fails not only on a syntax
error (400 bad_data) but also on a vector match the real labels make ambiguous (422).
Whether the values are right is for an end-to-end test against the running services.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from prometheus_client import CollectorRegistry, start_http_server

from normwacht import catalogue_file
from normwacht.ops.dashboards import build_all, panel_queries
from services.notifier.metrics import NotifierMetrics
from services.sla_processor.deadlines import DeadlineIndex
from services.sla_processor.metrics import CatalogueFacts, OpenClocks, ProcessorMetrics
from tests.support.broker import free_port
from tests.support.monitoring import running_prometheus

OFFICE_OPEN = datetime(2026, 3, 3, 10, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))

pytestmark = pytest.mark.integration

QUERIES = [
    (name, title, expr)
    for name, board in build_all().items()
    for title, expr in panel_queries(board)
]


@contextmanager
def _serve(registry: CollectorRegistry) -> Iterator[int]:
    """The registry's /metrics on a free port of 127.0.0.1, as the service would serve it."""
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def processor_metrics() -> ProcessorMetrics:
    catalogue = catalogue_file.load()
    metrics = ProcessorMetrics(CollectorRegistry())
    metrics.declare(catalogue)
    # A Tuesday morning, so that the panels held to office hours have data at any hour
    # this test runs (the processor itself reads the real clock).
    metrics.registry.register(CatalogueFacts(catalogue, now=lambda: OFFICE_OPEN))
    # The open and at-risk clocks, from an (empty) deadline index, as the processor has them.
    metrics.registry.register(OpenClocks(DeadlineIndex(), catalogue.norms))
    return metrics


@pytest.fixture(scope="module")
def targets(processor_metrics: ProcessorMetrics) -> Iterator[dict[str, int]]:
    notifier = NotifierMetrics(CollectorRegistry())
    with ExitStack() as stack:
        yield {
            "normwacht-processor": stack.enter_context(_serve(processor_metrics.registry)),
            "normwacht-notifier": stack.enter_context(_serve(notifier.registry)),
        }


@pytest.fixture(scope="module")
def prometheus(
    processor_metrics: ProcessorMetrics,
    targets: dict[str, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """Prometheus after it saw phone.answer in Bergen go from nothing to 9 met, 3 breached of
    which 1 was later corrected: so ratios and their vector matches meet real series."""
    workdir = tmp_path_factory.mktemp("prometheus")
    jobs = "".join(
        f"  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        for job, port in sorted(targets.items())
    )
    config = workdir / "prometheus.yml"
    config.write_text(f"global:\n  scrape_interval: 1s\nscrape_configs:\n{jobs}")
    with running_prometheus(config, workdir) as running:
        _wait_for(running.url, "normwacht_sla_met_total")
        labels = ("phone.answer", "phone", "bergen")
        processor_metrics.met.labels(*labels).inc(9)
        processor_metrics.breaches.labels(*labels).inc(3)
        processor_metrics.superseded.labels(*labels, "breached").inc(1)
        _wait_for(running.url, 'increase(normwacht_sla_superseded_total{kind="breached"}[1m]) > 0')
        yield running.url


def _query(url: str, expr: str) -> httpx.Response:
    return httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10.0)


def _wait_for(url: str, expr: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body: dict[str, Any] = _query(url, expr).json()
        if body["status"] == "success" and body["data"]["result"]:
            return
        time.sleep(0.2)
    raise AssertionError(f"Prometheus has no result for {expr} after {timeout_s} s")


@pytest.mark.parametrize(
    ("board", "title", "expr"), QUERIES, ids=[f"{b}:{t}" for b, t, _ in QUERIES]
)
def test_panel_query_runs(prometheus: str, board: str, title: str, expr: str) -> None:
    response = _query(prometheus, expr)
    body = response.json()
    assert (response.status_code, body["status"]) == (200, "success"), (
        f"{board} / {title}: {body.get('errorType')}: {body.get('error')}\n{expr}"
    )


def test_a_parse_error_is_caught(prometheus: str) -> None:
    """The check above can fail: Prometheus refuses a broken query with 400 bad_data."""
    response = _query(prometheus, "sum by (norm (normwacht_sla_open_timers)")
    assert (response.status_code, response.json()["errorType"]) == (400, "bad_data")


def test_municipal_panels_see_the_declared_series(prometheus: str) -> None:
    """With all municipalities selected, the variable's own query and the office panel fill."""
    queries = dict(panel_queries(build_all()["overview.json"]))
    result = _query(prometheus, queries["Office open now"]).json()["data"]["result"]
    assert {r["metric"]["municipality"] for r in result} == set(
        catalogue_file.load().municipalities
    )


def test_panels_held_to_office_hours_fill_while_an_office_is_open(prometheus: str) -> None:
    queries = panel_queries(build_all()["channels.json"])
    held = [(t, e) for t, e in queries if "normwacht_office_open" in e]
    assert len(held) >= 3  # social media and WhatsApp waiting, at risk, over time
    for title, expr in held:
        result = _query(prometheus, expr).json()["data"]["result"]
        assert result, title


def test_compliance_counts_standing_outcomes(prometheus: str) -> None:
    """9 met, 3 breached, 1 breach corrected: 9 / (9 + 2) stand, beside the objective."""
    queries = panel_queries(build_all()["overview.json"])
    compliance, objective_query = (e for t, e in queries if t.startswith("Compliance per norm"))
    result = _query(prometheus, compliance).json()
    (row,) = result["data"]["result"]
    assert row["metric"] == {"norm": "phone.answer", "municipality": "bergen"}
    assert float(row["value"][1]) == pytest.approx(9 / 11)
    objective = catalogue_file.load().objective("phone.answer", "bergen")
    shown = {
        (r["metric"]["norm"], r["metric"]["municipality"]): float(r["value"][1])
        for r in _query(prometheus, objective_query).json()["data"]["result"]
    }
    assert shown[("phone.answer", "bergen")] == objective
    (below_query,) = (e for t, e in queries if t == "Norms below their objective")
    below = _query(prometheus, below_query).json()["data"]["result"]
    assert [float(r["value"][1]) for r in below] == [1.0 if objective > 9 / 11 else 0.0]
