"""Working-day arithmetic against workalendar, an independent implementation.

Our holidays come from the `holidays` package; workalendar computes its own (its own
Easter, its own King's Day rule), so agreement over 2024-2032 checks both the data and
the counting.

How the two were aligned. workalendar's `Netherlands`:
- keeps 5 May in FIXED_HOLIDAYS, i.e. a day off EVERY year (the Atw reading). The
  norms make it a day off only in lustrum years (year % 5 == 0), so `NormsNetherlands`
  below drops it from the fixed list and adds it back in lustrum years. The
  unmodified `Netherlands` is then exactly the statutory (Atw) list, and is used as
  such below.
- also lists Easter Sunday and Whit Sunday; we leave them out (always Sundays, never
  a working day either way), so the set comparisons drop them on workalendar's side.
- Good Friday (include_good_friday), King's Day (27 April, 26 April when the 27th is
  a Sunday), Ascension, Whit Monday, Christmas and Boxing Day: the same as ours.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from workalendar.europe import Netherlands

from normwacht.core.calendars import (
    AMSTERDAM,
    Calendar,
    dutch_public_holidays,
    statutory_holidays,
)

YEARS = range(2024, 2033)
FIRST, LAST = date(2024, 1, 1), date(2032, 12, 31)
SEED = 20260101


class NormsNetherlands(Netherlands):  # type: ignore[misc]  # workalendar is untyped
    """workalendar's Netherlands with Liberation Day off only in lustrum years."""

    FIXED_HOLIDAYS = tuple(h for h in Netherlands.FIXED_HOLIDAYS if h[:2] != (5, 5))

    def get_variable_days(self, year: int) -> list[tuple[date, str]]:
        days: list[tuple[date, str]] = super().get_variable_days(year)
        if year % 5 == 0:
            days.append((date(year, 5, 5), "Liberation Day"))
        return days


def without_sundays_feasts(calendar: Netherlands, year: int) -> set[date]:
    sundays = {calendar.get_easter_sunday(year), calendar.get_whit_sunday(year)}
    return {day for day, _ in calendar.holidays(year)} - sundays


def random_closing_days(rng: random.Random, count: int) -> frozenset[date]:
    span = (LAST - FIRST).days
    return frozenset(FIRST + timedelta(days=rng.randrange(span)) for _ in range(count))


# One municipality without and one with its own closing days (bridge days and the like).
CLOSING = random_closing_days(random.Random(SEED), 60)
CASES = [
    pytest.param(Calendar(), frozenset[date](), id="no-closing-days"),
    pytest.param(Calendar(closing_days=CLOSING), CLOSING, id="60-closing-days"),
]


@pytest.mark.parametrize("year", YEARS)
def test_same_holidays(year: int) -> None:
    assert dutch_public_holidays(year) == without_sundays_feasts(NormsNetherlands(), year)
    assert statutory_holidays(year) == without_sundays_feasts(Netherlands(), year)


@pytest.mark.parametrize(("ours", "closing"), CASES)
def test_is_working_day_every_day(ours: Calendar, closing: frozenset[date]) -> None:
    theirs = NormsNetherlands()
    day, disagreements = FIRST, []
    while day <= LAST:
        expected = theirs.is_working_day(day, extra_holidays=list(closing))
        if ours.is_working_day(day) != expected:
            disagreements.append(day)
        day += timedelta(days=1)
    assert disagreements == []


@pytest.mark.parametrize(("ours", "closing"), CASES)
def test_add_working_days_random(ours: Calendar, closing: frozenset[date]) -> None:
    # 3,000 seeded random receipts per calendar: any instant 2024-2032, any of a few
    # offsets, N from 1 to 15. workalendar counts from the local date of receipt (the
    # receipt day itself never counts on either side); ours must give the end of that
    # same day local (23:59:59.999999).
    rng = random.Random(SEED)
    theirs = NormsNetherlands()
    offsets = [UTC, AMSTERDAM, timezone(timedelta(hours=-7)), timezone(timedelta(hours=9))]
    seconds = int((datetime(2033, 1, 1) - datetime(2024, 1, 1)).total_seconds())  # noqa: DTZ001
    disagreements = []
    for _ in range(3000):
        instant = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(seconds))
        received = instant.astimezone(rng.choice(offsets))
        n = rng.randint(1, 15)
        local_day = received.astimezone(AMSTERDAM).date()
        expected_day = theirs.add_working_days(local_day, n, extra_holidays=list(closing))
        deadline = ours.add_working_days(received, n)
        if (deadline.date(), deadline.time().isoformat()) != (expected_day, "23:59:59.999999"):
            disagreements.append((received.isoformat(), n, deadline.isoformat(), expected_day))
    assert disagreements == []
