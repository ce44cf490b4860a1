"""The processor's per-record logic (services/sla_processor/handler.py) over in-memory
tables and outlets: no faust, no broker.

`Worker` is what app.py makes of faust: records in, outcomes and dead letters out, the
staged state written to the tables at a "commit". A crash is a worker dropped without
its commit; the next one reads the same tables and starts from the committed offset.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from normwacht.core import engine
from normwacht.core.calendars import NoHolidaysFor
from normwacht.core.catalogue import Catalogue
from services.sla_processor import due_records
from services.sla_processor import handler as handler_module
from services.sla_processor.app import retry_if_undelivered
from services.sla_processor.handler import (
    CASES,
    MARKS,
    Record,
    RecordHandler,
    StateFromAnEarlierVersion,
)
from services.sla_processor.metrics import ProcessorMetrics
from services.sla_processor.state import FIRST, StagedState
from tests.support.events import cloud_event

KEY = b"the processor's key"
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday morning: offices open
T0 = NOW - timedelta(hours=1)


@dataclass
class Outlets:
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[tuple[Record, str, str]] = field(default_factory=list)

    async def outcome(self, subject: str, value: bytes, partition: int) -> None:
        self.outcomes.append(json.loads(value))

    async def dead_letter(self, record: Record, reason: str, detail: str) -> None:
        self.dead_letters.append((record, reason, detail))


@dataclass
class Tables:
    """What faust's tables would hold: JSON round trips, as the bytes they store."""

    rows: dict[tuple[str, str], bytes] = field(default_factory=dict)
    puts: list[str] = field(default_factory=list)

    def get(self, table: str, key: str) -> Any:
        value = self.rows.get((table, key))
        return None if value is None else orjson.loads(value)


class Worker:
    def __init__(
        self, catalogue: Catalogue, tables: Tables, outlets: Outlets, partitions: int = 1
    ) -> None:
        self.tables = tables
        self.staged = StagedState(tables.get)
        self.handler = RecordHandler(
            catalogue, self.staged, outlets, rules="rules", due_key=KEY, partitions=partitions,
            metrics=ProcessorMetrics(CollectorRegistry()), wall_clock=lambda: NOW,
            log_outcomes=False,
        )  # fmt: skip
        self.offset = 0
        self.partition = 0  # the partition the next records are read from

    def feed(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: Any = (),
        written: float | None = None,
    ) -> None:
        record = Record(key, value, tuple(headers), "events", self.partition, self.offset, written)
        asyncio.run(self.handler.handle(record))
        self.offset += 1

    def event(
        self,
        type_: str,
        at: datetime,
        subject: str = "CALL-1",
        written: datetime | None = None,
        **extra: Any,
    ) -> None:
        body = cloud_event(type_, at, subject, **extra)
        stamp = None if written is None else written.timestamp()
        self.feed(subject.encode(), json.dumps(body).encode(), written=stamp)

    def due(self, subject: str, now: datetime) -> None:
        value = due_records.write(KEY, subject, now)
        self.feed(subject.encode(), value, [(due_records.HEADER, b"1")])

    def commit(self, steps: int = 2) -> None:
        """Write what is staged, as app.py does before committing (a crash may end it
        after its first step)."""
        batch = self.staged.take()
        for step in batch[:steps]:
            for write in step:
                self.tables.rows[(write.table, write.key)] = orjson.dumps(write.value)
                self.tables.puts.append(write.table)
        self.staged.written(batch)

    def restart(self) -> None:
        """As app.py's rebuild after a rebalance: from what the tables hold."""
        stored = sorted(self.tables.rows)
        self.handler.restart(
            [(key, self.tables.get(table, key)) for table, key in stored if table == MARKS],
            [(key, self.tables.get(table, key)) for table, key in stored if table == CASES],
        )


def kinds(outlets: Outlets) -> list[tuple[str, str]]:
    return [(outcome["norm"], outcome["kind"]) for outcome in outlets.outcomes]


@pytest.fixture
def outlets() -> Outlets:
    return Outlets()


