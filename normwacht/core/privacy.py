"""No personal data in identifiers: what a case id may not look like, and keyed pseudonyms.

`subject` and `id` travel into Kafka, the processor's state and the database, and live
there for years. They must be opaque. The pattern of `CaseId` already keeps out names
with spaces and e-mail addresses with `@`; `personal_data_reason` catches the values
that fit the pattern and are still personal: Dutch phone numbers, citizen service
numbers (BSN, by the elfproef), e-mail addresses written without `@`, and postcodes
with a house number.

Adapters never pass a vendor's identifier on (a caller's number, a sender's address, a
WhatsApp id): `pseudonym` turns it into a case id with a keyed HMAC, so the same vendor
id always gives the same case, and no one without the key can go back.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re

__all__ = ["personal_data_reason", "pseudonym"]

_SEPARATORS = re.compile(r"[\s.\-_:()/]")
# Dutch numbers (06 12345678, 020 1234567, +31 6 12345678): 0 and 9 digits (no area code
# starts with 0), or the country code 31 and 9. A run of 8-15 digits after + or 00 is an
# international number.
_DUTCH_PHONE = re.compile(r"^(?:0[1-9]\d{8}|(?:\+|00)31[1-9]\d{8})$")
_INTERNATIONAL_PHONE = re.compile(r"^(?:\+|00)\d{8,15}$")
_E_MAIL_LIKE = re.compile(
    r"(?:^|[^A-Za-z0-9])[A-Za-z0-9][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)*"
    r"[.\-_](?:gmail|hotmail|outlook|live|yahoo|icloud|ziggo|kpnmail|kpnplanet|xs4all|"
    r"planet|home|casema|example)\.(?:nl|com|net|org|eu|be)$",
    re.IGNORECASE,
)
_E_MAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b")
# first.last.provider.nl: an address with its @ written as a dot (a website such as
# www.heiloo.nl or loket.heiloo.nl is no personal data; four or more labels are).
_DOTTED_ADDRESS = re.compile(
    r"^(?!www\.)(?:[A-Za-z0-9\-_]+\.){3,}(?:nl|com|net|org|eu|be|de|info)$", re.I
)
# 1234 AB with a house number after it (1234AB12, 1234-ab-12a), standing on its own.
_POSTCODE_HOUSE = re.compile(
    r"(?<![A-Za-z0-9])[1-9]\d{3}[\s.\-_:]?[A-Z]{2}[\s.\-_:]?\d{1,5}[A-Z]?(?![A-Za-z0-9])", re.I
)
# A UUID, or a hex token of 16 or more characters with a letter in it (a UUID without its
# dashes, a hash, an object id), is random by construction: its digit runs may pass the
# checks by chance (a UUID's hex one time in 120), not because they are someone's number.
_UUID = re.compile(
    r"^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|(?=[0-9a-f]*[a-f])[0-9a-f]{16,})$",
    re.I,
)
_NUMBER = re.compile(r"^(?:\+|00)?\d{8,}$")
# A percent-escape, decoded as its byte: what the checks look for (@, +, digits) is ASCII.
# (Not urllib: the core imports nothing that could reach the network.)
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
# Runs that can be a BSN (9) or a phone number (10, or 11 from 31 on) inside an id.
_LONG_RUN = re.compile(r"(?<!\d)\d{9,11}(?!\d)")
_DUTCH_PHONE_WITHOUT_PLUS = re.compile(r"^31[1-9]\d{8}$")


def _elfproef(digits: str) -> bool:
    """The BSN check: 9 digits, weights 9..2 and -1, sum divisible by 11 (and not 0)."""
    if len(digits) != 9 or digits == "000000000":
        return False
    weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
    return sum(w * int(d) for w, d in zip(weights, digits, strict=True)) % 11 == 0


@functools.lru_cache(maxsize=8192)  # a case's subject comes again with each of its events
def personal_data_reason(value: str) -> str | None:
    """Why `value` looks like personal data, or None when it may be an opaque id.

    Errs on the side of refusing: a number inside an id counts too (`KCC-0612345678`
    holds a phone number), since a prefix does not make a caller's number less personal.
    Case numbers such as `KCC-2026-000123` pass: their digit runs are short.
    """
    if _UUID.match(value):
        return None
    if "%" in value:  # percent-encoded, as in a URI or an id taken from one: `jan%40x.nl`
        value = _PERCENT.sub(lambda escape: chr(int(escape[1], 16)), value)
    compact = _SEPARATORS.sub("", value)
    if _NUMBER.match(compact):  # digits only, after separators: which number is it?
        if _DUTCH_PHONE.match(compact) or _INTERNATIONAL_PHONE.match(compact):
            return "it looks like a phone number"
        if len(compact) == 9 and _elfproef(compact):
            return "it looks like a citizen service number (BSN)"
        if len(compact) == 8 and _elfproef("0" + compact):
            return "it looks like a citizen service number (BSN) without its leading 0"
        return "it is a bare number that could be a phone or citizen service number"
    for run in _LONG_RUN.findall(value):
        if len(run) == 9 and _elfproef(run):
            return "it contains a citizen service number (BSN)"
        if _DUTCH_PHONE.match(run) or _DUTCH_PHONE_WITHOUT_PLUS.match(run):
            return "it contains a phone number"
    # An address needs its @ or a dot; the searches cost, and ingest checks two ids an event.
    if ("@" in value and _E_MAIL.search(value)) or (
        "." in value and (_E_MAIL_LIKE.search(value) or _DOTTED_ADDRESS.match(value))
    ):
        return "it looks like an e-mail address or a domain name"
    if _POSTCODE_HOUSE.search(value):
        return "it looks like a postcode with a house number"
    return None


def pseudonym(key: bytes, namespace: str, vendor_id: str, *, prefix: str = "") -> str:
    """An opaque case id for `vendor_id`, stable under one `key`.

    `namespace` keeps ids of different systems apart (a call's uniqueid and an e-mail's
    Message-ID never collide). 20 bytes of HMAC-SHA256 in base32: 32 characters, which
    matches the `CaseId` pattern and contains no run of digits that could read as a
    phone number or BSN often enough to matter (the letters break the runs).
    """
    if not key:
        raise ValueError("a pseudonym needs a non-empty key")
    digest = hmac.new(key, f"{namespace}\x00{vendor_id}".encode(), hashlib.sha256).digest()
    token = base64.b32encode(digest[:20]).decode().lower()
    value = f"{prefix}{token}"
    # Base32 has digits 2-7 only, in runs; a run long enough to trip the check is redrawn.
    while personal_data_reason(value) is not None:  # pragma: no cover - about 1 in 10^6
        digest = hashlib.sha256(digest).digest()
        value = f"{prefix}{base64.b32encode(digest[:20]).decode().lower()}"
    return value
