"""Every change this project makes to faust-streaming's internals, in one place.

Three kinds, each a function with a docstring saying what it mends, why it is safe and
what it measured:

- three durability repairs, so that a kill -9 loses no record (the kill -9 test in
  tests/integration/test_resilience.py is what tells);
- `make_per_record_path_cheap`: the per-record costs a profile of faust's own path
  found, removed without changing what faust promises (records acked in order,
  processing suspended during a rebalance, the producer flushed before a commit);
- `write_staged_state_before_commit`: the processor's table writes coalesced per
  commit, in an order that keeps the kill -9 guarantee;
- `fetches_wait_at_most`: the consumer's fetch wait, which faust fixes at 1.5 s and
  which held live records back for that long after every commit;
- `drained_buffers_are_read_at_once`: the fetch loop's fixed second of waiting while
  a full stream buffer has its partitions paused, which left the agent idle.

Each patches the app's own objects (its consumer, producer buffer, monitor) rather
than faust's classes, so a process could run an unpatched app beside a patched one.
The one exception, the stream iterator's loop turn, lives inside a Cython method; its
docstring says why the module global is the only seam.

They were written against the exact versions pinned in pyproject.toml, and written so
that each could be proposed upstream as it stands. `check_internals`, called at
start-up before the app is created, refuses to start when an internal they rely on is
gone or another version is installed: the patches would silently do nothing, or harm.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.metadata
import inspect
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping
from typing import Any, Final, cast

import faust
import orjson
from aiokafka.structs import TopicPartition
from faust.types import TP
from mode.services import WaitResults

from services.sla_processor.state import StagedState, Write

__all__ = [
    "PINNED",
    "FaustIncompatible",
    "check_internals",
    "commit_only_after_changelog_is_written",
    "conductor_runs_inline_when_it_can",
    "create_event_resolves_the_event_class_once",
    "drained_buffers_are_read_at_once",
    "fetches_wait_at_most",
    "make_per_record_path_cheap",
    "monitor_keeps_only_what_faust_reads",
    "producer_buffer_reads_its_settings_once",
    "resume_clears_queues_only_after_a_suspension",
    "stream_iterator_yields_to_the_loop_every_few_ms",
    "uncommitted_partitions_start_from_the_beginning",
    "write_staged_state_before_commit",
]


#: The versions every patch here was read against and measured on (pyproject.toml pins them).
PINNED: Final = {"faust-streaming": "0.15.3", "mode-streaming": "0.7.1", "aiokafka": "0.14.0"}

#: (dotted path of a class or module, attribute) for every internal a patch replaces or
#: relies on. A class attribute counts when it is defined, annotated (faust and mode
#: annotate what `__init__` assigns) or an `__init__` parameter stored under its name.
INTERNALS: Final = (
    # commit_only_after_changelog_is_written
    ("faust.transport.drivers.aiokafka.Producer", "send_soon"),
    ("faust.transport.drivers.aiokafka.Producer", "flush"),
    ("faust.transport.producer.Producer", "buffer"),
    ("faust.transport.producer.ProducerBuffer", "flush"),
    # resume_clears_queues_only_after_a_suspension
    ("faust.App", "flow_control"),
    ("mode.utils.queues.FlowControlEvent", "resume"),
    ("mode.utils.queues.FlowControlEvent", "is_active"),
    # uncommitted_partitions_start_from_the_beginning
    ("faust.transport.drivers.aiokafka.Consumer", "seek_to_committed"),
    ("faust.transport.drivers.aiokafka.Consumer", "_thread"),
    ("faust.transport.drivers.aiokafka.AIOKafkaConsumerThread", "seek_to_beginning"),
    # conductor_runs_inline_when_it_can
    ("faust.App", "consumer"),
    ("faust.transport.drivers.aiokafka.Consumer", "_drain_messages"),
    ("faust.transport.drivers.aiokafka.Consumer", "wait_first"),
    ("faust.transport.drivers.aiokafka.Consumer", "callback"),
    ("faust.transport.drivers.aiokafka.Consumer", "suspend_flow"),
    ("faust.transport.drivers.aiokafka.Consumer", "_stopped"),
    ("faust.transport.drivers.aiokafka.Consumer", "_crashed"),
    # stream_iterator_yields_to_the_loop_every_few_ms
    ("faust.streams", "_CStreamIterator"),
    ("faust._cython.streams", "sleep"),
    ("faust._cython.streams", "StreamIterator"),
    # producer_buffer_reads_its_settings_once
    ("faust.transport.producer.ProducerBuffer", "put"),
    ("faust.transport.producer.ProducerBuffer", "wait_until_ebb"),
    ("faust.transport.producer.ProducerBuffer", "pending"),
    ("faust.transport.producer.ProducerBuffer", "max_messages"),
    ("faust.types.settings.Settings", "producer_threaded"),
    # create_event_resolves_the_event_class_once
    ("faust.App", "create_event"),
    ("faust.types.settings.Settings", "Event"),
    # monitor_keeps_only_what_faust_reads
    ("faust.App", "monitor"),
    ("faust.sensors.Monitor", "on_message_in"),
    ("faust.sensors.Monitor", "on_stream_event_in"),
    ("faust.sensors.Monitor", "on_message_out"),
    ("faust.sensors.Monitor", "stream_inbound_time"),
    ("faust.sensors.Monitor", "tp_read_offsets"),
    ("faust.sensors.Monitor", "messages_received_total"),
    ("faust.sensors.Monitor", "messages_active"),
    ("faust.sensors.Monitor", "events_total"),
    # write_staged_state_before_commit
    ("faust.transport.consumer.Consumer", "_commit_offsets"),
    ("faust.tables.base.Collection", "changelog_topic"),
    ("faust.tables.base.Collection", "data"),
    ("faust.topics.Topic", "get_topic_name"),
    ("faust.transport.drivers.aiokafka.Producer", "send"),
    ("faust.stores.base.Store", "set_persisted_offset"),
    ("faust.stores.rocksdb.Store", "_db_for_partition"),
    ("faust.stores.rocksdb.Store", "_key_index"),
    ("faust.stores.rocksdb.Store", "_get"),
    ("faust.stores.memory.Store", "data"),
    # fetches_wait_at_most
    ("faust.transport.drivers.aiokafka.AIOKafkaConsumerThread", "_create_worker_consumer"),
    # drained_buffers_are_read_at_once
    ("faust.transport.consumer.Consumer", "_wait_next_records"),
    ("faust.transport.consumer.Consumer", "_get_active_partitions"),
    ("faust.transport.consumer.Consumer", "on_buffer_drop"),
    ("faust.transport.consumer.Consumer", "flow_active"),
    # app.py's candidate_mark: the offset a partition is read on from after a rebalance
    ("faust.transport.consumer.Consumer", "_committed_offset"),
    # the outcome batches (batches.py) on aiokafka's producer, as faust makes it
    ("faust.transport.drivers.aiokafka.Producer", "_ensure_producer"),
    ("aiokafka.producer.producer.AIOKafkaProducer", "create_batch"),
    ("aiokafka.producer.producer.AIOKafkaProducer", "send_batch"),
)


#: (dotted path of a class, method, what its source must do, in this order): where a
#: patch relies on when faust calls something, not only on its being there.
CALL_ORDERS: Final = (
    # write_staged_state_before_commit: faust flushes the producer before it commits.
    (
        "faust.transport.consumer.Consumer",
        "_commit_offsets",
        ("await self.app.producer.flush()", "await self._commit("),
    ),
    # fetches_wait_at_most: faust makes the worker's consumer through the patched
    # method, then starts it; aiokafka keeps the wait it is given, and its fetcher
    # reads it when the consumer starts.
    (
        "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread",
        "on_start",
        ("self._consumer = self._create_consumer(", "await self._consumer.start()"),
    ),
    (
        "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread",
        "_create_consumer",
        ("return self._create_worker_consumer(",),
    ),
    # drained_buffers_are_read_at_once: the fetch loop asks for records through
    # `getmany`, which waits in `_wait_next_records`: a fixed second with no active
    # partition, else up to its timeout in the consumer thread.
    (
        "faust.transport.consumer.Consumer",
        "_drain_messages",
        ("getmany = self.getmany", "ait = cast(AsyncIterator, getmany(timeout=1.0))"),
    ),
    (
        "faust.transport.consumer.Consumer",
        "getmany",
        ("await self._wait_next_records(timeout)",),
    ),
    (
        "faust.transport.consumer.Consumer",
        "_wait_next_records",
        ("active_partitions = self._get_active_partitions()", "await self.sleep(1)"),
    ),
    (
        "aiokafka.consumer.consumer.AIOKafkaConsumer",
        "__init__",
        ("self._fetch_max_wait_ms = fetch_max_wait_ms",),
    ),
    (
        "aiokafka.consumer.consumer.AIOKafkaConsumer",
        "start",
        ("fetch_max_wait_ms=self._fetch_max_wait_ms",),
    ),
)


class FaustIncompatible(RuntimeError):
    """The installed faust or mode is not what faust_compat was written and measured for."""


def check_internals() -> None:
    """Raise `FaustIncompatible` unless every internal the patches touch is there, as pinned.

    Call it at start-up, before the app is created: a patch whose target moved would
    otherwise do nothing at all (losing records again, for a durability repair) or
    fail in the middle of processing.
    """
    problems = []
    for distribution, pinned in PINNED.items():
        try:
            installed = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != pinned:
            problems.append(f"{distribution} {installed} is installed, {pinned} is pinned")
    for path, attribute in INTERNALS:
        if not _declares(path, attribute):
            problems.append(f"{path}.{attribute} is missing")
    for path, method, calls in CALL_ORDERS:
        if not _calls_in_order(path, method, calls):
            problems.append(f"{path}.{method} no longer does {' then '.join(calls)}")
    if not problems:
        return
    pins = ", ".join(f"{name}=={version}" for name, version in PINNED.items())
    raise FaustIncompatible(
        "services/sla_processor/faust_compat.py patches faust internals that this "
        f"installation does not have as expected ({pins} are what they were verified "
        "against): " + "; ".join(problems) + ". Install the pinned versions, or re-verify "
        "every patch in faust_compat.py against the new ones and update PINNED."
    )


def _declares(path: str, attribute: str) -> bool:
    owner = _resolve(path)
    if owner is None:
        return False
    if inspect.ismodule(owner):
        return getattr(owner, attribute, None) is not None
    if hasattr(owner, attribute):  # an abstract declaration in an interface is not enough
        return not getattr(getattr(owner, attribute), "__isabstractmethod__", False)
    return any(
        attribute in vars(cls).get("__annotations__", {})
        or ("__init__" in vars(cls) and attribute in inspect.signature(cls.__init__).parameters)
        for cls in owner.__mro__
    )


def _calls_in_order(path: str, method: str, calls: tuple[str, ...]) -> bool:
    try:
        source = inspect.getsource(getattr(_resolve(path), method))
    except (AttributeError, OSError, TypeError):
        return False
    at = 0
    for call in calls:
        at = source.find(call, at)
        if at < 0:
            return False
    return True


def _resolve(path: str) -> Any:
    """The module, or the class inside a module, that a dotted path names; None if gone."""
    module_path, _, name = path.rpartition(".")
    for candidate, attribute in ((path, None), (module_path, name)):
        try:
            module = importlib.import_module(candidate)
        except ImportError:
            continue
        return module if attribute is None else getattr(module, attribute, None)
    return None


# --- durability repairs ---------------------------------------------------------------
#
# The kill -9 test (tests/integration/test_resilience.py) lost 36 to 110 of 600
# outcomes, and once published a breach for a call answered in time. Chasing it found
# three ways faust can move past a record it never processed; each repair below says
# what it mends.


def commit_only_after_changelog_is_written(producer: Any) -> None:
    """Patch the producer: its `flush` also waits until every table change is acknowledged.

    faust writes a table change to its changelog with `send_soon`: the record waits in
    a `ProducerBuffer` until a background task hands it to aiokafka. Before committing
    source offsets faust flushes that buffer, but the buffer's flush gives up after
    0.1 s without progress, and counts a record as gone once it leaves the queue,
    before aiokafka has it (`faust/transport/producer.py`). Offsets could be committed
    for records whose table change was never written; recovery would then bring back
    the case without them, and they would not be read again. Found by reading the
    code while chasing the loss above, not seen on its own. A failed write raises, so
    the commit does not happen and the records are read again.

    The processor's own state no longer takes this path (`_write_step` sends and awaits
    its changelog records itself); it stays for any faust table write or `send_soon`.
    """
    in_flight: set[asyncio.Future[Any]] = set()
    send_soon = producer.send_soon
    flush = producer.flush

    def tracked_send_soon(future: asyncio.Future[Any]) -> None:
        in_flight.add(future)
        future.add_done_callback(in_flight.discard)
        send_soon(future)

    async def flush_all() -> None:
        await flush()
        while in_flight:
            done, _ = await asyncio.wait(set(in_flight))
            for future in done:
                future.result()  # a write that failed stops the commit

    producer.send_soon = tracked_send_soon
    producer.flush = flush_all


def resume_clears_queues_only_after_a_suspension(flow_control: Any) -> None:
    """Patch the app's flow control: `resume` on a running flow leaves the queues alone.

    `FlowControlEvent.resume` (mode-streaming 0.7.1) clears every stream queue, suspended or not.
    faust resumes the flow when changelog recovery starts, and again once the stream
    partitions have been resumed and seeked; records fetched in between were cleared
    unprocessed while the fetch position had moved past them. Measured: after a
    restart with no committed offset yet, offsets 35 to 53 of every partition were
    never processed, and their outcomes never published. Clearing belongs to the end
    of a suspension (a rebalance), when the fetch positions are reset anyway.
    """
    resume = flow_control.resume

    def resume_if_suspended() -> None:
        if not flow_control.is_active():
            resume()

    flow_control.resume = resume_if_suspended


def uncommitted_partitions_start_from_the_beginning(consumer: Any, topic: str) -> None:
    """Patch the consumer: after a rebalance, a partition with no commit rereads from its start.

    faust seeks each partition to its committed offset after a rebalance, and leaves
    a partition with no commit where the fetcher happens to be. On a first start the
    stream partitions are not paused while the changelogs are recovered: their
    records were fetched, then cleared when recovery resumed the flow. Measured: a
    worker restarted after a kill -9 that came before the first commit began at the
    end of the topic, and every record the first worker had not finished was lost.
    `auto_offset_reset=earliest` says where such a partition starts; this makes it so.
    """
    seek_to_committed = consumer.seek_to_committed

    async def seek_to_committed_or_start() -> Any:
        committed = await seek_to_committed()
        never = [tp for tp, offset in committed.items() if tp.topic == topic and not offset]
        if never:
            # The consumer's own thread runs aiokafka, which wants its own partition type.
            await consumer._thread.seek_to_beginning(
                *(TopicPartition(tp.topic, tp.partition) for tp in never)
            )
        return committed

    consumer.seek_to_committed = seek_to_committed_or_start


def fetches_wait_at_most(consumer: Any, wait_s: float) -> None:
    """Patch the consumer: the broker answers a fetch within `wait_s` even when it has no data.

    faust creates its aiokafka consumer with `fetch_max_wait_ms=1500`, not a setting. A
    fetch is a long poll, and aiokafka keeps one in flight per broker, covering only
    the partitions whose fetched records were all consumed (`Fetcher.
    _get_actions_per_node`): when the worker was busy, that can be partitions with
    nothing new, and the others wait behind it for the full 1.5 s. Measured here
    (2026-12-03, 1,100 events/s of live load, 6 partitions, one worker): after every
    commit the consumer got nothing for 1.0-1.5 s while the topic grew, then ~2,000
    records at once, and the due-records among them waited as long (breaches 1.2 s
    after their deadline at the median, 2.7 s at p99). With 0.1 s those gaps were
    gone (0.2 s and 0.6 s). An idle worker now sends ten fetches a second, which the
    broker answers from memory. kafkajs users found the same
    (github.com/tulios/kafkajs/issues/1397).
    """
    thread = consumer._thread
    create = thread._create_worker_consumer

    def create_with_shorter_wait(transport: Any) -> Any:
        created = create(transport)
        created._fetch_max_wait_ms = round(wait_s * 1000)  # read by its fetcher at start
        return created

    thread._create_worker_consumer = create_with_shorter_wait


def drained_buffers_are_read_at_once(consumer: Any, wait_s: float) -> None:
    """Patch the consumer: a partition paused for a full stream buffer is read again as
    soon as the buffer has drained, not up to a second later.

    faust takes a partition out of the fetch when its stream's buffer is under
    pressure (`Consumer.on_buffer_full`) and puts it back once the buffer has drained
    to half (`on_buffer_drop`). Meanwhile its fetch loop (`_drain_messages`) asks for
    records of the partitions still active: with none, `_wait_next_records` sleeps a
    fixed second; with some that have nothing buffered, aiokafka waits for them up to
    `getmany`'s timeout, a second as well, while the records already fetched for the
    resumed partitions wait. On a backlog every fetch (about 24,000 records over 6
    partitions) overfills the stream buffer (4,096), so this happened every few
    seconds. Measured (2026-12-04, the worker instrumented during `python -m bench
    throughput --events 100000`): every ~7 s a `getmany` waited 1.00-1.07 s and
    returned nothing, and the agent then stood idle 0.1-0.45 s with its buffer empty.

    Fix: with no active partition the loop waits until a buffer drains, at most the
    timeout it was given; with some, it waits for their records at most `wait_s`, so
    a partition resumed meanwhile is read at the next turn. Pausing, and so the bound
    on what a stream buffers, is unchanged. Upstream: `on_buffer_drop` would wake
    `_wait_next_records`.
    """
    wait_next_records = consumer._wait_next_records
    on_buffer_drop = consumer.on_buffer_drop
    drained = asyncio.Event()  # binds to the loop at its first wait

    def on_buffer_drop_and_wake(tp: TP) -> None:
        on_buffer_drop(tp)
        drained.set()

    # `timeout` is faust's own parameter, passed on as it is.
    async def wait_next_records_or_a_drain(timeout: float) -> Any:  # noqa: ASYNC109
        if consumer.flow_active and not consumer._get_active_partitions():
            drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(drained.wait(), timeout)
            if not consumer._get_active_partitions():
                return {}, set()  # what faust's own wait returns after its second
        return await wait_next_records(min(timeout, wait_s))

    consumer.on_buffer_drop = on_buffer_drop_and_wake
    consumer._wait_next_records = wait_next_records_or_a_drain


# --- the per-record path --------------------------------------------------------------
#
# Measured on bench/faust_floor.py's `count` mode (a faust agent that only counts;
# FLOOR_PATCHED names the patches applied), one patch left out at a time: 100,000
# records, 6 partitions, 3 interleaved rounds on this project's shared 2-core machine,
# 2026-12-03. With no patch 5,300 events/s (rounds 4,800-6,900), with all of them
# 25,300 (23,200-25,900), a bare aiokafka consumer 109,000. The effect given in each
# docstring is the median with every patch but that one. The two that remove an
# event-loop turn per record matter most, and only together: either alone leaves the
# other turn in place.

_PATCHED: Final = "__faust_compat_patch__"


# --- the processor's state, written at the commit ------------------------------------


def write_staged_state_before_commit(
    app: faust.App,
    staged: StagedState,
    tables: Mapping[str, Any],
    outcomes: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Patch the producer's flush, which faust awaits before it commits source offsets
    (`Consumer._commit_offsets`), to write the processor's staged state first, in the
    order services/sla_processor/state.py gives: the outcomes (`outcomes` confirms the
    ones batched outside the producer, batches.py), what the producer holds, then each
    step of the batch, each awaited.

    What it mends: faust writes each table change to the changelog and the local store
    at once, a changelog record per write. Measured on the throughput benchmark's
    floor (2026-12-03, bench/faust_floor.py): a RocksDB table write per record took a
    patched faust agent from 40,977 to 6,582 events/s. Written this way a key changed
    many times in a commit interval costs one changelog record, and the write order
    keeps the kill -9 guarantee without an outbox (state.py). Upstream, this would be a
    table option: changelog writes coalesced per commit.

    The changelog records go straight to the producer (see `_write_step`), not through
    faust's `send_changelog`: that queues each record in the `ProducerBuffer`, and
    while more than its `max_messages` wait there faust stops handing records to the
    streams (`wait_until_producer_ebb`). Measured (2026-12-03, 1,100 events/s of live
    load): a commit of ~2,000 keys kept the event loop busy 0.3-1.0 s that way.
    """
    producer: Any = app.producer
    flush = producer.flush
    # One batch at a time (a rebalance's flush may meet a commit's): a later batch
    # written first would be overwritten by an earlier one.
    writing = asyncio.Lock()

    async def flush_with_state() -> None:
        async with writing:
            batch = staged.take()  # before the outcomes: theirs are all appended
            try:
                if outcomes is not None:
                    await outcomes()
                await flush()
                for step in batch:
                    if step:
                        await _write_step(producer, flush, tables, step)
            except BaseException:
                # No commit follows; the next batch carries these writes again, so a
                # later commit never covers records whose state was not written.
                staged.not_written(batch)
                raise
            staged.written(batch)

    producer.flush = flush_with_state