@pytest.fixture
def worker(catalogue: Catalogue, outlets: Outlets) -> Worker:
    return Worker(catalogue, Tables(), outlets)


def test_a_call_answered_in_time_is_met(worker: Worker, outlets: Outlets) -> None:
    worker.event("call.queued", T0, data={"queue": "algemeen"})
    worker.event("call.answered", T0 + timedelta(seconds=12))
    assert ("phone.answer", "met") in kinds(outlets)
    assert not outlets.dead_letters


def test_a_due_record_breaches_a_call_not_answered(worker: Worker, outlets: Outlets) -> None:
    worker.event("call.queued", T0)
    assert ("phone.answer", "breached") not in kinds(outlets)
    subject, _, value = worker.handler.due_records(0, T0 + timedelta(minutes=1))[0]
    assert subject == "CALL-1"
    worker.feed(b"CALL-1", value, [(due_records.HEADER, b"1")])
    assert ("phone.answer", "breached") in kinds(outlets)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "invalid_due_record"),
        (b'{"subject": "CALL-1"}', "invalid_due_record"),
        (b'{"subject": "CALL-1", "now": "yesterday", "sig": "x"}', "invalid_due_record"),
        (b'{"subject": 7, "now": "2026-03-02T09:01:00+00:00", "sig": "x"}', "invalid_due_record"),
        (b'{"subject": "CALL-1", "now": "2026-03-02T09:01:00", "sig": "x"}', "invalid_due_record"),
        (b"[]", "invalid_due_record"),
        (None, "invalid_due_record"),
        # Well formed, but not signed by the processor: anyone may write the topic.
        (b'{"subject": "CALL-1", "now": "2026-03-02T09:01:00+00:00", "sig": "00"}',
         "unsigned_due_record"),
        ('{"subject": "CALL-1", "now": "2026-03-02T09:01:00+00:00", "sig": "é"}'.encode(),
         "unsigned_due_record"),  # a signature compare_digest cannot take as str
    ],
)  # fmt: skip
def test_a_due_record_the_processor_did_not_write_is_dead_lettered(
    worker: Worker, outlets: Outlets, value: bytes | None, reason: str
) -> None:
    worker.event("call.queued", T0)
    worker.feed(b"CALL-1", value, [(due_records.HEADER, b"1")])
    assert [why for _, why, _ in outlets.dead_letters] == [reason]
    assert ("phone.answer", "breached") not in kinds(outlets)
    # The agent carries on.
    worker.event("call.answered", T0 + timedelta(seconds=10))
    assert ("phone.answer", "met") in kinds(outlets)


def test_a_forged_due_record_signed_with_another_key_is_refused(
    worker: Worker, outlets: Outlets
) -> None:
    worker.event("call.queued", T0)
    forged = due_records.write(b"someone else's key", "CALL-1", T0 + timedelta(minutes=1))
    worker.feed(b"CALL-1", forged, [(due_records.HEADER, b"1")])
    assert [why for _, why, _ in outlets.dead_letters] == ["unsigned_due_record"]


def test_a_due_record_cannot_move_the_watermark_past_the_wall_clock(
    worker: Worker, outlets: Outlets
) -> None:
    worker.event("call.queued", T0)
    mark = worker.handler.marks.get(0)
    worker.due("CALL-1", NOW + timedelta(days=30))
    assert [why for _, why, _ in outlets.dead_letters] == ["due_record_from_the_future"]
    assert worker.handler.marks.get(0) == mark
    worker.due("CALL-1", NOW + due_records.FUTURE_TOLERANCE)  # a little skew is accepted
    assert worker.handler.marks.get(0) == NOW + due_records.FUTURE_TOLERANCE


