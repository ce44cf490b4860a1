"""What both webhooks share: the delivery callable, the key setting, a 503 on failure."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

import structlog
from pydantic import AfterValidator, AliasChoices, Field, SecretStr

from normwacht.core.events import Event
from services.shared.problems import Problem

log = structlog.get_logger("normwacht.ingest.webhooks")

Deliver = Callable[[Sequence[Event], str], Awaitable[None]]
"""Accept events on behalf of a sender (its audit name): scope check, Kafka write, audit.
Raises `Problem` to refuse them; any other exception means they were not stored."""


def _long_enough(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value().encode()) < 32:
        raise ValueError("NORMWACHT_SOURCE_HMAC_KEY must be at least 32 bytes")
    return value


HmacKey = Annotated[
    SecretStr,
    AfterValidator(_long_enough),
    Field(
        # Shared with every adapter (one key, so one vendor id is one case everywhere).
        validation_alias=AliasChoices("hmac_key", "NORMWACHT_SOURCE_HMAC_KEY"),
        description="Key of the pseudonyms that replace vendor ids (at least 32 bytes).",
    ),
]


async def deliver_or_503(deliver: Deliver, events: Sequence[Event], sender: str) -> None:
    """Hand the events on; a failure that is not a refusal becomes 503, so the vendor retries."""
    try:
        await deliver(events, sender)
    except Problem:
        raise
    except Exception as error:
        log.error("webhook_delivery_failed", sender=sender, events=len(events), error=str(error))
        raise Problem(
            503,
            "delivery-failed",
            "Events not stored",
            "the events could not be stored; send the same notification again",
            headers={"Retry-After": "1"},
        ) from error
