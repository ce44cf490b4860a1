"""Start ingest: `normwacht ingest`."""

from __future__ import annotations

import uvicorn

from services.ingest.access import Access, NoWritePartner
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from services.shared.kafka import require_topics
from services.shared.logging import configure_logging
from services.shared.partners import connect


def run(settings: IngestSettings | None = None) -> None:
    settings = settings or IngestSettings()
    configure_logging(settings.log_level)
    # Checked here too (the app checks at startup) for a plain message instead of a traceback.
    engine = connect(settings.database_url)
    try:
        development = settings.environment == "development"
        Access(engine, development=development, refresh_s=0).require_write_partner()
    except NoWritePartner as error:
        raise SystemExit(f"normwacht ingest: {error}") from None
    finally:
        engine.dispose()
    # It writes the events only. Their partition count matters to the processor, but a
    # mismatch means a deployment configured two ways: refused here too.
    kafka = settings.kafka
    require_topics("ingest", kafka, {kafka.events_topic: kafka.partitions})
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        log_config=None,
    )