def test_an_event_dated_in_the_future_moves_the_watermark_no_further_than_its_record(
    worker: Worker, outlets: Outlets
) -> None:
    """A backlog an hour old (now is 10:00): one event dated 2099 in it must not move the
    watermark to now, breaching the call whose answer comes next in the backlog."""
    worker.event("call.queued", T0, written=T0)
    future = datetime(2099, 1, 1, tzinfo=UTC)
    worker.event("call.queued", future, subject="CALL-2", written=T0 + timedelta(seconds=1))
    assert worker.handler.marks.get(0) == T0 + timedelta(seconds=1)
    worker.event("call.answered", T0 + timedelta(seconds=10), written=T0 + timedelta(seconds=10))
    assert [kind for norm, kind in kinds(outlets) if norm == "phone.answer"] == [
        "opened", "opened", "met",
    ]  # fmt: skip
    # A record timestamp a producer set ahead counts no later than now.
    worker.event("call.queued", future, subject="CALL-3", written=future)
    assert worker.handler.marks.get(0) == NOW


@pytest.mark.parametrize("delivered", [True, False])
def test_a_due_record_the_producer_gives_up_on_is_due_again(
    worker: Worker, delivered: bool
) -> None:
    """app.py sends a due-record and hears of its delivery later: an undelivered one puts
    its case back, or its clock would wait for the case's next event."""
    worker.event("call.queued", T0)
    [(subject, instant, _)] = worker.handler.due_records(0, NOW)
    assert worker.handler.due_records(0, NOW) == []  # it left the index when popped

    async def deliver() -> None:
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivery.add_done_callback(retry_if_undelivered(worker.handler, subject, 0, instant))
        if delivered:
            delivery.set_result(None)
        else:
            delivery.set_exception(TimeoutError("no answer from the broker"))
        await asyncio.sleep(0)  # the callbacks run

    asyncio.run(deliver())
    again = worker.handler.due_records(0, NOW)
    assert [(s, i) for s, i, _ in again] == ([] if delivered else [(subject, instant)])


def test_a_due_record_under_another_key_is_dead_lettered(worker: Worker, outlets: Outlets) -> None:
    value = due_records.write(KEY, "CALL-1", T0)
    worker.feed(b"CALL-2", value, [(due_records.HEADER, b"1")])
    assert [why for _, why, _ in outlets.dead_letters] == ["key_mismatch"]


def test_bad_events_are_dead_lettered_with_the_reason(worker: Worker, outlets: Outlets) -> None:
    worker.feed(b"CALL-1", b"\xff not json")
    body = cloud_event("call.queued", T0, "CALL-1")
    worker.feed(b"CALL-2", json.dumps(body).encode())
    assert [why for _, why, _ in outlets.dead_letters] == ["invalid_event", "key_mismatch"]
    assert not outlets.outcomes


def test_a_record_outside_its_cases_partition_is_dead_lettered(
    catalogue: Catalogue, outlets: Outlets
) -> None:
    # Written by a client whose partitioner is not murmur2 (librdkafka's default is
    # CRC32): the case would be kept in two partitions, by two workers.
    worker = Worker(catalogue, Tables(), outlets, partitions=6)
    home = handler_module.partition_of("CALL-1", 6)
    worker.partition = (home + 1) % 6
    worker.event("call.queued", T0)  # a new case, in the wrong partition
    worker.partition = home
    worker.event("call.queued", T0, event_id="q-2")
    worker.partition = (home + 2) % 6
    worker.event("call.answered", T0 + timedelta(seconds=5))  # its case, the wrong partition
    assert [why for _, why, _ in outlets.dead_letters] == ["wrong_partition"] * 2
    assert f"partition {home}" in outlets.dead_letters[0][2]
    assert kinds(outlets) == [("phone.answer", "opened")]
    worker.partition = home
    worker.event("call.answered", T0 + timedelta(seconds=5))
    assert ("phone.answer", "met") in kinds(outlets)


