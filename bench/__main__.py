"""Benchmarks on the real broker and the real services: `python -m bench --help`.

Each command starts its own broker (in a temporary folder, on free ports) and the
services it needs as processes, exactly as the tests do, measures, prints a table
and writes the figures to `bench/results/`. Figures go into docs/BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from bench import engine_cost, handler_cost, ingest_load, report_cost
from normwacht.catalogue_file import load
from services.shared.kafka import KafkaSettings, ensure_topics
from services.sla_processor.due_records import HEADER
from tests.support.broker import free_port, running_broker
from tests.support.events import call_event, call_pairs, cloud_event, random_id
from tests.support.monitoring import alertmanager_config, running_alertmanager
from tests.support.receivers import Webhook, running_smtp, running_webhook
from tests.support.scenario import NOTE_KINDS, calls
from tests.support.services import Service, metric_sum, running_service
from tests.support.system import create_topics, fresh_kafka, kafka_env

app = typer.Typer(no_args_is_help=True, help=__doc__)
RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Stack:
    kafka: KafkaSettings
    env: dict[str, str]
    workdir: Path


@contextmanager
def broker_stack(partitions: int = 6) -> Iterator[Stack]:
    with (
        tempfile.TemporaryDirectory(prefix="normwacht-bench-") as tmp,
        running_broker(Path(tmp) / "kafka") as bootstrap,
    ):
        kafka = fresh_kafka(bootstrap, prefix="b", partitions=partitions)
        run = kafka.events_topic.split(".")[0]
        create_topics(kafka, f"normwacht-bench-{run}")
        env = {
            **kafka_env(kafka),
            "NORMWACHT_PROCESSOR_APP_ID": f"normwacht-bench-{run}",
            "NORMWACHT_PROCESSOR_DATA_DIR": str(Path(tmp) / "processor"),
            "NORMWACHT_PROCESSOR_LOG_LEVEL": "WARNING",
            # One key for every worker of the run, as a deployment's.
            "NORMWACHT_PROCESSOR_DUE_RECORD_KEY": secrets.token_hex(32),
            "NORMWACHT_INGEST_LOG_LEVEL": "WARNING",
            "NORMWACHT_INGEST_DATA_DIR": str(Path(tmp) / "ingest"),
            # The development token, and a partner registry of the run's own.
            "NORMWACHT_INGEST_ENVIRONMENT": "development",
            "DATABASE_URL": f"sqlite:///{Path(tmp) / 'normwacht.db'}",
        }
        yield Stack(kafka, env, Path(tmp))


def start(
    stack: Stack,
    stack_exit: ExitStack,
    name: str,
    worker: int = 0,
    extra_env: dict[str, str] | None = None,
    port: int | None = None,
) -> tuple[str, Service]:
    """Start a service; processor workers after the first get their own state and log folder."""
    port = port or free_port()
    env = {
        **stack.env,
        **(extra_env or {}),
        f"NORMWACHT_{'PROCESSOR_WEB' if name == 'processor' else name.upper()}_PORT": str(port),
    }
    log_dir = stack.workdir
    if worker:
        env["NORMWACHT_PROCESSOR_DATA_DIR"] = str(stack.workdir / f"processor-{worker}")
        log_dir = stack.workdir / f"worker-{worker}"
        log_dir.mkdir(exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    service = stack_exit.enter_context(running_service(name, env, url + "/healthz", log_dir))
    return url, service


def start_workers(stack: Stack, stack_exit: ExitStack, workers: int) -> list[tuple[str, Service]]:
    """Processor workers in one group: the partitions are shared out among them."""
    return [start(stack, stack_exit, "processor", worker) for worker in range(workers)]


def workers_sum(processors: list[tuple[str, Service]], *names: str) -> float:
    """`metric_sum` over every processor worker."""
    return sum(metric_sum(url + "/metrics", *names) for url, _ in processors)


def bulk_producer(kafka: KafkaSettings) -> AIOKafkaProducer:
    """A producer for filling a topic fast: large batches, 20 ms linger."""
    return AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap, linger_ms=20, max_batch_size=256 * 1024
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def save(name: str, figures: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    record = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        **figures,
    }
    path = RESULTS / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(record, indent=2))
    typer.echo(f"wrote {path}")


@contextmanager
def py_spy(pid: int, output: Path) -> Iterator[None]:
    """Sample `pid` with py-spy while the block runs; writes collapsed stacks to `output`."""
    recorder = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("py-spy")),
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--output",
            str(output),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=30)
        typer.echo(f"profile: {output}")


# --- breach latency ---------------------------------------------------------------------


async def _background_load(kafka: KafkaSettings, rate: int, stop: asyncio.Event) -> int:
    """Answered calls (queued + answered, both met) at `rate` events per second."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, linger_ms=5)
    await producer.start()
    sent = 0
    started = time.monotonic()
    try:
        while not stop.is_set():
            due = int((time.monotonic() - started) * rate)
            while sent < due:
                subject = random_id("BG-", 12)
                now = datetime.now(UTC)
                for kind, at in (("queued", now - timedelta(seconds=3)), ("answered", now)):
                    event = call_event(subject, kind, at)
                    await producer.send(
                        kafka.events_topic, json.dumps(event).encode(), key=subject.encode()
                    )
                    sent += 1
            await asyncio.sleep(0.01)
    finally:
        await producer.stop()
    return sent


