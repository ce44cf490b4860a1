"""The shell: outcomes topic in, state in the database, alerts out to Alertmanager.

Two loops share one lock, so a resend never posts an alert older than the one the
consumer just posted:

- `consume` reads a batch, plans it (`rules.plan`), stores the plan in one
  transaction, posts the changed alerts, and only then commits the batch's offsets.
  A crash in between replays the batch, whose ids are then known and dropped; what it
  stored but did not post is posted by the next resend (the database is the outbox).
- `resend_forever` posts, at start and every `resend_interval`, every firing alert and
  every resolution not yet accepted, after forgetting the applied ids and the announced
  resolutions of clocks older than `max_age` (a firing alert is never forgotten).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from normwacht.core.catalogue import Catalogue
from normwacht.core.engine import Outcome
from services.notifier import store
from services.notifier.alertmanager import Alertmanager
from services.notifier.metrics import NotifierMetrics
from services.notifier.rules import BREACHED, Alert, Plan, keys_of, plan
from services.notifier.settings import NotifierSettings
from services.shared.kafka import started
from services.shared.outcomes import follow, outcome_consumer

log = structlog.get_logger("normwacht.notifier")


class Notifier:
    def __init__(
        self,
        settings: NotifierSettings,
        engine: Engine,
        catalogue: Catalogue,
        alertmanager: Alertmanager,
        metrics: NotifierMetrics,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._catalogue = catalogue
        self._alertmanager = alertmanager
        self._metrics = metrics
        self._lock = asyncio.Lock()
        self.running = False

    # --- the outcomes topic -----------------------------------------------------------------

    async def consume(self) -> None:
        kafka = self._settings.kafka
        consumer = outcome_consumer(
            kafka.bootstrap,
            kafka.outcomes_topic,
            self._settings.group_id,
            "normwacht-notifier",
            max_poll_interval_ms=int(self._settings.max_poll_interval * 1000),
            **kafka.aiokafka_options(),
        )
        async with started(consumer):
            self.running = True
            try:
                await follow(consumer, self.handle, max_records=500, undecodable=self._undecodable)
            finally:
                self.running = False

    def _undecodable(self) -> None:
        self._metrics.outcomes.labels("undecodable").inc()

    async def handle(self, outcomes: Sequence[Outcome]) -> Plan:
        """Plan, store and post one batch; returns the plan once Alertmanager accepted it."""
        for outcome in outcomes:
            self._metrics.outcomes.labels(str(outcome.kind)).inc()
        async with self._lock:
            result = await asyncio.to_thread(self._plan_and_store, outcomes)
            await self._post(result.alerts, fresh=True)
        log.info(
            "outcomes_notified",
            received=len(outcomes),
            applied=len(result.applied),
            opened=sum(a.firing for a in result.alerts),
            resolved=sum(not a.firing for a in result.alerts),
        )
        return result

    def _plan_and_store(self, outcomes: Sequence[Outcome]) -> Plan:
        with Session(self._engine) as session, session.begin():
            state, seen = store.load(
                session,
                (key for outcome in outcomes for key in keys_of(outcome)),
                (outcome.id for outcome in outcomes),
            )
            result = plan(
                outcomes,
                state,
                seen,
                self._catalogue,
                now=datetime.now(UTC),
                max_age=self._settings.max_age,
                api_url=self._settings.api_url,
            )
            store.save(session, result)
            self._metrics.firing.set(store.firing_count(session))
        return result

    # --- resending --------------------------------------------------------------------------

    async def resend_forever(self) -> None:
        while True:
            try:
                await self.resend()
            except SQLAlchemyError as error:
                log.error("database_failed", error=str(error))
            await asyncio.sleep(self._settings.resend_interval)

    async def resend(self) -> int:
        """Post the firing alerts and unaccepted resolutions; how many."""
        async with self._lock:
            alerts = await asyncio.to_thread(self._to_send)
            await self._post(alerts, fresh=False)
        return len(alerts)

    def _to_send(self) -> list[Alert]:
        with Session(self._engine) as session, session.begin():
            forgotten = store.forget(session, datetime.now(UTC) - self._settings.max_age)
            if forgotten:
                log.info("alerts_forgotten", alerts=forgotten, max_age=str(self._settings.max_age))
            alerts = store.to_send(session)
            self._metrics.firing.set(sum(alert.firing for alert in alerts))
        return alerts

    # --- posting ----------------------------------------------------------------------------

    async def _post(self, alerts: Sequence[Alert], *, fresh: bool) -> None:
        """Post until accepted, then count, and mark resolutions announced.

        `fresh`: the alerts changed just now (not a resend), so a newly opened breach
        is timed from its deadline.
        """
        if not alerts:
            return
        accepted = await self._alertmanager.post(alerts)
        for alert in alerts:
            self._metrics.posted.labels(
                alert.alertname, "firing" if alert.firing else "resolved"
            ).inc()
            if fresh and alert.firing and alert.alertname == BREACHED and alert.deadline:
                self._metrics.delay.observe(max(0.0, (accepted - alert.deadline).total_seconds()))
        resolved = [alert for alert in alerts if not alert.firing]
        if resolved:
            await asyncio.to_thread(self._announce, resolved)

    def _announce(self, resolved: Sequence[Alert]) -> None:
        with Session(self._engine) as session, session.begin():
            store.announce(session, resolved)
