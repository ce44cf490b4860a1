"""`POST /v1/webhooks/zgw`: the receiver of a ZGW Notificaties API abonnement (kanaal zaken).

The Notificaties API sends the abonnement's `auth` value as the Authorization header;
`authorise` (ingest's partner authentication) checks it and names the sender. Every
notification we understood, used or not, is answered 204 as the API expects. A status
notification makes us GET the status from the Zaken API, but only under the configured
Zaken API URL: a notification must never make us send our Zaken API credentials elsewhere.
"""

# No `from __future__ import annotations` here: FastAPI must see the `Depends(authorise)`
# annotation of the route as an object, and `authorise` is only known inside the factory.

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

import httpx
import structlog
from fastapi import APIRouter, Depends, Request, Response
from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from normwacht.core.events import Municipality
from normwacht.sources.zgw import (
    DEFAULT_SOURCE,
    FetchStatus,
    Ignored,
    Kind,
    Notification,
    StatusRule,
    StatusUnreadable,
    ZgwRules,
    map_notification,
    map_status,
)
from services.ingest.body import read_body
from services.ingest.webhooks.common import Deliver, HmacKey, deliver_or_503
from services.shared.problems import Problem, json_pointer

log = structlog.get_logger("normwacht.ingest.webhooks.zgw")

PATH = "/v1/webhooks/zgw"


class ZgwSettings(BaseSettings):
    """`NORMWACHT_ZGW_*` environment variables (and `NORMWACHT_SOURCE_HMAC_KEY`)."""

    model_config = SettingsConfigDict(env_prefix="NORMWACHT_ZGW_", populate_by_name=True)

    zaaktypen: dict[str, Kind] = Field(
        default_factory=dict,
        description='Zaaktype URL -> "complaint" or "objection"; JSON.',
    )
    statustypen: dict[str, StatusRule] = Field(
        default_factory=dict,
        description='Statustype URL -> event, e.g. "complaint.answered" or '
        '{"type": "complaint.contacted", "data": {"by": "phone"}}; JSON.',
    )
    municipalities: dict[str, Municipality] = Field(
        default_factory=dict,
        description='Bronorganisatie (RSIN) -> municipality; JSON, e.g. {"001234511": "bergen"}.',
    )
    zaken_api_url: AnyHttpUrl = Field(
        description="Base URL of the Zaken API; statuses are fetched only below it."
    )
    zaken_api_authorization: SecretStr | None = Field(
        default=None,
        description="Authorization header for the Zaken API, e.g. `Bearer <JWT>`.",
    )
    fetch_timeout_s: float = Field(default=10.0, gt=0)
    source: str = Field(default=DEFAULT_SOURCE, description="The events' `source`.")
    max_body_bytes: int = Field(default=65_536, gt=0)
    hmac_key: HmacKey

    def rules(self) -> ZgwRules:
        return ZgwRules(
            key=self.hmac_key.get_secret_value().encode(),
            zaaktypen=self.zaaktypen,
            statustypen=self.statustypen,
            municipalities=self.municipalities,
            source=self.source,
        )


def zgw_router(
    settings: ZgwSettings,
    deliver: Deliver,
    authorise: Callable[..., str | Awaitable[str]],
) -> APIRouter:
    """The ZGW receiver; `authorise` is a FastAPI dependency returning the sender's audit name."""
    router = APIRouter(tags=["webhooks"])
    rules = settings.rules()
    zaken_api = str(settings.zaken_api_url).rstrip("/") + "/"
    headers = {"Accept": "application/json"}
    if settings.zaken_api_authorization is not None:
        headers["Authorization"] = settings.zaken_api_authorization.get_secret_value()

    async def fetch(url: str) -> Any:
        if not _below(url, zaken_api):
            log.warning("zgw_resource_elsewhere")
            raise Problem(
                422,
                "resource-not-trusted",
                "Resource not trusted",
                "resourceUrl is not below the configured Zaken API",
            )
        try:
            async with httpx.AsyncClient(timeout=settings.fetch_timeout_s) as client:
                response = await client.get(url, headers=headers, follow_redirects=False)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as error:
            log.error("zgw_status_fetch_failed", error=type(error).__name__)
            raise _bad_gateway("the status could not be read from the Zaken API") from error

    @router.post(
        PATH,
        status_code=204,
        response_class=Response,
        summary="A notification of the ZGW Notificaties API (kanaal zaken)",
        responses={
            204: {"description": "Received (used or deliberately ignored)"},
            400: {"description": "Not a notification"},
            401: {"description": "Missing or wrong credentials"},
            413: {"description": "Body too large"},
            422: {"description": "The status is not below the configured Zaken API"},
            502: {"description": "The Zaken API did not give the status; send it again"},
            503: {"description": "The event was not stored; send it again"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": Notification.model_json_schema(by_alias=True)}
                },
            }
        },
    )
    async def notify(request: Request, sender: Annotated[str, Depends(authorise)]) -> Response:
        body = await read_body(request, settings.max_body_bytes)
        try:
            notification = Notification.model_validate_json(body)
        except ValidationError as error:
            raise _invalid_notification(error) from None
        try:
            decision = map_notification(notification, rules)
        except ValidationError as error:
            raise _invalid_notification(error, "the event it makes: ") from None
        if isinstance(decision, FetchStatus):
            status = await fetch(decision.url)
            try:
                decision = map_status(notification, status, rules)
            except StatusUnreadable as error:
                log.error("zgw_status_unreadable")
                raise _bad_gateway(str(error)) from None
        if isinstance(decision, Ignored):
            log.info("zgw_notification_ignored", reason=decision.reason)
            return Response(status_code=204)
        await deliver_or_503(deliver, [decision], sender)
        log.info("zgw_event_delivered", type=decision.type, sender=sender)
        return Response(status_code=204)

    return router


def _below(url: str, base: str) -> bool:
    """Whether `url` names a resource below `base`: the same scheme, host and port, and
    a path under base's with no `.` or `..` segment, also percent-encoded (httpx and the
    server would resolve those, to a path that the text alone does not show)."""
    try:
        target, root = httpx.URL(url), httpx.URL(base)
    except httpx.InvalidURL:
        return False
    segments = unquote(urlsplit(url).path).split("/")
    return (
        not {".", ".."} & set(segments)
        and (target.scheme, target.host, target.port) == (root.scheme, root.host, root.port)
        and target.path.startswith(root.path)
    )


def _invalid_notification(error: ValidationError, made: str = "") -> Problem:
    """A 400: the notification's fault, not worth sending again. `made`: what was made of
    it that is invalid (the event, when its `aanmaakdatum` lies in the year 9999)."""
    first = error.errors(include_url=False, include_input=False)[0]
    return Problem(
        400,
        "invalid-notification",
        "Invalid notification",
        f"{made}{json_pointer(first['loc']) or 'the body'}: {first['msg']}",
    )


def _bad_gateway(detail: str) -> Problem:
    return Problem(
        502, "zaken-api-failed", "Zaken API failed", detail, headers={"Retry-After": "5"}
    )
