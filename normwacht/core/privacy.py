"""No personal data in identifiers: what a case id may not look like, and keyed pseudonyms.

`subject` and `id` travel into Kafka, the processor's state and the database, and live
there for years. They must be opaque. The pattern of `CaseId` already keeps out names
with spaces and e-mail addresses with `@`; `personal_data_reason` catches the values
that fit the pattern and are still personal: Dutch phone numbers, citizen service
numbers (BSN, by the elfproef), alone or inside an id, with or without separators
(`KCC-06-12345678`, `KCC-123.456.782`, `CALL-+31(0)612345678`), foreign numbers after `+`
(`CALL-+4915112345678`), e-mail addresses written without `@`, and postcodes with
a house number (`1851AB-12`, `.../1851AB/12`). The same check keeps personal data out of
the codes in an event's `data` and out of its `source` and `dataschema`.

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
_NL = r"31[1-9]\d{8}"  # the country code and the 9 digits after it
_DUTCH_PHONE = re.compile(rf"^(?:0[1-9]\d{{8}}|(?:\+|00){_NL})$")
_INTERNATIONAL_PHONE = re.compile(r"^(?:\+|00)\d{8,15}$")
# The same inside an id (`CALL-+4915112345678`): after a + (or the Netherlands' 0031), 8
# to 15 digits, which may be grouped. Not after any 00: ids count with zeros in front
# (`KCC-2026-0023020634`).
_INTERNATIONAL_INSIDE = re.compile(
    r"(?:\+|(?<!\d)00(?=31))[\s.\-_/()]{0,2}[1-9](?:[\s.\-_/()]{0,2}\d){7,14}(?!\d)"
)
# `+31 (0)6 12345678`, `0031-0-612345678`: the trunk 0, dialled only from within the country,
# written after the country code. Replaced by one separator before the checks, so the number
# reads as `+31-6-12345678` wherever it stands.
_TRUNK_ZERO = re.compile(
    r"(?<!\d)((?:\+|00)?31)(?:[\s.\-_/]*\(0\)|[\s.\-_/]+0(?=[\s.\-_/]))[\s.\-_/]*"
)
# An address at a mail provider with its @ written as a separator (`jan.jansen.gmail.com`,
# `jan_gmail.com`): a local part (an ASCII letter or digit, then letters, digits, `_`, `-`
# and single dots, standing on its own) and `.`, `-` or `_` before the provider. Found in
# two linear steps (`_e_mail_like`): one pattern for all of it took time quadratic in the
# value's length (1 ms for 200 characters of `a.a.a.`, 11 ms for 800).
_PROVIDER_AT_THE_END = re.compile(
    r"[.\-_](?:gmail|hotmail|outlook|live|yahoo|icloud|ziggo|kpnmail|kpnplanet|xs4all|"
    r"planet|home|casema|example)\.(?:nl|com|net|org|eu|be)$",
    re.IGNORECASE,
)
_LOCAL_RUN_AT_THE_END = re.compile(r"[A-Za-z0-9_.\-]+$")
_ASCII_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_E_MAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b")
# first.last.provider.nl: an address with its @ written as a dot (a website such as
# www.heiloo.nl or loket.heiloo.nl is no personal data; four or more labels are).
_DOTTED_ADDRESS = re.compile(
    r"^(?!www\.)(?:[A-Za-z0-9\-_]+\.){3,}(?:nl|com|net|org|eu|be|de|info)$", re.I
)
# 1234 AB with a house number after it (1234AB12, 1234-ab-12a, a path's 1234AB/12),
# standing on its own.
_POSTCODE_HOUSE = re.compile(
    r"(?<![A-Za-z0-9])[1-9]\d{3}[\s.\-_:/]?[A-Z]{2}[\s.\-_:/]?\d{1,5}[A-Z]?(?![A-Za-z0-9])",
    re.I,
)
# A UUID, or a hex token of 32 or more characters with a letter in it (a UUID without its
# dashes, a digest), is random by construction: its digit runs may pass the checks by
# chance (a UUID's hex one time in 120), not because they are someone's number. A shorter
# hex string is checked: `0612345678abcdef` is a phone number with letters appended.
_UUID = re.compile(
    r"^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|(?=[0-9a-f]*[a-f])[0-9a-f]{32,})$",
    re.I,
)
_NUMBER = re.compile(r"^(?:\+|00)?\d{8,}$")
# A percent-escape, decoded as its byte: what the checks look for (@, +, digits) is ASCII.
# (Not urllib: the core imports nothing that could reach the network.)
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
# Lengths of a run that can be a BSN (9) or a phone number (10, or 11 from 31 on) in an id.
_LONG_RUN = range(9, 12)
_DUTCH_PHONE_WITHOUT_PLUS = re.compile(rf"^{_NL}$")
# Digits inside an id, one group or several joined by single separators: the number may be
# written out (`KCC-06-12345678`, `KCC-123.456.782`, `CALL-06.12.34.56.78`). Only a stretch
# of 9 characters or more can hold one, and most ids (`CALL-000123`) have none. A group at
# either end that is glued into a hex token (`…c2d3-4567…` in a UUID) is a piece of that
# token, not of a number.
_DIGITS = re.compile(r"\d[\d\s.\-_:()/]{7,}\d")
_GROUP = re.compile(r"\d+")
_TOKEN_BEFORE = re.compile(r"[A-Za-z0-9]+\Z")
_TOKEN_AFTER = re.compile(r"[A-Za-z0-9]+")
_HEX = re.compile(r"[0-9A-Fa-f]+")
# A date (2026-03-02, 2026.03.02, 2026/03/02), a time of day (16:06:16.125990) or an IPv4
# address is no part of a number: `2026-06-12-123456` holds no `06-12123456`,
# `T16:06:16.125990` no `06-16125990`, `192.168.100.200` no `192.168.100`.
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_NOT_A_NUMBER = re.compile(
    r"(?<!\d)(?:19|20)\d\d([\-./])(?:0[1-9]|1[0-2])\1(?:0[1-9]|[12]\d|3[01])(?!\d)"
    r"|(?<!\d)(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?(?!\d)"
    rf"|(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\d|\.\d)"
)
# How the numbers are written: a national number opens with its area code (06, 020, 0251,
# 0612); a BSN is 123.456.782 or, with dots, 1234.56.782 (unless that reads as a year and a
# month, 2026.03.123). Other groupings of nine or ten digits are a case number's
# (`MELDING-2026-00042`), whose digits pass the elfproef one time in eleven by chance.
_AREA_CODE = re.compile(r"^(?:06|0[1-9]\d{1,2})$")
_INTERNATIONAL = re.compile(rf"^(?:\+|00){_NL}$")
_COUNTRY = ("31", "0031")
_BSN_GROUPS = ((3, 3, 3), (4, 2, 3))
_YEAR_MONTH = re.compile(r"^(?:19|20)\d\d(?:0[1-9]|1[0-2])")


def _elfproef(digits: str) -> bool:
    """The BSN check: 9 digits, weights 9..2 and -1, sum divisible by 11 (and not 0)."""
    if len(digits) != 9 or digits == "000000000":
        return False
    weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
    return sum(w * int(d) for w, d in zip(weights, digits, strict=True)) % 11 == 0


def _number_inside(value: str) -> str | None:
    """Why `value` holds a phone number or a BSN among other characters, or None."""
    run = _DIGITS.search(value)  # a search, not finditer: cheaper when there is none
    while run is not None:
        text = run[0]
        groups = [text] if text.isdigit() else _SEPARATORS.split(text)
        for group in groups:
            if len(group) in _LONG_RUN:
                if len(group) == 9 and _elfproef(group):
                    return "it contains a citizen service number (BSN)"
                if _DUTCH_PHONE.match(group) or _DUTCH_PHONE_WITHOUT_PLUS.match(group):
                    return "it contains a phone number"
        if len(groups) > 1 and _may_be_written_out(groups) and (reason := _written_out(value, run)):
            return reason
        run = _DIGITS.search(value, run.end())
    return None


def _foreign_number_inside(value: str) -> bool:
    """Whether `value` holds an international number after + (or 0031) among other characters.
    A date, a time or an IPv4 address is no part of one (`+2026-06-12`, `+10:00`)."""
    if _INTERNATIONAL_INSIDE.search(value) is None:
        return False  # the common case, and cheap
    masked = _NOT_A_NUMBER.sub(lambda other: "#" * len(other[0]), value)
    return _INTERNATIONAL_INSIDE.search(masked) is not None


def _may_be_written_out(groups: list[str]) -> bool:
    """Whether `groups` have what a number written out needs: an area code (06, 020, 0251)
    or a country code (31, 0031) followed by more, or three groups shaped as a BSN's."""
    for at in range(len(groups) - 1):
        group = groups[at]
        size = len(group)
        if (1 < size < 5 and group[0] == "0" and group[1] != "0") or group in _COUNTRY:
            return True
        shape = (size, len(groups[at + 1]), len(groups[at + 2]) if at + 2 < len(groups) else 0)
        if shape in _BSN_GROUPS:
            return True
    return False


