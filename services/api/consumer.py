"""Feeds the outcomes topic into the database.

Offsets are committed only after the database transaction, so a crash replays
the tail; `record_outcomes` ignores what it already has. Nothing is lost and
nothing is doubled.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog
from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from normwacht.core.engine import Outcome
from services.api.db import record_outcomes
from services.shared.kafka import started

log = structlog.get_logger("normwacht.api.consumer")


class OutcomeConsumer:
    def __init__(self, bootstrap: str, topic: str, group: str, engine: Engine) -> None:
        self._engine = engine
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            client_id="normwacht-api",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Never read a record of an aborted transaction (should a producer use them).
            isolation_level="read_committed",
        )
        self.stored = 0
        self.running = False

    async def run(self) -> None:
        async with started(self._consumer):
            self.running = True
            try:
                await self._read()
            finally:
                self.running = False

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=1000)
            outcomes = [
                outcome
                for records in batches.values()
                for record in records
                if (outcome := self._decode(record.value)) is not None
            ]
            if outcomes:
                try:
                    self.stored += await asyncio.to_thread(self._store, outcomes)
                except SQLAlchemyError as error:
                    # Read the same records again once the database is back.
                    log.error("database_write_failed", error=str(error))
                    await self._consumer.seek_to_committed()
                    await asyncio.sleep(1)
                    continue
            if batches:
                await self._consumer.commit()

    def _store(self, outcomes: list[Outcome]) -> int:
        with Session(self._engine) as session, session.begin():
            new = record_outcomes(session, outcomes, datetime.now(UTC))
        log.info("outcomes_stored", received=len(outcomes), new=new)
        return new

    @staticmethod
    def _decode(value: bytes | None) -> Outcome | None:
        try:
            return Outcome.model_validate_json(value or b"")
        except ValidationError as error:
            # Our own topic: a bad record is a bug upstream, not a reason to stop reading.
            log.error("outcome_undecodable", error=str(error))
            return None
