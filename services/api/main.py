"""Start the API: `normwacht api`."""

from __future__ import annotations

import uvicorn

from services.api.app import create_app
from services.api.settings import ApiSettings
from services.shared.logging import configure_logging


def run(settings: ApiSettings | None = None) -> None:
    settings = settings or ApiSettings()
    configure_logging(settings.log_level)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
