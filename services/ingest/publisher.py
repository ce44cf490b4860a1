"""Writes accepted events to Kafka and returns only once the broker has them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from normwacht.core.events import Event


class EventPublisher:
    """An idempotent producer with acks=all: no write is lost or doubled by a retry."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._topic = topic
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="normwacht-ingest",
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            request_timeout_ms=15_000,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, events: Sequence[Event]) -> None:
        """Send every event, keyed by its subject; return when all are acknowledged."""
        pending = [
            await self._producer.send(
                self._topic,
                key=event.subject.encode(),
                value=event.model_dump_json(exclude_none=True).encode(),
                headers=[("ce_type", event.type.encode()), ("ce_source", event.source.encode())],
            )
            for event in events
        ]
        await asyncio.gather(*pending)
