"""Kafka settings and the topics every service agrees on.

Records are keyed by the case id (`subject`) as UTF-8 bytes and placed by the
client's default murmur2 partitioner (the same in aiokafka, kafka-python and the
Java client), so one case always lands in one partition, in order, whichever
service wrote it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence

import structlog
from aiokafka import AIOKafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from pydantic_settings import BaseSettings, SettingsConfigDict

log = structlog.get_logger(__name__)


class KafkaSettings(BaseSettings):
    """`NORMWACHT_KAFKA_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="NORMWACHT_KAFKA_")

    bootstrap: str = "127.0.0.1:9092"
    events_topic: str = "normwacht.events"
    outcomes_topic: str = "normwacht.outcomes"
    dead_letter_topic: str = "normwacht.events.dlq"
    partitions: int = 6
    replication_factor: int = 1

    def topic_specs(self) -> dict[str, int]:
        """Partitions per public topic; events and outcomes share a count (co-partitioned)."""
        return {
            self.events_topic: self.partitions,
            self.outcomes_topic: self.partitions,
            self.dead_letter_topic: 1,
        }


def ensure_topics(
    settings: KafkaSettings, compacted: Sequence[str] = (), timeout_s: float = 60.0
) -> None:
    """Create the public topics (and `compacted` ones, partitioned alike) if missing.

    Waits for the broker up to `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=settings.bootstrap, client_id="normwacht-admin"
            )
            break
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=count, replication_factor=settings.replication_factor)
            for name, count in settings.topic_specs().items()
            if name not in existing
        ] + [
            NewTopic(
                name,
                num_partitions=settings.partitions,
                replication_factor=settings.replication_factor,
                topic_configs={"cleanup.policy": "compact"},
            )
            for name in compacted
            if name not in existing
        ]
        if missing:
            # Another service may create one between our list and our create.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
            log.info("topics_created", topics=[t.name for t in missing])
    finally:
        admin.close()


START_GRACE_S = 5.0


@contextlib.asynccontextmanager
async def started(consumer: AIOKafkaConsumer) -> AsyncIterator[AIOKafkaConsumer]:
    """`consumer`, started, and stopped on leaving, however that comes.

    aiokafka leaks its bootstrap connection when `start()` is cancelled midway
    (`AIOKafkaClient.bootstrap` closes it on Kafka errors only), so the start runs as its
    own task, which leaving (a shutdown) lets end for `START_GRACE_S` rather than cancel;
    only then is it cancelled after all, so a shutdown never hangs on a lost broker.
    """
    starting = asyncio.ensure_future(consumer.start())
    try:
        await asyncio.shield(starting)
        yield consumer
    finally:
        try:
            try:
                await asyncio.wait_for(starting, START_GRACE_S)
            except TimeoutError:
                log.warning("consumer_start_cancelled", after_s=START_GRACE_S)
            except Exception:  # noqa: S110 - a failed start was raised to the caller already
                pass
        finally:  # even if the shutdown is cancelled once more
            await consumer.stop()
