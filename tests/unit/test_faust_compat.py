"""faust_compat on the real faust: the start-up check, and each per-record patch's promise.

No broker: a `faust.App` is built without one, and its consumer, producer buffer, monitor
and streams are the real objects. The end-to-end proof of the durability repairs is
the kill -9 test (tests/integration/test_resilience.py); the floors of
`python -m bench throughput --floors` measure the per-record patches.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterator
from typing import Any, NamedTuple, cast

import faust
import faust._cython.streams as cython_streams
import faust.streams as faust_streams
import pytest
from faust.transport.consumer import Consumer
from faust.transport.producer import ProducerBuffer
from faust.types import TP, Message

from services.sla_processor import faust_compat
from services.sla_processor.batches import OutcomesNotWritten
from services.sla_processor.faust_compat import FaustIncompatible, check_internals
from services.sla_processor.state import StagedState


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The loop the app's services are made for: the scenarios run on it, then it closes."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)
    loop.close()


@pytest.fixture
def app(loop: asyncio.AbstractEventLoop) -> Iterator[faust.App]:
    app = _app("faust-compat-test", loop)
    yield app
    _close_consumer_loop(app)


def _app(name: str, loop: asyncio.AbstractEventLoop) -> faust.App:
    return faust.App(
        name,
        broker="kafka://localhost:1",  # never contacted
        store="memory://",
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
        loop=loop,
    )


def _close_consumer_loop(app: faust.App) -> None:
    """The aiokafka consumer made its thread's loop when created; nothing started it."""
    consumer: Any = app._consumer
    if consumer is not None:
        consumer._thread.thread_loop.close()


@pytest.fixture(autouse=True)
def cython_sleep_restored() -> Iterator[None]:
    """The stream patch is process-wide: leave the module as the test found it."""
    sleep, marks = cython_streams.sleep, vars(cython_streams).get("__faust_compat_patch__")
    yield
    cython_streams.sleep = sleep
    if marks is None:
        vars(cython_streams).pop("__faust_compat_patch__", None)
    else:
        vars(cython_streams)["__faust_compat_patch__"] = marks


def test_the_installed_faust_has_every_internal_the_patches_touch() -> None:
    check_internals()


def test_a_missing_internal_refuses_to_start_and_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(ProducerBuffer, "wait_until_ebb")
    monkeypatch.delattr(cython_streams, "sleep")

    with pytest.raises(FaustIncompatible) as refused:
        check_internals()

    message = str(refused.value)
    assert "faust.transport.producer.ProducerBuffer.wait_until_ebb is missing" in message
    assert "faust._cython.streams.sleep is missing" in message
    assert "faust-streaming==0.15.3" in message


def test_another_version_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(faust_compat.PINNED, "mode-streaming", "0.6.0")

    with pytest.raises(FaustIncompatible, match=r"mode-streaming 0\.7\.1 is installed, 0\.6\.0"):
        check_internals()


def _patched_objects(app: faust.App) -> dict[str, Any]:
    return {
        "wait_first": vars(app.consumer)["wait_first"],
        "sleep": cython_streams.sleep,
        "put": vars(app.producer.buffer)["put"],
        "wait_until_ebb": vars(app.producer.buffer)["wait_until_ebb"],
        "create_event": vars(app)["create_event"],
        **{hook: vars(app.monitor)[hook] for hook in ("on_message_in", "on_stream_event_in")},
    }


def test_each_patch_replaces_what_it_says_on_the_app_and_twice_is_once(
    app: faust.App, loop: asyncio.AbstractEventLoop
) -> None:
    released_sleep = cython_streams.sleep
    faust_compat.make_per_record_path_cheap(app)
    patched = _patched_objects(app)

    assert patched["sleep"] is not released_sleep
    assert patched["put"] == app.producer.buffer.pending.put_nowait
    assert app.monitor.on_stream_event_in is patched["on_stream_event_in"]

    faust_compat.make_per_record_path_cheap(app)
    assert _patched_objects(app) == patched  # not wrapped again


