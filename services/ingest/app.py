"""Ingest: integration partners post CloudEvents over HTTP; we put them on Kafka.

`202 Accepted` means the broker has acknowledged every event of the request
(acks=all). A request with any invalid event is refused whole, so a rejected
batch writes nothing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import math
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from normwacht.catalogue_file import load as load_catalogue
from normwacht.core.events import EVENT_TYPES, Event, event_json_schema
from services.ingest.access import Access, out_of_scope
from services.ingest.activity import SourceActivity
from services.ingest.body import read_body
from services.ingest.publisher import EventPublisher
from services.ingest.settings import IngestSettings
from services.ingest.webhooks import Webhooks, meta_router, zgw_router
from services.shared import bindings
from services.shared.bindings import UNSUPPORTED, Mode, from_http, http_mode
from services.shared.head import HeadAsGet
from services.shared.metrics import service_registry
from services.shared.partners import Partner
from services.shared.partners import connect as connect_partners
from services.shared.problems import (
    Problem,
    check_query,
    install_problem_handlers,
    invalid,
    known_query_only,
    problem_responses,
)

log = structlog.get_logger("normwacht.ingest")

SINGLE, BATCH = bindings.STRUCTURED, bindings.BATCH
BINARY = "application/json"
"""Binary mode's usual content type: the event's `data`, its attributes in `ce-` headers."""
_UNION_TAGS = frozenset(EVENT_TYPES)
_BINARY_HEADERS = {
    "ce-specversion": "`1.0`",
    "ce-id": "the event's `id`",
    "ce-source": "the event's `source`",
    "ce-type": "the event's `type`",
    "ce-time": "the event's `time` (RFC 3339)",
    "ce-subject": "the case id",
    "ce-municipality": "the municipality",
    "ce-dataschema": "optional: the `dataschema`",
    "ce-traceparent": "optional: W3C trace context",
}


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
            "Requests refused, by HTTP status (every 4xx and 5xx answer of the /v1/ routes).",
            ("status",),
            registry=self.registry,
        )
        self.latency = Histogram(
            "normwacht_ingest_request_duration_seconds",
            "Time to validate a request and have Kafka acknowledge it.",
            registry=self.registry,
        )
        self.audit_failures = Counter(
            "normwacht_ingest_audit_failures",
            "Audit rows given up after failed writes (each request is in the log in full).",
            registry=self.registry,
        )


class CountRefusals:
    """ASGI middleware: every refused ingest request counted once, by the status it was
    answered with, whichever part of ingest refused it (its key, a webhook's signature, the
    body, an event, Kafka) and whichever handler wrote the answer.

    Counted: the requests to the routes that take events (`/v1/...`, a wrong path under it
    included: a partner posting there sends nothing), not `/healthz`, `/metrics` or the
    docs. A request that fails unexpectedly is counted as the 500 it is answered with
    (by the outermost middleware, after this one)."""

    PREFIX = "/v1/"

    def __init__(self, app: ASGIApp, counter: Counter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(self.PREFIX):
            await self.app(scope, receive, send)
            return
        started = False

        async def counting(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if message["status"] >= 400:
                    self.counter.labels(str(message["status"])).inc()
            await send(message)

        try:
            await self.app(scope, receive, counting)
        except Exception:
            if not started:
                self.counter.labels("500").inc()
            raise


_bearer = HTTPBearer(
    auto_error=False, description="A write partner's key, from `normwacht partners add`."
)


async def _writer(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],  # for the OpenAPI
) -> Partner:
    """The request's partner: 401/403/429 before the body is read. The raw header is read
    (not the parsed credentials), so a header of any shape gets a 401, never a 500."""
    access: Access = request.app.state.access
    partner = await access.writer(request.headers.get("authorization"))
    check_query(request)  # after the key: missing credentials answer 401 first
    return partner


def create_app(
    settings: IngestSettings | None = None,
    publisher: EventPublisher | None = None,
    webhooks: Webhooks | None = None,
) -> FastAPI:
    """`webhooks`: the vendor webhooks to serve; by default those configured in the
    environment (`NORMWACHT_META_*`, `NORMWACHT_ZGW_*`)."""
    settings = settings or IngestSettings()
    webhooks = webhooks if webhooks is not None else Webhooks.from_environment()
    kafka = settings.kafka
    metrics = _Metrics()
    activity = SourceActivity(
        load_catalogue(),
        settings.silent_after,
        settings.always_on,
        settings.forget_sources_after,
        max_sources=settings.max_sources,
    )
    sources_file = SourcesFile(settings.data_dir / "sources.json")
    metrics.registry.register(activity)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = await asyncio.to_thread(connect_partners, settings.database_url)
        access = Access(
            engine,
            development=settings.environment == "development",
            refresh_s=settings.partners_refresh_s,
            audit_every_s=settings.audit_every_s,
            on_audit_lost=metrics.audit_failures.inc,
        )
        try:
            await asyncio.to_thread(access.require_write_partner)  # fail closed
        except BaseException:
            engine.dispose()
            raise
        app.state.access = access
        app.state.publisher = publisher or EventPublisher(
            kafka.bootstrap, kafka.events_topic, **kafka.aiokafka_options()
        )
        await app.state.publisher.start()
        activity.restore(sources_file.read())
        keeping = asyncio.create_task(_keep_sources(activity, sources_file))
        auditing = asyncio.create_task(access.trail.keep(), name="audit-trail")
        log.info(
            "ingest_started",
            bootstrap=kafka.bootstrap,
            topic=kafka.events_topic,
            environment=settings.environment,
        )
        try:
            yield
        finally:
            for task in (keeping, auditing):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            sources_file.write(activity.snapshot(), time.monotonic())
            await app.state.publisher.stop()
            engine.dispose()

    app = FastAPI(
        title="Normwacht ingest",
        version="1",
        summary="Post CloudEvents from source systems; they are on Kafka when you get 202.",
        lifespan=lifespan,
        dependencies=[Depends(known_query_only)],
    )
    app.add_middleware(HeadAsGet)
    app.add_middleware(CountRefusals, counter=metrics.rejected)  # the one place refusals count
    app.state.settings = settings
    app.state.metrics = metrics
    install_problem_handlers(app)

    def validate(mode: Mode, headers: Mapping[str, str], body: bytes) -> list[Event]:
        try:
            events = from_http(mode, headers, body)
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

    async def accept(events: list[Event], partner: Partner, mode: Mode = Mode.BATCH) -> Accepted:
        """What every route that takes events does with valid ones: refuse the request whole
        when an event is outside the partner's scope (403), publish, count, note the
        sources' activity, audit. `mode` says how a 403 points at an event."""
        if refused := out_of_scope(events, partner, mode):
            raise refused
        try:
            await app.state.publisher.publish(events)
        except Exception as error:
            log.error("kafka_write_failed", error=str(error), events=len(events))
            raise Problem(
                503,
                "kafka-unavailable",
                "Events not stored",
                "Kafka did not acknowledge the write; retry the same request",
                headers={"Retry-After": "1"},
            ) from error
        for type_, count in collections.Counter(e.type for e in events).items():
            metrics.accepted.labels(type_).inc(count)
        activity.seen(events)
        app.state.access.audit(events, partner)
        return Accepted(accepted=len(events), ids=[e.id for e in events])

    async def deliver(events: Sequence[Event], sender: str) -> None:
        """A webhook's events, accepted as the registered partner it delivers as."""
        partner = await app.state.access.sender(sender)
        await accept(list(events), partner)

    async def webhook_writer(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],  # for the OpenAPI
    ) -> str:
        """The ZGW Notificaties API sends the abonnement's `auth` as a partner's bearer key."""
        return (await _writer(request, None)).name

    if webhooks.meta is not None:
        app.include_router(meta_router(webhooks.meta, deliver))
    if webhooks.zgw is not None:
        app.include_router(zgw_router(webhooks.zgw, deliver, webhook_writer))

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=Accepted,
        summary="Post one CloudEvent or a batch of them",
        responses=problem_responses(
            {
                401: {"description": "Missing, malformed, unknown, revoked or expired key"},
                403: {
                    "description": "A read-only key, or an event outside the partner's scope "
                    "(`attribute` and `pointer` say which); nothing was written"
                },
                413: {"description": "Body or batch too large"},
                415: {"description": "Not a CloudEvents media type"},
                422: {"description": "An event is invalid; nothing was written"},
                429: {"description": "Over the partner's rate limit; retry after `Retry-After` s"},
                503: {
                    "description": "Kafka did not acknowledge, or the partner registry could not "
                    "be read; retry (duplicates are dropped by id)"
                },
            }
        ),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    SINGLE: {"schema": event_json_schema()},
                    BATCH: {"schema": {"type": "array", "items": event_json_schema()}},
                    BINARY: {
                        "schema": {
                            "type": "object",
                            "description": "Binary mode: the body is the event's `data` (a "
                            "JSON object as its type defines it, or empty); the attributes "
                            "are `ce-` headers: "
                            + ", ".join(f"`{h}` ({what})" for h, what in _BINARY_HEADERS.items())
                            + ". Problem details point at a header as `/headers/ce-subject`.",
                        }
                    },
                },
            },
            "parameters": [
                {
                    "name": header,
                    "in": "header",
                    "required": False,
                    "description": f"Binary mode only: {what}.",
                    "schema": {"type": "string"},
                }
                for header, what in _BINARY_HEADERS.items()
            ],
        },
    )
    async def post_events(
        request: Request, partner: Annotated[Partner, Depends(_writer)]
    ) -> Accepted:
        started = time.perf_counter()
        mode = http_mode(request.headers)
        if mode is None:
            raise Problem(415, "unsupported-media-type", "Unsupported media type", UNSUPPORTED)
        events = validate(mode, request.headers, await read_body(request, settings.max_body_bytes))
        accepted = await accept(events, partner, mode)
        metrics.latency.observe(time.perf_counter() - started)
        return accepted

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


