"""OutcomeBatches over a producer that behaves as aiokafka's batch interface: batches of a
fixed number of records, acknowledged when the test says so."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.sla_processor.batches import OutcomeBatches, OutcomesNotWritten


class Batch:
    """aiokafka's BatchBuilder as the batches use it: `append` answers None when full."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.keys, self.is_closed = capacity, list[bytes](), False

    def append(self, *, key: bytes, value: bytes, timestamp: None) -> object | None:
        if self.is_closed or len(self.keys) == self.capacity or len(value) > 100:
            return None
        self.keys.append(key)
        return object()

    def close(self) -> None:
        self.is_closed = True


class Producer:
    def __init__(self, capacity: int = 3) -> None:
        self.capacity = capacity
        self.sent: list[tuple[int, list[bytes], bool]] = []  # partition, keys, closed
        self.acks: list[asyncio.Future[Any]] = []

    def create_batch(self) -> Batch:
        return Batch(self.capacity)

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> Any:
        assert topic == "outcomes"
        self.sent.append((partition, batch.keys, batch.is_closed))
        self.acks.append(asyncio.get_running_loop().create_future())
        return self.acks[-1]

    def acknowledge(self, error: Exception | None = None) -> None:
        for ack in self.acks:
            if not ack.done():
                ack.set_exception(error) if error else ack.set_result(None)


def _batches(producer: Producer) -> OutcomeBatches:
    return OutcomeBatches(lambda: producer, "outcomes")


def test_outcomes_go_a_batch_per_partition_in_order_and_full_batches_first() -> None:
    producer = Producer(capacity=3)
    batches = _batches(producer)
    for n in range(5):
        batches.append(0, f"A{n}".encode(), b"{}")
    batches.append(1, b"B0", b"{}")

    async def send() -> None:
        await batches.send()

    asyncio.run(send())
    assert producer.sent == [
        (0, [b"A0", b"A1", b"A2"], True),  # the full one first, then what followed it
        (0, [b"A3", b"A4"], True),
        (1, [b"B0"], True),
    ]


def test_nothing_appended_sends_nothing_and_appending_never_waits() -> None:
    producer = Producer()
    batches = _batches(producer)

    async def scenario() -> None:
        await batches.send()
        assert producer.sent == []
        batches.append(2, b"C", b"{}")  # a plain call: no send happens here
        assert producer.sent == []
        await batches.send()

    asyncio.run(scenario())
    assert producer.sent == [(2, [b"C"], True)]


def test_flush_returns_only_when_every_batch_is_acknowledged() -> None:
    producer = Producer()
    batches = _batches(producer)
    batches.append(0, b"A", b"{}")

    async def scenario() -> None:
        flushing = asyncio.ensure_future(batches.flush())
        await asyncio.sleep(0.01)
        assert producer.sent == [(0, [b"A"], True)]
        assert not flushing.done()  # sent, not yet acknowledged
        producer.acknowledge()
        await asyncio.wait_for(flushing, 1)

    asyncio.run(scenario())


def test_a_batch_not_written_fails_this_flush_and_every_one_after_it() -> None:
    producer = Producer()
    batches = _batches(producer)

    async def scenario() -> None:
        batches.append(0, b"A", b"{}")
        await batches.send()
        producer.acknowledge(RuntimeError("broker gone"))
        with pytest.raises(OutcomesNotWritten, match="broker gone"):
            await batches.flush()
        # Later outcomes are written, yet no commit may follow: A is lost.
        batches.append(0, b"B", b"{}")
        flushing = asyncio.ensure_future(batches.flush())
        await asyncio.sleep(0.01)
        producer.acknowledge()
        with pytest.raises(OutcomesNotWritten):
            await flushing
        with pytest.raises(OutcomesNotWritten):  # the timer's send says so too
            await batches.send()

    asyncio.run(scenario())


def test_an_outcome_too_large_for_an_empty_batch_is_refused() -> None:
    batches = _batches(Producer())
    with pytest.raises(ValueError, match="does not fit"):
        batches.append(0, b"A", b"x" * 101)
