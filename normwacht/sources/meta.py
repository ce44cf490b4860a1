"""Meta's webhooks (WhatsApp Cloud API, Messenger) as `social.*` events; pure, no I/O.

A conversation between a municipality's WhatsApp number or Facebook page and one person
is a case: a message from the person starts the answer clock (`social.received`), the
business's reply stops it (`social.replied`: a WhatsApp `sent` status, a Messenger echo).

Meta's payloads are full of personal data: phone numbers (`from`, `wa_id`,
`recipient_id`), profile names, message text, and WhatsApp message ids that encode the
phone number. None of it is passed on: the case and the event ids are keyed pseudonyms
of those ids, and only the platform and the time go into the event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from normwacht.core.events import TYPE_PREFIX, Event, Municipality, parse_event
from normwacht.core.privacy import pseudonym

__all__ = [
    "SIGNATURE_HEADER",
    "Mapped",
    "MetaConfig",
    "map_payload",
    "signature_valid",
    "verification_challenge",
]

SIGNATURE_HEADER = "X-Hub-Signature-256"
DEFAULT_SOURCE = "urn:buch:social:meta"

# WhatsApp message types that ask nothing of the municipality: a reaction to a message,
# a notice that the user changed numbers, a request for a welcome message.
_NOT_A_QUESTION = frozenset({"reaction", "system", "request_welcome"})


def signature_valid(app_secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether `header` is `sha256=<hex HMAC-SHA256 of the raw body under the app secret>`.

    Compared in constant time, so a forger learns nothing from how long a refusal takes.
    """
    if not header or not app_secret:
        return False
    expected = "sha256=" + hmac.new(app_secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode("utf-8", "replace"))


def verification_challenge(
    mode: str | None, token: str | None, challenge: str | None, verify_token: str
) -> str | None:
    """The challenge to echo when Meta verifies the endpoint, or None to refuse."""
    if mode != "subscribe" or token is None or not challenge or not verify_token:
        return None
    if not hmac.compare_digest(token.encode("utf-8", "replace"), verify_token.encode()):
        return None
    return challenge


@dataclass(frozen=True)
class MetaConfig:
    """What the mapping needs: the pseudonym key and whose number or page is whose."""

    key: bytes
    municipalities: Mapping[str, Municipality]
    """WhatsApp `phone_number_id` or Facebook page id -> municipality."""
    source: str = DEFAULT_SOURCE
    automated_app_ids: frozenset[str] = frozenset()
    """Messenger echoes sent by these apps (a chatbot's automatic acknowledgement) are
    not replies: they must not stop the clock."""


@dataclass(frozen=True)
class Mapped:
    events: list[Event] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    """Why items were left out, for the log: never a personal value."""


