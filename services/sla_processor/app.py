"""The SLA processor's faust shell: it feeds `RecordHandler` (handler.py) and keeps its state.

- `process` reads the events topic and hands each record to the handler, which decides
  outcomes with the pure engine, publishes them and stages the case's new state.
- A timer pops due cases from the handler's deadline index and writes a signed
  due-record for each into the events topic itself, keyed by case (so into the case's
  own partition), carrying the watermark to decide at: the breach is decided inside
  stream processing, and because the due-record sits among the events, a replay
  decides at the same points.
- The staged state reaches faust's tables (local RocksDB and changelog topics) when
  faust is about to commit source offsets, each key's last value once (state.py).
- After every rebalance the index and the watermarks are rebuilt from the tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
import orjson
import structlog
from aiokafka.errors import MessageSizeTooLargeError
from faust.exceptions import ProducerSendError
from faust.types import TP
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from normwacht.core.catalogue import Catalogue
from services.sla_processor import due_records
from services.sla_processor.batches import BATCH_BYTES, LINGER_S, batched_outcomes
from services.sla_processor.deadlines import rules_fingerprint
from services.sla_processor.faust_compat import (
    commit_only_after_changelog_is_written,
    drained_buffers_are_read_at_once,
    fetches_wait_at_most,
    make_per_record_path_cheap,
    read_from_store,
    resume_clears_queues_only_after_a_suspension,
    uncommitted_partitions_start_from_the_beginning,
    write_staged_state_before_commit,
)
from services.sla_processor.handler import TABLES, Record, RecordHandler
from services.sla_processor.metrics import CatalogueFacts, OpenClocks, ProcessorMetrics
from services.sla_processor.settings import ProcessorSettings
from services.sla_processor.state import StagedState

log = structlog.get_logger("normwacht.processor")


COMMIT_ON_THE_TIMER_ONLY = 2**31 - 1
"""faust's `broker_commit_every` (records between commits) that is never reached."""


def changelog_topics(app_id: str) -> list[str]:
    """The tables' changelog topics, named as faust names them."""
    return [f"{app_id}-{table}-changelog" for table in TABLES]


MIN_DUE_RECORD_KEY_BYTES = 32
"""As for the pseudonym keys: a key that short cannot be guessed."""


class NoDueRecordKey(ValueError):
    def __init__(self, what: str = "is not set") -> None:
        super().__init__(
            f"NORMWACHT_PROCESSOR_DUE_RECORD_KEY {what}: the processor signs the "
            "due-records it writes into the events topic with it, and acts on no others. "
            "Give every worker of a deployment the same secret of at least "
            f"{MIN_DUE_RECORD_KEY_BYTES} bytes, e.g. `openssl rand -hex 32` "
            "(deploy/run.sh makes one for `make run`)."
        )


def due_record_key(settings: ProcessorSettings) -> bytes:
    """The key due-records are signed with. One for the whole deployment: a worker that
    takes over a partition, or replays it, must accept its predecessor's due-records."""
    if settings.due_record_key is None or not settings.due_record_key.get_secret_value():
        raise NoDueRecordKey()
    key = settings.due_record_key.get_secret_value().encode()
    if len(key) < MIN_DUE_RECORD_KEY_BYTES:
        raise NoDueRecordKey(f"is {len(key)} bytes long")
    return key