WRITES_BETWEEN_YIELDS: Final = 200
"""A commit writes ~2,000 keys at 1,000 events/s; at ~50 us each, 200 are 10 ms of the
event loop."""


async def _write_step(
    producer: Any,
    flush: Callable[[], Coroutine[Any, Any, None]],
    tables: Mapping[str, Any],
    step: list[Write],
) -> None:
    """Each write to its table's changelog, and once all are acknowledged (a failed one
    raises) into its local store. Never the store first: a worker killed in between
    would restart on a store ahead of its changelog, take the record as applied, and
    never write its state to the changelog, from which the next owner of the partition
    restores (it then published, from the older state, what contradicted outcomes
    already out). A changelog ahead of the store is read into it at the restart. Until
    then reads are served from the batch being written (state.py)."""
    sent: list[tuple[Any, Write, asyncio.Future[Any]]] = []
    for number, write in enumerate(step, 1):
        if number % WRITES_BETWEEN_YIELDS == 0:
            # Let the streams go on meanwhile: their records' offsets are not in this
            # commit, and what they stage goes with the next batch.
            await asyncio.sleep(0)
        table = tables[write.table]
        key, value = write.key.encode(), orjson.dumps(write.value)
        topic = table.changelog_topic.get_topic_name()
        future = await producer.send(topic, key, value, write.partition, None, None)
        sent.append((table, write, future))
    await flush()
    # What faust's `Collection._on_changelog_sent` does per record, once per partition:
    # the local store says up to which changelog offset it holds, so that a restart
    # reads only the changelog after it.
    persisted: dict[TP, tuple[Any, int]] = {}  # a table's changelog partition: its last
    for table, _, future in sent:
        metadata = await future
        tp = TP(metadata.topic, metadata.partition)
        if tp not in persisted or persisted[tp][1] < metadata.offset:
            persisted[tp] = (table, metadata.offset)
    for table, write, _ in sent:
        # Encoded again rather than kept from the send: holding a step's encoded values
        # until its acknowledgements took 35 MiB more of the worker's memory in the
        # throughput benchmark (docs/BENCHMARKS.md); a second encoding costs about 1 us.
        put_in_store(table.data, write.partition, write.key.encode(), orjson.dumps(write.value))
    for tp, (table, offset) in persisted.items():
        table.data.set_persisted_offset(tp, offset)


