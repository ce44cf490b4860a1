"""The three faust repairs, each on the real faust/mode object or a stand-in for Kafka.

The kill -9 tests in tests/integration/test_resilience.py show they work together on
a real broker; these pin down each repair's own promise.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.structs import TopicPartition
from faust.types import TP
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from services.sla_processor.faust_compat import (
    commit_only_after_changelog_is_written,
    resume_clears_queues_only_after_a_suspension,
    uncommitted_partitions_start_from_the_beginning,
)


class _Producer:
    """Holds what `send_soon` was given, as faust's buffer does until its task runs."""

    def __init__(self) -> None:
        self.buffered: list[asyncio.Future[Any]] = []

    def send_soon(self, future: asyncio.Future[Any]) -> None:
        self.buffered.append(future)

    async def flush(self) -> None:
        """Returns at once, as faust's buffer flush may with records still pending."""


def test_flush_waits_until_every_changelog_record_is_acknowledged() -> None:
    async def scenario() -> list[str]:
        producer = _Producer()
        commit_only_after_changelog_is_written(producer)
        loop = asyncio.get_running_loop()
        first, second = loop.create_future(), loop.create_future()
        producer.send_soon(first)
        producer.send_soon(second)
        happened: list[str] = []

        async def commit() -> None:
            await producer.flush()
            happened.append("committed")

        committing = asyncio.create_task(commit())
        await asyncio.sleep(0.01)
        happened.append("first acknowledged")
        first.set_result(None)
        await asyncio.sleep(0.01)
        happened.append("second acknowledged")
        second.set_result(None)
        await committing
        return happened

    assert asyncio.run(scenario()) == ["first acknowledged", "second acknowledged", "committed"]


def test_a_failed_changelog_write_stops_the_commit() -> None:
    async def scenario() -> None:
        producer = _Producer()
        commit_only_after_changelog_is_written(producer)
        failed = asyncio.get_running_loop().create_future()
        producer.send_soon(failed)
        failed.set_exception(ConnectionError("broker gone"))
        await producer.flush()

    with pytest.raises(ConnectionError):  # so faust does not commit
        asyncio.run(scenario())


def test_resuming_a_running_flow_keeps_the_queued_records() -> None:
    async def scenario() -> tuple[int, int]:
        flow = FlowControlEvent(initially_suspended=False)
        resume_clears_queues_only_after_a_suspension(flow)
        queue: FlowControlQueue[int] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
        queue.put_nowait(35)
        flow.resume()  # already running: a no-op
        kept = queue.qsize()
        flow.suspend()  # a rebalance: what is queued is stale once it ends
        flow.resume()
        return kept, queue.qsize()

    assert asyncio.run(scenario()) == (1, 0)


class _Thread:
    def __init__(self) -> None:
        self.sought_to_beginning: list[TopicPartition] = []

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        self.sought_to_beginning += partitions


class _Consumer:
    def __init__(self, committed: dict[TP, int | None]) -> None:
        self._committed = committed
        self._thread = _Thread()

    async def seek_to_committed(self) -> dict[TP, int | None]:
        return self._committed


def test_an_events_partition_without_a_commit_is_read_from_its_beginning() -> None:
    committed: dict[TP, int | None] = {
        TP("events", 0): 35,  # resumes at its commit
        TP("events", 1): None,  # never committed: from the beginning
        TP("cases-changelog", 1): None,  # not ours to move: faust's recovery owns it
    }
    consumer = _Consumer(committed)
    uncommitted_partitions_start_from_the_beginning(consumer, "events")

    assert asyncio.run(consumer.seek_to_committed()) == committed
    assert consumer._thread.sought_to_beginning == [TopicPartition("events", 1)]