async def _post_to_ingest(ingest: str, events: list[dict[str, Any]]) -> None:
    """Through ingest, as sources do, in batches of 200."""
    async with httpx.AsyncClient(timeout=30) as client:
        for i in range(0, len(events), 200):
            response = await client.post(
                f"{ingest}/v1/events",
                content=json.dumps(events[i : i + 200]),
                headers={
                    "Content-Type": "application/cloudevents-batch+json",
                    "Authorization": "Bearer normwacht-dev-token",
                },
            )
            response.raise_for_status()


async def _measure_breaches(
    stack: Stack, ingest: str, calls: int, spread_s: float, background: int
) -> dict[str, Any]:
    # The topics are new for every run, so reading from the start sees only our outcomes.
    consumer = AIOKafkaConsumer(
        stack.kafka.outcomes_topic,
        bootstrap_servers=stack.kafka.bootstrap,
        auto_offset_reset="earliest",
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
    )
    await consumer.start()
    stop = asyncio.Event()
    load = (
        asyncio.create_task(_background_load(stack.kafka, background, stop)) if background else None
    )
    # Calls queued so that their deadlines fall 2 .. 2+spread_s seconds from now.
    now = datetime.now(UTC)
    events = [
        call_event(
            f"LAT-{n}",
            "queued",
            now - timedelta(seconds=20) + timedelta(seconds=2 + random.uniform(0, spread_s)),
        )
        for n in range(calls)
    ]
    await _post_to_ingest(ingest, events)
    published: list[float] = []
    received: list[float] = []
    deadline_by_subject = {
        e["subject"]: datetime.fromisoformat(e["time"]).timestamp() + 20 for e in events
    }
    deadlines = dict(deadline_by_subject)
    breached_at: dict[str, float] = {}
    give_up = time.monotonic() + spread_s + 60
    while len(published) < calls and time.monotonic() < give_up:
        batches = await consumer.getmany(timeout_ms=200)
        arrived = time.time()
        for records in batches.values():
            for record in records:
                outcome = json.loads(record.value)
                if outcome["kind"] == "breached" and outcome["subject"] in deadline_by_subject:
                    # pop: a breach read twice (a redelivery) is counted once.
                    deadline = deadline_by_subject.pop(outcome["subject"])
                    published.append(record.timestamp / 1000 - deadline)
                    breached_at[outcome["subject"]] = record.timestamp / 1000
                    received.append(arrived - deadline)
    stop.set()
    sent = await load if load else 0
    await consumer.stop()
    missing = calls - len(published)
    # A breach that did not come within the wait counts as infinitely late, so that the
    # percentiles show an overloaded processor instead of the run failing.
    published += [math.inf] * missing
    received += [math.inf] * missing
    written = await _due_records_written(stack.kafka, set(deadlines))
    # Each breach's wait in two: until the due-record that decided it was written (the
    # watermark reaching the deadline, the timer's tick), and from there to the breach
    # (the due-record read back behind the records before it, and applied).
    until_due: list[float] = []
    due_to_breach: list[float] = []
    for subject, breached in breached_at.items():
        due = max((t for t in written.get(subject, ()) if t <= breached), default=None)
        if due is not None:
            until_due.append(due - deadlines[subject])
            due_to_breach.append(breached - due)
    return {
        "breaches": calls - missing,
        "missing": missing,
        "background_events": sent,
        "publish_p50_s": percentile(published, 0.5),
        "publish_p99_s": percentile(published, 0.99),
        "publish_max_s": max(published),
        "received_p99_s": percentile(received, 0.99),
        "due_record_written_p99_s": percentile(until_due, 0.99) if until_due else math.nan,
        "due_record_to_breach_p99_s": (
            percentile(due_to_breach, 0.99) if due_to_breach else math.nan
        ),
    }


