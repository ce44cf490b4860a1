"""What the processor does with each record of the events topic, without faust.

`RecordHandler` reads and writes its state through a `State` (get/put per table) and
publishes through `Outlets` (outcomes, dead letters); app.py feeds it faust's records
and implements both on faust's tables and producer, and the unit tests on dicts.

Per record:
- a due-record (see due_records.py) is checked, moves the watermark and decides the
  case's due clocks with `engine.due`;
- an event is decoded (structured or binary CloudEvent), its key checked, the
  watermark moved, and it is applied to its case with `engine.apply` at the watermark,
  after whatever that watermark had made due before it;
- what changed is published: outcomes first, then the case's state is staged (see
  state.py for why that order makes a crash safe);
- a record that cannot be used goes to the dead-letter topic with the reason.

A record older than its case's stored version was applied before a crash and its
outcomes are out: it moves the watermark and nothing else.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

import structlog
from aiokafka.partitioner import murmur2
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
from services.sla_processor import due_records
from services.sla_processor.codec import (
    Writes,
    clock_key,
    encode_outcome,
    fact_key,
    head,
    plan_writes,
    read_case,
)
from services.sla_processor.deadlines import DeadlineIndex, IndexEntry
from services.sla_processor.metrics import ProcessorMetrics
from services.sla_processor.watermarks import Watermarks

log = structlog.get_logger("normwacht.processor")

TABLES = ("cases", "watermarks", "case_facts", "case_clocks")
CASES, MARKS, FACTS, CLOCKS = TABLES


@dataclass(frozen=True, slots=True)
class Record:
    """A record of the events topic, as the handler needs it."""

    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    topic: str
    partition: int
    offset: int
    timestamp: float | None = None
    """The record's Kafka timestamp in seconds (when its producer wrote it), if it has one."""


class State(Protocol):
    def get(self, table: str, key: str) -> Any: ...

    def put(self, table: str, key: str, value: Any, partition: int) -> None: ...


class Outlets(Protocol):
    async def outcome(self, subject: str, value: bytes, partition: int) -> None: ...

    async def dead_letter(self, record: Record, reason: str, detail: str) -> None: ...


class Loaded(NamedTuple):
    """A case as read: the engine's value and its head in the `cases` table."""

    case: Case
    stored: Mapping[str, Any]


