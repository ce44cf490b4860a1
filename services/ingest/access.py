"""Who may post what to ingest: authentication, role, rate limit, scope and audit per request.

Order of refusal: no working key 401, a read-only key 403, over the rate 429 (all before the
body is read), then after parsing an event outside the partner's scope 403. Nothing of a
refused request is written.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import structlog
from sqlalchemy import Engine

from normwacht.core.events import Event
from services.shared.bindings import Mode
from services.shared.partners import (
    DEVELOPMENT_PARTNER,
    Audit,
    Partner,
    PartnerCache,
    Registry,
    Role,
    Snapshot,
    audit_fields,
    authenticate,
)
from services.shared.problems import Problem
from services.shared.rates import RateLimiter

log = structlog.get_logger("normwacht.ingest")


class NoWritePartner(RuntimeError):
    """Production ingest with nobody allowed to write: it refuses to start (fail closed)."""


def out_of_scope(events: Sequence[Event], partner: Partner, mode: Mode) -> Problem | None:
    """403 naming the first event attribute outside the partner's scope, or None; the
    pointer is where the request held it (`/0/source`, `/source`, `/headers/ce-source`)."""
    checked: set[tuple[str, str, str]] = set()  # a batch has few distinct triples
    for index, event in enumerate(events):
        triple = (event.source, event.type, event.municipality.value)
        if triple in checked:
            continue
        checked.add(triple)
        attribute = partner.scope.refusal(*triple)
        if attribute is not None:
            value = {"source": event.source, "type": event.type, "municipality": triple[2]}
            pointer = {
                Mode.BATCH: f"/{index}/{attribute}",
                Mode.STRUCTURED: f"/{attribute}",
                Mode.BINARY: f"/headers/ce-{attribute}",
            }[mode]
            return Problem(
                403,
                "out-of-scope",
                "Out of scope",
                f"{pointer}: {attribute} {str(value[attribute])!r} is outside the scope of "
                f"partner {partner.name!r}; nothing was written",
                attribute=attribute,
                pointer=pointer,
            )
    return None


class Access:
    """Ingest's view of the partner registry, with its cache, rate limits and audit."""

    def __init__(
        self,
        engine: Engine,
        *,
        development: bool,
        refresh_s: float,
        audit_every_s: float = 1.0,
        on_audit_lost: Callable[[int], None] = lambda rows: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = Registry(engine)
        self.trail = AuditTrail(self.registry, audit_every_s, on_audit_lost)
        self.development = development
        self.cache = PartnerCache(self.registry, refresh_s)
        self.limits = RateLimiter(clock)

    async def snapshot(self) -> Snapshot:
        last = self.cache.last()
        if last is None or self.cache.stale():  # read in a thread, off the event loop
            try:
                return await asyncio.to_thread(self.cache.current)
            except Exception as error:  # fail closed: no registry, nobody gets in
                log.error("partners_unreadable", error=str(error))
                raise Problem(
                    503,
                    "partners-unavailable",
                    "Partner registry unavailable",
                    "the partner registry could not be read; retry the same request",
                    headers={"Retry-After": "1"},
                ) from error
        return last

    async def writer(self, authorization: str | None) -> Partner:
        """The partner of a request, allowed to write and within its rate; else 401/403/429."""
        snapshot = await self.snapshot()
        partner = authenticate(
            authorization, snapshot, datetime.now(UTC), development=self.development
        )
        if partner.role is not Role.WRITE:
            raise Problem(
                403,
                "read-only-key",
                "Read-only key",
                f"partner {partner.name!r} may read the API, not post events",
            )
        self.limits.check(partner)
        return partner

    async def sender(self, name: str) -> Partner:
        """The registered write partner a webhook delivers as (its scope applies, its audit
        name is used); in development the development partner stands in for a missing one.
        A webhook whose partner is absent or revoked is refused: revoking it turns it off."""
        partner = (await self.snapshot()).named(name)
        if partner is not None and partner.role is Role.WRITE:
            return partner
        if self.development:
            return replace(DEVELOPMENT_PARTNER, name=name)
        raise Problem(
            403,
            "sender-not-registered",
            "Sender not registered",
            f"no active write partner {name!r} is registered for this webhook; "
            f"add it with `normwacht partners add {name} --role write ...`",
        )

    def require_write_partner(self) -> None:
        """Fail closed: production needs at least one active write partner to start."""
        if self.development:
            return
        if not self.registry.snapshot().has_active(Role.WRITE):
            raise NoWritePartner(
                "ingest is in production mode and no active write partner is registered: "
                "add one with `normwacht partners add NAME --role write --source ... --type ... "
                "--municipality ...` (in the same DATABASE_URL), or, on a developer's machine "
                "only, set NORMWACHT_INGEST_ENVIRONMENT=development to accept the "
                "development token"
            )

    def audit(self, events: Sequence[Event], partner: Partner) -> None:
        """A log line now and a table row soon (`AuditTrail`) per accepted request."""
        record = Audit(
            partner.name,
            datetime.now(UTC),
            len(events),
            tuple(sorted({e.source for e in events})),
        )
        log.info("request_audited", **audit_fields(record))
        self.trail.add(record)


class AuditTrail:
    """Audit rows written in batches: one transaction per `every_s` instead of one per
    request, which cost ingest half its time at 500 requests/s (docs/BENCHMARKS.md).

    The log line of each request is written at once, so a row is never lost without a
    trace. Rows whose write fails are kept and tried again; past `max_pending` the oldest
    are given up (counted by `on_lost`, each already in the log).
    """

    def __init__(
        self,
        registry: Registry,
        every_s: float,
        on_lost: Callable[[int], None] = lambda rows: None,
        max_pending: int = 100_000,
    ) -> None:
        self.registry = registry
        self.every_s = every_s
        self.on_lost = on_lost
        self.max_pending = max_pending
        self.pending: list[Audit] = []

    def add(self, record: Audit) -> None:
        self.pending.append(record)
        if len(self.pending) > self.max_pending:
            given_up = self.pending[: len(self.pending) - self.max_pending]
            del self.pending[: len(given_up)]
            self.on_lost(len(given_up))
            log.error("audit_rows_given_up", rows=len(given_up), first_at=str(given_up[0].at))

    async def flush(self) -> None:
        """Write what is pending; on failure keep it for the next flush."""
        batch, self.pending = self.pending, []
        if not batch:
            return
        try:
            await asyncio.to_thread(self.registry.audit, batch)
        except Exception as error:
            log.error("audit_rows_not_written", rows=len(batch), error=str(error))
            self.pending[:0] = batch

    async def keep(self) -> None:
        """Flush every `every_s` until cancelled; then flush once more."""
        try:
            while True:
                await asyncio.sleep(self.every_s)
                await self.flush()
        finally:
            await asyncio.shield(self.flush())
