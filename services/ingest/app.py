"""Ingest: integration partners post CloudEvents over HTTP; we put them on Kafka.

`202 Accepted` means the broker has acknowledged every event of the request
(acks=all). A request with any invalid event is refused whole, so a rejected
batch writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ValidationError

from normwacht.catalogue_file import load as load_catalogue
from normwacht.core.events import EVENT_TYPES, Event, event_json_schema, parse_event, parse_events
from services.ingest.activity import SourceActivity
from services.ingest.publisher import EventPublisher
from services.ingest.settings import IngestSettings
from services.shared.kafka import ensure_topics
from services.shared.metrics import service_registry
from services.shared.problems import Problem, install_problem_handlers, invalid

log = structlog.get_logger("normwacht.ingest")

SINGLE = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
_UNION_TAGS = frozenset(EVENT_TYPES)


class Accepted(BaseModel):
    accepted: int
    ids: list[str]


class _Metrics:
    def __init__(self) -> None:
        self.registry = service_registry()
        self.accepted = Counter(
            "normwacht_ingest_events_accepted",
            "Events written to Kafka, by type.",
            ("type",),
            registry=self.registry,
        )
        self.rejected = Counter(
            "normwacht_ingest_requests_rejected",
            "Requests refused, by HTTP status.",
            ("status",),
            registry=self.registry,
        )
        self.latency = Histogram(
            "normwacht_ingest_request_duration_seconds",
            "Time to validate a request and have Kafka acknowledge it.",
            registry=self.registry,
        )


_bearer = HTTPBearer(auto_error=False)


def _authorised(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    token = credentials.credentials if credentials else ""
    settings: IngestSettings = request.app.state.settings
    if not any(secrets.compare_digest(token, known) for known in settings.tokens):
        request.app.state.metrics.rejected.labels("401").inc()
        raise Problem(
            401,
            "unauthorized",
            "Unauthorized",
            "a valid bearer token is required",
            headers={"WWW-Authenticate": 'Bearer realm="normwacht"'},
        )


def create_app(
    settings: IngestSettings | None = None, publisher: EventPublisher | None = None
) -> FastAPI:
    settings = settings or IngestSettings()
    kafka = settings.kafka
    metrics = _Metrics()
    activity = SourceActivity(
        load_catalogue(), settings.silent_after, settings.always_on, settings.forget_sources_after
    )
    sources_file = settings.data_dir / "sources.json"
    metrics.registry.register(activity)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(ensure_topics, kafka)
        app.state.publisher = publisher or EventPublisher(kafka.bootstrap, kafka.events_topic)
        await app.state.publisher.start()
        activity.restore(_read_sources(sources_file))
        keeping = asyncio.create_task(_keep_sources(activity, sources_file))
        log.info("ingest_started", bootstrap=kafka.bootstrap, topic=kafka.events_topic)
        try:
            yield
        finally:
            keeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeping
            _write_sources(activity.snapshot(), sources_file)
            await app.state.publisher.stop()

    app = FastAPI(
        title="Normwacht ingest",
        version="1",
        summary="Post CloudEvents from source systems; they are on Kafka when you get 202.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    install_problem_handlers(app)

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
            raise _too_large(settings.max_body_bytes)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > settings.max_body_bytes:
                raise _too_large(settings.max_body_bytes)
        return bytes(body)

    def validate(media_type: str, body: bytes) -> list[Event]:
        try:
            if media_type == SINGLE:
                return [parse_event(body)]
            events = parse_events(body)
        except ValidationError as error:
            raise invalid(error.errors(include_url=False), skip=_UNION_TAGS) from None
        if not events:
            raise Problem(422, "empty-batch", "Empty batch", "a batch holds at least one event")
        if len(events) > settings.max_batch_events:
            raise Problem(
                413,
                "batch-too-large",
                "Batch too large",
                f"at most {settings.max_batch_events} events per batch; this one has {len(events)}",
            )
        return events

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=Accepted,
        dependencies=[Depends(_authorised)],
        summary="Post one CloudEvent or a batch of them",
        responses={
            401: {"description": "Missing or wrong bearer token"},
            413: {"description": "Body or batch too large"},
            415: {"description": "Not a CloudEvents media type"},
            422: {"description": "An event is invalid; nothing was written"},
            503: {"description": "Kafka did not acknowledge; retry (duplicates are dropped by id)"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    SINGLE: {"schema": event_json_schema()},
                    BATCH: {"schema": {"type": "array", "items": event_json_schema()}},
                },
            }
        },
    )
    async def post_events(request: Request) -> Accepted:
        started = time.perf_counter()
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in (SINGLE, BATCH):
            metrics.rejected.labels("415").inc()
            raise Problem(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                f"send {SINGLE} (one event) or {BATCH} (a JSON array)",
            )
        try:
            events = validate(media_type, await read_body(request))
        except Problem as problem:
            metrics.rejected.labels(str(problem.status)).inc()
            raise
        try:
            await request.app.state.publisher.publish(events)
        except Exception as error:
            metrics.rejected.labels("503").inc()
            log.error("kafka_write_failed", error=str(error), events=len(events))
            raise Problem(
                503,
                "kafka-unavailable",
                "Events not stored",
                "Kafka did not acknowledge the write; retry the same request",
                headers={"Retry-After": "1"},
            ) from error
        for event in events:
            metrics.accepted.labels(event.type).inc()
        activity.seen(events)
        metrics.latency.observe(time.perf_counter() - started)
        log.info("events_accepted", count=len(events), subjects=len({e.subject for e in events}))
        return Accepted(accepted=len(events), ids=[e.id for e in events])

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _read_sources(path: Path) -> list[dict[str, Any]]:
    try:
        rows = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as error:  # a damaged file costs only what it remembered
        log.warning("sources_file_unreadable", path=str(path), error=str(error))
        return []
    return rows if isinstance(rows, list) else []


def _write_sources(rows: list[dict[str, Any]], path: Path) -> None:
    """Atomically: a crash mid-write leaves the previous file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(rows))
    partial.replace(path)


async def _keep_sources(activity: SourceActivity, path: Path, every_s: float = 10.0) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            # The snapshot on the loop (where events change it), the writing in a thread.
            await asyncio.to_thread(_write_sources, activity.snapshot(), path)
        except OSError as error:
            log.warning("sources_file_unwritable", path=str(path), error=str(error))


def _too_large(limit: int) -> Problem:
    return Problem(
        413, "body-too-large", "Body too large", f"the body may be at most {limit} bytes"
    )
