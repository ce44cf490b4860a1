"""The SLA processor: a faust app that keeps every case's clocks and publishes outcomes.

Flow:
- `process` reads the events topic. An event is applied to its case with the pure
  engine at the partition's watermark; the case goes into the `cases` table and the
  outcomes onto the outcomes topic. A record that cannot be decoded or validated
  goes to the dead-letter topic.
- A timer pops due cases from the in-memory `DeadlineIndex` and writes a due-record
  for each into the events topic itself, keyed by case (so into the case's own
  partition), carrying the watermark to decide at. `process` applies it with
  `engine.due`: the breach is decided inside stream processing, so the table change
  goes through faust's changelog (a timer may not write a table), and because the
  due-record sits among the events, a replay decides at the same points.
- After every rebalance the index and the watermarks are rebuilt from the tables.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import faust
import structlog
from aiokafka.partitioner import murmur2
from faust.types import TP
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from normwacht.core.catalogue import Catalogue
from normwacht.core.engine import (
    MAX_FACTS,
    Case,
    Clock,
    Fact,
    Outcome,
    Step,
    apply,
    due,
    refuses,
    view,
)
from services.shared.bindings import from_kafka_record
from services.sla_processor.codec import (
    VERSIONS,
    Writes,
    clock_key,
    fact_key,
    head,
    plan_writes,
    read_case,
)
from services.sla_processor.deadlines import DeadlineIndex, IndexEntry, rules_fingerprint
from services.sla_processor.durability import (
    commit_only_after_changelog_is_written,
    committed_offset,
    resume_clears_queues_only_after_a_suspension,
    uncommitted_partitions_start_from_the_beginning,
)
from services.sla_processor.metrics import CatalogueFacts, OpenClocks, ProcessorMetrics
from services.sla_processor.settings import ProcessorSettings
from services.sla_processor.watermarks import Watermarks

log = structlog.get_logger("normwacht.processor")


def _explain(error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "event"
    return f"{where}: {first['msg']} ({error.error_count()} error(s))"


OUTBOX = VERSIONS
"""Records whose outcomes a case keeps for resending after a crash (see resend_if_replayed):
as many as its head's journal covers for redoing their writes."""

DUE_RECORD_HEADER = "normwacht-due"
"""Marks a due-record: the timer's note, in the events topic, that a case is due."""


TABLES = ("cases", "watermarks", "case_facts", "case_clocks")


class Loaded(NamedTuple):
    """A case as read: the engine's value and its head in the `cases` table."""

    case: Case
    stored: dict[str, Any]


def changelog_topics(app_id: str) -> list[str]:
    """The tables' changelog topics, named as faust names them."""
    return [f"{app_id}-{table}-changelog" for table in TABLES]


