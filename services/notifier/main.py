"""Start the notifier: `normwacht notifier`."""

from __future__ import annotations

import sys

import uvicorn

from services.notifier import app
from services.notifier.settings import NotifierSettings
from services.shared.kafka import require_topics
from services.shared.logging import configure_logging


def run(settings: NotifierSettings | None = None) -> None:
    settings = settings or NotifierSettings()
    configure_logging(settings.log_level)
    # It reads every partition of the outcomes, whatever their count.
    require_topics("notifier", settings.kafka, {settings.kafka.outcomes_topic: None})
    notifier = app.create_app(settings, stop_if_a_task_fails=True)
    uvicorn.run(
        notifier, host=settings.host, port=settings.port, log_level="warning", log_config=None
    )
    if notifier.state.vital.failed:
        sys.exit(1)
