"""Three repairs to faust-streaming 0.15.3, so that a crash loses no record.

The kill -9 test (tests/integration/test_resilience.py) lost 36 to 110 of 600
outcomes, and once published a breach for a call answered in time. Chasing it found
three ways faust can move past a record it never processed; each repair below says
what it mends. They patch this app's instances rather than fork faust; a faust
upgrade must re-check them, and the kill -9 test is what tells.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.structs import TopicPartition
from faust.types import TP


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


def committed_offset(consumer: Any, topic: str, partition: int) -> int | None:
    """The offset faust last committed for the partition (the next record to read), if known.

    Read from faust's own bookkeeping (`Consumer._committed_offset`, updated after each
    commit): records before it will not be read again, so what is kept only to redo
    them after a crash can go. A faust upgrade must re-check the attribute, as the
    repairs above.
    """
    committed: int | None = consumer._committed_offset.get(TP(topic, partition))
    return committed