class _Loose(BaseModel):
    """Meta's objects carry far more than we read; only what is named here is kept."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class _WaMessage(_Loose):
    sender: str | None = Field(default=None, alias="from")
    sender_user_id: str | None = Field(default=None, alias="from_user_id")
    id: str
    timestamp: int
    type: str = "text"


class _WaStatus(_Loose):
    id: str
    status: str
    timestamp: int
    recipient_id: str | None = None
    recipient_user_id: str | None = None


class _WaMetadata(_Loose):
    phone_number_id: str


class _WaValue(_Loose):
    metadata: _WaMetadata
    messages: list[dict[str, Any]] = []
    statuses: list[dict[str, Any]] = []


class _WaChange(_Loose):
    field: str
    value: dict[str, Any]


class _Party(_Loose):
    id: str


class _FbMessage(_Loose):
    mid: str
    is_echo: bool = False
    app_id: int | str | None = None


class _FbMessaging(_Loose):
    sender: _Party
    recipient: _Party
    timestamp: int
    message: _FbMessage | None = None


class _Entry(_Loose):
    id: str = ""
    changes: list[dict[str, Any]] = []
    messaging: list[dict[str, Any]] = []


class _Payload(_Loose):
    object: str
    entry: list[Any]


_M = TypeVar("_M", bound=_Loose)


def _read(model: type[_M], raw: object) -> _M | None:
    try:
        return model.model_validate(raw)
    except ValidationError:  # its message may quote personal values: never logged
        return None


def map_payload(payload: object, config: MetaConfig) -> Mapped:
    """The events in one webhook delivery; what is left out is listed with why."""
    result = Mapped()
    body = _read(_Payload, payload)
    if body is None:
        result.ignored.append("not a Meta webhook payload")
        return result
    if body.object not in ("whatsapp_business_account", "page"):
        result.ignored.append(f"object {body.object!r} is not tracked")
        return result
    for raw_entry in body.entry:
        entry = _read(_Entry, raw_entry)
        if entry is None:
            result.ignored.append("entry not understood")
        elif body.object == "whatsapp_business_account":
            _whatsapp(entry, config, result)
        else:
            _messenger(entry, config, result)
    return result


def _whatsapp(entry: _Entry, config: MetaConfig, result: Mapped) -> None:
    for raw_change in entry.changes:
        change = _read(_WaChange, raw_change)
        if change is None or change.field != "messages":
            result.ignored.append("whatsapp change other than messages")
            continue
        value = _read(_WaValue, change.value)
        if value is None:
            result.ignored.append("whatsapp messages value not understood")
            continue
        number = value.metadata.phone_number_id
        municipality = config.municipalities.get(number)
        if municipality is None:
            result.ignored.append(f"whatsapp phone_number_id {number} is not configured")
            continue
        for raw in value.messages:
            message = _read(_WaMessage, raw)
            # The phone number while Meta sends it, else the business-scoped user id.
            user = (message.sender or message.sender_user_id) if message else None
            if message is None or not user:
                result.ignored.append("whatsapp message not understood")
            elif message.type in _NOT_A_QUESTION:
                result.ignored.append(f"whatsapp message of type {message.type}")
            else:
                _event(
                    result,
                    config,
                    "social.received",
                    event_id=pseudonym(config.key, "meta:whatsapp:message", message.id),
                    subject=_whatsapp_case(config, number, user),
                    at=message.timestamp,
                    municipality=municipality,
                    data={"platform": "whatsapp"},
                )
        for raw in value.statuses:
            status = _read(_WaStatus, raw)
            user = (status.recipient_id or status.recipient_user_id) if status else None
            if status is None or not user:
                result.ignored.append("whatsapp status not understood")
            elif status.status != "sent":
                continue  # delivered, read, failed: the reply was already counted when sent
            else:
                _event(
                    result,
                    config,
                    "social.replied",
                    event_id=pseudonym(config.key, "meta:whatsapp:sent", status.id),
                    subject=_whatsapp_case(config, number, user),
                    at=status.timestamp,
                    municipality=municipality,
                )


def _messenger(entry: _Entry, config: MetaConfig, result: Mapped) -> None:
    page = entry.id
    municipality = config.municipalities.get(page)
    if municipality is None:
        result.ignored.append(f"facebook page {page} is not configured")
        return
    for raw in entry.messaging:
        item = _read(_FbMessaging, raw)
        if item is None:
            result.ignored.append("messenger item not understood")
            continue
        message = item.message
        if message is None:
            continue  # deliveries, reads, postbacks, reactions: no message to answer
        if message.is_echo:
            if str(message.app_id) in config.automated_app_ids:
                result.ignored.append(f"echo of automated app {message.app_id}")
                continue
            kind, person, namespace = "social.replied", item.recipient.id, "meta:messenger:echo"
        else:
            kind, person, namespace = "social.received", item.sender.id, "meta:messenger:message"
        _event(
            result,
            config,
            kind,
            event_id=pseudonym(config.key, namespace, message.mid),
            subject=pseudonym(
                config.key, "meta:messenger:conversation", f"{page}\x00{person}", prefix="fb-"
            ),
            at=item.timestamp,
            per_second=1000,  # Messenger counts milliseconds
            municipality=municipality,
            data={"platform": "facebook"} if kind == "social.received" else None,
        )


def _whatsapp_case(config: MetaConfig, phone_number_id: str, user: str) -> str:
    return pseudonym(
        config.key, "meta:whatsapp:conversation", f"{phone_number_id}\x00{user}", prefix="wa-"
    )


def _event(
    result: Mapped,
    config: MetaConfig,
    kind: str,
    *,
    event_id: str,
    subject: str,
    at: float,
    municipality: Municipality,
    data: dict[str, Any] | None = None,
    per_second: int = 1,
) -> None:
    """Add the event to `result`, or why it cannot be one: one item's timestamp out of
    range must not refuse the delivery's other items (Meta would resend them for days)."""
    try:
        time = datetime.fromtimestamp(at / per_second, UTC).isoformat()
    except (ValueError, OverflowError, OSError):
        result.ignored.append(f"{kind} with a timestamp out of range")
        return
    raw: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": config.source,
        "type": TYPE_PREFIX + kind,
        "time": time,
        "subject": subject,
        "municipality": municipality.value,
    }
    if data is not None:
        raw["data"] = data
    try:
        result.events.append(parse_event(json.dumps(raw)))
    except ValidationError as error:
        result.ignored.append(f"{kind} not valid: {error.errors(include_url=False)[0]['msg']}")
