"""Copies of a mail thread to email.* events: the thread is the case, nothing personal passes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from normwacht.core.events import Municipality
from normwacht.sources.common import Pseudonyms
from normwacht.sources.mail import MailMapping, MailResult, map_message
from tests.support.sources import FIXTURES, KEY, personal_values_in

MAPPING = MailMapping(
    Pseudonyms(KEY, "urn:buch:kcc:email"),
    {"info@heiloo.nl": Municipality.HEILOO, "info@bergen.nl": Municipality.BERGEN},
)


def message(name: str) -> EmailMessage:
    raw = (FIXTURES / "email" / name).read_bytes()
    parsed: EmailMessage = BytesParser(policy=policy.default).parsebytes(raw)
    return parsed


def arrival(parsed: EmailMessage) -> datetime:
    """When the copy came in: a few seconds after its Date."""
    return datetime.fromisoformat(parsed["Date"].datetime.isoformat()) + timedelta(seconds=3)


def replay(names: list[str]) -> list[MailResult]:
    """Map the copies in order, keeping the thread map as the shell does."""
    threads: dict[str, str] = {}
    results = []
    for name in names:
        parsed = message(name)
        result = map_message(parsed, arrival(parsed), MAPPING, threads.get)
        threads.update(result.threads)
        results.append(result)
    return results


def no_thread(_: str) -> str | None:
    return None


THREAD = [
    "1-inbound.eml",
    "2-acknowledgement.eml",
    "3-resident-follow-up.eml",
    "4-answer.eml",
    "5-resident-vacation-reply.eml",
    "6-newsletter.eml",
    "7-inbound-bergen.eml",
]


def test_a_thread_gives_received_acknowledged_answered_on_one_case() -> None:
    results = replay(THREAD)
    assert [r.reason for r in results] == [
        "received",
        "acknowledged",
        "follow_up",
        "answered",
        "ignored_auto_submitted",
        "ignored_unknown_thread",
        "received",
    ]
    received, acknowledged, _, answered = (r.event for r in results[:4])
    assert received is not None
    assert acknowledged is not None
    assert answered is not None
    assert received.subject == acknowledged.subject == answered.subject
    assert received.subject.startswith("mail-")
    assert [e.type for e in (received, acknowledged, answered)] == [
        "nl.buch.email.received",
        "nl.buch.email.acknowledged",
        "nl.buch.email.answered",
    ]
    assert received.municipality is answered.municipality is Municipality.HEILOO
    assert received.time == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert answered.time == datetime(2026, 11, 25, 13, 30, tzinfo=UTC)


def test_the_mailbox_decides_the_municipality_in_any_case_and_on_cc() -> None:
    results = replay(THREAD)
    bergen, heiloo = results[-1].event, results[0].event
    assert bergen is not None
    assert heiloo is not None
    assert bergen.municipality is Municipality.BERGEN
    assert bergen.subject != heiloo.subject


def test_a_copy_delivered_again_gives_the_same_ids() -> None:
    first = [r.event for r in replay(THREAD)]
    second = [r.event for r in replay(THREAD + THREAD)]
    # A redelivered copy gives the very same event (ingest's consumers drop it by id).
    assert second == first + first
    ids = [e.id for e in first if e is not None]
    assert len(set(ids)) == len(ids) == 4


def test_an_acknowledgement_copied_before_its_mail_still_finds_the_case() -> None:
    ack_first = replay(["2-acknowledgement.eml", "1-inbound.eml"])
    in_order = replay(["1-inbound.eml", "2-acknowledgement.eml"])
    assert [r.event for r in ack_first] == [r.event for r in in_order[::-1]]


def test_replies_outside_a_known_thread_and_mails_without_an_id_start_nothing() -> None:
    [answer] = replay(["4-answer.eml"])
    assert (answer.event, answer.reason) == (None, "ignored_unknown_thread")
    no_id = message("1-inbound.eml")
    del no_id["Message-ID"]
    result = map_message(no_id, arrival(no_id), MAPPING, no_thread)
    assert (result.event, result.reason) == (None, "ignored_no_message_id")
    elsewhere = message("1-inbound.eml")
    del elsewhere["To"]
    elsewhere["To"] = "someone@example.com"
    result = map_message(elsewhere, arrival(elsewhere), MAPPING, no_thread)
    assert (result.event, result.reason) == (None, "ignored_not_for_a_mailbox")


def test_a_date_far_from_the_arrival_is_a_wrong_clock() -> None:
    parsed = message("1-inbound.eml")
    came_in = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    event = map_message(parsed, came_in, MAPPING, no_thread).event
    assert event is not None
    assert event.time == came_in
    del parsed["Date"]
    event = map_message(parsed, came_in, MAPPING, no_thread).event
    assert event is not None
    assert event.time == came_in


def test_no_address_name_subject_or_text_passes_nor_is_kept() -> None:
    results = replay(THREAD)
    events = [r.event.model_dump(mode="json") for r in results if r.event is not None]
    kept = [pair for r in results for pair in r.threads]
    # Every message of the two threads, none of the others; and for each mail that came
    # in (two, and a follow-up), its thread's mark and its writer.
    assert len([key for key, _ in kept if key.startswith("msg-")]) == 5
    assert len([key for key, _ in kept if key.startswith("who-")]) == 6
    assert personal_values_in(json.dumps([events, kept]), "email") == []
    assert all(isinstance(e, dict) and "data" in e and e["data"] == {} for e in events)


def forward(message_id: str, to: str, cc: str | None = None) -> EmailMessage:
    """The mailbox sends the resident's mail on, in the thread (as Outlook's forward)."""
    sent = message("4-answer.eml")
    for header in ("To", "Message-ID"):
        del sent[header]
    sent["To"] = to
    if cc is not None:
        sent["Cc"] = cc
    sent["Message-ID"] = f"<{message_id}@heiloo.nl>"
    return sent


def replay_with(extra: list[EmailMessage]) -> tuple[list[MailResult], dict[str, str]]:
    """The thread's first three copies, then `extra`, keeping the thread map."""
    threads: dict[str, str] = {}
    results = []
    copies = [message(n) for n in THREAD[:3]] + extra
    for parsed in copies:
        result = map_message(parsed, arrival(parsed), MAPPING, threads.get)
        threads.update(result.threads)
        results.append(result)
    return results, threads


