"""Instants as the contract takes them: RFC 3339 text, within what UTC can hold.

pydantic's own datetime parsing is broader than RFC 3339: it takes a number, or a string
of digits, as Unix seconds ("1700000000" is an instant in 2023), and text without
seconds or with an offset written `+0100`. And an instant at the edge of the calendar
with a large offset (9999-12-31T23:59:59-23:59) parses, but fails later, wherever it is
first converted to UTC: in the processor, that would be a record it cannot get past.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

__all__ = ["EVENT_YEARS", "RFC3339", "EventDate", "EventInstant", "Instant"]

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(?:\.\d+)?(?:[Zz]|[+-]\d\d:\d\d)$")
"""RFC 3339's `date-time`: seconds and an offset (`Z` or `+01:00`) required."""

_EXAMPLE = "2026-11-24T09:00:00+01:00"


def _rfc3339_text(value: object) -> object:
    """Text must be RFC 3339 and a number is refused; a datetime (built in Python) passes."""
    if isinstance(value, int | float):
        raise ValueError(f"an RFC 3339 timestamp is text, e.g. {_EXAMPLE}, not a number")
    if isinstance(value, str) and not RFC3339.match(value):
        raise ValueError(
            f"an RFC 3339 timestamp with seconds and an offset, e.g. {_EXAMPLE} "
            "or 2026-11-24T08:00:00Z"
        )
    return value


def _in_utc_years(years: range) -> AfterValidator:
    """The instant converted to UTC (once: this is on the processor's path) lies in `years`."""

    def check(value: datetime) -> datetime:
        try:
            year = value.astimezone(UTC).year
        except OverflowError:  # past the year 9999, or before the year 1
            year = None
        if year is None or year not in years:
            raise ValueError(
                f"the instant lies outside the years {years.start} to {years.stop - 1} in UTC"
            )
        return value

    return AfterValidator(check)


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), _in_utc_years(range(1, 10_000))]
"""An aware datetime given as RFC 3339 text (or a datetime), that converts to UTC."""

EVENT_YEARS = range(1900, 3000)
"""The years an event's instants may lie in. Wider is nonsense for a municipality's
service, and the headroom keeps every derived instant (a deadline twelve weeks on, a
watermark less the allowed lateness) inside what a datetime can hold."""

EventInstant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), _in_utc_years(EVENT_YEARS)]
"""An instant an event carries (its time, an appointment's): as `Instant`, in `EVENT_YEARS`."""


def _date_in_event_years(value: date) -> date:
    if value.year not in EVENT_YEARS:
        raise ValueError(
            f"the date lies outside the years {EVENT_YEARS.start} to {EVENT_YEARS.stop - 1}"
        )
    return value


_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _date_text(value: object) -> object:
    """A date is `YYYY-MM-DD` text (a `date`, built in Python, passes): never a number, a
    date-time, or digits that pydantic would read as Unix seconds."""
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value):
        return value
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise ValueError("a date is text in the form YYYY-MM-DD, e.g. 2026-11-24")


EventDate = Annotated[date, BeforeValidator(_date_text), AfterValidator(_date_in_event_years)]
"""A date an event carries (a term's first day, a promised date): `YYYY-MM-DD` text, as
the JSON Schema says, in `EVENT_YEARS`: a deadline counted from it must fit a datetime too."""
