"""A faust worker doing a fixed part of the processor's per-record work, and nothing else.

`python -m bench throughput --floors` runs it over the same topic as the processor, in
four modes, to show what faust's per-record path costs on this machine before any of
our own code runs:

- `count`: an agent that only counts records;
- `send`: and produces one record per event (`producer.send`): the processor's shape
  since it writes its state once per case per commit (services/sla_processor/state.py);
- `batch`: the same record appended to one aiokafka batch per partition instead, sent
  every 50 ms, as the processor sends its outcomes (services/sla_processor/batches.py);
- `table`: and writes each record's value into a RocksDB table (changelogged);
- `table+send`: and also produces one record per event (as an outcome would be).

Configured by environment (it is started as a process, as the processor is):
FLOOR_APP_ID, FLOOR_BOOTSTRAP, FLOOR_TOPIC, FLOOR_SINK, FLOOR_EVENTS, FLOOR_MODE, FLOOR_DATA_DIR,
FLOOR_RESULT, FLOOR_BATCH_BYTES (the producer's batch size; the processor's unless set),
and FLOOR_PATCHED: "1" applies the patches of
services/sla_processor/faust_compat.py as the processor does (every per-record patch and the
three durability repairs); a comma-separated list of per-record patch names (with the repairs)
applies only those, to measure one patch's effect; "0" or unset, none.
When it has seen FLOOR_EVENTS records it writes {"events_per_s": ...} to FLOOR_RESULT;
the benchmark then stops it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import faust

from services.sla_processor import faust_compat
from services.sla_processor.batches import BATCH_BYTES, LINGER_S, batched_outcomes

PER_RECORD_PATCHES = {
    "conductor": faust_compat.conductor_runs_inline_when_it_can,
    "stream": lambda app: faust_compat.stream_iterator_yields_to_the_loop_every_few_ms(),
    "buffer": faust_compat.producer_buffer_reads_its_settings_once,
    "event": faust_compat.create_event_resolves_the_event_class_once,
    "monitor": faust_compat.monitor_keeps_only_what_faust_reads,
}


def patch(app: faust.App, patched: str, topic: str) -> None:
    """Apply what FLOOR_PATCHED names, right after the app is created (as the processor)."""
    if patched in ("", "0"):
        return
    faust_compat.check_internals()
    faust_compat.commit_only_after_changelog_is_written(app.producer)
    faust_compat.resume_clears_queues_only_after_a_suspension(app.flow_control)
    faust_compat.uncommitted_partitions_start_from_the_beginning(app.consumer, topic)
    if patched == "1":
        faust_compat.make_per_record_path_cheap(app)
        return
    for name in patched.split(","):
        PER_RECORD_PATCHES[name](app)


def main() -> None:
    bootstrap, topic_name = os.environ["FLOOR_BOOTSTRAP"], os.environ["FLOOR_TOPIC"]
    events, mode = int(os.environ["FLOOR_EVENTS"]), os.environ["FLOOR_MODE"]
    result = Path(os.environ["FLOOR_RESULT"])
    app = faust.App(
        os.environ["FLOOR_APP_ID"],
        broker=f"kafka://{bootstrap}",
        store="rocksdb://",
        datadir=os.environ["FLOOR_DATA_DIR"],
        topic_partitions=int(os.environ["FLOOR_PARTITIONS"]),  # the table's, as the topic's
        topic_replication_factor=1,
        producer_acks=-1,
        producer_linger=LINGER_S,  # as the processor
        producer_max_batch_size=int(os.environ.get("FLOOR_BATCH_BYTES", BATCH_BYTES)),
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
    )
    patch(app, os.environ.get("FLOOR_PATCHED", "0"), topic_name)
    source = app.topic(topic_name)
    sink = os.environ["FLOOR_SINK"]
    table = app.Table("floor", default=None)
    seen: dict[str, Any] = {"n": 0, "started": None}
    batches = batched_outcomes(app, sink)

    @app.agent(source)
    async def floor(stream: faust.StreamT[bytes]) -> None:
        async for record in stream.events():
            if seen["started"] is None:
                seen["started"] = time.perf_counter()
            if mode.startswith("table"):
                table[record.key.decode()] = record.value.decode()
            if mode == "batch":
                batches.append(record.message.partition, record.key, record.value)
            if mode.endswith("send"):
                await app.producer.send(sink, record.key, record.value, None, None, None)
            seen["n"] += 1
            if seen["n"] == events:
                rate = events / (time.perf_counter() - seen["started"])
                await asyncio.to_thread(result.write_text, json.dumps({"events_per_s": rate}))

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
