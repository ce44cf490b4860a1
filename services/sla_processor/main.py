"""Start one processor worker: `normwacht processor`.

It refuses to start on an invalid catalogue, and unless its topics are there as it needs
them (`needed_topics`); it creates none: `normwacht kafka create-topics` does, beforehand.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
import threading
from datetime import UTC, datetime
from typing import Any

import faust

from normwacht.catalogue_file import CatalogueError
from normwacht.catalogue_file import load as load_catalogue
from services.shared.kafka import require_topics
from services.shared.logging import configure_logging, logging_config
from services.sla_processor.app import (
    NoDueRecordKey,
    changelog_topics,
    create_app,
    due_record_key,
)
from services.sla_processor.faust_compat import FaustIncompatible, check_internals
from services.sla_processor.settings import ProcessorSettings

STOP_TIMED_OUT = 3
"""The exit status of a worker that did not stop within its `stop_timeout_s`."""


class _Worker(faust.Worker):
    stop_timeout_s: float = 30.0

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        # Measured: without this the root logger ended at DEBUG under faust's worker,
        # and formatting aiokafka's debug records cost ~5 % of the processor's CPU.
        logger.setLevel(level)

    async def on_stop(self) -> None:
        # Stopping commits and leaves the group through the broker, and faust waits for
        # it without end: with the broker gone, SIGTERM never ended the worker (seen).
        # Past the deadline it ends as a kill -9 would, which loses nothing: what it
        # had not committed is read again by whoever takes its partitions.
        _exit_after(self.stop_timeout_s)
        await super().on_stop()


def _exit_after(seconds: float) -> None:
    def exit_now() -> None:
        detail = (
            f"normwacht processor did not stop within {seconds:g} s (is the broker "
            "reachable?); exiting without a last commit: its records are read again."
        )
        # A JSON line as every other, written here: the logging machinery may be stuck too.
        line = {"event": "stop_timed_out", "level": "error", "detail": detail,
                "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z")}  # fmt: skip
        try:  # to the file descriptor: mode's worker replaces sys.stderr with a logger
            os.write(2, json.dumps(line).encode() + b"\n")
        finally:
            os._exit(STOP_TIMED_OUT)

    # A thread, not the event loop: the loop may be what is stuck.
    timer = threading.Timer(seconds, exit_now)
    timer.daemon = True
    timer.start()


def needed_topics(settings: ProcessorSettings) -> dict[str, int | None]:
    """The topics the processor works on, with the partitions each must have (None: any).

    Outcomes are written to their event's partition number and each table's changelog
    partition holds the state of the events partition of that number, so both have the
    events' count. The changelogs must exist before faust starts too: a record processed
    before the consumer's metadata listed a changelog made by faust itself crashed the
    agent (PartitionsMismatch: "changelog topic has 0 partitions"), seen on a fresh broker.
    """
    kafka = settings.kafka
    return {
        kafka.events_topic: kafka.partitions,
        kafka.outcomes_topic: kafka.partitions,
        kafka.dead_letter_topic: None,
        **dict.fromkeys(changelog_topics(settings.app_id), kafka.partitions),
    }


def run(settings: ProcessorSettings | None = None) -> None:
    settings = settings or ProcessorSettings()
    configure_logging(settings.log_level)
    try:
        catalogue = load_catalogue()
    except CatalogueError as error:
        # Refuse to start: a processor on a wrong catalogue publishes wrong outcomes.
        sys.stderr.write(f"invalid norm catalogue:\n{error}\n")
        raise SystemExit(2) from None
    try:
        check_internals()
        due_record_key(settings)
    except (FaustIncompatible, NoDueRecordKey) as error:
        sys.stderr.write(f"normwacht processor refuses to start: {error}\n")
        raise SystemExit(2) from None
    require_topics("processor", settings.kafka, needed_topics(settings))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, catalogue)
    # What start-up made (modules, catalogue, calendars) stays for good: the collector
    # need not walk it again, and it collects young objects less often (measured on the
    # record handler alone, in-process: 15-20 % more records a second).
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    worker: Any = _Worker(
        app,
        loglevel=settings.log_level.lower(),
        quiet=True,
        logging_config=logging_config(settings.log_level),  # JSON lines, not faust's colours
    )
    worker.stop_timeout_s = settings.stop_timeout_s
    worker.execute_from_commandline()
