"""Webhooks that vendors call directly: Meta (WhatsApp, Messenger) and the ZGW Notificaties API.

Each router factory takes its settings and a `deliver` callable that ingest wires to its
accept path (scope check, Kafka write, audit); the routers only turn vendor payloads
into events, by the pure mappings in `normwacht.sources`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from services.ingest.webhooks.common import Deliver
from services.ingest.webhooks.meta import MetaReceived, MetaSettings, meta_router
from services.ingest.webhooks.zgw import ZgwSettings, zgw_router

__all__ = [
    "Deliver",
    "MetaReceived",
    "MetaSettings",
    "Webhooks",
    "ZgwSettings",
    "meta_router",
    "zgw_router",
]


@dataclass(frozen=True)
class Webhooks:
    """The webhooks ingest serves: each only when it is configured."""

    meta: MetaSettings | None = None
    zgw: ZgwSettings | None = None

    @classmethod
    def from_environment(cls) -> Webhooks:
        """Meta when its app secret is set, ZGW when its Zaken API is; a webhook that is
        configured but incomplete stops ingest with pydantic's message."""
        return cls(
            meta=MetaSettings() if "NORMWACHT_META_APP_SECRET" in os.environ else None,
            zgw=ZgwSettings() if "NORMWACHT_ZGW_ZAKEN_API_URL" in os.environ else None,
        )
