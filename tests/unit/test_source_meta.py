"""Meta's webhook payloads (fixtures after Meta's public docs) as social.* events."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from normwacht.core.events import Event, Municipality
from normwacht.core.privacy import personal_data_reason
from normwacht.sources.meta import (
    MetaConfig,
    map_payload,
    signature_valid,
    verification_challenge,
)
from services.ingest.webhooks import MetaSettings

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sources" / "meta"
KEY = b"k" * 32
WHATSAPP_NUMBER = "106540352242922"
PAGE = "104953332293541"
AUTOMATED_APP = "263902037430900"
CONFIG = MetaConfig(
    key=KEY,
    municipalities={WHATSAPP_NUMBER: Municipality.HEILOO, PAGE: Municipality.CASTRICUM},
    automated_app_ids=frozenset({AUTOMATED_APP}),
)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def events(name: str, config: MetaConfig = CONFIG) -> list[Event]:
    return map_payload(fixture(name), config).events


def strings(value: Any) -> set[str]:
    """Every string and number in a vendor payload."""
    if isinstance(value, dict):
        return set().union(*(strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(strings(v) for v in value)) if value else set()
    return {str(value)}


# --- signature and verification -------------------------------------------------------------

SECRET = b"app-secret-from-the-dashboard"
BODY = (FIXTURES / "whatsapp_text_message.json").read_bytes()


def sign(body: bytes, secret: bytes = SECRET) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def test_the_signature_of_the_raw_body_is_accepted() -> None:
    assert signature_valid(SECRET, BODY, sign(BODY))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        sign(BODY, b"another-secret"),
        sign(BODY + b" "),  # the same JSON, other bytes: the raw body is what is signed
        sign(BODY).removeprefix("sha256="),
        sign(BODY).replace("sha256=", "sha1="),
        sign(BODY)[:-2],
        sign(BODY)[:-1] + "\u00e9",
    ],
)
def test_a_missing_or_wrong_signature_is_refused(header: str | None) -> None:
    assert not signature_valid(SECRET, BODY, header)


def test_no_app_secret_accepts_nothing() -> None:
    assert not signature_valid(b"", BODY, sign(BODY, b""))


def test_the_verification_echoes_the_challenge_only_for_the_right_token() -> None:
    assert verification_challenge("subscribe", "tok", "1158201444", "tok") == "1158201444"
    assert verification_challenge("subscribe", "wrong", "1158201444", "tok") is None
    assert verification_challenge("unsubscribe", "tok", "1158201444", "tok") is None
    assert verification_challenge("subscribe", None, "1158201444", "tok") is None
    assert verification_challenge("subscribe", "tok", None, "tok") is None
    assert verification_challenge("subscribe", "", "1", "") is None


# --- WhatsApp ------------------------------------------------------------------------------


def test_a_whatsapp_message_from_a_resident_is_received() -> None:
    [event] = events("whatsapp_text_message")
    assert event.type == "nl.buch.social.received"
    assert event.data_fields() == {"platform": "whatsapp"}
    assert event.municipality == Municipality.HEILOO
    assert event.source == "urn:buch:social:meta"
    assert event.time == datetime(2026, 3, 16, 8, 0, tzinfo=UTC)
    assert event.subject.startswith("wa-")


def test_the_business_sending_a_reply_stops_the_same_conversation() -> None:
    [received] = events("whatsapp_text_message")
    [replied] = events("whatsapp_status_sent")
    assert replied.type == "nl.buch.social.replied"
    assert replied.subject == received.subject
    assert replied.time == datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
    assert replied.id != received.id


def test_delivered_and_read_statuses_are_no_second_reply() -> None:
    mapped = map_payload(fixture("whatsapp_status_delivered_read"), CONFIG)
    assert mapped.events == []


def test_a_reaction_asks_no_answer() -> None:
    mapped = map_payload(fixture("whatsapp_reaction"), CONFIG)
    assert mapped.events == []
    assert mapped.ignored == ["whatsapp message of type reaction"]


def test_a_user_without_a_phone_number_is_a_case_by_business_scoped_id() -> None:
    [phone_user] = events("whatsapp_text_message")
    [username_user] = events("whatsapp_username_user")
    assert username_user.type == "nl.buch.social.received"
    assert username_user.subject != phone_user.subject


def test_an_unconfigured_number_is_ignored_and_named_in_the_log() -> None:
    mapped = map_payload(fixture("whatsapp_unknown_number"), CONFIG)
    assert mapped.events == []
    assert mapped.ignored == ["whatsapp phone_number_id 999999999999999 is not configured"]


def test_the_same_number_in_another_municipality_map_is_another_municipality() -> None:
    config = MetaConfig(key=KEY, municipalities={WHATSAPP_NUMBER: Municipality.BERGEN})
    [event] = events("whatsapp_text_message", config)
    assert event.municipality == Municipality.BERGEN


# --- Messenger ------------------------------------------------------------------------------


def test_a_messenger_message_is_received_and_the_page_echo_replies() -> None:
    [received] = events("messenger_message")
    [replied] = events("messenger_echo")
    assert received.type == "nl.buch.social.received"
    assert received.data_fields() == {"platform": "facebook"}
    assert received.municipality == Municipality.CASTRICUM
    assert received.time == datetime(2026, 3, 16, 11, 0, tzinfo=UTC)  # milliseconds
    assert received.subject.startswith("fb-")
    assert replied.type == "nl.buch.social.replied"
    assert replied.subject == received.subject
    assert replied.data_fields() == {}


def test_an_automatic_acknowledgement_is_no_reply_and_a_read_receipt_is_nothing() -> None:
    mapped = map_payload(fixture("messenger_automated_echo_and_read"), CONFIG)
    assert mapped.events == []
    assert mapped.ignored == [f"echo of automated app {AUTOMATED_APP}"]
    without = MetaConfig(key=KEY, municipalities=CONFIG.municipalities)
    [echo] = map_payload(fixture("messenger_automated_echo_and_read"), without).events
    assert echo.type == "nl.buch.social.replied"


def test_a_conversation_is_one_page_with_one_person() -> None:
    payload = fixture("messenger_message")
    other = json.loads(json.dumps(payload))
    other["entry"][0]["messaging"][0]["sender"]["id"] = "7777777777777777"
    [first] = map_payload(payload, CONFIG).events
    [second] = map_payload(other, CONFIG).events
    assert first.subject != second.subject


# --- what is left out ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([], "not a Meta webhook payload"),
        ({"object": "page"}, "not a Meta webhook payload"),
        ({"object": "instagram", "entry": []}, "object 'instagram' is not tracked"),
        ({"object": "page", "entry": ["x"]}, "entry not understood"),
        (
            {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "flows"}]}]},
            "whatsapp change other than messages",
        ),
        (
            {"object": "page", "entry": [{"id": PAGE, "messaging": [{"sender": {}}]}]},
            "messenger item not understood",
        ),
    ],
)
def test_what_is_not_understood_is_left_out_with_a_reason(payload: Any, reason: str) -> None:
    mapped = map_payload(payload, CONFIG)
    assert mapped.events == []
    assert mapped.ignored == [reason]


def test_a_message_without_an_id_is_left_out_and_the_rest_kept() -> None:
    payload = fixture("whatsapp_text_message")
    messages = payload["entry"][0]["changes"][0]["value"]["messages"]
    messages.insert(0, {"from": "31611111111", "timestamp": "1773648000", "type": "text"})
    mapped = map_payload(payload, CONFIG)
    assert len(mapped.events) == 1
    assert mapped.ignored == ["whatsapp message not understood"]


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        ("32503680000", "social.received not valid: "),  # the year 3000: no event's time
        ("1000000000000", "social.received with a timestamp out of range"),  # no date at all
        ("99999999999999999999", "social.received with a timestamp out of range"),
    ],
)
def test_a_message_with_a_timestamp_out_of_range_is_left_out_and_the_rest_kept(
    timestamp: str, reason: str
) -> None:
    payload = fixture("whatsapp_text_message")
    messages = payload["entry"][0]["changes"][0]["value"]["messages"]
    messages.insert(0, {**messages[0], "id": "wamid.other", "timestamp": timestamp})
    mapped = map_payload(payload, CONFIG)
    assert mapped.events == events("whatsapp_text_message")
    (ignored,) = mapped.ignored
    assert ignored.startswith(reason)


def test_a_messenger_timestamp_out_of_range_is_left_out() -> None:
    payload = fixture("messenger_message")
    payload["entry"][0]["messaging"][0]["timestamp"] = 10**400  # milliseconds: no float
    mapped = map_payload(json.loads(json.dumps(payload)), CONFIG)
    assert mapped.events == []
    assert mapped.ignored == ["social.received with a timestamp out of range"]


# --- privacy and identity --------------------------------------------------------------------

ALL = sorted(path.stem for path in FIXTURES.glob("*.json"))


@pytest.mark.parametrize("name", ALL)
def test_nothing_of_the_payload_is_passed_on(name: str) -> None:
    payload = fixture(name)
    sent = " ".join(e.model_dump_json() for e in map_payload(payload, CONFIG).events)
    leaked = {v for v in strings(payload) if len(v) >= 6 and v in sent} - {"whatsapp"}
    assert leaked == set()
    for event in map_payload(payload, CONFIG).events:
        assert personal_data_reason(event.subject) is None
        assert personal_data_reason(event.id) is None


def test_every_fixture_holds_something_that_must_not_pass() -> None:
    """The privacy test above must have something to find."""
    values = set().union(*(strings(fixture(name)) for name in ALL))
    assert {"31612345678", "Jan Jansen", "6543217890123456", "NL.1502576394655843"} <= values


def test_ids_are_the_same_for_the_same_delivery_and_keyed() -> None:
    assert events("whatsapp_text_message") == events("whatsapp_text_message")
    other_key = MetaConfig(key=b"o" * 32, municipalities=CONFIG.municipalities)
    [mine] = events("whatsapp_text_message")
    [theirs] = events("whatsapp_text_message", other_key)
    assert (mine.id, mine.subject) != (theirs.id, theirs.subject)


# --- settings --------------------------------------------------------------------------------


def test_settings_come_from_the_environment_with_the_shared_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NORMWACHT_META_APP_SECRET", "s")
    monkeypatch.setenv("NORMWACHT_META_VERIFY_TOKEN", "t")
    monkeypatch.setenv("NORMWACHT_META_MUNICIPALITIES", json.dumps({PAGE: "uitgeest"}))
    monkeypatch.setenv("NORMWACHT_META_AUTOMATED_APP_IDS", json.dumps([AUTOMATED_APP]))
    monkeypatch.setenv("NORMWACHT_SOURCE_HMAC_KEY", "x" * 32)
    config = MetaSettings().config()
    assert config.key == b"x" * 32
    assert config.municipalities == {PAGE: Municipality.UITGEEST}
    assert config.automated_app_ids == {AUTOMATED_APP}
    monkeypatch.setenv("NORMWACHT_SOURCE_HMAC_KEY", "x" * 31)
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        MetaSettings()
    monkeypatch.delenv("NORMWACHT_SOURCE_HMAC_KEY")
    with pytest.raises(ValidationError, match="hmac_key"):
        MetaSettings()