def test_a_signed_due_record_copied_into_another_partition_is_dead_lettered(
    catalogue: Catalogue, outlets: Outlets
) -> None:
    """Anyone who may write the events topic may copy a due-record the processor wrote:
    in another partition it must neither move that partition's watermark nor decide the
    case there."""
    worker = Worker(catalogue, Tables(), outlets, partitions=6)
    home = handler_module.partition_of("CALL-1", 6)
    worker.partition = home
    worker.event("call.queued", T0)
    elsewhere = (home + 1) % 6
    worker.partition = elsewhere
    worker.due("CALL-1", T0 + timedelta(minutes=1))
    assert [why for _, why, _ in outlets.dead_letters] == ["wrong_partition"]
    assert worker.handler.marks.get(elsewhere) is None
    assert kinds(outlets) == [("phone.answer", "opened")]
    worker.partition = home
    worker.due("CALL-1", T0 + timedelta(minutes=1))  # in its own partition, it is taken
    assert ("phone.answer", "breached") in kinds(outlets)


def test_an_event_for_another_municipalitys_case_is_dead_lettered(
    worker: Worker, outlets: Outlets
) -> None:
    # A partner scoped to heiloo must not close bergen's clocks by naming heiloo.
    worker.event("call.queued", T0, municipality="bergen")
    worker.event("call.answered", T0 + timedelta(seconds=5), municipality="heiloo")
    assert [why for _, why, _ in outlets.dead_letters] == ["municipality_mismatch"]
    assert kinds(outlets) == [("phone.answer", "opened")]
    worker.event("call.answered", T0 + timedelta(seconds=5), municipality="bergen")
    assert ("phone.answer", "met") in kinds(outlets)