class RecordHandler:
    def __init__(
        self,
        catalogue: Catalogue,
        state: State,
        outlets: Outlets,
        *,
        rules: str,
        due_key: bytes,
        partitions: int,
        lateness: timedelta = timedelta(0),
        cached_cases: int = 10_000,
        metrics: ProcessorMetrics | None = None,
        log_outcomes: bool = True,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.catalogue = catalogue
        self.state = state
        self.outlets = outlets
        self.rules = rules
        self.due_key = due_key
        self.partitions = partitions
        self.metrics = metrics or ProcessorMetrics()
        self.log_outcomes = log_outcomes
        self.wall_clock = wall_clock
        self.index = DeadlineIndex()
        self.marks = Watermarks(lateness)
        self.processed: dict[int, int] = {}  # partition -> offset of the last record processed
        self._cached_cases = cached_cases
        # The cases last used, decoded and with the engine's derivation cache, as the
        # state holds them (every write goes through `_keep`): an event for a case in
        # here costs the same however many facts it holds.
        # An OrderedDict: evicting the oldest is O(1); a dict's first key is found by
        # scanning past the slots of keys deleted before it (measured 1-1.4 us more per use).
        self._recent: OrderedDict[str, Loaded] = OrderedDict()
        self._persisted_marks: dict[int, float] = {}

    async def handle(self, record: Record) -> None:
        partition = record.partition
        self.marks.resume_at(partition, record.offset)
        if any(name == due_records.HEADER for name, _ in record.headers):
            await self._on_due_record(record)
        else:
            await self._on_event(record)
        self.processed[partition] = record.offset

    def due_records(self, partition: int, mark: datetime) -> list[tuple[str, float, bytes]]:
        """Due-records to write into `partition` at watermark `mark`: (subject, the due
        instant popped, value). One not written must be handed back with `retry`."""
        now = mark.timestamp()
        return [
            (subject, instant, due_records.write(self.due_key, subject, mark))
            for subject, instant in self.index.pop_due(partition, now).items()
        ]

    def retry(self, subject: str, partition: int, instant: float) -> None:
        self.index.retry(subject, partition, instant)

    def restart(self, marks: Iterable[tuple[str, Any]], cases: Iterable[tuple[str, Any]]) -> None:
        """Forget what was in memory and rebuild it from the stored `marks` and `cases`
        (after a rebalance: the tables hold the state, and partitions may have moved)."""
        self.index.clear()
        self._recent.clear()
        self.marks.clear()
        self.processed.clear()
        self._persisted_marks.clear()
        restored: dict[int, datetime] = {}
        for key, stored in marks:
            if stored is None:
                continue
            if not key.isdigit():  # faust's JSON key ('"4"'), as written before issue 12
                raise StateFromAnEarlierVersion(f"watermarks key {key!r}")
            timestamp, offset = stored  # the mark, and the offset of the record it was after
            partition = int(key)
            restored[partition] = datetime.fromtimestamp(timestamp, UTC)
            self.marks.restore(partition, restored[partition], offset)
            self.metrics.set_watermark(partition, timestamp)
        wall = self.wall_clock() - self.marks.lateness
        cases = _current(cases)
        rebuild_index(
            self.index, cases, self.rules, self.catalogue, self.partitions,
            lambda partition: restored.get(partition) or wall,
            lambda subject: loaded.case if (loaded := self._load(subject)) else None,
        )  # fmt: skip
        log.info(
            "deadline_index_rebuilt",
            open_clocks=self.index.open_clocks,
            due_cases=self.index.due_cases,
        )

    # Records

    async def _on_due_record(self, record: Record) -> None:
        read = due_records.read(self.due_key, record.key, record.value, self.wall_clock())
        if isinstance(read, due_records.Refused):
            await self._dead_letter(record, read.reason, read.detail)
            return
        partition, offset = record.partition, record.offset
        loaded = self._load(read.subject)
        if partition != (home := self._home(read.subject, loaded)):
            # Signed, but copied out of its case's partition: it must not move this one's
            # watermark, nor decide the case with it.
            await self._wrong_partition(record, read.subject, home)
            return
        mark = self.marks.after_due_record(partition, read.now)
        self._remember_mark(partition, mark, offset)
        if loaded is None or self._already_applied(loaded, offset):
            return
        try:
            step = due(loaded.case, mark, self.catalogue)
        except Exception as error:  # as for an event: one case must not stop the others
            await self._unprocessable(record, read.subject, error)
            return
        if step.changed:
            await self._publish(step, partition, offset, loaded, fired=True)
        else:
            self._track(step, partition)
            self._keep(loaded._replace(case=step.case))  # with what the engine derived

    async def _on_event(self, record: Record) -> None:
        try:
            # Structured or binary mode (partners may write to the topic directly).
            event = from_kafka_record(record.headers, record.value)
        except ValidationError as error:
            await self._dead_letter(record, "invalid_event", _explain(error))
            return
        if record.key != event.subject.encode():
            # The key decides the partition, and so which worker holds the case.
            await self._dead_letter(
                record, "key_mismatch", "record key must equal the event's subject"
            )
            return
        partition, offset = record.partition, record.offset
        loaded = self._load(event.subject)
        if partition != (home := self._home(event.subject, loaded)):
            # A case lives in one partition, so with one worker; here its state would split.
            await self._wrong_partition(record, event.subject, home)
            return
        if loaded and loaded.case.municipality != event.municipality:  # a StrEnum: a str
            # A partner is scoped to municipalities by the event's attribute; the case's
            # own municipality is the one that counts.
            await self._dead_letter(
                record,
                "municipality_mismatch",
                f"case {event.subject!r} is {loaded.case.municipality}'s, "
                f"the event says {event.municipality.value}",
            )
            return
        wall = self.wall_clock()
        self.metrics.event_lag.observe(max(0.0, (wall - event.time).total_seconds()))
        before = self.marks.get(partition)
        mark = self.marks.after_event(partition, event.time, _written_by(record, wall))
        self._remember_mark(partition, mark, offset)
        if loaded and self._already_applied(loaded, offset):
            return
        case = loaded.case if loaded else None
        if case is not None and refuses(case, event):
            await self._dead_letter(
                record,
                "case_full",
                f"case {event.subject!r} holds {MAX_FACTS} facts, the most one case may hold; "
                "its clocks are still decided, but it takes no new events",
            )
            return
        earlier: tuple[Outcome, ...] = ()
        recorded: tuple[Clock, ...] = ()
        try:
            if loaded and before is not None and may_be_due(loaded.stored, before, self.rules):
                # What the watermark had decided before this event came, comes first, as a
                # due-record would have published it: the order a replay sees too.
                settled = due(loaded.case, before, self.catalogue)
                case, earlier, recorded = settled.case, settled.outcomes, settled.recorded
            fact = Fact.of(event)
            step = apply(case, fact, mark, self.catalogue,
                         subject=event.subject, municipality=event.municipality.value)  # fmt: skip
        except Exception as error:
            await self._unprocessable(record, event.subject, error)
            return
        self.metrics.event(event.type)
        added = len(step.case.facts) > (len(loaded.case.facts) if loaded else 0)
        if earlier or step.changed:
            if earlier:
                step = replace(
                    step, outcomes=earlier + step.outcomes, recorded=recorded + step.recorded
                )
            await self._publish(step, partition, offset, loaded, fact if added else None)
        elif loaded:
            self._keep(loaded._replace(case=step.case))

    def _home(self, subject: str, loaded: Loaded | None) -> int:
        """The partition the case lives in: where it was stored, else its key's."""
        home: int | None = loaded.stored.get("partition") if loaded else None
        return partition_of(subject, self.partitions) if home is None else home

    async def _wrong_partition(self, record: Record, subject: str, home: int) -> None:
        await self._dead_letter(
            record,
            "wrong_partition",
            f"a record keyed {subject!r} belongs in partition {home}, by the murmur2 "
            "partitioner of the Java client (librdkafka clients: partitioner=murmur2_random)",
        )

    # State

    def _load(self, subject: str) -> Loaded | None:
        found = self._recent.get(subject)
        if found is not None:
            self._recent.move_to_end(subject)  # the most recently used go last
            return found
        stored = self.state.get(CASES, subject)
        if stored is None:
            return None
        case = read_case(
            stored,
            lambda chunk: self.state.get(FACTS, fact_key(subject, chunk)),
            lambda name: self.state.get(CLOCKS, clock_key(subject, name)),
        )
        loaded = Loaded(case, stored)
        self._keep(loaded)
        return loaded

    def _keep(self, loaded: Loaded) -> None:
        subject = loaded.case.subject
        self._recent[subject] = loaded
        self._recent.move_to_end(subject)
        if len(self._recent) > self._cached_cases:
            self._recent.popitem(last=False)

    @staticmethod
    def _already_applied(loaded: Loaded, offset: int) -> bool:
        """The stored case was made by this record or a later one: read again after a
        crash, and its outcomes were published before its state was stored (state.py)."""
        applied: bool = loaded.stored["offset"] >= offset
        if applied:
            log.info("record_already_applied", subject=loaded.case.subject, offset=offset,
                     case_offset=loaded.stored["offset"])  # fmt: skip
        return applied

    def _track(self, step: Step, partition: int) -> IndexEntry:
        entry = IndexEntry.of(step)
        self.index.track(step.case.subject, partition, step.case.municipality, entry)
        return entry

    async def _publish(
        self,
        step: Step,
        partition: int,
        offset: int,
        loaded: Loaded | None,
        fact: Fact | None = None,
        *,
        fired: bool = False,
    ) -> None:
        """Send the step's outcomes, then stage what it changed (`fact`: the fact it added)."""
        case = step.case
        fired_at = time.time() if fired else None
        for outcome in step.outcomes:
            await self.outlets.outcome(outcome.subject, encode_outcome(outcome), partition)
            self.metrics.count(outcome, fired_at=fired_at)
            if self.log_outcomes:
                _log_outcome(outcome)
        writes = plan_writes(
            case,
            (loaded.case, loaded.stored) if loaded else None,
            step.recorded,
            fact,
            offset,
            lambda name: self.state.get(CLOCKS, clock_key(case.subject, name)),
        )
        for chunk, facts in writes.chunks:
            self.state.put(FACTS, fact_key(case.subject, chunk), facts, partition)
        for name, row in writes.rows.items():
            self.state.put(CLOCKS, clock_key(case.subject, name), row, partition)
        entry = self._track(step, partition)
        stored = stored_case(case, offset, partition, entry, self.rules, writes)
        self.state.put(CASES, case.subject, stored, partition)
        self._keep(Loaded(case, stored))

    def _remember_mark(self, partition: int, mark: datetime, offset: int) -> None:
        timestamp = mark.timestamp()
        if self._persisted_marks.get(partition) != timestamp:
            self._persisted_marks[partition] = timestamp
            # Staged: only the last of a commit interval's marks is written.
            self.state.put(MARKS, str(partition), [timestamp, offset], partition)
            self.metrics.set_watermark(partition, timestamp)

    async def _unprocessable(self, record: Record, subject: str, error: Exception) -> None:
        """The engine is pure: nothing was published or staged, and the case stays as it
        was. One record the engine cannot compute (a deadline past the year 9999, or in a
        year without holiday data) must not stop every record behind it."""
        log.exception("record_unprocessable", subject=subject, offset=record.offset)
        detail = f"the engine failed on it: {type(error).__name__}: {error}"
        await self._dead_letter(record, "unprocessable_event", detail)

    async def _dead_letter(self, record: Record, reason: str, detail: str) -> None:
        """Park a record we cannot use, with why, and carry on: input never stops us."""
        await self.outlets.dead_letter(record, reason, detail)
        self.metrics.dead_letters.labels(reason).inc()
        log.warning("dead_lettered", reason=reason, detail=detail, topic=record.topic,
                    partition=record.partition, offset=record.offset)  # fmt: skip


class StateFromAnEarlierVersion(RuntimeError):
    """The tables hold state in the format before issue 12 (faust's JSON keys, heads with
    an outbox and a journal), which this version does not read."""

    def __init__(self, found: str) -> None:
        super().__init__(
            f"the processor's tables hold state written by an earlier version ({found}), "
            "which this version does not read. Start it with a new "
            "NORMWACHT_PROCESSOR_APP_ID (a new group and new changelogs, made by `normwacht "
            "kafka create-topics`): it reads the events topic from its start and publishes "
            "the same outcomes, with the same ids. On a development machine `make clean` "
            "removes the old broker data and state (.run)."
        )


def _current(cases: Iterable[tuple[str, Mapping[str, Any]]]) -> Iterator[tuple[str, Any]]:
    """`cases`, refusing a head in the format before issue 12."""
    for subject, stored in cases:
        if stored is not None and ("outbox" in stored or "journal" in stored):
            raise StateFromAnEarlierVersion(f"case {subject!r} with an outbox")
        yield subject, stored


def stored_case(
    case: Case,
    offset: int,
    partition: int,
    entry: IndexEntry,
    rules: str,
    writes: Writes | None = None,
) -> dict[str, Any]:
    """A case's head as the `cases` table holds it; see codec.py. `writes` are what the
    record wrote (none: a case whose facts and clocks all sit in the head)."""
    writes = writes or Writes()
    return {
        "case": head(case),
        "tail": writes.tail,  # encoded facts after the last full chunk
        "rows": writes.inline,  # {clock name: [start, kinds]} until they are spilled
        "offset": offset,  # of the record that made this version
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
        partition = stored.get("partition")
        if partition is None:
            partition = partition_of(subject, partitions)
        try:
            step = view(case, mark_of(partition), catalogue)
        except Exception:
            # Left out of the index (its next event or due-record says why); a rebalance
            # must not fail on one case.
            log.exception("case_not_indexed", subject=subject)
            continue
        index.track(subject, partition, case.municipality, IndexEntry.of(step))


def partition_of(subject: str, partitions: int) -> int:
    """The partition the clients' default partitioner gives this case (murmur2, as Java)."""
    hashed: int = murmur2(subject.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def may_be_due(stored: Mapping[str, Any] | None, mark: datetime, rules: str) -> bool:
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


def _written_by(record: Record, wall: datetime) -> datetime:
    """No event counts as later than when its record was written, nor than now: an event
    dated in the future (a wrong clock, a typo) would otherwise move its partition's
    watermark to now while a backlog is read, breaching clocks whose stops are still
    ahead in it, and a replay would decide otherwise than the live run did. The record's
    timestamp is the same in every run; the wall clock caps one a producer set ahead."""
    if record.timestamp is None or record.timestamp <= 0:
        return wall
    return min(datetime.fromtimestamp(record.timestamp, UTC), wall)


def _explain(error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "event"
    return f"{where}: {first['msg']} ({error.error_count()} error(s))"


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