def read_from_store(store: Any, key: bytes) -> bytes | None:
    """A value from a table's local store, as faust's `Table.get` finds it (in an agent,
    the current event's partition), without the table's layers on top: for a key not
    there they cost 15 us a read, measured in the worker (two exceptions raised and
    caught, the key encoded), and every new case is such a read."""
    found = store._get(key) if _is_rocksdb(store) else store.data.get(key)
    return cast(bytes | None, found)


def put_in_store(store: Any, partition: int, key: bytes, value: bytes) -> None:
    """A value into a table's local store for `partition`, outside stream iteration
    (faust's own `Store._set` takes the partition from the current event)."""
    if _is_rocksdb(store):
        store._db_for_partition(partition).put(key, value)
        store._key_index[key] = partition
    else:  # memory
        store.data[key] = value


def _is_rocksdb(store: Any) -> bool:
    """A RocksDB store (a database per partition), or else faust's memory store (a dict)."""
    return hasattr(store, "_db_for_partition")


def make_per_record_path_cheap(app: faust.App) -> None:
    """Apply every per-record patch below to `app`; applying them twice changes nothing.

    Call it right after creating the app, before its topics, tables and agents: a
    topic compiles its decoder around `app.create_event` when it is created, and a
    stream binds the monitor's hooks when it starts.
    """
    conductor_runs_inline_when_it_can(app)
    stream_iterator_yields_to_the_loop_every_few_ms()
    producer_buffer_reads_its_settings_once(app)
    create_event_resolves_the_event_class_once(app)
    monitor_keeps_only_what_faust_reads(app)