class SourcesFile:
    """What ingest knows of its sources, kept across restarts (a JSON list of rows)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # One writer at a time, and never an older snapshot over a newer one: the write
        # at shutdown may find the periodic one still running in its thread (cancelling
        # the task does not stop the thread), and both use the same partial file.
        self._lock = threading.Lock()
        self._written = -math.inf

    def read(self) -> list[dict[str, Any]]:
        try:
            rows = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as error:  # a damaged file costs only what it remembered
            log.warning("sources_file_unreadable", path=str(self.path), error=str(error))
            return []
        return rows if isinstance(rows, list) else []

    def write(self, rows: list[dict[str, Any]], taken: float) -> None:
        """Atomically: a crash mid-write leaves the previous file. `taken`: when the rows
        were read (`time.monotonic()`); a write of rows older than the file's is skipped."""
        with self._lock:
            if taken < self._written:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_suffix(".json.partial")
            partial.write_text(json.dumps(rows))
            partial.replace(self.path)
            self._written = taken


async def _keep_sources(activity: SourceActivity, file: SourcesFile, every_s: float = 10.0) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            # The snapshot on the loop (where events change it), the writing in a thread.
            rows, taken = activity.snapshot(), time.monotonic()
            await asyncio.to_thread(file.write, rows, taken)
        except OSError as error:
            log.warning("sources_file_unwritable", path=str(file.path), error=str(error))
