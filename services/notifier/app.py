"""The notifier's HTTP side: health and metrics; the work runs in the lifespan's tasks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
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

log = structlog.get_logger("normwacht.notifier")


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    settings = settings or NotifierSettings()
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
            tasks = [
                asyncio.create_task(notifier.resend_forever(), name="notifier-resend"),
                asyncio.create_task(notifier.consume(), name="notifier-consume"),
            ]
            for task in tasks:
                task.add_done_callback(_stop_if_failed)
            log.info(
                "notifier_started",
                alertmanager=settings.alertmanager_url,
                database=engine.url.render_as_string(hide_password=True),
                topic=settings.kafka.outcomes_topic,
            )
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(Exception, asyncio.CancelledError):
                        await task  # a failure was logged when it happened
                engine.dispose()

    app = FastAPI(
        title="Normwacht notifier",
        version="1",
        summary="Opens and resolves Alertmanager alerts for breached and at-risk clocks.",
        lifespan=lifespan,
    )
    app.add_middleware(HeadAsGet)

    @app.get("/healthz", summary="Liveness")
    def healthz(request: Request, response: Response) -> dict[str, Any]:
        notifier: Notifier | None = getattr(request.app.state, "notifier", None)
        alertmanager: Alertmanager | None = getattr(request.app.state, "alertmanager", None)
        consuming = bool(notifier and notifier.running)
        if not consuming:  # not yet (or no longer) reading outcomes: not ready to be relied on
            response.status_code = 503
        return {
            "status": "ok" if consuming else "starting",
            "consuming": consuming,
            "alertmanager_reachable": alertmanager.reachable if alertmanager else None,
        }

    @app.get("/metrics", summary="Prometheus metrics")
    def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


FAILED = False
"""Set when a task of the notifier died: `main.run` then exits 1 after the shutdown."""


def _stop_if_failed(task: asyncio.Task[None]) -> None:
    """A notifier whose reading or resending died must not go on looking alive (its /metrics
    would keep `up` at 1): it stops, so that `make run` or a process manager notices, and its
    next start resumes from the database and the committed offsets."""
    global FAILED  # noqa: PLW0603 - one process, one notifier
    if task.cancelled() or task.exception() is None:
        return
    log.critical("notifier_task_failed", task=task.get_name(), error=repr(task.exception()))
    FAILED = True
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's own graceful shutdown
