"""Following the outcomes topic, as the API and the notifier both do.

At least once: offsets are committed only after the handler returned, a database that
fails has the same records read again (from the batch's own first offsets: a group with
no commit yet has nothing to go back to), and a commit refused because the group moved on
(a handler that waited longer than max.poll.interval) has them read again after the
consumer joins anew. Handlers therefore drop outcomes they already have, by id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from normwacht.core.engine import Outcome

log = structlog.get_logger("normwacht.outcomes")


def outcome_consumer(
    bootstrap: str, topic: str, group: str, client_id: str, **options: Any
) -> AIOKafkaConsumer:
    """A consumer of the outcomes topic that commits by hand, from the start of new groups.

    `options` include the security ones (KafkaSettings.aiokafka_options())."""
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # Never read a record of an aborted transaction (should a producer use them).
        isolation_level="read_committed",
        **options,
    )


def decode(value: bytes | None) -> Outcome | None:
    """An outcome, or None for a record that is not one (logged). Our own topic: a bad
    record (or a kind this version does not know) is a bug upstream, never a reason to
    stop reading."""
    try:
        return Outcome.model_validate_json(value or b"")
    except ValidationError as error:
        log.error("outcome_undecodable", error=str(error))
        return None


async def follow(
    consumer: AIOKafkaConsumer,
    handle: Callable[[list[Outcome]], Awaitable[object]],
    *,
    max_records: int,
    undecodable: Callable[[], None] = lambda: None,
) -> None:
    """Hand every batch of outcomes to `handle`, then commit; forever."""
    while True:
        batches = await consumer.getmany(timeout_ms=500, max_records=max_records)
        outcomes: list[Outcome] = []
        for records in batches.values():
            for record in records:
                outcome = decode(record.value)
                if outcome is None:
                    undecodable()
                else:
                    outcomes.append(outcome)
        if outcomes:
            try:
                await handle(outcomes)
            except SQLAlchemyError as error:
                log.error("database_failed", error=str(error))
                for partition, records in batches.items():
                    consumer.seek(partition, records[0].offset)
                await asyncio.sleep(1)
                continue
        if batches:
            try:
                await consumer.commit()
            except KafkaError as error:
                log.warning("commit_failed", error=str(error))
