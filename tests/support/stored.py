"""Everything the system has stored, as bytes: every Kafka topic, the processor's RocksDB
state and every database table. Used to prove that no personal value was kept anywhere."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from rocksdict import AccessType, Options, Rdict
from sqlalchemy import MetaData, create_engine, select


def kafka_records(
    bootstrap: str, include: Callable[[str], bool] = lambda topic: True
) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) for the key, value and each header of every record of every topic
    `include` accepts, the broker's internal ones (`__consumer_offsets`) included."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="stored-scan")
    try:
        topics = sorted(filter(include, admin.list_topics()))
    finally:
        admin.close()
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_uncommitted",  # aborted writes were on disk too
        exclude_internal_topics=False,
    )
    try:
        for topic in topics:
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
            ]
            if not partitions:
                continue
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            ends = consumer.end_offsets(partitions)
            while any(consumer.position(tp) < ends[tp] for tp in partitions):
                for tp, records in consumer.poll(timeout_ms=1000).items():
                    for record in records:
                        where = f"kafka {tp.topic}/{tp.partition}/{record.offset}"
                        yield where + " key", record.key or b""
                        yield where + " value", record.value or b""
                        for name, value in record.headers:
                            yield f"{where} header {name}", name.encode() + b"=" + value
    finally:
        consumer.close()


def rocksdb_entries(state_dir: Path) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) for every key and value of every RocksDB store under `state_dir`
    (read through RocksDB, so compressed blocks are seen decompressed)."""
    for store in sorted(p for p in state_dir.rglob("*.db") if p.is_dir()):
        db = Rdict(str(store), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            for key, value in db.items():  # raw mode: both are bytes
                yield f"rocksdb {store.name} {key!r} key", bytes(key)  # type: ignore[arg-type]
                yield f"rocksdb {store.name} {key!r} value", bytes(value)
        finally:
            db.close()


def database_values(url: str) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) for every value in every table of the database at `url`."""
    engine = create_engine(url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            for table in metadata.sorted_tables:
                for row in connection.execute(select(table)):
                    for column, value in row._mapping.items():
                        if value is not None:
                            yield f"db {table.name}.{column}", str(value).encode()
    finally:
        engine.dispose()


def files(directory: Path) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) of every plain file under `directory` (state files of adapters)."""
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        yield f"file {path}", path.read_bytes()


def found(values: set[str], stored: Iterator[tuple[str, bytes]]) -> list[str]:
    """Every place where one of `values` occurs, as UTF-8 bytes, in what is `stored`.

    A number counts on its own only, not as a piece of a longer one: a time's
    microseconds (`09:15:39.638344`) hold any six digits now and then.
    """
    needles = {
        value: re.compile(rf"(?<![0-9.]){value}(?![0-9])".encode())
        if value.isdigit()
        else re.compile(re.escape(value.encode()))
        for value in values
    }
    return [
        f"{value!r} in {where}"
        for where, data in stored
        for value, needle in needles.items()
        if needle.search(data)
    ]