def test_a_mail_sent_on_to_others_is_no_answer_and_a_reply_to_the_resident_is() -> None:
    colleague = forward("fw-1", "Wegbeheer <wegen@heiloo.nl>")
    contractor = forward("fw-2", "Aannemer <planning@example.com>")
    answer = message("4-answer.eml")  # to the resident, who wrote in
    results, threads = replay_with([colleague, contractor, answer])
    assert [r.reason for r in results[3:]] == ["forwarded", "forwarded", "answered"]
    assert [r.event for r in results[3:5]] == [None, None]
    # The forwards joined the thread: a reply to one of them is still of this case.
    case = results[0].event.subject if results[0].event else None
    assert threads[MAPPING.message_key("fw-1@heiloo.nl")] == case
    copied = forward("fw-3", "Wegbeheer <wegen@heiloo.nl>", cc="Jan <JAN.JANSEN@example.nl>")
    [*_, with_the_resident] = replay_with([copied])[0]
    assert with_the_resident.reason == "answered"


def test_a_thread_begun_before_its_writers_were_kept_counts_every_reply() -> None:
    _, threads = replay_with([])
    legacy = {key: case for key, case in threads.items() if not key.startswith("who-")}
    sent_on = forward("fw-4", "Wegbeheer <wegen@heiloo.nl>")
    result = map_message(sent_on, arrival(sent_on), MAPPING, legacy.get)
    assert result.reason == "answered"


@pytest.mark.parametrize(
    "sender",
    [
        "Jan <jan.jansen@example.nl>, Gemeente Heiloo <info@heiloo.nl>",  # two authors
        "jan.jansen@example.nl)<info@heiloo.nl>",  # CVE-2023-27043's confusion
    ],
)
def test_a_residents_follow_up_naming_the_mailbox_as_author_is_no_answer(sender: str) -> None:
    follow_up = message("3-resident-follow-up.eml")
    del follow_up["From"]
    follow_up["From"] = sender
    threads: dict[str, str] = {}
    first = message("1-inbound.eml")
    threads.update(map_message(first, arrival(first), MAPPING, threads.get).threads)
    result = map_message(follow_up, arrival(follow_up), MAPPING, threads.get)
    assert result.event is None or result.event.type != "nl.buch.email.answered"
    assert result.reason in {"follow_up", "ignored_not_for_a_mailbox"}