def test_another_app_in_the_process_keeps_faust_as_released(
    app: faust.App, loop: asyncio.AbstractEventLoop
) -> None:
    faust_compat.make_per_record_path_cheap(app)
    other = _app("unpatched", loop)
    try:
        assert "wait_first" not in vars(other.consumer)
        assert "put" not in vars(other.producer.buffer)
        assert "create_event" not in vars(other)
        assert "on_message_in" not in vars(other.monitor)
    finally:
        _close_consumer_loop(other)


def test_the_conductor_runs_inline_when_it_does_not_wait(
    app: faust.App, loop: asyncio.AbstractEventLoop
) -> None:
    faust_compat.conductor_runs_inline_when_it_can(app)
    consumer: Any = app.consumer

    async def delivered() -> str:
        return "queued"

    async def scenario() -> Any:
        return await consumer.wait_first(delivered(), consumer.suspend_flow.wait())

    results = loop.run_until_complete(scenario())
    assert (results.results, results.stopped) == (["queued"], False)


def test_a_waiting_conductor_still_gives_way_to_a_rebalance(
    app: faust.App, loop: asyncio.AbstractEventLoop
) -> None:
    faust_compat.conductor_runs_inline_when_it_can(app)
    consumer: Any = app.consumer
    happened: list[str] = []

    async def blocked_on_flow_control(resumed: asyncio.Future[None]) -> None:
        happened.append("started")
        try:
            await resumed
            happened.append("delivered")
        except asyncio.CancelledError:
            happened.append("cancelled")
            raise

    async def scenario() -> Any:
        resumed = asyncio.get_running_loop().create_future()
        waiting = asyncio.create_task(
            consumer.wait_first(blocked_on_flow_control(resumed), consumer.suspend_flow.wait())
        )
        await asyncio.sleep(0.01)
        consumer.stop_flow()  # a rebalance
        return await waiting

    results = loop.run_until_complete(scenario())
    assert (results.results, results.stopped) == ([True], False)  # suspend_flow.wait() won
    assert happened == ["started", "cancelled"]


def test_a_waiting_conductor_finishes_when_it_may(
    app: faust.App, loop: asyncio.AbstractEventLoop
) -> None:
    faust_compat.conductor_runs_inline_when_it_can(app)
    consumer: Any = app.consumer

    async def delivered_once_resumed(resumed: asyncio.Future[str]) -> str:
        return await resumed

    async def scenario() -> Any:
        resumed = asyncio.get_running_loop().create_future()
        waiting = asyncio.create_task(
            consumer.wait_first(delivered_once_resumed(resumed), consumer.suspend_flow.wait())
        )
        await asyncio.sleep(0.01)
        resumed.set_result("queued")
        return await waiting

    results = loop.run_until_complete(scenario())
    assert (results.results, results.stopped) == (["queued"], False)


def test_a_failing_conductor_fails_the_drain_as_before(
    app: faust.App, loop: asyncio.AbstractEventLoop
) -> None:
    faust_compat.conductor_runs_inline_when_it_can(app)
    consumer: Any = app.consumer

    async def undecodable() -> None:
        raise ValueError("bad record")

    async def scenario() -> None:
        await consumer.wait_first(undecodable(), consumer.suspend_flow.wait())

    with pytest.raises(ValueError, match="bad record"):
        loop.run_until_complete(scenario())


def test_the_cython_stream_iterator_calls_the_module_sleep_for_every_record(
    app: faust.App, loop: asyncio.AbstractEventLoop
) -> None:
    """The seam the stream patch relies on: the extension looks `sleep` up at run time."""
    calls: list[float] = []
    released = cython_streams.sleep

    def counting_sleep(delay: float, result: Any = None) -> Any:
        calls.append(delay)
        return released(delay, result)

    cython_streams.sleep = counting_sleep
    assert loop.run_until_complete(_stream_through(app, list(range(50)))) == list(range(50))
    assert calls.count(0) >= 50