def _written_out(value: str, joined: re.Match[str]) -> str | None:
    """Why the digit groups of `joined` (a match of `_DIGITS` in `value`) hold a phone
    number or a BSN written with separators, or None.

    Any consecutive groups count, so a number after a case number's own digits is found
    (`KCC-2026-06-12345678`); the groups of a date, a time or an IPv4 address are skipped.
    """
    start, end = joined.span()
    skipped = [other.span() for other in _NOT_A_NUMBER.finditer(value, start, end)]
    groups = [
        group
        for group in _GROUP.finditer(value, start, end)
        if not any(low <= group.start() < high for low, high in skipped)
    ]
    before, after = _TOKEN_BEFORE.search(value, 0, start), _TOKEN_AFTER.match(value, end)
    if groups and before and groups[0].start() == start and _HEX.fullmatch(before[0]):
        del groups[0]
    if groups and after and groups[-1].end() == end and _HEX.fullmatch(after[0]):
        del groups[-1]
    for first, opening in enumerate(groups):
        digits = ""
        for last in range(first, len(groups)):
            if last > first and groups[last - 1].end() + 1 != groups[last].start():
                break  # a date, a time, an address or two separators lay between
            digits += groups[last][0]
            if len(digits) > 13:  # 0031 and nine: the longest number looked for
                break
            if last == first:
                continue  # one group alone is `_LONG_RUN`'s
            if len(digits) == 10 and _AREA_CODE.match(opening[0]) and _DUTCH_PHONE.match(digits):
                return "it contains a phone number"
            plus = "+" if value[opening.start() - 1 : opening.start()] == "+" else ""
            if _INTERNATIONAL.match(plus + digits):
                return "it contains a phone number"
            if len(digits) == 9 and _elfproef(digits):
                sizes = tuple(len(group[0]) for group in groups[first : last + 1])
                dotted = all(value[g.end()] in ". " for g in groups[first:last])
                if sizes == _BSN_GROUPS[0] or (
                    sizes == _BSN_GROUPS[1] and dotted and not _YEAR_MONTH.match(digits)
                ):
                    return "it contains a citizen service number (BSN)"
    return None


