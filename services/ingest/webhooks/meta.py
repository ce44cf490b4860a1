"""`GET/POST /v1/webhooks/meta`: the WhatsApp Cloud API's and Messenger's webhook.

Meta retries a delivery that is not answered with 200, for days, so we answer 200 to
every signed payload we understood or chose to ignore, and 5xx only when its events
could not be stored (then the retry is what we want). An unsigned or wrongly signed
request is refused before its body is parsed.
"""

from __future__ import annotations

import json
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from normwacht.core.events import Municipality
from normwacht.sources.meta import (
    DEFAULT_SOURCE,
    SIGNATURE_HEADER,
    MetaConfig,
    map_payload,
    signature_valid,
    verification_challenge,
)
from services.ingest.body import read_body
from services.ingest.webhooks.common import Deliver, HmacKey, deliver_or_503
from services.shared.problems import Problem, check_query

log = structlog.get_logger("normwacht.ingest.webhooks.meta")

PATH = "/v1/webhooks/meta"


class MetaSettings(BaseSettings):
    """`NORMWACHT_META_*` environment variables (and `NORMWACHT_SOURCE_HMAC_KEY`)."""

    model_config = SettingsConfigDict(env_prefix="NORMWACHT_META_", populate_by_name=True)

    app_secret: SecretStr = Field(description="The Meta app's secret: signs every delivery.")
    verify_token: SecretStr = Field(
        description="The token entered with the callback URL in the app dashboard."
    )
    municipalities: dict[str, Municipality] = Field(
        default_factory=dict,
        description="WhatsApp phone_number_id or Facebook page id -> municipality; JSON, e.g. "
        '{"106540352242922": "heiloo"}. Anything else is ignored.',
    )
    automated_app_ids: frozenset[str] = Field(
        default=frozenset(),
        description="Apps whose Messenger messages are automatic (a chatbot's acknowledgement): "
        "their echoes are not replies. JSON list.",
    )
    source: str = Field(default=DEFAULT_SOURCE, description="The events' `source`.")
    sender: str = Field(default="meta", description="Audit name the events are delivered as.")
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    hmac_key: HmacKey

    def config(self) -> MetaConfig:
        return MetaConfig(
            key=self.hmac_key.get_secret_value().encode(),
            municipalities=self.municipalities,
            source=self.source,
            automated_app_ids=self.automated_app_ids,
        )


class MetaReceived(BaseModel):
    received: int = Field(description="Events taken from the delivery.")
    ignored: int = Field(description="Items left out (not tracked, or not configured).")


_signature = APIKeyHeader(
    name=SIGNATURE_HEADER,
    auto_error=False,
    description="`sha256=` and the body's HMAC-SHA256 under the app secret.",
)


def meta_router(settings: MetaSettings, deliver: Deliver) -> APIRouter:
    """The Meta webhook; `deliver` accepts its events as `settings.sender`."""
    router = APIRouter(tags=["webhooks"])
    config = settings.config()
    app_secret = settings.app_secret.get_secret_value().encode()
    verify_token = settings.verify_token.get_secret_value()

    @router.get(
        PATH,
        response_class=PlainTextResponse,
        summary="Meta's verification request",
        responses={
            200: {"content": {"text/plain": {}}, "description": "The `hub.challenge`"},
            403: {"description": "Not a subscription, or the wrong verify token"},
        },
    )
    async def verify(
        mode: Annotated[str | None, Query(alias="hub.mode")] = None,
        token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
        challenge: Annotated[str | None, Query(alias="hub.challenge", max_length=512)] = None,
    ) -> PlainTextResponse:
        answer = verification_challenge(mode, token, challenge, verify_token)
        if answer is None:
            log.warning("meta_verification_refused", mode=mode)
            raise Problem(
                403, "verification-refused", "Verification refused", "wrong mode or verify token"
            )
        log.info("meta_verified")
        return PlainTextResponse(answer)

    @router.post(
        PATH,
        response_model=MetaReceived,
        summary="A delivery of Meta's webhook (WhatsApp Cloud API, Messenger)",
        responses={
            400: {"description": "Signed, but not JSON"},
            401: {"description": f"No {SIGNATURE_HEADER} header"},
            403: {"description": f"Wrong {SIGNATURE_HEADER}: nothing was read"},
            413: {"description": "Body too large"},
            503: {"description": "The events were not stored; Meta retries"},
        },
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}
        },
    )
    async def receive(
        request: Request,
        _: Annotated[str | None, Depends(_signature)],  # for the OpenAPI
    ) -> MetaReceived:
        body = await read_body(request, settings.max_body_bytes)
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            raise Problem(
                401,
                "signature-missing",
                "Signature missing",
                f"a delivery must carry {SIGNATURE_HEADER}",
                headers={"WWW-Authenticate": f'{SIGNATURE_HEADER} realm="normwacht"'},
            )
        if not signature_valid(app_secret, body, signature):
            log.warning("meta_signature_refused", bytes=len(body))
            raise Problem(
                403,
                "signature-invalid",
                "Signature invalid",
                f"{SIGNATURE_HEADER} is not the body's HMAC-SHA256 under the app secret",
            )
        check_query(request)  # after the signature: a delivery without one answers 401 first
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested thousands deep
            raise Problem(
                400, "invalid-payload", "Invalid payload", "the body is not JSON"
            ) from None
        mapped = map_payload(payload, config)
        for reason in mapped.ignored:
            log.info("meta_item_ignored", reason=reason)
        if mapped.events:
            await deliver_or_503(deliver, mapped.events, settings.sender)
            log.info("meta_events_delivered", count=len(mapped.events))
        return MetaReceived(received=len(mapped.events), ignored=len(mapped.ignored))

    return router