def test_the_patched_stream_yields_every_record_in_order(
    app: faust.App, loop: asyncio.AbstractEventLoop
) -> None:
    faust_compat.stream_iterator_yields_to_the_loop_every_few_ms()

    assert loop.run_until_complete(_stream_through(app, list(range(1000)))) == list(range(1000))


async def _stream_through(app: faust.App, values: list[int]) -> list[int]:
    return [value async for value in app.stream(values)]


def test_the_patched_sleep_still_sleeps_when_asked_to() -> None:
    faust_compat.stream_iterator_yields_to_the_loop_every_few_ms()

    async def scenario() -> tuple[Any, Any]:
        return await cython_streams.sleep(0), await cython_streams.sleep(0.001, "slept")

    assert asyncio.run(scenario()) == (None, "slept")


def test_the_producer_buffer_still_holds_back_when_full(
    app: faust.App, loop: asyncio.AbstractEventLoop
) -> None:
    faust_compat.producer_buffer_reads_its_settings_once(app)
    buffer: Any = app.producer.buffer

    async def scenario() -> None:
        buffer.put(object())
        await buffer.wait_until_ebb()  # below max_messages: returns at once
        for _ in range(buffer.max_messages):
            buffer.put(object())
        # Full: faust's own wait runs, and flushes; this buffer was never started.
        await buffer.wait_until_ebb()

    with pytest.raises(RuntimeError, match="Cannot flush: Producer not Running"):
        loop.run_until_complete(scenario())
    assert buffer.size == buffer.max_messages + 1


def test_a_decoded_record_is_the_configured_event(
    app: faust.App, loop: asyncio.AbstractEventLoop
) -> None:
    faust_compat.create_event_resolves_the_event_class_once(app)
    topic = app.topic("events")  # created after the patch, as the processor's
    message = Message("events", 3, 35, 0.0, 0, None, b"subject", b"value", None)

    event = loop.run_until_complete(topic.decode(message))

    assert type(event) is faust.Event  # the configured class (faust's default)
    assert (event.key, event.value, event.message) == (b"subject", b"value", message)


def test_the_monitor_keeps_what_faust_reads(
    app: faust.App, loop: asyncio.AbstractEventLoop
) -> None:
    faust_compat.monitor_keeps_only_what_faust_reads(app)
    monitor: Any = app.monitor
    tp = TP("events", 3)
    message = Message("events", 3, 35, 0.0, 0, None, b"subject", b"value", None)

    monitor.on_message_in(tp, 35, message)
    state = monitor.on_stream_event_in(tp, 35, app.stream(app.channel()), None)
    monitor.on_stream_event_out(tp, 35, app.stream(app.channel()), None, state)
    monitor.on_message_out(tp, 35, message)

    assert tp in monitor.stream_inbound_time  # the slow-processing check reads it
    assert monitor.tp_read_offsets[tp] == 35
    assert (monitor.messages_received_total, monitor.events_total) == (1, 1)
    assert monitor.messages_active == 0


def test_a_commit_that_no_longer_flushes_first_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def commit_without_flushing(self: Any, offsets: Any) -> bool:
        return bool(await self._commit(offsets))

    monkeypatch.setattr(Consumer, "_commit_offsets", commit_without_flushing)
    with pytest.raises(FaustIncompatible, match=r"_commit_offsets no longer does await self\.app"):
        check_internals()


class Sent(NamedTuple):
    """What aiokafka answers for a record acknowledged (its RecordMetadata's fields)."""

    topic: str
    partition: int
    offset: int


