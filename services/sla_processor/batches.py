"""Outcomes produced a batch per partition, not a record at a time.

Why: each `producer.send` costs faust's wrapper and, in aiokafka, a metadata check, a
future and an accumulator append per record. On the throughput benchmark's floors
(bench/faust_floor.py, `python -m bench throughput --events 100000 --runs 3 --floors`,
2026-12-03, patched faust, 256 KB producer batches) an agent that only counted reached
25,794-27,733 events/s; with one `send` per event 10,633-11,875; appending each record
to an aiokafka `BatchBuilder` of its partition instead, 21,990-26,752: about what
counting costs.

And why it is safer: aiokafka's `flush` waits for every batch but does not say
whether one failed, so a commit after it could cover records whose outcomes were
lost. `OutcomeBatches.flush` raises when a batch was not written, and so does every
flush after it: the worker commits nothing past a lost outcome, and its records are
read again by whoever takes the partition after it stops (state.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

import faust

LINGER_S = 0.05
"""How long outcomes (and the producer's own batches) wait to be sent with others."""

BATCH_BYTES = 256 * 1024
"""The producer's batch size (faust's `producer_max_batch_size`; it defaults to 16 KB).
Measured on the processor, three interleaved pairs of `throughput --events 100000`
(2026-12-03): 9-27 % more events/s (median 10 %) than with 16 KB, with outcomes still
sent one by one. Below the broker's 1 MB `message.max.bytes`."""


class BatchProducer(Protocol):
    """What the batches need of aiokafka's `AIOKafkaProducer`."""

    def create_batch(self) -> Any: ...

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any: ...


class OutcomesNotWritten(RuntimeError):
    """A batch of outcomes was not acknowledged: no commit may follow."""


class OutcomeBatches:
    """Outcomes collected into one open batch per partition, handed to the producer by
    `send` (a timer calls it every linger interval) and confirmed by `flush`, which the
    commit awaits before the state is written (faust_compat.write_staged_state_before_commit).

    `producer` is called for the producer at each use: faust makes aiokafka's producer
    when its own starts. Outcomes of one partition reach the topic in the order they
    were appended.
    """

    def __init__(self, producer: Callable[[], BatchProducer], topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._open: dict[int, Any] = {}
        self._full: list[tuple[int, Any]] = []
        self._unconfirmed: list[asyncio.Future[Any]] = []
        self._sending = asyncio.Lock()  # binds to a loop at its first use
        self._failed: BaseException | None = None

    def append(self, partition: int, key: bytes, value: bytes) -> None:
        """Add an outcome to its partition's open batch; never waits."""
        batch = self._open.get(partition)
        if batch is None or batch.append(key=key, value=value, timestamp=None) is None:
            if batch is not None:  # full: it goes first, before the batch that follows it
                self._full.append((partition, batch))
            batch = self._open[partition] = self._producer().create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"an outcome of {len(value)} bytes does not fit in a batch")

    async def send(self) -> None:
        """Hand every batch to the producer, full ones first; raise if one sent earlier
        failed. A partition's batch waits in the producer for the one before it."""
        async with self._sending:  # one at a time: a later batch never overtakes
            ready, self._full = [*self._full, *self._open.items()], []
            self._open = {}
            if ready:  # (only then: a stopping worker's producer may be gone)
                producer = self._producer()
                for partition, batch in ready:
                    batch.close()  # complete: aiokafka sends it without lingering
                    sent = await producer.send_batch(batch, self._topic, partition=partition)
                    self._unconfirmed.append(sent)
        self._confirm()

    async def flush(self) -> None:
        """Send what was appended and wait until the broker has all of it; raise if any
        batch, now or earlier, was not written."""
        await self.send()
        waiting, self._unconfirmed = self._unconfirmed, []
        if waiting:
            await asyncio.wait(waiting)
        self._unconfirmed = waiting + self._unconfirmed  # with any sent meanwhile
        self._confirm()

    def _confirm(self) -> None:
        """Forget the batches acknowledged; raise if one was not written, ever."""
        still: list[asyncio.Future[Any]] = []
        for sent in self._unconfirmed:
            if not sent.done():
                still.append(sent)
            elif sent.cancelled():
                self._failed = self._failed or asyncio.CancelledError("outcome batch cancelled")
            elif (error := sent.exception()) is not None:
                self._failed = self._failed or error
        self._unconfirmed = still
        if self._failed is not None:
            raise OutcomesNotWritten(
                f"a batch of outcomes for {self._topic} was not written ({self._failed!r}); "
                "nothing is committed from now on: stop the worker, and its records are "
                "read again"
            ) from self._failed


def batched_outcomes(app: faust.App, topic: str) -> OutcomeBatches:
    """Batches for `topic` on `app`'s producer, sent by a timer every `LINGER_S`; the
    timer raises, crashing the worker, once a batch was lost."""
    producer: Any = app.producer  # `_ensure_producer`: aiokafka's, made when faust's starts
    batches = OutcomeBatches(producer._ensure_producer, topic)

    @app.timer(interval=LINGER_S)  # type: ignore[untyped-decorator]
    async def send_outcomes() -> None:
        await batches.send()

    return batches
