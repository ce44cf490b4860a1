"""`Term.deadline` on its own: where a day ends, and pauses counted in real time.

Expected instants are Europe/Amsterdam RFC 3339 literals worked out by hand. 2026 facts:
summer time ends Sun 25 Oct (03:00 CEST becomes 02:00 CET, at 01:00 UTC); default office
hours Monday to Friday 08:30-17:00.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from normwacht.core.calendars import AMSTERDAM, DEFAULT_CALENDAR
from normwacht.core.catalogue import Term

CAL = DEFAULT_CALENDAR


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def local(instant: datetime | None) -> str | None:
    return None if instant is None else instant.astimezone(AMSTERDAM).isoformat()


@pytest.mark.parametrize(
    ("term", "received", "last_day"),
    [
        # Mon 2 Mar 2026 + 2 working days: Tue 3 (1), Wed 4 Mar (2).
        (Term(working_days=2), "2026-03-02T10:00:00+01:00", "2026-03-04T23:59:59.5+01:00"),
        # Fri 18 Dec 2026 + 10 working days (Christmas, Boxing Day and New Year's Day
        # skipped): Tue 5 Jan 2027.
        (Term(working_days=10), "2026-12-18T16:00:00+01:00", "2027-01-05T23:59:59.5+01:00"),
        # Sat 24 Oct 2026 + 2 working days: Mon 26 (1), Tue 27 Oct (2), in winter time.
        (Term(working_days=2), "2026-10-24T10:00:00+02:00", "2026-10-27T23:59:59.5+01:00"),
        # Wed 25 Mar 2026 + 1 week: Wed 1 Apr, in summer time.
        (Term(weeks=1), "2026-03-25T10:00:00+01:00", "2026-04-01T23:59:59.5+02:00"),
    ],
)
def test_a_day_based_term_includes_its_last_day_up_to_midnight(
    term: Term, received: str, last_day: str
) -> None:
    """A stop at 23:59:59.5 on the last day is in time (the engine's comparison is
    inclusive: in time while stop <= deadline); one at midnight is not."""
    deadline = term.deadline(at(received), {}, CAL)
    assert deadline is not None
    half_second_before_midnight = at(last_day)
    assert deadline >= half_second_before_midnight
    assert deadline < half_second_before_midnight + timedelta(milliseconds=500)


PROMISED = Term(end_of_date_field="promised_by")
APPOINTMENT = Term(at_time_field="at", grace=timedelta(minutes=30))

# Paused Fri 23 Oct 2026 12:00 CEST (10:00 UTC), resumed Mon 26 Oct 12:00 CET (11:00 UTC):
# 72 wall-clock hours, but 73 real ones, as the clocks went back an hour on the Sunday.
PAUSED, RESUMED = "2026-10-23T12:00:00+02:00", "2026-10-26T12:00:00+01:00"
PAUSE_AS_GIVEN = (at(PAUSED), at(RESUMED))
PAUSE_IN_UTC = (at(PAUSED).astimezone(UTC), at(RESUMED).astimezone(UTC))
# The same two instants in the one zone: subtracted by wall clock these give 72 h.
PAUSE_IN_AMSTERDAM = (at(PAUSED).astimezone(AMSTERDAM), at(RESUMED).astimezone(AMSTERDAM))


@pytest.mark.parametrize("pause", [PAUSE_AS_GIVEN, PAUSE_IN_UTC, PAUSE_IN_AMSTERDAM])
def test_a_pause_lengthens_a_promised_date_by_real_time_across_the_dst_change(
    pause: tuple[datetime, datetime],
) -> None:
    """Promised by Fri 23 Oct 2026: due at its end, 23:59:59.999999 CEST = 21:59:59.999999
    UTC. The 73 real hours of the pause move that to Mon 26 Oct 22:59:59.999999 UTC, which
    is 23:59:59.999999 CET: the end of Monday. (Adding 73 h to the local end of Friday by
    wall clock gave Tue 27 Oct 00:59:59.999999 CET, an hour late; measuring the pause by
    wall clock as well gave 72 h.)"""
    data = {"promised_by": "2026-10-23"}
    assert local(PROMISED.deadline(at("2026-10-20T10:00:00+02:00"), data, CAL)) == (
        "2026-10-23T23:59:59.999999+02:00"
    )
    deadline = PROMISED.deadline(at("2026-10-20T10:00:00+02:00"), data, CAL, [pause])
    assert local(deadline) == "2026-10-26T23:59:59.999999+01:00"
    assert deadline is not None
    assert deadline.tzinfo is UTC


def test_an_appointment_deadline_adds_its_grace_and_pauses_in_real_time() -> None:
    """The appointment is Sat 24 Oct 2026 23:45 CEST (21:45 UTC), + 30 min grace + the
    73 real hours of the pause = Tue 27 Oct 23:15 UTC, which is Wed 28 Oct 00:15 CET."""
    data = {"at": "2026-10-24T23:45:00+02:00"}
    deadline = APPOINTMENT.deadline(
        at("2026-10-19T09:00:00+02:00"), data, CAL, [PAUSE_IN_AMSTERDAM]
    )
    assert local(deadline) == "2026-10-28T00:15:00+01:00"