class Broker:
    """`app.producer`'s `send` and `flush` as aiokafka's behave: a send is acknowledged
    (or fails, for a key in `refuse`) only when the producer is flushed."""

    def __init__(self, app: faust.App, happened: list[str], refuse: frozenset[str] = frozenset()):
        self.happened, self.refuse = happened, refuse
        self.offsets: dict[tuple[str, int], int] = {}
        self.unanswered: list[tuple[asyncio.Future[Sent], str, int, str]] = []
        app.producer.send = self.send  # type: ignore[method-assign,assignment]
        app.producer.flush = self.flush  # type: ignore[method-assign]

    async def send(self, topic: str, key: bytes, value: bytes, partition: int, *_: Any) -> Any:
        table = topic.split("-")[-2]  # <app id>-<table>-changelog
        self.happened.append(f"{table} {key.decode()} p{partition}")
        acknowledged: asyncio.Future[Sent] = asyncio.get_running_loop().create_future()
        self.unanswered.append((acknowledged, topic, partition, key.decode()))
        return acknowledged

    async def flush(self) -> None:
        self.happened.append("flush")
        for acknowledged, topic, partition, key in self.unanswered:
            if key in self.refuse:
                acknowledged.set_exception(RuntimeError(f"{key} not written"))
                continue
            offset = self.offsets[(topic, partition)] = self.offsets.get((topic, partition), -1) + 1
            acknowledged.set_result(Sent(topic, partition, offset))
        self.unanswered.clear()


def _tables(app: faust.App, happened: list[str], *names: str) -> dict[str, Any]:
    """Tables whose store notes each persisted offset it is told."""
    tables = {n: app.Table(n, default=None, key_type=bytes, value_type=bytes) for n in names}
    for name, table in tables.items():
        store: Any = table.data

        def persisted(tp: TP, offset: int, name: str = name) -> None:
            happened.append(f"{name} persisted p{tp.partition} at {offset}")

        store.set_persisted_offset = persisted
    return tables


class Commit(NamedTuple):
    """What a commit test watches: what happened, the broker, the tables, the staged state."""

    happened: list[str]
    broker: Broker
    tables: dict[str, Any]
    staged: StagedState


def _commit(app: faust.App, *tables: str, refuse: frozenset[str] = frozenset()) -> Commit:
    happened: list[str] = []
    broker = Broker(app, happened, refuse)
    return Commit(happened, broker, _tables(app, happened, *tables), StagedState(lambda t, k: None))


def test_staged_state_is_written_at_the_flush_in_its_order(
    app: faust.App, loop: asyncio.AbstractEventLoop
) -> None:
    """Outcomes first (the batched ones confirmed, then the producer flushed as it was),
    then chunks and rows, then heads; each step flushed before the next, to the
    changelog and, once acknowledged, into the store; each store then told up to which
    changelog offset of each partition it holds, once."""
    happened, _, tables, staged = _commit(app, "cases", "case_facts")
    staged.put("cases", "C-1", {"offset": 1}, 0)
    staged.put("case_facts", "C-1/0", [1], 0)
    staged.put("cases", "C-1", {"offset": 2}, 0)  # the last value, once
    staged.put("cases", "C-2", {"offset": 3}, 1)
    staged.put("cases", "C-3", {"offset": 4}, 0)

    async def outcomes() -> None:
        happened.append("outcomes confirmed")

    faust_compat.write_staged_state_before_commit(app, staged, tables, outcomes)

    loop.run_until_complete(app.producer.flush())

    assert happened == [
        "outcomes confirmed",
        "flush",
        "case_facts C-1/0 p0",
        "flush",
        "case_facts persisted p0 at 0",
        "cases C-1 p0",
        "cases C-2 p1",
        "cases C-3 p0",
        "flush",
        "cases persisted p0 at 1",
        "cases persisted p1 at 0",
    ]
    assert tables["cases"].data[b"C-1"] == b'{"offset":2}'
    assert staged.get("cases", "C-1") is None  # written: read from the tables from now on


