"""The notifier's HTTP side: health and metrics; the work runs in the lifespan's tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import structlog
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from normwacht.catalogue_file import load as load_catalogue
from services.notifier.alertmanager import Alertmanager
from services.notifier.metrics import NotifierMetrics
from services.notifier.service import Notifier
from services.notifier.settings import NotifierSettings
from services.notifier.store import connect
from services.shared.head import HeadAsGet
from services.shared.tasks import HEALTH_RESPONSES, Vital

log = structlog.get_logger("normwacht.notifier")


def create_app(
    settings: NotifierSettings | None = None, *, stop_if_a_task_fails: bool = False
) -> FastAPI:
    """`stop_if_a_task_fails`: the process stops when its reading or resending dies
    (`main`; in process, /healthz answers 503 once reading stopped)."""
    settings = settings or NotifierSettings()
    vital = Vital("notifier", stop_service=stop_if_a_task_fails)
    catalogue = load_catalogue()
    metrics = NotifierMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = connect(settings.database_url)
        async with httpx.AsyncClient(timeout=10.0) as client:
            alertmanager = Alertmanager(
                settings.alertmanager_url,
                client,
                metrics,
                timedelta(seconds=settings.resend_interval),
            )
            notifier = Notifier(settings, engine, catalogue, alertmanager, metrics)
            app.state.notifier = notifier
            app.state.alertmanager = alertmanager
            vital.start(notifier.resend_forever(), "notifier-resend")
            vital.start(notifier.consume(), "notifier-consume")
            log.info(
                "notifier_started",
                alertmanager=settings.alertmanager_url,
                database=engine.url.render_as_string(hide_password=True),
                topic=settings.kafka.outcomes_topic,
            )
            try:
                yield
            finally:
                await vital.cancel()
                engine.dispose()

    app = FastAPI(
        title="Normwacht notifier",
        version="1",
        summary="Opens and resolves Alertmanager alerts for breached and at-risk clocks.",
        lifespan=lifespan,
    )
    app.add_middleware(HeadAsGet)
    app.state.vital = vital

    @app.get("/healthz", summary="Liveness", responses=HEALTH_RESPONSES)
    def healthz(request: Request, response: Response) -> dict[str, Any]:
        notifier: Notifier | None = getattr(request.app.state, "notifier", None)
        alertmanager: Alertmanager | None = getattr(request.app.state, "alertmanager", None)
        consuming = bool(notifier and notifier.running)
        return {
            # Not reading outcomes (not yet, or no longer): not ready to be relied on.
            "status": vital.health(consuming, response),
            "consuming": consuming,
            "alertmanager_reachable": alertmanager.reachable if alertmanager else None,
        }

    @app.get("/metrics", summary="Prometheus metrics")
    def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
