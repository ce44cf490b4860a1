"""Start one processor worker: `normwacht processor`."""

from __future__ import annotations

import faust

from services.shared.kafka import ensure_topics
from services.shared.logging import configure_logging
from services.sla_processor.app import create_app
from services.sla_processor.settings import ProcessorSettings


def run(settings: ProcessorSettings | None = None) -> None:
    settings = settings or ProcessorSettings()
    configure_logging(settings.log_level)
    ensure_topics(settings.kafka)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()