def test_staged_state_whose_write_failed_is_written_with_the_next_commit(
    app: faust.App, loop: asyncio.AbstractEventLoop
) -> None:
    happened, broker, tables, staged = _commit(app, "cases", refuse=frozenset({"C-2"}))
    staged.put("cases", "C-1", {"offset": 1}, 0)
    staged.put("cases", "C-2", {"offset": 2}, 0)
    faust_compat.write_staged_state_before_commit(app, staged, tables)

    with pytest.raises(RuntimeError, match="C-2 not written"):
        loop.run_until_complete(app.producer.flush())
    # No commit follows, and the store claims nothing of a step not wholly written:
    # nor holds any of it (a store ahead of its changelog would take the records read
    # again after a crash as applied, and their state would never reach the changelog).
    assert not [line for line in happened if "persisted" in line]
    assert b"C-1" not in tables["cases"].data
    assert staged.pending() == 2

    broker.refuse = frozenset()
    loop.run_until_complete(app.producer.flush())
    assert staged.pending() == 0
    assert happened[-1] == "cases persisted p0 at 2"  # offset 0: C-1 in the failed step


def test_no_state_is_written_while_outcomes_are_not(
    app: faust.App, loop: asyncio.AbstractEventLoop
) -> None:
    happened, _, tables, staged = _commit(app, "cases")
    staged.put("cases", "C-1", {"offset": 1}, 0)

    async def outcomes() -> None:
        raise OutcomesNotWritten("lost")

    faust_compat.write_staged_state_before_commit(app, staged, tables, outcomes)

    with pytest.raises(OutcomesNotWritten):
        loop.run_until_complete(app.producer.flush())
    assert happened == []  # no changelog record, no store write: no commit follows
    assert b"C-1" not in tables["cases"].data
    assert staged.pending() == 1


def test_a_long_step_lets_the_streams_run_between_its_writes(
    app: faust.App, loop: asyncio.AbstractEventLoop
) -> None:
    happened, _, tables, staged = _commit(app, "cases")
    writes = faust_compat.WRITES_BETWEEN_YIELDS * 2
    for n in range(writes):
        staged.put("cases", f"C-{n}", {"offset": n}, 0)
    faust_compat.write_staged_state_before_commit(app, staged, tables)

    async def flush_beside_a_stream() -> None:
        async def stream() -> None:
            while True:
                happened.append("record")
                await asyncio.sleep(0)

        beside = asyncio.ensure_future(stream())
        await asyncio.sleep(0)
        await app.producer.flush()
        beside.cancel()

    loop.run_until_complete(flush_beside_a_stream())

    sends = [n for n, line in enumerate(happened) if line.startswith("cases C-")]
    records_between = [line for line in happened[sends[0] : sends[-1]] if line == "record"]
    assert len(sends) == writes
    assert len(records_between) >= 1  # the stream ran in the middle of the step


def test_the_consumer_asks_the_broker_to_hold_a_fetch_no_longer_than_told(
    app: faust.App, loop: asyncio.AbstractEventLoop
) -> None:
    faust_compat.fetches_wait_at_most(app.consumer, 0.1)

    async def fetch_wait_ms() -> int:  # aiokafka makes its consumer on a running loop
        created = app.consumer._thread._create_worker_consumer(app.transport)  # type: ignore[attr-defined]
        await created.stop()  # never started: closes its client
        wait: int = created._fetch_max_wait_ms
        return wait

    assert loop.run_until_complete(fetch_wait_ms()) == 100  # faust's own: 1500


class _EventOf(NamedTuple):
    """What faust's RocksDB store reads of the current event: its message's partition."""

    partition: int


