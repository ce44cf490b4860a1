"""What the processor's own work costs per record: `RecordHandler` alone, no broker, no faust.

The throughput benchmark's records (call pairs: `queued`, then `answered` 5 s later,
structured CloudEvents, an hour old), handed to a `RecordHandler` over a `StagedState` on a dict
and outlets that keep nothing, the staged writes taken every 2,000 records as a
commit would. The collector is frozen and tuned as in the worker (main.py). The
figure is CPU time per record (with `parts`, also that of its three largest parts, each
measured alone); the machine is shared and noisy, so each round
builds a new handler and the least and the median of the rounds are quoted.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from normwacht.catalogue_file import load
from normwacht.core.engine import Case, Fact, Outcome, apply
from services.shared.bindings import from_kafka_record
from services.sla_processor.codec import encode_outcome
from services.sla_processor.handler import Record, RecordHandler, partition_of
from services.sla_processor.metrics import ProcessorMetrics
from services.sla_processor.state import StagedState
from tests.support.events import call_pairs

COMMIT_EVERY = 2_000


class _Outlets:
    def __init__(self) -> None:
        self.outcomes = 0

    async def outcome(self, subject: str, value: bytes, partition: int) -> None:
        self.outcomes += 1

    async def dead_letter(self, record: Record, reason: str, detail: str) -> None:
        raise AssertionError(f"dead-lettered: {reason}: {detail}")


def _records(calls: int) -> list[Record]:
    start = datetime.now(UTC) - timedelta(hours=1)
    return [
        Record(
            subject.encode(), orjson.dumps(event), (), "events", partition_of(subject, 6), offset
        )
        for offset, (subject, event) in enumerate(call_pairs(calls, start))
    ]


async def _round(records: list[Record]) -> tuple[float, float]:
    """CPU seconds for all records, and outcomes per record."""
    stored: dict[tuple[str, str], Any] = {}
    staged = StagedState(lambda table, key: stored.get((table, key)))
    outlets = _Outlets()
    handler = RecordHandler(
        load(), staged, outlets, rules="bench", due_key=b"bench", partitions=6,
        metrics=ProcessorMetrics(CollectorRegistry()), log_outcomes=False,
    )  # fmt: skip
    began = time.process_time()
    for record in records:
        await handler.handle(record)
        if record.offset % COMMIT_EVERY == 0:
            for step in staged.take():
                stored.update(((write.table, write.key), write.value) for write in step)
    return time.process_time() - began, outlets.outcomes / len(records)


def _parts(records: list[Record]) -> dict[str, float]:
    """CPU µs per record of the handler's three largest parts, each alone over all
    records in turn, as the handler runs them: decoding and validating the CloudEvent,
    the engine's `apply` (outcomes built), and encoding the outcomes."""
    catalogue = load()

    def timed(work: Callable[[], Any]) -> tuple[float, Any]:
        began = time.process_time()
        result = work()
        return (time.process_time() - began) / len(records) * 1e6, result

    decoding, events = timed(lambda: [from_kafka_record(r.headers, r.value) for r in records])
    facts = [Fact.of(event) for event in events]

    def apply_all() -> list[Outcome]:
        cases: dict[str, Case] = {}
        outcomes: list[Outcome] = []
        for event, fact in zip(events, facts, strict=True):
            # At the event's own time, as the watermark has it in the handler.
            step = apply(cases.get(event.subject), fact, fact.time, catalogue,
                         subject=event.subject, municipality=event.municipality.value)  # fmt: skip
            cases[event.subject] = step.case
            outcomes.extend(step.outcomes)
        return outcomes

    applying, outcomes = timed(apply_all)
    encoding, _ = timed(lambda: [encode_outcome(outcome) for outcome in outcomes])
    return {"decode_us": decoding, "apply_us": applying, "encode_outcomes_us": encoding}


def measure(
    calls: int, rounds: int, echo: Callable[[str], Any], *, parts: bool = False
) -> dict[str, Any]:
    records = _records(calls)
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    per_record: list[float] = []
    split: list[dict[str, float]] = []
    for number in range(1, rounds + 1):
        seconds, outcomes = asyncio.run(_round(records))
        per_record.append(seconds / len(records) * 1e6)
        echo(f"round {number}: {per_record[-1]:.0f} µs per record, {outcomes:.2f} outcomes each")
        if parts:
            split.append(_parts(records))
            echo("  of which, alone: " + ", ".join(f"{k} {v:.1f}" for k, v in split[-1].items()))
    figures = {
        "records": len(records),
        "us_per_record_min": min(per_record),
        "us_per_record_median": statistics.median(per_record),
        "rounds": per_record,
    }
    if split:
        figures["parts_median"] = {k: statistics.median(p[k] for p in split) for k in split[0]}
    echo(
        f"{len(records)} records: {figures['us_per_record_min']:.0f} µs per record at least, "
        f"{figures['us_per_record_median']:.0f} median, over {rounds} rounds"
    )
    return figures
