"""Plain kafka-python clients for tests: write records and read a topic back."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


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
    **security: Any,
) -> None:
    """`headers` go with every record; `security`: KafkaSettings.kafka_python_options(),
    for a broker with TLS or SASL."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", **security)
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value, headers=list(headers))
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
