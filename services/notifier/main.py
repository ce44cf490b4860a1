"""Start the notifier: `normwacht notifier`."""

from __future__ import annotations

import uvicorn

from services.notifier.app import create_app
from services.notifier.settings import NotifierSettings
from services.shared.logging import configure_logging


def run(settings: NotifierSettings | None = None) -> None:
    settings = settings or NotifierSettings()
    configure_logging(settings.log_level)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