def test_an_event_the_engine_cannot_compute_is_dead_lettered_and_the_next_is_taken(
    worker: Worker, outlets: Outlets, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Events are checked so that none should fail the engine (their instants lie in
    # 1900-2999); should one still, it is parked and the partition goes on.
    def apply(case: Any, fact: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("subject") == "MELDING-1":
            raise OverflowError("date value out of range")
        return engine.apply(case, fact, *args, **kwargs)

    monkeypatch.setattr(handler_module, "apply", apply)
    worker.event("report.received", T0, "MELDING-1")
    worker.event("call.queued", T0)
    worker.event("call.answered", T0 + timedelta(seconds=5))
    assert [why for _, why, _ in outlets.dead_letters] == ["unprocessable_event"]
    assert "OverflowError" in outlets.dead_letters[0][2]
    assert ("phone.answer", "met") in kinds(outlets)


def test_a_due_record_the_engine_cannot_compute_is_dead_lettered_and_the_next_is_taken(
    worker: Worker, outlets: Outlets, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A case stored before its deadlines could fail (one past the holidays' years).
    def due(case: Any, *args: Any) -> Any:
        if case.subject == "CALL-1":
            raise NoHolidaysFor(2101)
        return engine.due(case, *args)

    worker.event("call.queued", T0, "CALL-1")
    worker.event("call.queued", T0, "CALL-2")
    monkeypatch.setattr(handler_module, "due", due)
    worker.due("CALL-1", T0 + timedelta(seconds=30))
    worker.due("CALL-2", T0 + timedelta(seconds=30))
    assert [why for _, why, _ in outlets.dead_letters] == ["unprocessable_event"]
    assert "NoHolidaysFor" in outlets.dead_letters[0][2]
    breached = [o["subject"] for o in outlets.outcomes if o["kind"] == "breached"]
    assert breached == ["CALL-2"]


def test_a_rebuild_leaves_out_a_case_it_cannot_derive_and_indexes_the_rest(
    catalogue: Catalogue, outlets: Outlets, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = Worker(catalogue, Tables(), outlets)
    first.event("call.queued", T0, "CALL-1")
    first.event("call.queued", T0, "CALL-2")
    first.commit()

    def view(case: Any, *args: Any) -> Any:
        if case.subject == "CALL-1":
            raise NoHolidaysFor(2101)
        return engine.view(case, *args)

    monkeypatch.setattr(handler_module, "view", view)
    second = Worker(catalogue, first.tables, outlets)
    second.handler.rules = "other rules"  # the stored index entries are not trusted: derive
    second.restart()
    assert second.handler.index.open_clocks == 1  # CALL-2's


def test_only_a_change_is_staged_and_each_key_is_written_once_a_commit(
    worker: Worker, outlets: Outlets
) -> None:
    event = cloud_event("call.queued", T0, "CALL-1")
    for _ in range(3):  # the same event thrice: the case changes once
        worker.feed(b"CALL-1", json.dumps(event).encode())
    worker.event("call.queued", T0, subject="CALL-2")
    worker.commit()
    assert sorted(worker.tables.puts) == [CASES, CASES, MARKS]  # two cases, one watermark
    worker.tables.puts.clear()
    worker.feed(b"CALL-1", json.dumps(event).encode())
    worker.commit()
    assert worker.tables.puts == []  # nothing changed, not even the watermark


def test_a_batch_writes_what_heads_point_to_first(catalogue: Catalogue, outlets: Outlets) -> None:
    worker = Worker(catalogue, Tables(), outlets)
    for n in range(40):  # a chunk of facts fills at the 32nd
        worker.event("call.queued", T0 + timedelta(seconds=n), event_id=f"e-{n}")
    worker.commit()
    first = [table in FIRST for table in worker.tables.puts]
    assert any(first)
    assert first == sorted(first, reverse=True)  # all of FIRST, then the heads and marks


def test_a_restarted_worker_reads_the_state_and_decides_the_same(
    catalogue: Catalogue, outlets: Outlets
) -> None:
    first = Worker(catalogue, Tables(), outlets)
    first.event("call.queued", T0)
    first.commit()
    second = Worker(catalogue, first.tables, outlets)
    second.restart()
    assert second.handler.index.open_clocks
    # It reports the watermarks it took over (a partition quiet since stays reported).
    reported = second.handler.metrics.registry.get_sample_value(
        "normwacht_processor_watermark_seconds", {"partition": "0"}
    )
    assert reported == first.handler.marks.get(0).timestamp()  # type: ignore[union-attr]
    second.offset = first.offset
    second.event("call.answered", T0 + timedelta(seconds=40))  # too late
    assert ("phone.answer", "breached") in kinds(outlets)


def test_partitions_a_worker_lost_are_no_longer_reported() -> None:
    metrics = ProcessorMetrics(CollectorRegistry())
    for partition in range(3):
        metrics.set_watermark(partition, 1_700_000_000.0 + partition)
        metrics.set_consumer_lag(partition, 10 + partition)
    metrics.hold_partitions([1])

    def reported(name: str, partition: int) -> float | None:
        return metrics.registry.get_sample_value(name, {"partition": str(partition)})

    for name in ("normwacht_processor_watermark_seconds", "normwacht_processor_consumer_lag"):
        assert reported(name, 0) is None
        assert reported(name, 2) is None
    assert reported("normwacht_processor_watermark_seconds", 1) == 1_700_000_001.0
    assert reported("normwacht_processor_consumer_lag", 1) == 11
    metrics.set_watermark(0, 1_800_000_000.0)  # held again after a later rebalance
    assert reported("normwacht_processor_watermark_seconds", 0) == 1_800_000_000.0


def script(worker: Worker) -> None:
    """A partition's records: calls met, breached by due-records, a duplicate, and a case
    that fills a chunk of facts and spills its clocks (codec.py) halfway."""
    for n in range(34):
        worker.event("call.queued", T0 + timedelta(seconds=n), subject="BIG", event_id=f"b-{n}")
    for n in range(6):
        subject = f"CALL-{n % 3}"
        at = T0 + timedelta(minutes=n)
        worker.event("call.queued", at, subject=subject, event_id=f"q-{n}")
        if n % 2:
            worker.event("call.answered", at + timedelta(seconds=5), subject=subject,
                         event_id=f"a-{n}")  # fmt: skip
        else:
            worker.due(subject, at + timedelta(seconds=30))
        worker.event("call.queued", at, subject=subject, event_id=f"q-{n}")  # resent


def test_a_crash_at_any_record_loses_no_outcome_and_changes_none(catalogue: Catalogue) -> None:
    """The kill -9 guarantee, record by record: a worker dies after any record, with
    what it staged since its last commit lost, or written in part or whole without
    the offsets committed; the next one reads the tables and the records from the
    committed offset. Every outcome of the run without a crash is
    published, and no outcome id is published with other contents."""
    straight = Outlets()
    script(Worker(catalogue, Tables(), straight))
    expected = {outcome["id"]: outcome for outcome in straight.outcomes}
    # Each CALL case has two calls: met when answered (n odd), else breached by its
    # due-record; its transfer norm's clock opens once. BIG opens a clock per call.
    assert {i for i in expected if not i.startswith("BIG/")} == {
        f"CALL-{case}/phone.answer/{instance}/{kind}"
        for case, instance, decided in [
            (0, 1, "breached"), (0, 2, "met"), (1, 1, "met"),
            (1, 2, "breached"), (2, 1, "breached"), (2, 2, "met"),
        ]
        for kind in ("opened", decided)
    } | {f"CALL-{case}/phone.transfers/1/opened" for case in range(3)}  # fmt: skip
    assert sum(i.startswith("BIG/phone.answer/") and i.endswith("/opened") for i in expected) == 34
    records = Worker(catalogue, Tables(), Outlets())
    recorded: list[Record] = []
    records.feed = lambda key, value, headers=(), written=None: recorded.append(  # type: ignore[method-assign]
        Record(key, value, tuple(headers), "events", 0, len(recorded), written)
    )
    script(records)
    assert len(recorded) == 52

    async def handle(worker: Worker, records: list[Record], commit_after: int = -1) -> None:
        for record in records:
            await worker.handler.handle(record)
            if record.offset == commit_after:
                worker.commit()

    for commit_at in (0, 20, 31, 33, 34, 40, 46):
        for crash_at in range(commit_at, len(recorded), 2):
            published = Outlets()
            tables = Tables()
            first = Worker(catalogue, tables, published)
            asyncio.run(handle(first, recorded[:crash_at], commit_at - 1))
            # A commit's writes may also be cut short, or done without the offsets
            # being committed: the records after the last commit are read again.
            if crash_at % 3 == 1:
                first.commit(steps=1)
            elif crash_at % 3 == 2:
                first.commit()
            second = Worker(catalogue, tables, published)
            second.restart()
            asyncio.run(handle(second, recorded[commit_at:]))
            seen = {outcome["id"]: outcome for outcome in published.outcomes}
            assert seen.keys() == expected.keys(), (commit_at, crash_at)
            for outcome in published.outcomes:
                assert outcome == expected[outcome["id"]], (commit_at, crash_at)


def test_writes_that_failed_go_with_the_next_batch_unless_overtaken() -> None:
    """A commit whose writes fail commits nothing; the next one must carry them, or it
    would commit offsets past records whose state never reached the tables."""
    tables: dict[tuple[str, str], Any] = {}
    staged = StagedState(lambda table, key: tables.get((table, key)))
    staged.put(CASES, "A", {"v": 1}, 0)
    staged.put(CASES, "B", {"v": 1}, 0)
    failed = staged.take()
    staged.put(CASES, "B", {"v": 2}, 0)  # newer, staged while the batch was written
    staged.not_written(failed)
    assert staged.get(CASES, "A") == {"v": 1}
    again = {(write.key, write.value["v"]) for step in staged.take() for write in step}
    assert again == {("A", 1), ("B", 2)}


@pytest.mark.parametrize(
    ("marks", "cases"),
    [
        ([('"4"', [1.0, 7])], []),  # faust's JSON key
        ([], [("CALL-1", {"case": {}, "outbox": [], "journal": []})]),
    ],
)
def test_state_in_the_format_before_issue_12_is_refused_with_the_way_out(
    worker: Worker, marks: list[tuple[str, Any]], cases: list[tuple[str, Any]]
) -> None:
    with pytest.raises(StateFromAnEarlierVersion, match="NORMWACHT_PROCESSOR_APP_ID"):
        worker.handler.restart(marks, cases)
