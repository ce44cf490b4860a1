"""Start one processor worker: `normwacht processor`."""

from __future__ import annotations

import logging
import sys
from typing import Any

import faust

from normwacht.catalogue_file import CatalogueError
from normwacht.catalogue_file import load as load_catalogue
from services.shared.kafka import ensure_topics
from services.shared.logging import configure_logging
from services.sla_processor.app import changelog_topics, create_app
from services.sla_processor.settings import ProcessorSettings


class _Worker(faust.Worker):
    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        # Measured: without this the root logger ended at DEBUG under faust's worker,
        # and formatting aiokafka's debug records cost ~5 % of the processor's CPU.
        logger.setLevel(level)


def run(settings: ProcessorSettings | None = None) -> None:
    settings = settings or ProcessorSettings()
    configure_logging(settings.log_level)
    try:
        catalogue = load_catalogue()
    except CatalogueError as error:
        # Refuse to start: a processor on a wrong catalogue publishes wrong outcomes.
        sys.stderr.write(f"invalid norm catalogue:\n{error}\n")
        raise SystemExit(2) from None
    # The changelogs too, before faust starts: faust creates them itself, but a record
    # processed before its consumer's metadata lists their partitions crashed the agent
    # (PartitionsMismatch: "changelog topic has 0 partitions"), seen on a fresh broker.
    ensure_topics(settings.kafka, compacted=changelog_topics(settings.app_id))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, catalogue)
    worker: Any = _Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()
