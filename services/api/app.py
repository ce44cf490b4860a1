"""The API: cases, their clocks and the breaches, read from the database."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import structlog
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import Engine, and_, select, tuple_
from sqlalchemy.orm import Session

from normwacht.catalogue_file import load as load_catalogue
from normwacht.core.calendars import AMSTERDAM
from normwacht.core.events import Municipality
from normwacht.core.instants import Instant
from normwacht.core.report import year_bounds
from services.api.consumer import OutcomeConsumer
from services.api.db import ClockRow, OutcomeRow, case_clocks, connect
from services.api.report import as_csv, year_lines
from services.api.settings import ApiSettings
from services.shared.head import HeadAsGet
from services.shared.partners import (
    DEVELOPMENT_PARTNER,
    Partner,
    PartnerCache,
    Registry,
    Role,
    authenticate,
)
from services.shared.partners import migrate as migrate_partner_tables
from services.shared.problems import (
    Problem,
    check_query,
    install_problem_handlers,
    known_query_only,
    problem_responses,
)
from services.shared.rates import RateLimiter
from services.shared.tasks import HEALTH_RESPONSES, Vital

log = structlog.get_logger("normwacht.api")


class ClockView(BaseModel):
    norm: str
    instance: int
    status: str
    channel: str
    started_at: datetime
    deadline: datetime | None
    decided_at: datetime | None
    outcomes: list[str]


class CaseView(BaseModel):
    subject: str
    municipality: str
    clocks: list[ClockView]


class BreachView(BaseModel):
    id: str
    subject: str
    norm: str
    instance: int
    channel: str
    municipality: str
    started_at: datetime
    deadline: datetime | None
    breached_at: datetime
    corrected: bool


class NormView(BaseModel):
    id: str
    channel: str
    section: str
    seed: str
    reading: str
    starts: list[str]
    stops: list[str]
    term: dict[str, Any] | None
    at_risk: float | None
    pausable: bool


class BreachPage(BaseModel):
    items: list[BreachView]
    next_cursor: str | None


class NormYearView(BaseModel):
    year: int
    municipality: str
    norm: str
    channel: str
    unit: Literal["clock", "month"] = Field(
        description="What one count is: a clock, or a month (website availability: met when "
        "the month's probes found the site up often enough)"
    )
    met: int
    breached: int
    excluded: int
    cancelled: int
    open: int = Field(
        description="Running at the year's end (started before it, decided after it or not "
        "yet), or now for the year under way"
    )
    service_level: float | None = Field(
        description="met / (met + breached); null for a year without either"
    )
    objective: float | None = Field(
        description="The share to be met, as the catalogue sets it now; null for a norm it "
        "no longer has"
    )
    objective_met: bool | None


class YearReport(BaseModel):
    year: int
    since: datetime = Field(description="1 January 00:00 Dutch time, as a UTC instant")
    until: datetime = Field(
        description="The next 1 January 00:00 Dutch time, as a UTC instant (not included)"
    )
    generated_at: datetime = Field(
        description="When this was counted: a late event can still change a decision, and "
        "asked again later the report shows that"
    )
    complete: bool = Field(description="Whether the year had ended when this was counted")
    norms: list[NormYearView]


def _session(request: Request) -> Iterator[Session]:
    engine: Engine = request.app.state.engine
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(_session)]

_bearer = HTTPBearer(
    auto_error=False, description="A read partner's key, from `normwacht partners add`."
)
_AUTH_RESPONSES = problem_responses(
    {
        401: {"description": "Missing, malformed, unknown, revoked or expired key"},
        403: {"description": "A write partner's key: it may post events, not read"},
        429: {"description": "Over the partner's rate: retry after `Retry-After` seconds"},
        503: {"description": "The partner registry could not be read; retry"},
    }
)
_INVALID_REQUEST = problem_responses(
    {422: {"description": "An invalid path or query parameter, or one it does not take"}}
)


def _reader(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],  # for the OpenAPI
) -> Partner:
    """The read partner of a request; 401/403 problem details otherwise, never a 500."""
    cache: PartnerCache = request.app.state.partners
    try:
        snapshot = cache.current()
    except Exception as error:  # fail closed
        log.error("partners_unreadable", error=str(error))
        raise Problem(
            503,
            "partners-unavailable",
            "Partner registry unavailable",
            "the partner registry could not be read; retry",
            headers={"Retry-After": "1"},
        ) from error
    development = request.app.state.settings.environment == "development"
    partner = authenticate(
        request.headers.get("authorization"), snapshot, datetime.now(UTC), development=development
    )
    if partner.role is not Role.READ and partner is not DEVELOPMENT_PARTNER:
        raise Problem(
            403,
            "write-only-key",
            "Write-only key",
            f"partner {partner.name!r} may post events, not read the API",
        )
    request.app.state.rates.check(partner)  # the year report is a costly query
    check_query(request)  # after the key: missing credentials answer 401 first
    return partner


ReaderDep = Annotated[Partner, Depends(_reader)]


def create_app(
    settings: ApiSettings | None = None,
    *,
    consume: bool = True,
    stop_if_reading_fails: bool = False,
) -> FastAPI:
    """`stop_if_reading_fails`: the process stops when its outcome consumer dies (`main`;
    in process, as in tests, /healthz answers 503 instead)."""
    settings = settings or ApiSettings()
    vital = Vital("api", stop_service=stop_if_reading_fails)

    catalogue = load_catalogue()
    norm_ids: dict[str, Any] = {"enum": sorted(catalogue.norms)}
    norms = [
        NormView(
            id=norm.id,
            channel=norm.channel,
            section=norm.section,
            seed=norm.seed,
            reading=norm.reading,
            starts=[s.event for s in norm.starts],
            stops=[s.event for s in norm.stops],
            term=norm.term.model_dump(mode="json", exclude_defaults=True) if norm.term else None,
            at_risk=norm.at_risk,
            pausable=norm.pausable,
        )
        for norm in catalogue.norms.values()
    ]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = connect(settings.database_url)
        migrate_partner_tables(app.state.engine)
        app.state.partners = PartnerCache(Registry(app.state.engine), settings.partners_refresh_s)
        if consume:
            consumer = OutcomeConsumer(
                settings.kafka.bootstrap,
                settings.kafka.outcomes_topic,
                settings.consumer_group,
                app.state.engine,
                **settings.kafka.aiokafka_options(),
            )
            app.state.consumer = consumer
            vital.start(consumer.run(), "outcome-consumer")
        log.info(
            "api_started",
            database=app.state.engine.url.render_as_string(hide_password=True),
            environment=settings.environment,
        )
        try:
            yield
        finally:
            await vital.cancel()
            app.state.engine.dispose()

    app = FastAPI(
        title="Normwacht API",
        version="1",
        summary="Cases, their SLA clocks and the breaches of the BUCH service norms.",
        lifespan=lifespan,
        dependencies=[Depends(known_query_only)],
    )
    app.add_middleware(HeadAsGet)
    app.state.settings = settings
    app.state.rates = RateLimiter()
    app.state.vital = vital
    install_problem_handlers(app)

    @app.get(
        "/v1/cases/{subject}",
        response_model=CaseView,
        summary="A case's norms and outcomes",
        responses={
            **_AUTH_RESPONSES,
            **_INVALID_REQUEST,
            **problem_responses({404: {"description": "No clocks of this case for this key"}}),
        },
    )
    def get_case(subject: str, db: SessionDep, reader: ReaderDep) -> CaseView:
        # A case of a municipality outside the reader's scope is as absent as an unknown one.
        clocks = [
            c for c in case_clocks(db, subject) if reader.scope.allows_municipality(c.municipality)
        ]
        if not clocks:
            raise Problem(
                404, "case-not-found", "Case not found", f"no clocks for case {subject!r}"
            )
        kinds: dict[tuple[str, int], list[str]] = {}
        for row in db.scalars(
            select(OutcomeRow).where(OutcomeRow.subject == subject).order_by(OutcomeRow.recorded_at)
        ):
            kinds.setdefault((row.norm, row.instance), []).append(row.kind)
        return CaseView(
            subject=subject,
            municipality=clocks[0].municipality,
            clocks=[
                ClockView(
                    norm=c.norm,
                    instance=c.instance,
                    status=c.status,
                    channel=c.channel,
                    started_at=c.started_at,
                    deadline=c.deadline,
                    decided_at=c.decided_at,
                    outcomes=kinds.get((c.norm, c.instance), []),
                )
                for c in clocks
            ],
        )

    @app.get(
        "/v1/breaches",
        response_model=BreachPage,
        summary="Breaches, oldest first (of the reader's municipalities)",
        responses={
            **_AUTH_RESPONSES,
            **_INVALID_REQUEST,
            **problem_responses({400: {"description": "A cursor that is not a `next_cursor`"}}),
        },
    )
    def list_breaches(
        db: SessionDep,
        reader: ReaderDep,
        # The catalogue's ids, checked below; an enum in the OpenAPI, for clients. (In the
        # default, not the annotation: annotations are read as text, without this scope.)
        norm: str | None = Query(
            None, description="A norm's id (GET /v1/norms)", json_schema_extra=norm_ids
        ),
        municipality: Municipality | None = None,
        since: Annotated[Instant | None, Query(description="Breached at or after")] = None,
        until: Annotated[Instant | None, Query(description="Breached before")] = None,
        include_corrected: Annotated[
            bool, Query(description="Also list breaches a late event later turned into met")
        ] = False,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        cursor: Annotated[
            str | None, Query(min_length=1, description="next_cursor of the previous page")
        ] = None,
    ) -> BreachPage:
        query = (
            select(OutcomeRow, ClockRow.standing)
            .join(
                ClockRow,
                and_(
                    ClockRow.subject == OutcomeRow.subject,
                    ClockRow.norm == OutcomeRow.norm,
                    ClockRow.instance == OutcomeRow.instance,
                ),
            )
            .where(OutcomeRow.kind == "breached")
            .order_by(OutcomeRow.decided_at, OutcomeRow.id)
            .limit(limit + 1)
        )
        if not include_corrected:
            # Only the breach that stands: a clock breached again after a correction
            # has two breach outcomes, of which only the last stands.
            query = query.where(OutcomeRow.id == ClockRow.standing)
        if norm is not None:
            if norm not in catalogue.norms:
                # Not an empty page: a misspelt norm would look like one kept perfectly.
                raise Problem(422, "unknown-norm", "Unknown norm",
                              f"no norm {norm!r} (GET /v1/norms lists them)")  # fmt: skip
            query = query.where(OutcomeRow.norm == norm)
        if municipality:
            query = query.where(OutcomeRow.municipality == municipality)
        if not reader.scope.all_municipalities:
            query = query.where(OutcomeRow.municipality.in_(reader.scope.municipalities))
        if since:
            query = query.where(OutcomeRow.decided_at >= since)
        if until:
            query = query.where(OutcomeRow.decided_at < until)
        if cursor is not None:
            after_deadline, after_id = _decode_cursor(cursor)
            # A row value, which SQLite and PostgreSQL read as a range of the index on
            # (kind, decided_at, id); the same test written with OR read every breach
            # from the first, so a page took longer the further on it was.
            query = query.where(
                tuple_(OutcomeRow.decided_at, OutcomeRow.id) > tuple_(after_deadline, after_id)
            )
        rows = db.execute(query).all()
        page = [
            BreachView(
                id=row.id,
                subject=row.subject,
                norm=row.norm,
                instance=row.instance,
                channel=row.channel,
                municipality=row.municipality,
                started_at=row.started_at,
                deadline=row.deadline,
                breached_at=row.decided_at,
                corrected=row.id != standing,
            )
            for row, standing in rows[:limit]
        ]
        more = len(rows) > limit
        return BreachPage(items=page, next_cursor=_encode_cursor(page[-1]) if more else None)

    @app.get(
        "/v1/norms",
        response_model=list[NormView],
        summary="The norm catalogue",
        dependencies=[Depends(_reader)],
        responses={**_AUTH_RESPONSES, **_INVALID_REQUEST},
    )
    def list_norms() -> list[NormView]:
        return norms

    @app.get(
        "/v1/report",
        response_model=YearReport,
        summary="How well each norm was kept over a year (of the reader's municipalities)",
        description=(
            "Every norm in every municipality the key may read: the clocks decided in the "
            "year (Dutch time), as they stand now, those running at its end (or now), and "
            "the service level against the objective."
        ),
        responses={
            200: {
                "description": "The report: JSON, or with `format=csv` its lines as CSV "
                "(a header row first, the same columns as a line of `norms`)",
                "content": {"text/csv": {"schema": {"type": "string"}}},
                "headers": {
                    "Content-Disposition": {
                        "description": "With `format=csv`: the file name, "
                        "normwacht-YEAR[-MUNICIPALITY][-as-of-DATE].csv (DATE for a year "
                        "not yet over)",
                        "schema": {"type": "string"},
                    }
                },
            },
            **_AUTH_RESPONSES,
            **_INVALID_REQUEST,
            **problem_responses(
                {403: {"description": "A write partner's key, or a municipality out of scope"}}
            ),
        },
    )
    def get_report(
        db: SessionDep,
        reader: ReaderDep,
        year: Annotated[int, Query(ge=1970, le=2100, description="The calendar year")],
        municipality: Annotated[
            Municipality | None, Query(description="One municipality (default: all it may read)")
        ] = None,
        format: Annotated[Literal["json", "csv"], Query(description="json or csv")] = "json",
    ) -> YearReport | Response:
        wanted = [municipality.value] if municipality else list(catalogue.municipalities)
        allowed = [m for m in wanted if reader.scope.allows_municipality(m)]
        if not allowed:
            asked = municipality or "any municipality"
            raise Problem(403, "municipality-out-of-scope", "Municipality out of scope",
                          f"this key may not read {asked}")  # fmt: skip
        lines = year_lines(db, catalogue, year, allowed)
        since, until = year_bounds(year)
        now = datetime.now(UTC)
        if format == "json":
            return YearReport(
                year=year,
                since=since,
                until=until,
                generated_at=now,
                complete=now >= until,
                norms=[NormYearView(**line.as_dict()) for line in lines],
            )
        # The file carries what the JSON says apart: a year under way is counted so far.
        name = f"normwacht-{year}" + (f"-{municipality}" if municipality else "")
        if now < until:
            name += f"-as-of-{now.astimezone(AMSTERDAM).date()}"
        return Response(
            as_csv(lines),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )

    @app.get("/healthz", summary="Liveness", responses=HEALTH_RESPONSES)
    def healthz(request: Request, response: Response) -> dict[str, Any]:
        consumer: OutcomeConsumer | None = getattr(request.app.state, "consumer", None)
        consuming = bool(consumer and consumer.running)
        return {
            # Without a consumer (consume=False) there is nothing to wait for.
            "status": vital.health(consuming, response) if consumer else "ok",
            "consuming": consuming,
            "outcomes_stored": consumer.stored if consumer else 0,
        }

    return app


def _encode_cursor(last: BreachView) -> str:
    return base64.urlsafe_b64encode(f"{last.breached_at.isoformat()}|{last.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        deadline, last_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        after = datetime.fromisoformat(deadline)
        if after.tzinfo is None:  # ours carry their offset: a naive one would be local time
            raise ValueError(deadline)
        return after.astimezone(UTC), last_id  # (OverflowError: not one of ours)
    except (ValueError, OverflowError):
        raise Problem(400, "invalid-cursor", "Invalid cursor", "use next_cursor as given") from None
