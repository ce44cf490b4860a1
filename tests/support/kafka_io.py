"""Plain kafka-python clients for tests: write records and read a topic back."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

#: The most `produce(at_once=True)` writes into one partition in one batch (the
#: broker's default `message.max.bytes` is about 1 MB).
AT_ONCE_BYTES = 512 * 1024


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes
    partition: int
    headers: dict[str, bytes]


def produce(
    bootstrap: str,
    topic: str,
    records: Sequence[tuple[bytes | None, bytes]],
    *,
    headers: Sequence[tuple[str, bytes]] = (),
    at_once: bool = False,
    partition: int | None = None,
    **security: Any,
) -> None:
    """`headers` go with every record; `partition`: the one they all go to (None: by key);
    `security`: KafkaSettings.kafka_python_options(), for a broker with TLS or SASL.

    `at_once`: each partition's records in one batch (up to `AT_ONCE_BYTES`), appended in
    one go, so a worker already running never reads a partition part-written. Historical
    events need it: a worker that has read a partition to its end takes the wall clock as
    its watermark, and decides what is still open; events that arrive later are late, and
    correct those outcomes (seen: a pause between two of the producer's batches breached
    calls whose answers came in the next).
    """
    batching = {"linger_ms": 60_000, "batch_size": AT_ONCE_BYTES} if at_once else {}
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", **batching, **security)
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value, headers=list(headers), partition=partition)
        producer.flush()
    finally:
        producer.close()


def read_topic(
    bootstrap: str, topic: str, *, expect: int = 0, timeout_s: float = 20.0, **security: Any
) -> list[Record]:
    """Every record of `topic` from the start; waits until at least `expect` are there.

    With `expect=0` it reads for a short quiet period and returns what exists:
    used to prove that nothing was written.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        consumer_timeout_ms=1000,
        **security,
    )
    try:
        deadline = time.monotonic() + (timeout_s if expect else 3.0)
        partitions: set[int] | None = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                time.sleep(0.2)
        if not partitions:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records: list[Record] = []
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=300)
            for tp_records in batch.values():
                records.extend(
                    Record(r.key, r.value, r.partition, dict(r.headers or [])) for r in tp_records
                )
            if expect and len(records) >= expect:
                break
        return records
    finally:
        consumer.close()
