"""Feeds the outcomes topic into the database.

Offsets are committed only after the database transaction, so a crash replays
the tail; `record_outcomes` ignores what it already has. Nothing is lost and
nothing is doubled.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from normwacht.core.engine import Outcome
from services.api.db import record_outcomes
from services.shared.kafka import started
from services.shared.outcomes import follow, outcome_consumer

log = structlog.get_logger("normwacht.api.consumer")


class OutcomeConsumer:
    def __init__(
        self, bootstrap: str, topic: str, group: str, engine: Engine, **security: Any
    ) -> None:
        """`security`: KafkaSettings.aiokafka_options() (TLS, SASL)."""
        self._engine = engine
        self._consumer = outcome_consumer(bootstrap, topic, group, "normwacht-api", **security)
        self.stored = 0
        self.running = False

    async def run(self) -> None:
        async with started(self._consumer):
            self.running = True
            try:
                await follow(self._consumer, self._store, max_records=1000)
            finally:
                self.running = False

    async def _store(self, outcomes: list[Outcome]) -> None:
        self.stored += await asyncio.to_thread(self._write, outcomes)

    def _write(self, outcomes: list[Outcome]) -> int:
        with Session(self._engine) as session, session.begin():
            new = record_outcomes(session, outcomes, datetime.now(UTC))
        log.info("outcomes_stored", received=len(outcomes), new=new)
        return new
