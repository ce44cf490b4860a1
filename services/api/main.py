"""Start the API: `normwacht api`."""

from __future__ import annotations

import sys

import uvicorn

from services.api.app import create_app
from services.api.settings import ApiSettings
from services.shared.kafka import require_topics
from services.shared.logging import configure_logging


def run(settings: ApiSettings | None = None) -> None:
    settings = settings or ApiSettings()
    configure_logging(settings.log_level)
    # It reads every partition of the outcomes, whatever their count.
    require_topics("api", settings.kafka, {settings.kafka.outcomes_topic: None})
    app = create_app(settings, stop_if_reading_fails=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", log_config=None)
    if app.state.vital.failed:
        sys.exit(1)