class _Event:
    def __init__(self, partition: int) -> None:
        self.message = _EventOf(partition)


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_a_store_read_finds_what_the_table_finds(
    loop: asyncio.AbstractEventLoop, tmp_path: Any, store: str
) -> None:
    """`read_from_store` skips the table's layers, not its answer: in an agent (the
    current event's partition) and outside one (any partition), present or not."""
    app = faust.App("store-read-test", broker="kafka://localhost:1", store=store,
                    datadir=str(tmp_path), web_enabled=False, loop=loop)  # fmt: skip
    table = app.Table("cases", default=None, partitions=6, key_type=bytes, value_type=bytes)
    faust_compat.put_in_store(table.data, 2, b"C-1", b"one")
    faust_compat.put_in_store(table.data, 4, b"C-2", b"two")
    keys = (b"C-1", b"C-2", b"C-3")
    outside = [faust_compat.read_from_store(table.data, key) for key in keys]
    assert outside == [b"one", b"two", None]
    assert outside == [table.get(key) for key in keys]
    for partition in (2, 4):
        event = _Event(partition)  # held: faust keeps a weak reference
        token = faust_streams._current_event.set(weakref.ref(cast(Any, event)))
        try:
            inside = [faust_compat.read_from_store(table.data, key) for key in keys]
            assert inside == [table.get(key) for key in keys]
            assert inside.count(None) == (1 if store == "memory://" else 2)
        finally:
            faust_streams._current_event.reset(token)
    _close_consumer_loop(app)


class _Fetch:
    """Stands in for faust's wait for fetched records (which needs a broker): it says
    which timeout it was given and returns a record for each active partition."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer
        self.timeouts: list[float] = []

    async def __call__(self, timeout: float) -> tuple[dict[TP, list[str]], set[TP]]:  # noqa: ASYNC109
        self.timeouts.append(timeout)
        active = set(self.consumer._get_active_partitions())
        return {tp: ["record"] for tp in active}, active


_EVENTS = (TP("events", 0), TP("events", 1))


def _paused_fetch(app: faust.App) -> tuple[Any, _Fetch]:
    """The app's consumer with two partitions assigned, faust's fetch wait replaced by a
    `_Fetch`, and the patch applied on top of it."""
    consumer: Any = app.consumer
    consumer._set_active_tps(set(_EVENTS))
    fetch = _Fetch(consumer)
    consumer._wait_next_records = fetch
    faust_compat.drained_buffers_are_read_at_once(consumer, 0.1)
    return consumer, fetch


def test_a_fetch_loop_with_every_partition_paused_reads_again_when_a_buffer_drains(
    app: faust.App, loop: asyncio.AbstractEventLoop
) -> None:
    consumer, fetch = _paused_fetch(app)
    for tp in _EVENTS:
        consumer.on_buffer_full(tp)  # the stream's buffer is under pressure
    assert not consumer._get_active_partitions()

    async def scenario() -> Any:
        waiting = asyncio.create_task(consumer._wait_next_records(3600.0))
        await asyncio.sleep(0.01)
        assert not waiting.done()  # nothing to read yet: it waits
        consumer.on_buffer_drop(_EVENTS[1])  # the stream has taken half its buffer
        return await asyncio.wait_for(waiting, 60)  # long before faust's own hour

    records, active = loop.run_until_complete(scenario())
    assert active == {_EVENTS[1]}
    assert records == {_EVENTS[1]: ["record"]}
    assert fetch.timeouts == [0.1]


def test_a_fetch_loop_with_every_partition_paused_gives_up_after_its_timeout(
    app: faust.App, loop: asyncio.AbstractEventLoop
) -> None:
    consumer, fetch = _paused_fetch(app)
    for tp in _EVENTS:
        consumer.on_buffer_full(tp)

    assert loop.run_until_complete(consumer._wait_next_records(0.01)) == ({}, set())
    assert fetch.timeouts == []  # as faust's own: nothing asked of the fetcher


def test_a_fetch_for_active_partitions_waits_no_longer_than_told(
    app: faust.App, loop: asyncio.AbstractEventLoop
) -> None:
    consumer, fetch = _paused_fetch(app)
    consumer.on_buffer_full(_EVENTS[0])

    records, active = loop.run_until_complete(consumer._wait_next_records(1.0))
    assert active == {_EVENTS[1]}
    assert records == {_EVENTS[1]: ["record"]}
    assert fetch.timeouts == [0.1]  # faust's fetch loop asks for 1.0
    loop.run_until_complete(consumer._wait_next_records(0.05))
    assert fetch.timeouts == [0.1, 0.05]
