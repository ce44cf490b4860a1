"""Writes accepted events to Kafka and returns only once the broker has them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from normwacht.core.events import Event
from services.shared.bindings import to_kafka_record


class EventPublisher:
    """An idempotent producer with acks=all: no write is lost or doubled by a retry."""

    def __init__(self, bootstrap: str, topic: str, **security: Any) -> None:
        """`security`: KafkaSettings.aiokafka_options() (TLS, SASL)."""
        self._topic = topic
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="normwacht-ingest",
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            request_timeout_ms=15_000,
            **security,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, events: Sequence[Event]) -> None:
        """Send every event, keyed by its subject, in the Kafka binding's structured mode;
        return when all are acknowledged."""
        pending = []
        for event in events:
            key, value, headers = to_kafka_record(event)
            pending.append(
                await self._producer.send(self._topic, key=key, value=value, headers=headers)
            )
        await asyncio.gather(*pending)