def create_app(
    settings: ProcessorSettings, catalogue: Catalogue, metrics: ProcessorMetrics | None = None
) -> faust.App:
    due_key = due_record_key(settings)  # before anything is made: it may refuse
    kafka = settings.kafka
    metrics = metrics or ProcessorMetrics()
    lateness = timedelta(seconds=settings.allowed_lateness_s)

    app = faust.App(
        settings.app_id,
        broker=f"kafka://{kafka.bootstrap}",
        # TLS and SASL for every client faust makes (consumer, producer, topic admin).
        broker_credentials=kafka.faust_credentials(),
        store=settings.store,
        datadir=str(settings.data_dir),
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        table_standby_replicas=0,
        producer_acks=-1,
        # Batch outcome and changelog writes for 50 ms instead of one request per record:
        # measured +26 % events/s over 5 ms; a breach waits at most that much longer.
        producer_linger=LINGER_S,
        producer_max_batch_size=BATCH_BYTES,
        broker_commit_interval=settings.commit_interval_s,
        # Commit on that timer only. faust also commits every 10,000 records, inline in
        # its fetch loop, so that no record reaches a stream until the commit's writes
        # are acknowledged (measured: 0.25 s stalls at 1,500 events/s).
        broker_commit_every=COMMIT_ON_THE_TIMER_ONLY,
        broker_session_timeout=settings.session_timeout_s,
        consumer_group_instance_id=settings.group_instance_id,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        key_serializer="raw",
        value_serializer="raw",
    )
    # Before any topic, table or agent is made (see faust_compat.py).
    make_per_record_path_cheap(app)
    commit_only_after_changelog_is_written(app.producer)
    resume_clears_queues_only_after_a_suspension(app.flow_control)
    uncommitted_partitions_start_from_the_beginning(app.consumer, kafka.events_topic)
    fetches_wait_at_most(app.consumer, settings.fetch_max_wait_s)
    drained_buffers_are_read_at_once(app.consumer, settings.fetch_max_wait_s)
    events_topic = app.topic(kafka.events_topic, partitions=kafka.partitions)
    dead_letter_topic = app.topic(kafka.dead_letter_topic)
    # Values are the handler's JSON-able state, stored as orjson bytes.
    tables = {
        name: app.Table(
            name,
            default=None,
            partitions=kafka.partitions,
            key_type=bytes,  # raw: faust neither encodes nor decodes them
            value_type=bytes,
            # Bounded memory: faust's defaults give each database 64 MB memtables and
            # a 2 GiB block cache (settings.py).
            options=settings.rocksdb_options,
        )
        for name in TABLES
    }

    def stored(table: str, key: str) -> Any:
        value = read_from_store(tables[table].data, key.encode())
        return None if value is None else orjson.loads(value)

    staged = StagedState(stored)
    outcomes = batched_outcomes(app, kafka.outcomes_topic)

    class FaustOutlets:
        async def outcome(self, subject: str, value: bytes, partition: int) -> None:
            # A batch per partition (batches.py), not faust's Topic.send (four layers of
            # coroutines per record) nor the producer's send (a future each). The
            # partition is the case's events partition: the topics are co-partitioned
            # (checked at start, main.py), so it is what hashing the key would give.
            outcomes.append(partition, subject.encode(), value)

        async def dead_letter(self, record: Record, reason: str, detail: str) -> None:
            headers = [
                ("normwacht-error", reason.encode()),
                ("normwacht-error-detail", detail.encode()),
                ("normwacht-origin", f"{record.topic}/{record.partition}/{record.offset}".encode()),
            ]
            try:
                await dead_letter_topic.send(key=record.key, value=record.value, headers=headers)
            except ProducerSendError as error:
                if not isinstance(error.__cause__, MessageSizeTooLargeError):
                    raise
                # The broker took a record larger than our producer sends (a partner's,
                # near the broker's limit): parked with why and where, without its bytes
                # (the origin names them, while the events topic keeps them).
                size = str(len(record.value or b"")).encode()
                await dead_letter_topic.send(
                    key=record.key,
                    value=None,
                    headers=[*headers, ("normwacht-value-dropped", size)],
                )

    handler = RecordHandler(
        catalogue,
        staged,
        FaustOutlets(),
        rules=rules_fingerprint(catalogue),
        due_key=due_key,
        partitions=kafka.partitions,
        lateness=lateness,
        cached_cases=settings.cached_cases,
        metrics=metrics,
        # A line per outcome at INFO; below that, skip even building it (measured: 4 %).
        log_outcomes=settings.log_level.upper() in ("DEBUG", "INFO"),
    )
    metrics.registry.register(OpenClocks(handler.index, catalogue.norms))
    metrics.registry.register(CatalogueFacts(catalogue))
    metrics.declare(catalogue)
    write_staged_state_before_commit(app, staged, tables, outcomes.flush)

    @app.agent(events_topic)
    async def process(stream: faust.StreamT[bytes]) -> None:
        # A coroutine, not a generator: faust inspects every value an agent yields
        # (for replies), which is per-record work we do not need. A record at a time, not
        # in batches (`take_events`): measured, batches saved 4-6 % of the CPU per event
        # and held breaches back by 40-90 ms at the median (docs/BENCHMARKS.md).
        async for event in stream.events():
            await handler.handle(_record(event))

    async def candidate_mark(partition: int, wall: datetime) -> datetime | None:
        """The watermark a due-record may carry now: with the wall clock when caught up."""
        mark = handler.marks.get(partition)
        tp = TP(kafka.events_topic, partition)
        highwater = app.consumer.highwater(tp)
        lag: int | None = None
        if highwater is not None and highwater >= 0:
            if partition in handler.processed:
                lag = max(0, highwater - 1 - handler.processed[partition])
            else:
                # Nothing handled since the last rebalance: the worker reads on from the
                # committed offset. Not the consumer's position: that moves when records
                # are fetched, and fetched records not yet handled counted as none left
                # (seen: a due-record at the wall clock breached calls whose answers were
                # fetched, then corrected them to met).
                committed = app.consumer._committed_offset.get(tp)  # type: ignore[attr-defined]
                lag = max(0, highwater - (committed or 0))
        if lag is not None:
            metrics.set_consumer_lag(partition, lag)
        if lag == 0:
            return max(mark, wall) if mark is not None else wall
        return mark

    @app.timer(interval=settings.tick_interval_s)  # type: ignore[untyped-decorator]
    async def send_due_records() -> None:
        with metrics.tick.time():
            await write_due_records()

    async def write_due_records() -> None:
        wall = datetime.now(UTC) - lateness
        for tp in app.consumer.assignment():
            if tp.topic != kafka.events_topic:
                continue
            mark = await candidate_mark(tp.partition, wall)
            if mark is None:
                continue
            for subject, instant, value in handler.due_records(tp.partition, mark):
                try:
                    sent = await events_topic.send(
                        key=subject.encode(),
                        value=value,
                        headers=[(due_records.HEADER, b"1")],
                    )
                except Exception as error:
                    log.warning("due_record_not_sent", error=str(error))
                    handler.retry(subject, tp.partition, instant)
                else:
                    # Queued, not yet delivered: one the producer gives up on is due again.
                    asyncio.ensure_future(sent).add_done_callback(  # faust's FutureMessage
                        retry_if_undelivered(handler, subject, tp.partition, instant)
                    )

    @app.on_rebalance_complete.connect
    async def rebuild(sender: Any, /, *_: Any, signal: Any, **__: Any) -> None:
        # What was staged and not written belongs to records that are read again from
        # the committed offsets (faust commits, writing the state, before a revocation).
        staged.discard()
        handler.restart(
            ((key.decode(), orjson.loads(value)) for key, value in tables["watermarks"].items()),
            ((key.decode(), orjson.loads(value)) for key, value in tables["cases"].items()),
        )
        held = app.consumer.assignment()
        metrics.hold_partitions(tp.partition for tp in held if tp.topic == kafka.events_topic)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # `?name[]=...` as prometheus-client's own handlers take it: only those families
        # (a full page is ~25 ms of the worker's time; the benchmarks poll one counter).
        names = request.query.getall("name[]", [])
        registry = metrics.registry.restricted_registry(names) if names else metrics.registry
        # aiohttp refuses a charset inside `content_type`; the header carries it whole.
        return web.bytes(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "open_clocks": handler.index.open_clocks})

    return app


def retry_if_undelivered(
    handler: RecordHandler, subject: str, partition: int, instant: float
) -> Callable[[asyncio.Future[Any]], None]:
    """A done-callback for a due-record's delivery: if it failed, the case is due again
    at the next tick (else its clock would wait for its case's next event)."""

    def check(delivery: asyncio.Future[Any]) -> None:
        if delivery.cancelled() or delivery.exception() is not None:
            error = "cancelled" if delivery.cancelled() else repr(delivery.exception())
            log.warning("due_record_not_delivered", subject=subject, error=error)
            handler.retry(subject, partition, instant)

    return check


def _record(event: faust.types.EventT[bytes]) -> Record:
    message = event.message
    headers = event.headers
    return Record(
        message.key,
        message.value,
        list(headers.items()) if isinstance(headers, Mapping) else headers or (),
        message.topic,
        message.partition,
        message.offset,
        message.timestamp,
    )