async def _whole_topic(kafka: KafkaSettings, topic: str) -> AsyncIterator[ConsumerRecord[Any, Any]]:
    """Every record of `topic`, from its start to its end when called."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(kafka.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for records in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                for record in records:
                    yield record
    finally:
        await consumer.stop()


async def _due_records_written(kafka: KafkaSettings, subjects: set[str]) -> dict[str, list[float]]:
    """When the processor wrote each due-record for `subjects` into the events topic."""
    written: dict[str, list[float]] = {}
    async for record in _whole_topic(kafka, kafka.events_topic):
        subject = (record.key or b"").decode()
        if subject in subjects and any(name == HEADER for name, _ in record.headers):
            written.setdefault(subject, []).append(record.timestamp / 1000)
    return written


@app.command("breach-latency")
def breach_latency(
    calls: int = 500,
    spread_s: float = 15.0,
    background_rate: int = 200,
    runs: int = 3,
    workers: int = typer.Option(1, help="Processor workers sharing the partitions"),
    relative_load: float = typer.Option(
        0.0,
        help="If set (e.g. 0.5): measure the processor's capacity first in the same run "
        "(--capacity-events through it), and use this share of it as the background rate",
    ),
    capacity_events: int = 100_000,
) -> None:
    """Time from each deadline to its breach on the outcomes topic, with background load."""
    results = []
    for run in range(runs):
        with broker_stack() as stack, ExitStack() as services:
            figures: dict[str, Any] = {}
            if relative_load:
                asyncio.run(_fill(stack.kafka, capacity_events))
            processors = start_workers(stack, services, workers)
            if relative_load:
                capacity, _ = _processing_rate(processors, capacity_events)
                background_rate = round(relative_load * capacity)
                figures |= {"capacity_eps": capacity, "background_rate": background_rate}
            ingest, _ = start(stack, services, "ingest")
            figures |= asyncio.run(
                _measure_breaches(stack, ingest, calls, spread_s, background_rate)
            )
            figures["processor_histogram_count"] = workers_sum(
                processors, "normwacht_sla_breach_publication_delay_seconds_count"
            )
            typer.echo(f"run {run + 1}: {figures}")
            results.append(figures)
    summary = {k: statistics.median(r[k] for r in results) for k in results[0]}
    typer.echo(
        f"median of {runs} runs: p50 {summary['publish_p50_s']:.3f} s, "
        f"p99 {summary['publish_p99_s']:.3f} s, max {summary['publish_max_s']:.3f} s "
        f"over {calls} breaches with {summary.get('background_rate', background_rate):.0f} "
        f"events/s background, {workers} worker(s)"
    )
    save(
        "breach-latency",
        {
            "calls": calls,
            "background_rate": background_rate,
            "relative_load": relative_load,
            "workers": workers,
            "runs": results,
            "median": summary,
        },
    )


# --- notification latency ---------------------------------------------------------------

URGENT_TERM = timedelta(hours=2)


async def _measure_notifications(
    stack: Stack, ingest: str, webhook: Webhook, breaches: int, spread_s: float, background: int
) -> dict[str, Any]:
    """Urgent reports whose 2 hours run out over `spread_s` seconds; nobody acts on them."""
    stop = asyncio.Event()
    load = (
        asyncio.create_task(_background_load(stack.kafka, background, stop)) if background else None
    )
    await asyncio.sleep(3)  # let the background load settle in before the first deadline
    now = datetime.now(UTC)
    reports = [
        cloud_event(
            "report.received",
            now - URGENT_TERM + timedelta(seconds=5 + random.uniform(0, spread_s)),
            random_id("PAGE-", 10),
            municipality=random.choice(("bergen", "uitgeest", "castricum", "heiloo")),
            source="urn:buch:bench:meldingen",
            data={"urgent": True},
        )
        for _ in range(breaches)
    ]
    await _post_to_ingest(ingest, reports)
    deadlines = {
        r["subject"]: (datetime.fromisoformat(r["time"]) + URGENT_TERM).timestamp() for r in reports
    }
    delays: dict[str, float] = {}
    give_up = time.monotonic() + spread_s + 60
    while len(delays) < breaches and time.monotonic() < give_up:
        for at, status, alert in webhook.alerts():
            subject = alert["labels"].get("subject", "")
            breached = alert["labels"].get("alertname") == "NormBreached"  # not NormAtRisk
            if status == "firing" and breached and subject in deadlines and subject not in delays:
                delays[subject] = at - deadlines[subject]
        await asyncio.sleep(0.2)
    stop.set()
    sent = await load if load else 0
    missing = breaches - len(delays)
    # A page that never came counts as infinitely late: the percentiles show it.
    values = [*delays.values(), *[math.inf] * missing]
    return {
        "breaches": len(delays),
        "missing": missing,
        "background_events": sent,
        "p50_s": percentile(values, 0.5),
        "p99_s": percentile(values, 0.99),
        "max_s": max(values),
    }


@app.command("notify-latency")
def notify_latency(
    breaches: int = 200,
    spread_s: float = 30.0,
    background_rate: int = 100,
    runs: int = 3,
) -> None:
    """Time from a deadline to the page at the webhook: processor, notifier, Alertmanager."""
    results = []
    for run in range(runs):
        with (
            broker_stack() as stack,
            ExitStack() as services,
            running_webhook() as webhook,
            running_smtp() as mailbox,
        ):
            am_config = alertmanager_config(stack.workdir, webhook.url, mailbox.port)
            alertmanager = services.enter_context(running_alertmanager(am_config, stack.workdir))
            start(stack, services, "processor")
            ingest, _ = start(stack, services, "ingest")
            notifier_env = {
                "NORMWACHT_NOTIFIER_ALERTMANAGER_URL": alertmanager.url,
                "NORMWACHT_NOTIFIER_DATABASE_URL": f"sqlite:///{stack.workdir / 'notifier.db'}",
                "NORMWACHT_NOTIFIER_LOG_LEVEL": "WARNING",
            }
            start(stack, services, "notifier", extra_env=notifier_env)
            figures = asyncio.run(
                _measure_notifications(stack, ingest, webhook, breaches, spread_s, background_rate)
            )
            figures["mails"] = len(mailbox.items)
            typer.echo(f"run {run + 1}: {figures}")
            results.append(figures)
    summary = {k: statistics.median(r[k] for r in results) for k in results[0]}
    typer.echo(
        f"median of {runs} runs: p50 {summary['p50_s']:.3f} s, p99 {summary['p99_s']:.3f} s, "
        f"max {summary['max_s']:.3f} s over {breaches} pages with {background_rate} events/s "
        "background"
    )
    save(
        "notify-latency",
        {
            "breaches": breaches,
            "spread_s": spread_s,
            "background_rate": background_rate,
            "runs": results,
            "median": summary,
        },
    )


# --- throughput -------------------------------------------------------------------------


async def _fill(kafka: KafkaSettings, events: int) -> None:
    producer = bulk_producer(kafka)
    await producer.start()
    base = datetime.now(UTC) - timedelta(hours=1)
    try:
        for subject, event in call_pairs(events // 2, base):
            await producer.send(
                kafka.events_topic, json.dumps(event).encode(), key=subject.encode()
            )
        await producer.flush()
    finally:
        await producer.stop()


async def _bare_read(kafka: KafkaSettings, events: int) -> float:
    consumer = AIOKafkaConsumer(
        kafka.events_topic,
        bootstrap_servers=kafka.bootstrap,
        auto_offset_reset="earliest",
        group_id=f"bare-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen = 0
    started = None
    try:
        while seen < events:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            if batches and started is None:
                started = time.perf_counter()
            seen += sum(len(records) for records in batches.values())
    finally:
        await consumer.stop()
    assert started is not None
    return events / (time.perf_counter() - started)


def _processing_rate(processors: list[tuple[str, Service]], events: int) -> tuple[float, float]:
    """Events per second the workers apply until they have applied `events`, from the
    first one counted to the last (a scrape of one counter every 0.2 s), and the workers'
    CPU microseconds per event over the same stretch."""
    first_seen = first_count = first_cpu = None
    while True:
        count = workers_sum(processors, "normwacht_processor_events_total")
        if count and first_seen is None:
            first_seen, first_count = time.perf_counter(), count
            first_cpu = sum(service.cpu_seconds() for _, service in processors)
        if count >= events:
            break
        time.sleep(0.2)
    assert first_seen is not None
    assert first_count is not None
    assert first_cpu is not None
    cpu = sum(service.cpu_seconds() for _, service in processors) - first_cpu
    applied = events - first_count
    return applied / (time.perf_counter() - first_seen), cpu / applied * 1e6


FLOOR_MODES = ("count", "send", "batch", "table", "table+send")


def _faust_floor(stack: Stack, mode: str, events: int, patched: str = "0") -> float:
    """Events per second of `bench/faust_floor.py` in `mode` over the events topic.

    `patched` is its FLOOR_PATCHED: "1" for services/sla_processor/faust_compat.py's
    patches as the processor applies them, "0" for faust as released.
    """
    name = f"floor-{mode}-patched-{patched}"
    result = stack.workdir / f"{name}.json"
    sink = f"{stack.kafka.events_topic}.floor"
    app_id = f"floor-{uuid.uuid4().hex[:8]}"
    # The changelog before faust starts, as the processor does (see its main.py).
    ensure_topics(
        stack.kafka.model_copy(update={"outcomes_topic": sink}),
        compacted=[f"{app_id}-floor-changelog"],
    )
    env = {
        **os.environ,
        "FLOOR_APP_ID": app_id,
        "FLOOR_BOOTSTRAP": stack.kafka.bootstrap,
        "FLOOR_TOPIC": stack.kafka.events_topic,
        "FLOOR_PARTITIONS": str(stack.kafka.partitions),
        "FLOOR_SINK": sink,
        "FLOOR_EVENTS": str(events),
        "FLOOR_MODE": mode,
        "FLOOR_PATCHED": patched,
        "FLOOR_DATA_DIR": str(stack.workdir / name),
        "FLOOR_RESULT": str(result),
    }
    log = (stack.workdir / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.faust_floor", "worker"], env=env, stdout=log, stderr=log
    )
    try:
        give_up = time.monotonic() + 600
        while not result.exists():
            if process.poll() is not None or time.monotonic() > give_up:
                raise RuntimeError(f"faust floor {name} failed: see {log.name}")
            time.sleep(0.5)
        rate: float = json.loads(result.read_text())["events_per_s"]
        return rate
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@app.command()
def throughput(
    events: int = 100_000,
    runs: int = 3,
    profile: bool = typer.Option(False, help="Record the first worker with py-spy"),
    workers: int = typer.Option(1, help="Processor workers sharing the partitions"),
    floors: bool = typer.Option(
        False,
        help="Also run bare faust agents (count; + a send, or a batch append; + a table write; "
        "+ a table write and a send) on the topic, "
        "as released and with services/sla_processor/faust_compat.py's patches",
    ),
) -> None:
    """Events per second through the processor (RocksDB state) against a bare aiokafka consumer."""
    results = []
    for run in range(runs):
        with broker_stack() as stack, ExitStack() as services:
            asyncio.run(_fill(stack.kafka, events))
            bare = asyncio.run(_bare_read(stack.kafka, events))
            processors = start_workers(stack, services, workers)
            if profile:
                RESULTS.mkdir(exist_ok=True)
                services.enter_context(
                    py_spy(processors[0][1].pid, RESULTS / f"throughput-profile-{run + 1}.txt")
                )
            rate, cpu_us = _processing_rate(processors, events)
            figures = {
                "bare_consumer_eps": bare,
                "processor_eps": rate,
                "processor_cpu_us_per_event": cpu_us,
                "ratio": rate / bare,
                "processor_rss_mib": max(service.rss_bytes() for _, service in processors) / 2**20,
            }
            services.close()  # the floors run alone, as the processor did
            if floors:
                # Unpatched and patched alternate, and which goes first alternates by run,
                # so that neither always meets a warmer broker.
                order = ("0", "1") if run % 2 == 0 else ("1", "0")
                for mode in FLOOR_MODES:
                    for patched in order:
                        key = f"faust_{mode}{'_patched' if patched == '1' else ''}"
                        figures[f"{key}_eps"] = _faust_floor(stack, mode, events, patched)
                        figures[f"{key}_ratio"] = figures[f"{key}_eps"] / bare
            typer.echo(f"run {run + 1}: {figures}")
            results.append(figures)
    summary = {k: statistics.median(r[k] for r in results) for k in results[0]}
    typer.echo(
        f"median of {runs} runs: processor {summary['processor_eps']:.0f} events/s, bare consumer "
        f"{summary['bare_consumer_eps']:.0f} events/s ({summary['ratio']:.1%}), {workers} worker(s)"
    )
    save("throughput", {"events": events, "workers": workers, "runs": results, "median": summary})


# --- open clocks ------------------------------------------------------------------------


async def _fill_reports(kafka: KafkaSettings, reports: int) -> None:
    """Public-space reports received now: two open clocks each, due in 10 working days."""
    producer = bulk_producer(kafka)
    await producer.start()
    now = datetime.now(UTC)
    try:
        for n in range(reports):
            subject = f"REP-{n}"
            event = {
                "specversion": "1.0", "id": f"{subject}-r", "source": "urn:buch:meldingen",
                "type": "nl.buch.report.received", "time": now.isoformat(), "subject": subject,
                "municipality": "heiloo", "data": {"urgent": False},
            }  # fmt: skip
            await producer.send(
                kafka.events_topic, json.dumps(event).encode(), key=subject.encode()
            )
        await producer.flush()
    finally:
        await producer.stop()


async def _first_breach(kafka: KafkaSettings, subject: str, timeout_s: float) -> float:
    consumer = AIOKafkaConsumer(
        kafka.outcomes_topic, bootstrap_servers=kafka.bootstrap, auto_offset_reset="latest",
        group_id=f"fire-{uuid.uuid4().hex[:6]}",
    )  # fmt: skip
    await consumer.start()
    try:
        give_up = time.monotonic() + timeout_s
        while time.monotonic() < give_up:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    outcome = json.loads(record.value)
                    if outcome["subject"] == subject and outcome["kind"] == "breached":
                        return time.monotonic()
        raise RuntimeError(f"no breach for {subject} within {timeout_s} s")
    finally:
        await consumer.stop()


@app.command("open-clocks")
def open_clocks(
    reports: int = 50_000,
    static_membership: bool = typer.Option(
        False, help="Run the worker with NORMWACHT_PROCESSOR_INSTANCE_ID (Kafka static membership)"
    ),
) -> None:
    """Open clocks on one worker: memory, a tick with nothing due, a kill -9 and restart."""
    member = {"NORMWACHT_PROCESSOR_INSTANCE_ID": "bench-worker-0"} if static_membership else {}
    with broker_stack() as stack, ExitStack() as services:
        asyncio.run(_fill_reports(stack.kafka, reports))
        processor, service = start(stack, services, "processor", extra_env=member)
        baseline_rss = service.rss_bytes()
        loading = time.perf_counter()
        while metric_sum(processor + "/metrics", "normwacht_processor_events_total") < reports:
            time.sleep(1.0)
        load_s = time.perf_counter() - loading
        time.sleep(10)  # ticks with nothing due
        clocks = metric_sum(processor + "/metrics", "normwacht_sla_open_timers")
        ticks = metric_sum(processor + "/metrics", "normwacht_processor_tick_seconds_count")
        tick_total = metric_sum(processor + "/metrics", "normwacht_processor_tick_seconds_sum")
        rss = service.rss_bytes()
        # Kill it, start it again on the same state, and time until it breaches again.
        os.kill(service.pid, signal.SIGKILL)
        killed = time.monotonic()
        # At the same address, as a restarted StatefulSet pod: a static member's is part of
        # its identity (see ProcessorSettings.group_instance_id).
        start(stack, services, "processor", extra_env=member, port=int(processor.rsplit(":", 1)[1]))
        subject = "CALL-AFTER-RESTART"
        queued = call_event(subject, "queued", datetime.now(UTC) - timedelta(seconds=19))
        asyncio.run(_send(stack.kafka, [queued]))
        fired = asyncio.run(_first_breach(stack.kafka, subject, timeout_s=300))
        figures = {
            "reports": reports,
            "static_membership": static_membership,
            "open_clocks": clocks,
            "load_s": load_s,
            "rss_mib": rss / 2**20,
            "rss_per_clock_bytes": (rss - baseline_rss) / max(clocks, 1),
            "mean_tick_ms": 1000 * tick_total / max(ticks, 1),
            "ticks": ticks,
            "restart_to_breach_s": fired - killed,
        }
        typer.echo(figures)
        save("open-clocks", figures)


# --- replay -----------------------------------------------------------------------------


async def _fill_history(kafka: KafkaSettings, events: int) -> int:
    """Calls of the resilience tests (met, breached late, abandoned, never answered), from
    eight days ago on, a second apart, written in chunks of 10,000 calls; returns how many
    events were written (at least `events`)."""
    producer = bulk_producer(kafka)
    await producer.start()
    start = (datetime.now(UTC) - timedelta(days=8)).replace(microsecond=0)
    chunk, written, seed = 10_000, 0, 0
    try:
        while written < events:
            for event in calls(chunk, start + timedelta(seconds=seed * chunk), seed=seed):
                await producer.send(
                    kafka.events_topic, json.dumps(event).encode(), key=event["subject"].encode()
                )
                written += 1
            seed += 1
        await producer.flush()
    finally:
        await producer.stop()
    return written


async def _decisions(kafka: KafkaSettings, topic: str) -> dict[str, int]:
    """Every outcome on `topic` but at-risk warnings (a live-only signal): id -> content hash."""
    decisions: dict[str, int] = {}
    async for record in _whole_topic(kafka, topic):
        outcome = json.loads(record.value)
        if outcome["kind"] not in NOTE_KINDS:
            decisions[outcome["id"]] = hash(record.value)
    return decisions


DECIDED = ("breaches", "met", "excluded", "cancelled", "corrections")


def _run_until_settled(stack: Stack, services: ExitStack, events: int) -> tuple[float, Service]:
    """Start a worker; wait until it has read `events` events and published all it will."""
    url, service = start(stack, services, "processor")
    started = time.perf_counter()
    while metric_sum(url + "/metrics", "normwacht_processor_events_total") < events:
        time.sleep(2.0)
    read_s = time.perf_counter() - started
    last, quiet_since = -1.0, time.monotonic()
    while time.monotonic() - quiet_since < 10:  # outcomes from due-records still coming
        now = metric_sum(
            url + "/metrics",
            *(f"normwacht_sla_{kind}_total" for kind in DECIDED),
        )
        if now != last:
            last, quiet_since = now, time.monotonic()
        time.sleep(1.0)
    return read_s, service


@app.command()
def replay(events: int = 1_000_000) -> None:
    """A live run over history, then a replay from the start: identical outcomes, and how fast."""
    with broker_stack() as stack, ExitStack() as services:
        written = asyncio.run(_fill_history(stack.kafka, events))
        live_s, live = _run_until_settled(stack, services, written)
        live_rss = live.rss_bytes()
        services.close()
        # A second app (its own group, state and outcomes topic) reads the same events
        # topic, due-records included, from the start.
        replay_kafka = stack.kafka.model_copy(
            update={"outcomes_topic": stack.kafka.outcomes_topic + ".replay"}
        )
        create_topics(replay_kafka, stack.env["NORMWACHT_PROCESSOR_APP_ID"] + "-replay")
        replay_stack = Stack(
            replay_kafka,
            {
                **stack.env,
                **kafka_env(replay_kafka),
                "NORMWACHT_PROCESSOR_APP_ID": stack.env["NORMWACHT_PROCESSOR_APP_ID"] + "-replay",
                "NORMWACHT_PROCESSOR_DATA_DIR": str(stack.workdir / "replay-state"),
            },
            stack.workdir,
        )
        with ExitStack() as replay_services:
            replay_s, _ = _run_until_settled(replay_stack, replay_services, written)
        live_decisions = asyncio.run(_decisions(stack.kafka, stack.kafka.outcomes_topic))
        replayed = asyncio.run(_decisions(replay_kafka, replay_kafka.outcomes_topic))
        differing = sum(1 for k, v in live_decisions.items() if replayed.get(k) != v)
        figures = {
            "events": written,
            "live_events_per_s": written / live_s,
            "replay_events_per_s": written / replay_s,
            "live_rss_mib": live_rss / 2**20,
            "decisions_live": len(live_decisions),
            "decisions_replayed": len(replayed),
            "missing_or_different": differing,
            "extra": len(set(replayed) - set(live_decisions)),
        }
        typer.echo(figures)
        save("replay", figures)
        if differing or figures["extra"]:
            raise typer.Exit(1)


async def _send(kafka: KafkaSettings, events: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                kafka.events_topic, json.dumps(event).encode(), key=event["subject"].encode()
            )
    finally:
        await producer.stop()


# --- deadlines ------------------------------------------------------------------------


def _deadline_lines(count: int, seed: int = 7) -> str:
    catalogue = load()
    norms = []
    for norm_id in catalogue.norms:
        try:
            catalogue.deadline(norm_id, datetime(2026, 1, 5, 9, tzinfo=UTC))
            norms.append(norm_id)
        except ValueError:
            continue  # needs an event's data, not just a start time
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    lines = []
    for _ in range(count):
        at = start + timedelta(seconds=rng.randrange(2 * 365 * 86400))
        offset = rng.choice(["+00:00", "+01:00", "+02:00", "-05:00"])
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S") + offset
        municipality = rng.choice(["", "\tbergen", "\theiloo"])
        lines.append(f"{rng.choice(norms)}\t{stamp}{municipality}")
    return "\n".join(lines) + "\n"


@app.command()
def deadlines(lines: int = 10_000, runs: int = 5) -> None:
    """`normwacht deadlines` on random lines: engine time in-process, and the whole command."""
    text = _deadline_lines(lines)
    parsed = [line.split("\t") for line in text.splitlines()]
    engine_s, command_s = [], []
    for _ in range(runs):
        catalogue = load()
        started = time.perf_counter()
        for fields in parsed:
            catalogue.deadline(
                fields[0],
                datetime.fromisoformat(fields[1]),
                fields[2] if len(fields) == 3 else None,
            )
        engine_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "normwacht", "deadlines"],
            input=text, capture_output=True, text=True, check=True,
        )  # fmt: skip
        command_s.append(time.perf_counter() - started)
        assert len(result.stdout.splitlines()) == lines
    summary = {"engine_s": statistics.median(engine_s), "command_s": statistics.median(command_s)}
    typer.echo(
        f"{lines} lines, median of {runs} runs: engine {summary['engine_s']:.3f} s, "
        f"whole command (start-up included) {summary['command_s']:.3f} s"
    )
    save(
        "deadlines",
        {"lines": lines, "engine_s": engine_s, "command_s": command_s, "median": summary},
    )


# --- ingest -----------------------------------------------------------------------------

# Ingest as `normwacht ingest` runs it (one uvicorn worker), in development mode so that
# the development token is accepted.
INGEST_ENV = {"NORMWACHT_INGEST_ENVIRONMENT": "development"}


@app.command("ingest-throughput")
def ingest_throughput(
    events: int = 50_000,
    batch: int = typer.Option(500, help="Events per request (ingest accepts at most 500)"),
    clients: int = typer.Option(4, help="Concurrent HTTP clients, and producer tasks"),
    runs: int = 3,
) -> None:
    """Accepted events/s of ingest with batches, against a bare producer writing the same records.

    One broker and one ingest for all runs. A first pass through ingest (not timed) warms it
    up and gives the records the bare producer writes: the same key, value and headers as
    ingest wrote, byte for byte. Then each run times both on the same topic, alternating
    which goes first.
    """
    results = []
    with broker_stack() as stack, ExitStack() as services:
        ingest, service = start(stack, services, "ingest", extra_env=INGEST_ENV)
        bodies = ingest_load.batch_bodies(ingest_load.call_events(events, "TP"), batch)
        asyncio.run(ingest_load.post_batches(ingest, bodies, clients))
        records = asyncio.run(ingest_load.written_records(stack.kafka))
        if len(records) != events:
            raise RuntimeError(f"ingest wrote {len(records)} records for {events} events")
        for run in range(runs):
            figures: dict[str, float] = {}
            order = ("ingest", "bare") if run % 2 == 0 else ("bare", "ingest")
            for which in order:
                if which == "ingest":
                    count, seconds = asyncio.run(ingest_load.post_batches(ingest, bodies, clients))
                else:
                    count, seconds = asyncio.run(
                        ingest_load.produce_batches(stack.kafka, records, batch, clients)
                    )
                if count != events:
                    raise RuntimeError(f"{which}: {count} of {events} events written")
                figures[f"{which}_eps"] = count / seconds
            figures["ratio"] = figures["ingest_eps"] / figures["bare_eps"]
            figures["ingest_rss_mib"] = service.rss_bytes() / 2**20
            typer.echo(f"run {run + 1} ({order[0]} first): {figures}")
            results.append(figures)
    summary = {k: statistics.median(r[k] for r in results) for k in results[0]}
    typer.echo(
        f"median of {runs} runs: ingest {summary['ingest_eps']:.0f} events/s, bare producer "
        f"{summary['bare_eps']:.0f} events/s ({summary['ratio']:.1%}), batches of {batch}, "
        f"{clients} clients"
    )
    save(
        "ingest-throughput",
        {"events": events, "batch": batch, "clients": clients, "runs": results, "median": summary},
    )


@app.command("ingest-latency")
def ingest_latency(
    rate: int = typer.Option(500, help="Requests per second, one event each"),
    seconds: float = 30.0,
    runs: int = 3,
) -> None:
    """Single-event requests to ingest at a fixed rate (open loop): latency p50/p99.

    Latency runs from each request's scheduled send time to its answer, so a client held up
    by a slow ingest counts the wait too. One broker and one ingest for all runs, after a
    short warm-up at the same rate.
    """
    results = []
    with broker_stack() as stack, ExitStack() as services:
        ingest, _ = start(stack, services, "ingest", extra_env=INGEST_ENV)
        asyncio.run(ingest_load.open_loop(ingest, rate, 3.0, "WARM"))
        for run in range(runs):
            measured = asyncio.run(ingest_load.open_loop(ingest, rate, seconds, f"LAT{run}"))
            figures = {
                "requests": len(measured.seconds),
                "errors": measured.errors,
                "achieved_rps": len(measured.seconds) / measured.sent_over_s,
                "p50_ms": 1000 * percentile(measured.seconds, 0.5),
                "p99_ms": 1000 * percentile(measured.seconds, 0.99),
                "max_ms": 1000 * max(measured.seconds),
            }
            typer.echo(f"run {run + 1}: {figures}")
            results.append(figures)
    summary = {k: statistics.median(r[k] for r in results) for k in results[0]}
    typer.echo(
        f"median of {runs} runs: p50 {summary['p50_ms']:.1f} ms, p99 {summary['p99_ms']:.1f} ms, "
        f"max {summary['max_ms']:.1f} ms at {rate} requests/s "
        f"({summary['errors']:.0f} errors)"
    )
    save(
        "ingest-latency",
        {"rate": rate, "seconds": seconds, "runs": results, "median": summary},
    )


# --- the engine's cost per event --------------------------------------------------------


@app.command("apply-cost")
def apply_cost(
    max_events: int = typer.Option(
        10_000, help="Events fed to one case (less for an engine whose cost grows with the case)"
    ),
    repeats: int = typer.Option(200, help="Applies timed per case size and round"),
    rounds: int = typer.Option(5, help="Rounds over every case size, in a rotated order"),
    feed_runs: int = typer.Option(3, help="Times each case shape is fed `max_events` events"),
) -> None:
    """The pure engine's `apply`, no broker: per event as a case grows, and feeding one case."""
    save("apply-cost", engine_cost.measure(max_events, repeats, rounds, feed_runs, typer.echo))


@app.command("handler-cost")
def handler_cost_command(
    calls: int = typer.Option(15_000, help="Call pairs: twice as many records"),
    rounds: int = typer.Option(5, help="Rounds, each with a new handler"),
    parts: bool = typer.Option(False, help="Also decoding, apply and encoding, each alone"),
) -> None:
    """The processor's own work per record (`RecordHandler`), no broker, no faust."""
    save("handler-cost", handler_cost.measure(calls, rounds, typer.echo, parts=parts))


@app.command("report-cost")
def report_cost_command(
    clocks: int = typer.Option(1_000_000, help="Clock rows of each year in the read model"),
    years: int = typer.Option(3, help="Years stored; the report is of the last"),
    runs: int = typer.Option(3, help="Reports asked for with the index, and as many without"),
) -> None:
    """The API's year report over a large read model (a SQLite file), no broker."""
    save("report-cost", report_cost.measure(clocks, years, runs, typer.echo))


if __name__ == "__main__":
    app()
