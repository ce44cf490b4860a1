"""Start ingest: `normwacht ingest`."""

from __future__ import annotations

import uvicorn

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from services.shared.logging import configure_logging


def run(settings: IngestSettings | None = None) -> None:
    settings = settings or IngestSettings()
    configure_logging(settings.log_level)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
