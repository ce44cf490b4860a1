"""VNG ZGW Notificaties API notifications as `complaint.*` and `objection.*` events; pure.

The case system (a ZGW Zaken API such as Open Zaak) notifies on the `zaken` channel
when a zaak is created and when a status is set on it. Configuration says which
zaaktypen are complaints or objections, what setting a status of a statustype means,
and which bronorganisatie (RSIN) is which municipality. A status notification does not
name its statustype, so the shell fetches the status resource and hands it to
`map_status`.

The zaak's URL (`hoofdObject`) is the case, as a keyed pseudonym; the RSIN, the zaak and
status URLs and everything else in the notification stay here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from normwacht.core.events import EVENT_MODELS, TYPE_PREFIX, Event, Municipality, parse_event
from normwacht.core.privacy import pseudonym

__all__ = [
    "FetchStatus",
    "Ignored",
    "Kind",
    "Notification",
    "StatusRule",
    "StatusUnreadable",
    "ZgwRules",
    "map_notification",
    "map_status",
]

Kind = Literal["complaint", "objection"]
DEFAULT_SOURCE = "urn:buch:zgw:zaken"
_CODE = re.compile(r"[a-z_]{1,40}")


class StatusRule(BaseModel):
    """What setting a status of one statustype means: an event type and its `data`.

    Written as `"complaint.answered"`, or `{"type": "complaint.contacted", "data": {"by":
    "phone"}}` for a type whose data is required. Checked when the configuration is read,
    so a mistake stops the service instead of refusing notifications later.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    data: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: object) -> object:
        rule = {"type": value} if isinstance(value, str) else value
        if isinstance(rule, dict) and isinstance(rule.get("type"), str):
            rule = {**rule, "type": rule["type"].removeprefix(TYPE_PREFIX)}
        return rule

    @model_validator(mode="after")
    def _an_event_we_know(self) -> StatusRule:
        if self.kind not in ("complaint", "objection", "case"):
            raise ValueError(
                f"{self.type}: a status can only mean a complaint.*, objection.* or case.* event"
            )
        model = EVENT_MODELS.get(TYPE_PREFIX + self.type)
        if model is None:
            raise ValueError(f"{self.type} is not an event type")
        try:
            model.model_validate(_sample(TYPE_PREFIX + self.type, self.data))
        except ValidationError as error:
            raise ValueError(f"{self.type}: invalid data: {error.errors()[0]['msg']}") from None
        return self

    @property
    def kind(self) -> str:
        return self.type.split(".")[0]


def _sample(event_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "configuration-check",
        "source": DEFAULT_SOURCE,
        "type": event_type,
        "time": "2026-01-01T00:00:00+00:00",
        "subject": "CONFIGURATION-CHECK",
        "municipality": Municipality.BERGEN.value,
        "data": dict(data),
    }


@dataclass(frozen=True)
class ZgwRules:
    key: bytes
    zaaktypen: Mapping[str, Kind]
    """Zaaktype URL (Catalogi API) -> complaint or objection."""
    statustypen: Mapping[str, StatusRule]
    """Statustype URL (Catalogi API) -> the event that status means."""
    municipalities: Mapping[str, Municipality]
    """Bronorganisatie (RSIN) -> municipality."""
    source: str = DEFAULT_SOURCE


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Notification(_Loose):
    """The body the Notificaties API posts (version 1.0)."""

    kanaal: str
    hoofd_object: str = Field(alias="hoofdObject")
    resource: str
    resource_url: str = Field(alias="resourceUrl")
    actie: str
    aanmaakdatum: datetime
    kenmerken: dict[str, Any] = Field(default_factory=dict)


class _Status(_Loose):
    """The part of a Zaken API status resource we read."""

    statustype: str
    datum_status_gezet: datetime = Field(alias="datumStatusGezet")


@dataclass(frozen=True)
class Ignored:
    reason: str
    """For the log: never a personal value (no URL of a zaak, no RSIN)."""


