"""Copies of the general mailbox's traffic to `email.*` events.

The thread is the case: its id is a pseudonym of the thread root's Message-ID. Which
message belongs to which thread is kept as a small map from a keyed hash of each
Message-ID to the thread's case id, so no address, subject line or body is ever kept
or passed on: only header fields that say who (one of the municipality's own
mailboxes or not), when, and how messages refer to each other are read.

- A mail from outside to a configured mailbox that refers to no known thread starts one:
  `email.received`. A resident's reply in a known thread starts no new clock.
- The automatic acknowledgement (`Auto-Submitted: auto-replied`, RFC 3834) sent from a
  mailbox: `email.acknowledged`.
- Any other mail sent from a mailbox in a known thread: `email.answered`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

from normwacht.core.events import Event, Municipality
from normwacht.sources.common import Pseudonyms, build_event

__all__ = ["MailMapping", "MailResult", "map_message"]

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
# A Date header further than this from the copy's arrival is a sender's wrong clock.
MAX_CLOCK_SKEW = timedelta(minutes=15)


@dataclass(frozen=True)
class MailMapping:
    pseudonyms: Pseudonyms
    mailboxes: Mapping[str, Municipality]
    """The municipalities' own addresses (lower case) and whose they are."""

    def message_key(self, message_id: str) -> str:
        """The keyed hash a Message-ID is known by in the thread map."""
        return self.pseudonyms.case("message", message_id, prefix="msg-")

    def thread_case(self, root_message_id: str) -> str:
        return self.pseudonyms.case("thread", root_message_id, prefix="mail-")

    def correspondent(self, case: str, address: str) -> str:
        """The keyed hash an address that wrote into a thread is known by in the thread
        map (with `address` empty: the mark that the thread's writers are known)."""
        return self.pseudonyms.case("correspondent", f"{case}\n{address}", prefix="who-")


@dataclass(frozen=True)
class MailResult:
    event: Event | None
    reason: str
    """What the message was taken for (`received`, `ignored_auto_submitted`, ...)."""
    threads: Sequence[tuple[str, str]] = field(default_factory=tuple)
    """(message key, thread case id) pairs to remember."""


def _addresses(message: EmailMessage, *headers: str) -> list[str]:
    """The addresses in the headers, lower case, as the email package's RFC 5322 parser
    reads them (`email.utils.getaddresses` of Python 3.11 also found `info@heiloo.nl` in
    `jan@example.com)<info@heiloo.nl>`, CVE-2023-27043)."""
    found: list[str] = []
    for name in headers:
        for header in message.get_all(name, []):
            for address in getattr(header, "addresses", ()):
                if address.username and address.domain:
                    found.append(address.addr_spec.lower())
    return found


def _message_ids(value: object) -> list[str]:
    return _MESSAGE_ID.findall(str(value)) if value is not None else []


def _time(message: EmailMessage, received_at: datetime) -> datetime:
    """The Date header, unless missing, naive or far from when the copy came in."""
    try:
        sent = parsedate_to_datetime(str(message["Date"]))
    except (TypeError, ValueError, IndexError):
        return received_at
    if sent.tzinfo is None or abs(sent - received_at) > MAX_CLOCK_SKEW:
        return received_at
    return sent


def map_message(
    message: EmailMessage,
    received_at: datetime,
    mapping: MailMapping,
    thread_of: Callable[[str], str | None],
) -> MailResult:
    """The event for one copied message, given how to look up a message key's thread."""
    own_ids = _message_ids(message["Message-ID"])
    if not own_ids:
        return MailResult(None, "ignored_no_message_id")
    own_id = own_ids[0]
    senders = _addresses(message, "From")
    # The municipality's own only when a mailbox is its one author: `From: jan@example.com,
    # info@heiloo.nl` is a resident's. (That a single From is not forged is for the mail
    # system to vouch: docs/SOURCES.md.)
    sent_by = mapping.mailboxes.get(senders[0]) if len(senders) == 1 else None
    auto = str(message.get("Auto-Submitted", "no")).split(";")[0].strip().lower()
    parents = _message_ids(message["In-Reply-To"]) + _message_ids(message["References"])[::-1]
    thread = next((t for p in parents if (t := thread_of(mapping.message_key(p)))), None)
    own_key = mapping.message_key(own_id)

    def writers(case: str) -> tuple[tuple[str, str], ...]:
        """Who wrote in (From, Reply-To), to know a reply to them from a forward."""
        addresses = ["", *_addresses(message, "From", "Reply-To")]
        return tuple((mapping.correspondent(case, address), case) for address in addresses)

    def event(
        short_type: str, case: str, municipality: Municipality, *known: tuple[str, str]
    ) -> MailResult:
        built = build_event(
            short_type,
            event_id=mapping.pseudonyms.event(f"{short_type}|{own_id}", prefix="mail-"),
            source=mapping.pseudonyms.source,
            subject=case,
            time=_time(message, received_at),
            municipality=municipality,
        )
        return MailResult(built, short_type.split(".")[1], ((own_key, case), *known))

    if sent_by is not None:
        if auto == "auto-replied":
            if thread is None and parents:
                # The copy of the acknowledgement came before the copy of the mail it
                # acknowledges: the mail it replies to is the thread's root.
                thread = mapping.thread_case(parents[0])
            if thread is None:
                return MailResult(None, "ignored_unknown_thread")
            return event("email.acknowledged", thread, sent_by)
        if auto != "no":
            return MailResult(None, "ignored_auto_submitted")
        if thread is None:
            return MailResult(None, "ignored_unknown_thread")
        if not _to_a_writer(message, thread, mapping, thread_of):
            # Sent on to others only (a colleague, a contractor): not the answer. It joins
            # the thread, so a reply to it is still found.
            return MailResult(None, "forwarded", ((own_key, thread),))
        return event("email.answered", thread, sent_by)
    recipients = _addresses(message, "To", "Cc")
    to = next((mapping.mailboxes[a] for a in recipients if a in mapping.mailboxes), None)
    if to is None:
        return MailResult(None, "ignored_not_for_a_mailbox")
    if auto != "no":
        return MailResult(None, "ignored_auto_submitted")
    if thread is not None:
        return MailResult(None, "follow_up", ((own_key, thread), *writers(thread)))
    case = mapping.thread_case(own_id)
    return event("email.received", case, to, *writers(case))


def _to_a_writer(
    message: EmailMessage, thread: str, mapping: MailMapping, thread_of: Callable[[str], str | None]
) -> bool:
    """Whether a mailbox's message goes to someone who wrote into the thread. A thread
    begun before its writers were kept has no mark: there every reply counts."""
    if thread_of(mapping.correspondent(thread, "")) != thread:
        return True
    recipients = _addresses(message, "To", "Cc")
    return any(thread_of(mapping.correspondent(thread, r)) == thread for r in recipients)