@functools.lru_cache(maxsize=8192)  # a case's subject comes again with each of its events
def personal_data_reason(value: str) -> str | None:
    """Why `value` looks like personal data, or None when it may be an opaque id.

    Errs on the side of refusing: a number inside an id counts too (`KCC-0612345678` and
    `KCC-06-12345678` hold a phone number), since a prefix does not make a caller's number
    less personal. Case numbers such as `KCC-2026-000123` pass: their digit runs are short,
    and their groups are not those of a phone number (an area code first) or a BSN
    (123.456.782, 1234.56.782); neither do dates (`KCC-2026-03-02`) count.
    """
    if _UUID.match(value):
        return None
    if "%" in value:  # percent-encoded, as in a URI or an id taken from one: `jan%40x.nl`
        value = _PERCENT.sub(lambda escape: chr(int(escape[1], 16)), value)
    if "31" in value:
        value = _TRUNK_ZERO.sub(r"\1-", value)
    compact = _SEPARATORS.sub("", value)
    if _NUMBER.match(compact):  # digits only, after separators: which number is it?
        if _DUTCH_PHONE.match(compact) or _INTERNATIONAL_PHONE.match(compact):
            return "it looks like a phone number"
        if len(compact) == 9 and _elfproef(compact):
            return "it looks like a citizen service number (BSN)"
        if len(compact) == 8 and _elfproef("0" + compact):
            return "it looks like a citizen service number (BSN) without its leading 0"
        return "it is a bare number that could be a phone or citizen service number"
    if reason := _number_inside(value):
        return reason
    if ("+" in value or "0031" in value) and _foreign_number_inside(value):
        return "it contains a phone number"
    # An address needs its @ or a dot; the searches cost, and ingest checks two ids an event.
    if ("@" in value and _E_MAIL.search(value)) or (
        "." in value and (_e_mail_like(value) or _DOTTED_ADDRESS.match(value))
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


def _e_mail_like(value: str) -> bool:
    """Whether `value` ends in an address at a mail provider, its @ written as `.`, `-` or
    `_` (see `_PROVIDER_AT_THE_END`)."""
    provider = _PROVIDER_AT_THE_END.search(value)
    if provider is None:
        return False
    # The local part lies in the run of local-part characters just before the provider,
    # and ends with it: so the run may not end with a dot, and the part begins after the
    # run's last `..`, at a letter or digit at the run's start or after `_`, `-` or `.`.
    run = _LOCAL_RUN_AT_THE_END.search(value, 0, provider.start())
    if run is None or run.group().endswith("."):
        return False
    token = run.group()
    double_dot = token.rfind("..")
    earliest = 0 if double_dot < 0 else double_dot + 2
    return any(
        token[at] in _ASCII_ALNUM and (at == 0 or token[at - 1] in "_-.")
        for at in range(earliest, len(token))
    )
