"""ZGW Notificaties API notifications (fixtures after the VNG specs) as case events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from normwacht.core.events import Event, Municipality
from normwacht.core.privacy import personal_data_reason
from normwacht.sources.zgw import (
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
from services.ingest.webhooks import ZgwSettings

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sources" / "zgw"
KEY = b"k" * 32
RSIN = "001234511"
ZAAKTYPE = (
    "https://catalogi.example.nl/catalogi/api/v1/zaaktypen/0b8f4b6e-2a51-4a70-9d9a-5c0a3f2e7d01"
)
CONTACTED = (
    "https://catalogi.example.nl/catalogi/api/v1/statustypen/5f2a9c7e-1b3d-4e6f-8a0b-c2d4e6f8a0b1"
)
STATUS_URL = "https://zaken.example.nl/zaken/api/v1/statussen/9c1d7e2f-4a3b-4c5d-8e6f-7a8b9c0d1e2f"


PHONE_CONTACT = {"type": "complaint.contacted", "data": {"by": "phone"}}


def rules(kind: Kind = "complaint", statustypen: dict[str, Any] | None = None) -> ZgwRules:
    configured = {CONTACTED: PHONE_CONTACT} if statustypen is None else statustypen
    return ZgwRules(
        key=KEY,
        zaaktypen={ZAAKTYPE: kind},
        statustypen={url: StatusRule.model_validate(rule) for url, rule in configured.items()},
        municipalities={RSIN: Municipality.BERGEN},
    )


def raw(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def notification(name: str, **changes: Any) -> Notification:
    return Notification.model_validate({**raw(name), **changes})


def event(decision: object) -> Event:
    assert isinstance(decision, Event), decision
    return decision


def test_a_created_complaint_zaak_is_a_received_complaint() -> None:
    received = event(map_notification(notification("zaak_created"), rules()))
    assert received.type == "nl.buch.complaint.received"
    assert received.municipality == Municipality.BERGEN
    assert received.time == datetime(2026, 3, 16, 9, 12, 44, 123456, tzinfo=UTC)
    assert received.source == "urn:buch:zgw:zaken"
    assert received.subject.startswith("zgw-")
    assert received.data_fields() == {}


def test_a_created_objection_zaak_is_a_received_objection() -> None:
    received = event(map_notification(notification("zaak_created"), rules("objection")))
    assert received.type == "nl.buch.objection.received"
    assert received.data_fields() == {"advisory_committee": False}


def test_a_status_needs_its_statustype_from_the_zaken_api() -> None:
    assert map_notification(notification("status_created"), rules()) == FetchStatus(STATUS_URL)


def test_a_configured_statustype_is_its_event_on_the_same_case() -> None:
    received = event(map_notification(notification("zaak_created"), rules()))
    contacted = event(map_status(notification("status_created"), raw("status"), rules()))
    assert contacted.type == "nl.buch.complaint.contacted"
    assert contacted.data_fields() == {"by": "phone"}
    assert contacted.time == datetime(2026, 3, 17, 13, 45, tzinfo=UTC)  # datumStatusGezet
    assert contacted.subject == received.subject
    assert contacted.id != received.id


def test_a_pause_applies_to_either_kind() -> None:
    pause = {"type": "case.paused", "data": {"reason": "waiting_for_resident"}}
    decided = map_status(
        notification("status_created"), raw("status"), rules("objection", {CONTACTED: pause})
    )
    assert event(decided).type == "nl.buch.case.paused"


def status_with(configured: ZgwRules, **changes: Any) -> object:
    return map_status(notification("status_created", **changes), raw("status"), configured)


def created_with(**changes: Any) -> object:
    return map_notification(notification("zaak_created", **changes), rules())


OTHER_RSIN = "002564440"


@pytest.mark.parametrize(
    ("decision", "reason"),
    [
        (
            lambda: status_with(rules(statustypen={"https://x/other": "complaint.answered"})),
            "statustype is not configured",
        ),
        (
            lambda: status_with(rules("objection")),
            "statustype means complaint.contacted, but the zaaktype is a objection",
        ),
        (
            lambda: map_notification(notification("zaak_updated"), rules()),
            "zaak partial_update is not tracked",
        ),
        (
            lambda: map_notification(notification("test_notification"), rules()),
            "kanaal test is not tracked",
        ),
        (lambda: created_with(kanaal="Jan Jansen"), "kanaal (other) is not tracked"),
        (
            lambda: created_with(kenmerken={"bronorganisatie": RSIN}),
            "zaaktype is not configured",
        ),
        (
            lambda: created_with(kenmerken={"zaaktype": ZAAKTYPE, "bronorganisatie": OTHER_RSIN}),
            "bronorganisatie is not configured",
        ),
        (
            lambda: status_with(rules(), kenmerken={"bronorganisatie": RSIN}),
            "zaaktype is not configured",
        ),
    ],
)
def test_what_is_not_configured_is_ignored_with_a_reason(decision: Any, reason: str) -> None:
    assert decision() == Ignored(reason)


@pytest.mark.parametrize(
    "status",
    [{}, {"statustype": CONTACTED}, {"statustype": CONTACTED, "datumStatusGezet": "gisteren"}, []],
)
def test_a_status_resource_without_its_type_or_time_is_unreadable(status: Any) -> None:
    with pytest.raises(StatusUnreadable):
        map_status(notification("status_created"), status, rules())


def test_a_naive_time_is_utc() -> None:
    naive = {**raw("status"), "datumStatusGezet": "2026-03-17T13:45:00"}
    contacted = event(map_status(notification("status_created"), naive, rules()))
    assert contacted.time == datetime(2026, 3, 17, 13, 45, tzinfo=UTC)


def test_the_zaak_url_with_or_without_its_slash_is_one_case() -> None:
    plain = event(map_notification(notification("zaak_created"), rules()))
    hoofd = raw("zaak_created")["hoofdObject"] + "/"
    slashed = event(map_notification(notification("zaak_created", hoofdObject=hoofd), rules()))
    assert plain.subject == slashed.subject


# --- the configured status rules -------------------------------------------------------------


def test_a_rule_is_a_type_or_a_type_with_data() -> None:
    assert StatusRule.model_validate("complaint.answered") == StatusRule(type="complaint.answered")
    assert StatusRule.model_validate("nl.buch.objection.decided").type == "objection.decided"
    rule = StatusRule.model_validate({"type": "complaint.contacted", "data": {"by": "letter"}})
    assert rule.data == {"by": "letter"}


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("complaint.contacted", "invalid data"),  # `by` is required
        ({"type": "complaint.contacted", "data": {"by": "pigeon"}}, "invalid data"),
        ({"type": "complaint.answered", "data": {"note": "x"}}, "invalid data"),
        ("complaint.reopened", "is not an event type"),
        ("email.answered", "can only mean"),
        ({"type": "objection.decided", "extra": 1}, "Extra inputs"),
    ],
)
def test_a_wrong_rule_is_refused_when_configured(rule: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        StatusRule.model_validate(rule)


def test_settings_read_the_maps_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NORMWACHT_ZGW_ZAAKTYPEN", json.dumps({ZAAKTYPE: "objection"}))
    monkeypatch.setenv("NORMWACHT_ZGW_STATUSTYPEN", json.dumps({CONTACTED: "objection.decided"}))
    monkeypatch.setenv("NORMWACHT_ZGW_MUNICIPALITIES", json.dumps({RSIN: "heiloo"}))
    monkeypatch.setenv("NORMWACHT_ZGW_ZAKEN_API_URL", "https://zaken.example.nl/zaken/api/v1")
    monkeypatch.setenv("NORMWACHT_SOURCE_HMAC_KEY", "z" * 32)
    configured = ZgwSettings().rules()
    assert configured.zaaktypen == {ZAAKTYPE: "objection"}
    assert configured.statustypen[CONTACTED].type == "objection.decided"
    assert configured.municipalities == {RSIN: Municipality.HEILOO}
    monkeypatch.setenv("NORMWACHT_ZGW_STATUSTYPEN", json.dumps({CONTACTED: "objection.nope"}))
    with pytest.raises(ValidationError, match="not an event type"):
        ZgwSettings()


# --- privacy and identity --------------------------------------------------------------------


def test_no_url_rsin_or_status_text_is_passed_on() -> None:
    sent = " ".join(
        e.model_dump_json()
        for e in (
            event(map_notification(notification("zaak_created"), rules())),
            event(map_status(notification("status_created"), raw("status"), rules())),
        )
    )
    times = ("aanmaakdatum", "datumStatusGezet")  # when it happened is what we pass on
    for fixture in ("zaak_created", "status_created", "status"):
        for name, value in raw(fixture).items():
            if name in times:
                continue
            for part in value.values() if isinstance(value, dict) else [value]:
                if len(str(part)) >= 6:
                    assert str(part) not in sent, name
    assert "3e0c2a6b" not in sent  # not even the zaak's uuid
    assert RSIN not in sent


def test_ids_are_deterministic_opaque_and_keyed() -> None:
    first = event(map_status(notification("status_created"), raw("status"), rules()))
    again = event(map_status(notification("status_created"), raw("status"), rules()))
    assert first == again
    assert personal_data_reason(first.id) is None
    assert personal_data_reason(first.subject) is None
    other = ZgwRules(
        key=b"o" * 32,
        zaaktypen={ZAAKTYPE: "complaint"},
        statustypen=rules().statustypen,
        municipalities={RSIN: Municipality.BERGEN},
    )
    theirs = event(map_status(notification("status_created"), raw("status"), other))
    assert (theirs.id, theirs.subject) != (first.id, first.subject)
