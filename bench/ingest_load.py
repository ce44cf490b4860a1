"""Load for ingest: batches from concurrent clients, the same records from a bare producer,
and single events at a fixed rate (open loop). Used by `python -m bench ingest-*`."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.shared.kafka import KafkaSettings
from tests.support.events import call_event
from tests.support.system import TOKEN

BATCH = "application/cloudevents-batch+json"
SINGLE = "application/cloudevents+json"


@dataclass(frozen=True)
class Record:
    """A record as ingest wrote it: the bare producer writes exactly this."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def call_events(count: int, tag: str) -> list[dict[str, Any]]:
    """Queued and answered calls, two events a subject, in time order."""
    base = datetime.now(UTC) - timedelta(hours=1)
    events = []
    for n in range(count // 2):
        subject = f"{tag}-{n}"
        queued = base + timedelta(milliseconds=n)
        for kind, at in (("queued", queued), ("answered", queued + timedelta(seconds=5))):
            events.append(call_event(subject, kind, at, event_id=f"{subject}-{kind}"))
    return events


def batch_bodies(events: list[dict[str, Any]], size: int) -> list[bytes]:
    """Request bodies of `size` events each, encoded before the clock starts."""
    return [json.dumps(events[i : i + size]).encode() for i in range(0, len(events), size)]


async def post_batches(ingest: str, bodies: list[bytes], clients: int) -> tuple[int, float]:
    """`clients` concurrent clients post the bodies, each the next one free; returns the
    events accepted and the seconds from the first request to the last answer."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"Content-Type": BATCH, "Authorization": f"Bearer {TOKEN}"}
    accepted = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal accepted
        while not queue.empty():
            body = queue.get_nowait()
            response = await http.post(f"{ingest}/v1/events", content=body, headers=headers)
            if response.status_code != 202:
                raise RuntimeError(f"ingest answered {response.status_code}: {response.text}")
            accepted += response.json()["accepted"]

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        return accepted, time.perf_counter() - started


async def written_records(kafka: KafkaSettings) -> list[Record]:
    """Every record of the events topic, as stored."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    records: list[Record] = []
    try:
        partitions = [TopicPartition(kafka.events_topic, p) for p in range(kafka.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for batch in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                records += [Record(r.key or b"", r.value or b"", list(r.headers)) for r in batch]
    finally:
        await consumer.stop()
    return records


async def produce_batches(
    kafka: KafkaSettings, records: list[Record], size: int, clients: int
) -> tuple[int, float]:
    """The same shape as `post_batches` without HTTP: `clients` tasks each send a batch of
    `size` records and wait for all their acknowledgements, with the producer settings of
    ingest's publisher (acks=all, idempotent, 2 ms linger)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap, acks="all", enable_idempotence=True, linger_ms=2
    )
    await producer.start()
    queue: asyncio.Queue[list[Record]] = asyncio.Queue()
    for i in range(0, len(records), size):
        queue.put_nowait(records[i : i + size])
    written = 0

    async def client() -> None:
        nonlocal written
        while not queue.empty():
            batch = queue.get_nowait()
            pending = [
                await producer.send(kafka.events_topic, key=r.key, value=r.value, headers=r.headers)
                for r in batch
            ]
            await asyncio.gather(*pending)
            written += len(batch)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return written, time.perf_counter() - started
    finally:
        await producer.stop()


@dataclass(frozen=True)
class Latencies:
    seconds: list[float]  # per request, from its scheduled send time to its answer
    errors: int
    sent_over_s: float  # from the first scheduled send to the last answer


async def open_loop(ingest: str, rate: int, seconds: float, tag: str) -> Latencies:
    """Single-event requests at `rate` a second on a fixed schedule, whatever the answers
    do: a slow answer does not delay the next request, so queueing shows in the latency
    (measured from when the request was due, not from when it went out)."""
    total = int(rate * seconds)
    headers = {"Content-Type": SINGLE, "Authorization": f"Bearer {TOKEN}"}
    now = datetime.now(UTC)
    # Ids unique per run (each run has its own tag); short digit runs, never personal data.
    bodies = [
        json.dumps(call_event(f"{tag}-{n}", "queued", now, event_id=f"{tag}-{n}-q")).encode()
        for n in range(total)
    ]
    latencies: list[float] = []
    errors = 0

    async def request(http: httpx.AsyncClient, body: bytes, due: float) -> None:
        nonlocal errors
        try:
            response = await http.post(f"{ingest}/v1/events", content=body, headers=headers)
            ok = response.status_code == 202
        except httpx.HTTPError:
            ok = False
        latencies.append(time.perf_counter() - due)
        errors += not ok

    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        started = time.perf_counter()
        tasks = []
        for n, body in enumerate(bodies):
            due = started + n / rate
            delay = due - time.perf_counter()
            # Behind schedule, the request goes at once, but answers still get their turn.
            await asyncio.sleep(max(delay, 0))
            tasks.append(asyncio.create_task(request(http, body, due)))
        await asyncio.gather(*tasks)
        return Latencies(latencies, errors, time.perf_counter() - started)
