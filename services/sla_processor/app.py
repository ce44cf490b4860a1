"""The SLA processor: a faust app that keeps every case's clocks and publishes outcomes.

Flow:
- `apply_events` reads the events topic, applies each event to its case with the
  pure engine, stores the case in the `cases` table and publishes the outcomes.
  Records that cannot be decoded or validated go to the dead-letter topic.
- A timer pops due clocks from the in-memory `DeadlineIndex` and sends a tick,
  keyed by case, to an internal topic co-partitioned with the events. The
  `fire_deadlines` agent applies the tick with `engine.due`: the breach is decided
  inside stream processing, so the table change goes through faust's changelog
  (a timer may not write a table; see docs/ARCHITECTURE.md).
- After every rebalance the index is rebuilt from the table's local partitions.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import ValidationError

from normwacht.core.catalogue import Catalogue
from normwacht.core.engine import Case, Outcome, Step, apply, clocks, due, next_due
from normwacht.core.events import Municipality, parse_event
from services.sla_processor.codec import decode_case, encode_case
from services.sla_processor.deadlines import DeadlineIndex
from services.sla_processor.metrics import ProcessorMetrics
from services.sla_processor.settings import ProcessorSettings

log = structlog.get_logger("normwacht.processor")


class _OpenTimers(Collector):
    """`normwacht_sla_open_timers`, read from the deadline index at scrape time."""

    def __init__(self, index: DeadlineIndex, norms: Iterable[str]) -> None:
        self._index = index
        # Every norm and municipality, zeros included, so a dashboard sees them all.
        self._labels = [(n, m.value) for n in sorted(norms) for m in Municipality]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "normwacht_sla_open_timers",
            "Clocks running now on this worker's partitions.",
            labels=("norm", "municipality"),
        )
        counts = self._index.open_counts
        for labels in self._labels:
            family.add_metric(labels, counts.get(labels, 0))
        yield family


def _explain(error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "event"
    return f"{where}: {first['msg']} ({error.error_count()} error(s))"


def create_app(
    settings: ProcessorSettings, catalogue: Catalogue, metrics: ProcessorMetrics | None = None
) -> faust.App:
    kafka = settings.kafka
    metrics = metrics or ProcessorMetrics()
    index = DeadlineIndex()
    lateness = timedelta(seconds=settings.allowed_lateness_s)
    metrics.registry.register(_OpenTimers(index, catalogue.norms))
    metrics.declare(catalogue)

    app = faust.App(
        settings.app_id,
        broker=f"kafka://{kafka.bootstrap}",
        store=settings.store,
        datadir=str(settings.data_dir),
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        table_standby_replicas=0,
        producer_acks=-1,
        # Batch outcome and changelog writes for a few ms instead of one request per record.
        producer_linger=0.005,
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        key_serializer="raw",
        value_serializer="raw",
    )
    events_topic = app.topic(kafka.events_topic, partitions=kafka.partitions)
    ticks_topic = app.topic(f"{settings.app_id}-ticks", partitions=kafka.partitions, internal=True)
    outcomes_topic = app.topic(kafka.outcomes_topic, partitions=kafka.partitions)
    dead_letter_topic = app.topic(kafka.dead_letter_topic)
    # Keys and values are JSON (faust's default for tables without a model type).
    cases = app.Table("cases", default=None, partitions=kafka.partitions)

    def load(subject: str) -> Case | None:
        stored = cases.get(subject)
        return None if stored is None else decode_case(stored)

    def now() -> datetime:
        """Event time up to which we decide: the wall clock less the allowed lateness."""
        return datetime.now(UTC) - lateness

    async def publish(step: Step, *, fired: bool = False) -> None:
        case = step.case
        cases[case.subject] = encode_case(case)
        index.track(case.subject, case.municipality, step.clocks, step.next_due)
        for outcome in step.outcomes:
            await outcomes_topic.send(
                key=outcome.subject.encode(), value=outcome.model_dump_json().encode()
            )
            metrics.count(outcome, fired_at=time.time() if fired else None)
            _log_outcome(outcome)

    async def dead_letter(record: faust.types.EventT[bytes], reason: str, detail: str) -> None:
        """Park a record we cannot use, with why, and carry on: input never stops us."""
        message = record.message
        await dead_letter_topic.send(
            key=message.key,
            value=message.value,
            headers=[
                ("normwacht-error", reason.encode()),
                ("normwacht-error-detail", detail.encode()),
                (
                    "normwacht-origin",
                    f"{message.topic}/{message.partition}/{message.offset}".encode(),
                ),
            ],
        )
        metrics.dead_letters.labels(reason).inc()
        log.warning(
            "dead_lettered",
            reason=reason,
            detail=detail,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )

    @app.agent(events_topic)
    async def apply_events(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for record in stream.events():
            try:
                event = parse_event(record.value)
            except ValidationError as error:
                await dead_letter(record, "invalid_event", _explain(error))
                continue
            if record.key != event.subject.encode():
                # The key decides the partition, and so which worker holds the case.
                await dead_letter(
                    record, "key_mismatch", "record key must equal the event's subject"
                )
                continue
            case = load(event.subject)
            # Decide on event time: up to this event's own time. Later deadlines are the
            # timer's, so a backlog read at full speed does not breach what its next
            # record would have met.
            step = apply(case, event, min(event.time, now()), catalogue)
            metrics.events.labels(event.type).inc()
            if step.case is not case:
                await publish(step)
            yield None

    @app.agent(ticks_topic)
    async def fire_deadlines(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for record in stream.events():
            tick = json.loads(record.value)
            case = load(tick["subject"])
            if case is not None:
                step = due(case, datetime.fromisoformat(tick["now"]), catalogue)
                if step.outcomes:
                    await publish(step, fired=True)
                else:
                    index.track(case.subject, case.municipality, step.clocks, step.next_due)
            yield None

    @app.timer(interval=settings.tick_interval_s)  # type: ignore[untyped-decorator]
    async def send_ticks() -> None:
        decide_up_to = now()
        stamp = decide_up_to.isoformat()
        for subject, deadline in index.pop_due(decide_up_to.timestamp()).items():
            try:
                await ticks_topic.send(
                    key=subject.encode(),
                    value=json.dumps({"subject": subject, "now": stamp}).encode(),
                )
            except Exception as error:
                log.warning("tick_not_sent", error=str(error))
                index.retry(subject, deadline)

    @app.on_rebalance_complete.connect
    async def rebuild_index(sender: Any, /, *_: Any, signal: Any, **__: Any) -> None:
        index.clear()
        at = now()
        for _subject, stored in cases.items():
            case = decode_case(stored)
            derived = clocks(case, at, catalogue)
            index.track(case.subject, case.municipality, derived, next_due(case, derived))
        log.info("deadline_index_rebuilt", open_clocks=index.open_clocks, due_cases=index.due_cases)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside `content_type`; the header carries it whole.
        return web.bytes(
            generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "open_clocks": index.open_clocks})

    return app


def _log_outcome(outcome: Outcome) -> None:
    log.info(
        "outcome",
        id=outcome.id,
        kind=outcome.kind.value,
        norm=outcome.norm,
        municipality=outcome.municipality,
        deadline=outcome.deadline.isoformat() if outcome.deadline else None,
        corrects=None if outcome.corrects is None else outcome.corrects.value,
    )