def partition_of(subject: str, partitions: int) -> int:
    """The partition the clients' default partitioner gives this case (murmur2, as Java)."""
    hashed: int = murmur2(subject.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def create_app(
    settings: ProcessorSettings, catalogue: Catalogue, metrics: ProcessorMetrics | None = None
) -> faust.App:
    kafka = settings.kafka
    metrics = metrics or ProcessorMetrics()
    index = DeadlineIndex()
    rules = rules_fingerprint(catalogue)
    lateness = timedelta(seconds=settings.allowed_lateness_s)
    marks = Watermarks(lateness)
    metrics.registry.register(OpenClocks(index, catalogue.norms))
    metrics.registry.register(CatalogueFacts(catalogue))
    metrics.declare(catalogue)
    # A line per outcome at INFO; below that, skip even building it (measured: 4 %).
    log_outcomes = settings.log_level.upper() in ("DEBUG", "INFO")

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
        producer_linger=0.05,
        broker_commit_interval=settings.commit_interval_s,
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
    commit_only_after_changelog_is_written(app.producer)
    resume_clears_queues_only_after_a_suspension(app.flow_control)
    uncommitted_partitions_start_from_the_beginning(app.consumer, kafka.events_topic)
    events_topic = app.topic(kafka.events_topic, partitions=kafka.partitions)

    async def send_outcome(subject: str, value: str, partition: int) -> None:
        # Straight to the producer: faust's Topic.send adds four layers of coroutines per
        # record (measured: about 5 % of the processor's time). The commit still waits
        # for it, as faust flushes the producer before every commit. The partition is
        # the case's events partition: the topics are created alike (ensure_topics), so
        # it is what hashing the key would give, without hashing it again per record.
        await app.producer.send(
            kafka.outcomes_topic, subject.encode(), value.encode(), partition, None, None
        )

    dead_letter_topic = app.topic(kafka.dead_letter_topic)
    # Keys and values are JSON (faust's default for tables without a model type).
    cases = app.Table(TABLES[0], default=None, partitions=kafka.partitions)
    # Each partition's watermark, so a restarted worker decides as the first one would.
    stored_marks = app.Table(TABLES[1], default=None, partitions=kafka.partitions)
    # A large case's facts in chunks, and its clocks' rows (see codec.py): an event
    # writes its case's head, bounded in size, and rarely anything else.
    case_facts = app.Table(TABLES[2], default=None, partitions=kafka.partitions)
    case_clocks = app.Table(TABLES[3], default=None, partitions=kafka.partitions)
    processed: dict[int, int] = {}  # partition -> offset of the last record processed
    persisted_marks: dict[int, float] = {}  # what `stored_marks` holds, without a store read

    # The cases last used, decoded and with the engine's derivation cache, as the tables
    # hold them (every write goes through `keep`): an event for a case in here costs
    # the same however many facts it holds. Emptied on every rebalance.
    recent: dict[str, Loaded] = {}

    def load(subject: str) -> Loaded | None:
        found = recent.pop(subject, None)
        if found is not None:
            recent[subject] = found  # the most recently used go last
            return found
        stored = cases.get(subject)
        if stored is None:
            return None
        case = read_case(
            stored,
            lambda chunk: case_facts.get(fact_key(subject, chunk)),
            lambda name: case_clocks.get(clock_key(subject, name)),
        )
        loaded = Loaded(case, stored)
        keep(loaded)
        return loaded

    def keep(loaded: Loaded) -> None:
        subject = loaded.case.subject
        recent.pop(subject, None)
        recent[subject] = loaded
        if len(recent) > settings.cached_cases:
            del recent[next(iter(recent))]

    async def resend_if_replayed(
        stored: dict[str, Any] | None, partition: int, offset: int
    ) -> bool:
        """True if this record was applied before a crash: its outcomes go out again.

        The case and the outcomes it published travel to Kafka separately; a worker
        killed between the two may have stored the case but lost the outcomes. The
        case keeps its last few outcomes by source offset (an outbox), so a record
        read again after the restart sends exactly the outcomes it made the first time.
        The record that made the stored case writes it again too: its changelog record
        may be the part lost (the records before it are replays of older versions); and
        what the head's journal says its last records wrote to the other tables is
        written again.
        """
        if stored is None or stored["offset"] < offset:
            return False
        subject = stored["case"]["subject"]
        if stored["offset"] == offset:
            cases[subject] = stored
        # What the records in the head's journal wrote to the other tables is written
        # again, oldest first: any of it may be what a crash lost.
        for _, written in stored["journal"]:
            for name, row in written["rows"].items():
                case_clocks[clock_key(subject, name)] = row
            for chunk, facts in written["chunks"]:
                case_facts[fact_key(subject, chunk)] = facts
        resent = 0
        for source_offset, values in stored["outbox"]:
            if source_offset == offset:
                for value in values:
                    await send_outcome(stored["case"]["subject"], value, partition)
                    resent += 1
        log.info("record_replayed", subject=stored["case"]["subject"], offset=offset,
                 case_offset=stored["offset"], outcomes_resent=resent)  # fmt: skip
        return True

    def track(step: Step, partition: int) -> IndexEntry:
        entry = IndexEntry.of(step)
        index.track(step.case.subject, partition, step.case.municipality, entry)
        return entry

    async def publish(
        step: Step,
        partition: int,
        offset: int,
        loaded: Loaded | None,
        fact: Fact | None = None,
        *,
        fired: bool = False,
    ) -> None:
        """Write what the step changed (`fact`: the fact it added) and send its outcomes."""
        case = step.case
        values = [outcome.model_dump_json() for outcome in step.outcomes]
        outbox = list(loaded.stored["outbox"]) if loaded else []
        if values:
            outbox = [*outbox[-(OUTBOX - 1) :], [offset, values]]
        writes = plan_writes(
            case,
            (loaded.case, loaded.stored) if loaded else None,
            step.recorded,
            fact,
            offset,
            lambda name: case_clocks.get(clock_key(case.subject, name)),
            committed_offset(app.consumer, kafka.events_topic, partition) or 0,
        )
        for chunk, facts in writes.chunks:
            case_facts[fact_key(case.subject, chunk)] = facts
        for name, row in writes.rows.items():
            case_clocks[clock_key(case.subject, name)] = row
        entry = track(step, partition)
        stored = stored_case(case, offset, outbox, partition, entry, rules, writes)
        cases[case.subject] = stored
        keep(Loaded(case, stored))
        for outcome, value in zip(step.outcomes, values, strict=True):
            await send_outcome(outcome.subject, value, partition)
            metrics.count(outcome, fired_at=time.time() if fired else None)
            if log_outcomes:
                _log_outcome(outcome)

    def remember_mark(partition: int, mark: datetime, offset: int) -> None:
        stored = persisted_marks.get(partition)
        # Persisting every move would double the changelog; a second's grain is enough.
        if stored is None or mark.timestamp() - stored >= 1.0:
            persisted_marks[partition] = mark.timestamp()
            stored_marks[str(partition)] = [mark.timestamp(), offset]
        metrics.watermark.labels(str(partition)).set(mark.timestamp())

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

    async def on_due_record(record: faust.types.EventT[bytes], partition: int) -> None:
        due_record = json.loads(record.value)
        mark = marks.after_due_record(partition, datetime.fromisoformat(due_record["now"]))
        offset = record.message.offset
        remember_mark(partition, mark, offset)
        loaded = load(due_record["subject"])
        if loaded is None or await resend_if_replayed(loaded.stored, partition, offset):
            return
        step = due(loaded.case, mark, catalogue)
        if step.changed:
            await publish(step, partition, offset, loaded, fired=True)
        else:
            track(step, partition)
            keep(loaded._replace(case=step.case))  # with what the engine derived

    async def on_event(record: faust.types.EventT[bytes], partition: int) -> None:
        try:
            # Structured or binary mode (partners may write to the topic directly).
            event = from_kafka_record(record.headers, record.value)
        except ValidationError as error:
            await dead_letter(record, "invalid_event", _explain(error))
            return
        if record.key != event.subject.encode():
            # The key decides the partition, and so which worker holds the case.
            await dead_letter(record, "key_mismatch", "record key must equal the event's subject")
            return
        wall = datetime.now(UTC)
        metrics.event_lag.observe(max(0.0, (wall - event.time).total_seconds()))
        before = marks.get(partition)
        mark = marks.after_event(partition, event.time, wall)
        offset = record.message.offset
        remember_mark(partition, mark, offset)
        loaded = load(event.subject)
        if loaded and await resend_if_replayed(loaded.stored, partition, offset):
            return
        case = loaded.case if loaded else None
        if case is not None and refuses(case, event):
            await dead_letter(
                record,
                "case_full",
                f"case {event.subject!r} holds {MAX_FACTS} facts, the most one case may hold; "
                "its clocks are still decided, but it takes no new events",
            )
            return
        earlier: tuple[Outcome, ...] = ()
        recorded: tuple[Clock, ...] = ()
        if loaded and before is not None and _may_be_due(loaded.stored, before, rules):
            # What the watermark had decided before this event came, comes first, as a
            # due-record would have published it: the order a replay sees too.
            settled = due(loaded.case, before, catalogue)
            case, earlier, recorded = settled.case, settled.outcomes, settled.recorded
        fact = Fact.of(event)
        step = apply(case, fact, mark, catalogue,
                     subject=event.subject, municipality=event.municipality.value)  # fmt: skip
        metrics.events.labels(event.type).inc()
        added = len(step.case.facts) > (len(loaded.case.facts) if loaded else 0)
        if earlier or step.changed:
            if earlier:
                step = replace(
                    step, outcomes=earlier + step.outcomes, recorded=recorded + step.recorded
                )
            await publish(step, partition, offset, loaded, fact if added else None)
        elif loaded:
            keep(loaded._replace(case=step.case))

    @app.agent(events_topic)
    async def process(stream: faust.StreamT[bytes]) -> None:
        # A coroutine, not a generator: faust inspects every value an agent yields
        # (for replies), which is per-record work we do not need.
        async for record in stream.events():
            partition = record.message.partition
            marks.resume_at(partition, record.message.offset)
            if record.headers and DUE_RECORD_HEADER in dict(record.headers):
                await on_due_record(record, partition)
            else:
                await on_event(record, partition)
            processed[partition] = record.message.offset

    async def candidate_mark(partition: int, wall: datetime) -> datetime | None:
        """The watermark a due-record may carry now: with the wall clock when caught up."""
        mark = marks.get(partition)
        tp = TP(kafka.events_topic, partition)
        highwater = app.consumer.highwater(tp)
        lag: int | None = None
        if highwater is not None and highwater >= 0:
            if partition in processed:
                lag = max(0, highwater - 1 - processed[partition])
            else:
                position = await app.consumer.position(tp)
                lag = None if position is None else max(0, highwater - position)
        if lag is not None:
            metrics.consumer_lag.labels(str(partition)).set(lag)
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
            for subject, instant in index.pop_due(tp.partition, mark.timestamp()).items():
                try:
                    await events_topic.send(
                        key=subject.encode(),
                        value=json.dumps({"subject": subject, "now": mark.isoformat()}).encode(),
                        headers=[(DUE_RECORD_HEADER, b"1")],
                    )
                except Exception as error:
                    log.warning("due_record_not_sent", error=str(error))
                    index.retry(subject, tp.partition, instant)

    @app.on_rebalance_complete.connect
    async def rebuild(sender: Any, /, *_: Any, signal: Any, **__: Any) -> None:
        index.clear()
        recent.clear()
        marks.clear()
        processed.clear()
        persisted_marks.clear()
        restored: dict[int, datetime] = {}
        for key, stored in stored_marks.items():
            if stored is None:
                continue
            # [mark, offset]; a bare mark is from before offsets were kept.
            timestamp, offset = (stored, -1) if isinstance(stored, float) else stored
            partition = int(key)
            restored[partition] = datetime.fromtimestamp(timestamp, UTC)
            marks.restore(partition, restored[partition], offset)
        wall = datetime.now(UTC) - lateness
        rebuild_index(
            index, cases.items(), rules, catalogue, kafka.partitions,
            lambda partition: restored.get(partition) or wall,
            lambda subject: loaded.case if (loaded := load(subject)) else None,
        )  # fmt: skip
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


def stored_case(
    case: Case,
    offset: int,
    outbox: list[Any],
    partition: int,
    entry: IndexEntry,
    rules: str,
    writes: Writes | None = None,
) -> dict[str, Any]:
    """A case's head as the `cases` table holds it (JSON); see codec.py. `writes` are what
    the record wrote (none: a case whose facts and clocks all sit in the head)."""
    writes = writes or Writes()
    return {
        "case": head(case),
        "tail": writes.tail,  # encoded facts after the last full chunk
        "rows": writes.inline,  # {clock name: [start, kinds]} until they are spilled
        "offset": offset,  # of the record that made this version
        # What its last records wrote to the facts and clocks tables (see codec.py)
        "journal": writes.journal,
        "outbox": outbox,  # [[source offset, [outcome JSON, ...]], ...], the last few
        # The index's view of the case, so a rebuild need not derive its clocks, and
        # the rules it was derived under.
        "partition": partition,
        "open": entry.open,
        "due": entry.due,
        "rules": rules,
    }


def rebuild_index(
    index: DeadlineIndex,
    cases: Iterable[tuple[str, Mapping[str, Any]]],
    rules: str,
    catalogue: Catalogue,
    partitions: int,
    mark_of: Callable[[int], datetime],
    load: Callable[[str], Case | None],
) -> None:
    """Fill `index` from the table: from each stored entry, or derived where it cannot be."""
    for subject, stored in cases:
        entry = IndexEntry.stored(stored, rules)
        if entry is not None:
            index.track(subject, stored["partition"], stored["case"]["municipality"], entry)
            continue
        case = load(subject)
        if case is None:
            continue
        partition = partition_of(subject, partitions)
        step = view(case, mark_of(partition), catalogue)
        index.track(subject, partition, case.municipality, IndexEntry.of(step))


def _may_be_due(stored: Mapping[str, Any] | None, mark: datetime, rules: str) -> bool:
    """False if the stored case has nothing `due` would publish at `mark`.

    Deriving a case's clocks is the processor's costliest step; its next due instant
    is stored with it. A stored instant can be earlier than the case's true one (a
    due step that published nothing does not rewrite the case), never later under
    the same rules, so False is then always right. Under other rules it may be
    later: derive.
    """
    if stored is None or not IndexEntry.trusted(stored, rules):
        return True
    return stored["due"] is not None and stored["due"] <= mark.timestamp()


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