def _first_time(owner: Any, patch: str) -> bool:
    """Whether `patch` is yet to be applied to `owner`; records that it now is."""
    applied: set[str] = vars(owner).setdefault(_PATCHED, set())
    if patch in applied:
        return False
    applied.add(patch)
    return True


def conductor_runs_inline_when_it_can(app: faust.App) -> None:
    """Hand each record to the conductor inline, and race it only when it has to wait.

    Mends: `Consumer._drain_messages` delivers every record through
    `Service.wait_first(callback(message), self.suspend_flow.wait())`, which wraps the
    conductor's callback, the suspend event, and the consumer's stopped and crashed
    events in four futures, waits on them with `asyncio.wait` and cancels the three
    losers: four tasks and at least one event-loop turn per record, although the
    callback almost never waits (it puts the event on the stream's queue).

    Fix: run the callback's first step inline (what Python 3.12 calls eager task
    execution). If it finishes there, nothing could have raced it, and the result is
    what `wait_first` would have returned. If it waits (flow control suspended, the
    producer buffer full, the stream queue full), the rest of it is raced exactly as
    before, so a rebalance (`suspend_flow`) or a stop still frees the drain loop.
    Records are delivered in the same order and acked by the stream as before; an
    exception from the callback propagates as before. Upstream, the same change
    belongs in `_drain_messages` itself. The drain loop already yields to the event
    loop every 100 records and on every fetch, so it cannot starve the streams.

    Measured: without it 7,500 events/s (rounds 5,200-8,200)
    against 25,300 with every patch.
    """
    consumer: Any = app.consumer  # the aiokafka driver's, with mode's Service internals
    if not _first_time(consumer, "conductor"):
        return
    wait_first = consumer.wait_first

    # `timeout` is wait_first's own parameter, passed on as it is.
    async def wait_first_inline(*coros: Any, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        first, others = coros[0], coros[1:]
        if not isinstance(first, Coroutine):
            return await wait_first(*coros, timeout=timeout)
        handed_over = False
        try:
            try:
                pending = first.send(None)
            except StopIteration as finished:
                if consumer._stopped.is_set() or consumer._crashed.is_set():
                    return WaitResults([], [], True)
                return WaitResults([first], [finished.value], False)
            handed_over = True
            return await wait_first(_rest_of(first, pending), *others, timeout=timeout)
        finally:
            if not handed_over:  # never started: close them, as wait_first cancels losers
                for other in others:
                    if isinstance(other, Coroutine):
                        other.close()

    consumer.wait_first = wait_first_inline


async def _rest_of(coro: Coroutine[Any, Any, Any], pending: Any) -> Any:
    """Run `coro` on from where it waited on `pending`, as the task awaiting this would."""
    return await _Resumed(coro, pending)


class _Resumed:
    """Awaitable rest of a coroutine already stepped once, which is waiting on `pending`."""

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self._coro, self._pending = coro, pending

    def __await__(self) -> Generator[Any, None, Any]:
        coro, pending = self._coro, self._pending
        while True:
            try:
                yield pending  # the awaiting task waits on it, as it would have for coro
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as thrown:  # a cancellation, say: the coroutine handles it
                advance: Callable[[Any], Any] = coro.throw
                value: Any = thrown
            else:
                advance, value = coro.send, None
            try:
                pending = advance(value)
            except StopIteration as finished:
                return finished.value


#: Longest stretch of stream work between two turns of the event loop.
LOOP_TURN_EVERY_S: Final = 0.005


def stream_iterator_yields_to_the_loop_every_few_ms() -> None:
    """Let faust's stream iterator give the event loop a turn every 5 ms, not every record.

    Mends: the Cython `StreamIterator.next` (faust/_cython/streams.pyx) awaits
    `asyncio.sleep(0)` before every record: a full turn of the event loop, with every
    ready callback run, per record, even when the next record is already queued.

    Fix: the `sleep` it calls yields to the loop when 5 ms have passed since the last
    turn, and otherwise returns at once. Every other task (the fetcher refilling the
    queue, commits, timers, the web server) still runs at least every 5 ms of stream
    work, and at once whenever the queue is empty (the iterator then waits on it).
    Acks, the generation and flow-control checks on every record, and the order are the
    iterator's own and unchanged. Upstream: yield by time (or every N records) in
    both `StreamIterator.next` and `Stream._py_aiter`.

    Why a module-level patch: the sleep sits inside a method of a Cython extension
    type, whose instances and type cannot be patched; the module global `sleep` it calls
    is the only seam. It therefore affects every app in the process, and is safe for
    all of them (every sleep other than `sleep(0)` goes to asyncio). Applying it again
    changes nothing. The pure-Python iterator (NO_CYTHON=1) keeps its per-record turn;
    `check_internals` requires the Cython one.

    Measured: without it 6,700 events/s (rounds 3,600-7,300) against
    25,300 with every patch.
    """
    import faust._cython.streams as cython_streams  # noqa: PLC0415  (checked by check_internals)

    if not _first_time(cython_streams, "stream"):
        return
    sleep = cython_streams.sleep
    next_turn = 0.0
    monotonic = time.monotonic

    def sleep_at_most_every_few_ms(delay: float, result: Any = None) -> Any:
        nonlocal next_turn
        if delay:
            return sleep(delay, result)
        now = monotonic()
        if now < next_turn:
            return _READY
        next_turn = now + LOOP_TURN_EVERY_S
        return sleep(0, result)

    cython_streams.sleep = sleep_at_most_every_few_ms


class _Ready:
    """An awaitable that is already done: awaiting it does not suspend."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield


_READY: Final = _Ready()


def producer_buffer_reads_its_settings_once(app: faust.App) -> None:
    """Let the producer buffer look at `producer_threaded` once, not twice per record.

    Mends: `ProducerBuffer.put` (every table write and `send_soon`) and
    `ProducerBuffer.size` (read by `wait_until_ebb`, which the conductor awaits for every
    record) read `app.conf.producer_threaded` through faust's settings descriptor each
    time, a chain of Python calls per read.

    Fix: the app's own buffer decides once. The setting cannot change what it means
    after the producer is built (the producer creates its thread, or not, at that
    moment). Unthreaded, `put` is the queue's `put_nowait` and `wait_until_ebb` compares
    the queue's size with `max_messages` before doing what it always did, so
    back-pressure on a full buffer and the flush before a commit are unchanged. A
    threaded producer keeps faust's methods.

    Measured: without it 16,000 events/s (rounds 8,500-22,800) against
    25,300 with every patch: small (one round in three was as fast as with all).
    """
    buffer: Any = app.producer.buffer
    if app.conf.producer_threaded or not _first_time(buffer, "buffer"):
        return
    wait_until_ebb = buffer.wait_until_ebb
    pending = buffer.pending

    async def wait_until_ebb_if_full() -> None:
        if pending.qsize() > buffer.max_messages:
            await wait_until_ebb()

    buffer.put = pending.put_nowait
    buffer.wait_until_ebb = wait_until_ebb_if_full


def create_event_resolves_the_event_class_once(app: faust.App) -> None:
    """Let `app.create_event` resolve the `Event` class once, not once per record.

    Mends: `App.create_event`, called for every record decoded, reads `self.conf.Event`:
    a `Symbol` setting, resolved through `mode.utils.imports.symbol_by_name` on every
    read.

    Fix: the app's own `create_event` calls the class resolved when the patch is
    applied. Same class, same arguments; only a change of `app.conf.Event` after start-up
    would be missed, and faust reads it nowhere else at run time.

    Measured: without it 13,900 events/s (rounds 12,400-22,900) against
    25,300 with every patch.
    """
    if not _first_time(app, "event"):
        return
    event_class: Any = app.conf.Event

    def create_event(key: Any, value: Any, headers: Any, message: Any) -> Any:
        return event_class(app, key, value, headers, message)

    app.create_event = create_event  # type: ignore[method-assign]


def monitor_keeps_only_what_faust_reads(app: faust.App) -> None:
    """Let the app's `Monitor` keep, per record, only what faust itself reads.

    Mends: the `Monitor` sensor, always installed, does per record: a monotonic clock
    read stored on the message, a per-topic counter, a per-stream and a per-task counter
    keyed by `str()` of each, a state dict per event and a runtime sample on its way out.
    Nothing in faust reads those except its stats pages; this project exposes its own
    metrics.

    Fix: the app's own monitor keeps the counters that are integer increments, the read
    offsets (lag), and `stream_inbound_time`, which the aiokafka driver's
    slow-processing check reads (`verify_event_path`). Per-event timings are no longer
    recorded (`events_runtime`, `Message.time_in`/`time_out`). Other sensors, if added,
    see every hook as before.

    Measured: without it 18,900 events/s (rounds 9,600-26,700) against
    25,300 with every patch: small, within the noise of this machine.
    """
    monitor: Any = app.monitor
    if not _first_time(monitor, "monitor"):
        return
    monotonic = time.monotonic

    def on_message_in(tp: TP, offset: int, message: Any) -> None:
        monitor.messages_received_total += 1
        monitor.messages_active += 1
        monitor.tp_read_offsets[tp] = offset

    def on_stream_event_in(tp: TP, offset: int, stream: Any, event: Any) -> None:
        monitor.events_total += 1
        monitor.stream_inbound_time[tp] = monotonic()
        # None: on_stream_event_out then has no per-event state to time.

    def on_message_out(tp: TP, offset: int, message: Any) -> None:
        monitor.messages_active -= 1

    monitor.on_message_in = on_message_in
    monitor.on_stream_event_in = on_stream_event_in
    monitor.on_message_out = on_message_out
