"""Load for ingest: batches from concurrent clients, the same records from a bare producer,
and single events at a fixed rate (open loop). Used by `python -m bench ingest-*`."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
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

    async def client(http: aiohttp.ClientSession) -> None:
        nonlocal accepted
        while not queue.empty():
            body = queue.get_nowait()
            async with http.post(f"{ingest}/v1/events", data=body, headers=headers) as response:
                if response.status != 202:
                    raise RuntimeError(
                        f"ingest answered {response.status}: {await response.text()}"
                    )
                accepted += (await response.json())["accepted"]

    async with _session(clients) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        return accepted, time.perf_counter() - started


def _session(connections: int) -> aiohttp.ClientSession:
    """The load generator's HTTP client: aiohttp, as it costs the generator about a sixth
    of httpx's CPU per request (measured: 0.2-0.3 ms against 1.2-1.3 ms), which would
    otherwise be the limit at a few hundred requests/s on two cores."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=120),
    )


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


async def open_loop(
    ingest: str, rate: int, seconds: float, tag: str, connections: int = 64
) -> Latencies:
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

    async def request(http: aiohttp.ClientSession, body: bytes, due: float) -> None:
        nonlocal errors
        try:
            async with http.post(f"{ingest}/v1/events", data=body, headers=headers) as response:
                await response.read()
                ok = response.status == 202
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        latencies.append(time.perf_counter() - due)
        errors += not ok

    # Connections as a fleet of sources would hold them; a request waiting for one counts
    # the wait in its latency.
    async with _session(connections) as http:
        started = time.perf_counter()
        tasks = []
        for n, body in enumerate(bodies):
            due = started + n / rate
            # Behind schedule, the request goes at once, but answers still get their turn.
            await asyncio.sleep(max(due - time.perf_counter(), 0))
            tasks.append(asyncio.create_task(request(http, body, due)))
        await asyncio.gather(*tasks)
        return Latencies(latencies, errors, time.perf_counter() - started)
