"""Following the outcomes topic (services/shared/outcomes.py) on the real broker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import OperationalError

from normwacht.core.engine import Kind, Outcome
from services.shared.kafka import KafkaSettings, started
from services.shared.outcomes import follow, outcome_consumer
from tests.support.kafka_io import produce

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def breach(subject: str) -> Outcome:
    deadline = T0 + timedelta(seconds=20)
    return Outcome(subject=subject, norm="phone.answer", instance=1, kind=Kind.BREACHED,
                   channel="phone", municipality="heiloo", started_at=T0,
                   deadline=deadline, decided_at=deadline)  # fmt: skip


def test_a_batch_the_database_failed_on_is_read_again_before_any_commit(
    kafka_settings: KafkaSettings,
) -> None:
    """A new group has no committed offset to go back to: the failed batch must still be
    read again, not skipped by the commit of the next one."""
    outcomes = [breach(f"CASE-{n}") for n in range(40)]
    produce(
        kafka_settings.bootstrap,
        kafka_settings.outcomes_topic,
        [(o.subject.encode(), o.model_dump_json().encode()) for o in outcomes],
        at_once=True,
    )
    handled: list[str] = []
    failures = 0

    async def handle(batch: list[Outcome]) -> None:
        nonlocal failures
        if failures == 0:  # the database is locked, once
            failures += 1
            raise OperationalError("INSERT ...", {}, Exception("database is locked"))
        handled.extend(outcome.id for outcome in batch)

    async def follow_until_all_handled() -> None:
        consumer = outcome_consumer(
            kafka_settings.bootstrap, kafka_settings.outcomes_topic, "first-time", "test"
        )
        async with started(consumer):
            task = asyncio.create_task(follow(consumer, handle, max_records=1000))
            try:
                for _ in range(300):
                    if len(handled) >= len(outcomes):
                        break
                    await asyncio.sleep(0.1)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    asyncio.run(follow_until_all_handled())
    assert failures == 1
    assert sorted(handled) == sorted(o.id for o in outcomes)