@dataclass(frozen=True)
class FetchStatus:
    """The status's statustype decides: GET `url` and pass the resource to `map_status`."""

    url: str


class StatusUnreadable(ValueError):
    """The fetched status resource lacks a statustype or a valid `datumStatusGezet` (one an
    event may carry: in the years 1900-2999)."""


def map_notification(notification: Notification, rules: ZgwRules) -> Event | Ignored | FetchStatus:
    """A created zaak of a configured zaaktype is received; a status needs its resource."""
    context = _context(notification, rules)
    if isinstance(context, Ignored):
        return context
    kind, municipality = context
    what = (notification.resource, notification.actie)
    if what == ("zaak", "create"):
        return _event(
            rules,
            notification,
            f"{kind}.received",
            event_id=pseudonym(
                rules.key, "zgw:zaak-created", notification.resource_url, prefix="zgw-"
            ),
            at=notification.aanmaakdatum,
            municipality=municipality,
            data={},
        )
    if what == ("status", "create"):
        return FetchStatus(notification.resource_url)
    return Ignored(f"{_code(notification.resource)} {_code(notification.actie)} is not tracked")


def map_status(notification: Notification, status: object, rules: ZgwRules) -> Event | Ignored:
    """The event a status means, by its statustype; raises StatusUnreadable."""
    context = _context(notification, rules)
    if isinstance(context, Ignored):
        return context
    kind, municipality = context
    try:
        resource = _Status.model_validate(status)
    except ValidationError:
        raise StatusUnreadable("no statustype or datumStatusGezet in the status") from None
    rule = rules.statustypen.get(resource.statustype)
    if rule is None:
        return Ignored("statustype is not configured")
    if rule.kind not in (kind, "case"):
        return Ignored(f"statustype means {rule.type}, but the zaaktype is a {kind}")
    try:
        return _event(
            rules,
            notification,
            rule.type,
            event_id=pseudonym(rules.key, "zgw:status", notification.resource_url, prefix="zgw-"),
            at=resource.datum_status_gezet,
            municipality=municipality,
            data=rule.data,
        )
    except ValidationError:  # what the status adds to the event is its time
        raise StatusUnreadable("the status's datumStatusGezet is no event's time") from None


def _context(notification: Notification, rules: ZgwRules) -> tuple[Kind, Municipality] | Ignored:
    if notification.kanaal != "zaken":
        return Ignored(f"kanaal {_code(notification.kanaal)} is not tracked")
    kind = rules.zaaktypen.get(str(notification.kenmerken.get("zaaktype", "")))
    if kind is None:
        return Ignored("zaaktype is not configured")
    municipality = rules.municipalities.get(str(notification.kenmerken.get("bronorganisatie", "")))
    if municipality is None:
        return Ignored("bronorganisatie is not configured")
    return kind, municipality


def _code(value: str) -> str:
    """A vendor code fit for a log line; anything else (it could be anything) is not shown."""
    return value if _CODE.fullmatch(value) else "(other)"


def _event(
    rules: ZgwRules,
    notification: Notification,
    short_type: str,
    *,
    event_id: str,
    at: datetime,
    municipality: Municipality,
    data: Mapping[str, Any],
) -> Event:
    if at.tzinfo is None:  # the ZGW APIs speak UTC; a naive time is read as such
        at = at.replace(tzinfo=UTC)
    return parse_event(
        json.dumps(
            {
                "specversion": "1.0",
                "id": event_id,
                "source": rules.source,
                "type": TYPE_PREFIX + short_type,
                "time": at.isoformat(),
                # The zaak is the case; one URL, with or without its trailing slash.
                "subject": pseudonym(
                    rules.key, "zgw:zaak", notification.hoofd_object.rstrip("/"), prefix="zgw-"
                ),
                "municipality": municipality.value,
                "data": dict(data),
            }
        )
    )
