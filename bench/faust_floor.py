"""A faust worker doing a fixed part of the processor's per-record work, and nothing else.

`python -m bench throughput --floors` runs it over the same topic as the processor, in
three modes, to show what faust's per-record path costs on this machine before any of
our own code runs:

- `count`: an agent that only counts records;
- `table`: and writes each record's value into a RocksDB table (changelogged);
- `table+send`: and also produces one record per event (as an outcome would be).

Configured by environment (it is started as a process, as the processor is):
FLOOR_APP_ID, FLOOR_BOOTSTRAP, FLOOR_TOPIC, FLOOR_SINK, FLOOR_EVENTS, FLOOR_MODE, FLOOR_DATA_DIR,
FLOOR_RESULT.
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
        producer_linger=0.05,  # as the processor
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
    )
    source = app.topic(topic_name)
    sink = os.environ["FLOOR_SINK"]
    table = app.Table("floor", default=None)
    seen: dict[str, Any] = {"n": 0, "started": None}

    @app.agent(source)
    async def floor(stream: faust.StreamT[bytes]) -> None:
        async for record in stream.events():
            if seen["started"] is None:
                seen["started"] = time.perf_counter()
            if mode != "count":
                table[record.key.decode()] = record.value.decode()
            if mode == "table+send":
                await app.producer.send(sink, record.key, record.value, None, None, None)
            seen["n"] += 1
            if seen["n"] == events:
                rate = events / (time.perf_counter() - seen["started"])
                await asyncio.to_thread(result.write_text, json.dumps({"events_per_s": rate}))

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
