"""Hand-worked calendar examples: every expected value was worked out on paper.

Expected instants are written as ISO strings with their offset, and compared with
`isoformat()`: two datetimes that share a tzinfo compare by wall clock and ignore
`fold`, so `==` alone cannot tell 02:00:10+02:00 from 02:00:10+01:00 on the night
the clocks go back.

Dates used below (checked against a printed calendar):
  2025: Sat 26 Apr (King's Day, 27 Apr is a Sunday), Mon 5 May (Liberation Day, lustrum).
  2026: Fri 6 Mar, Sun 29 Mar (DST starts), Fri 3 Apr Good Friday, Mon 6 Apr Easter
        Monday, Mon 27 Apr King's Day, Tue 5 May, Thu 14 May Ascension, Mon 25 May Whit
        Monday, Sun 25 Oct (DST ends), Thu 24 Dec, Fri 25 Dec, Sat 26 Dec.
  2027: Fri 26 Mar Good Friday, Sun 28 Mar Easter and DST start, Mon 29 Mar Easter Monday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from normwacht.core.calendars import (
    AMSTERDAM,
    DEFAULT_CALENDAR,
    END_OF_DAY,
    Calendar,
    OfficeHours,
    dutch_public_holidays,
    statutory_holidays,
    statutory_term_end,
)

CAL = DEFAULT_CALENDAR
LUNCH = Calendar(
    office_hours=OfficeHours(
        dict.fromkeys(range(1, 6), ((time(8, 30), time(12, 30)), (time(13, 30), time(17, 0))))
    )
)
BRIDGE = Calendar(closing_days=frozenset({date(2026, 5, 15)}))


def at(text: str) -> datetime:
    """An instant from ISO text; without an offset it is Amsterdam wall time (fold=0)."""
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=AMSTERDAM)


def iso(instant: datetime) -> str:
    assert instant.tzinfo is AMSTERDAM, "outputs are Amsterdam time"
    return instant.isoformat()


# ---------------------------------------------------------------------------------
# Holiday sets: pinned in full, so a change in the `holidays` package shows up here.
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "month_days"),
    [
        # Lustrum year: 5 May is a day off. King's Day moves to Saturday 26 April
        # because 27 April 2025 is a Sunday. Easter is 20 April.
        (2025, [(1, 1), (4, 18), (4, 21), (4, 26), (5, 5), (5, 29), (6, 9), (12, 25), (12, 26)]),
        # Not a lustrum year: 5 May 2026 is a working day. Easter is 5 April.
        (2026, [(1, 1), (4, 3), (4, 6), (4, 27), (5, 14), (5, 25), (12, 25), (12, 26)]),
        # Easter on 28 March: Good Friday 26 March, Easter Monday 29 March.
        (2027, [(1, 1), (3, 26), (3, 29), (4, 27), (5, 6), (5, 17), (12, 25), (12, 26)]),
        # Lustrum, and 5 May 2030 is a Sunday: it stays in the set (we drop only
        # Easter Sunday and Whit Sunday). King's Day 27 April is a Saturday: not moved.
        (2030, [(1, 1), (4, 19), (4, 22), (4, 27), (5, 5), (5, 30), (6, 10), (12, 25), (12, 26)]),
    ],
)
def test_dutch_public_holidays(year: int, month_days: list[tuple[int, int]]) -> None:
    assert dutch_public_holidays(year) == {date(year, month, day) for month, day in month_days}


@pytest.mark.parametrize("year", [2025, 2026, 2027, 2030])
def test_statutory_holidays_are_the_public_ones_plus_5_may_every_year(year: int) -> None:
    assert statutory_holidays(year) == dutch_public_holidays(year) | {date(year, 5, 5)}


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 3, 6), True),  # an ordinary Friday
        (date(2026, 3, 7), False),  # Saturday
        (date(2026, 3, 8), False),  # Sunday
        (date(2027, 3, 26), False),  # Good Friday
        (date(2027, 3, 29), False),  # Easter Monday
        (date(2026, 4, 27), False),  # King's Day on its own date (a Monday)
        (date(2025, 4, 28), True),  # Monday after King's Day 2025: nothing moves forward
        (date(2026, 5, 14), False),  # Ascension Day
        (date(2026, 5, 15), True),  # the bridge day is a working day by default...
        (date(2026, 5, 25), False),  # Whit Monday
        (date(2025, 5, 5), False),  # Liberation Day in a lustrum year
        (date(2026, 5, 5), True),  # ...and a working day in other years
        (date(2026, 12, 24), True),  # Christmas Eve is not a holiday
        (date(2026, 12, 25), False),  # Christmas Day
        (date(2026, 12, 31), True),  # New Year's Eve is not a holiday
        (date(2027, 1, 1), False),  # New Year's Day
    ],
)
def test_is_working_day(day: date, working: bool) -> None:
    assert CAL.is_working_day(day) is working


def test_closing_day_is_not_a_working_day_only_for_its_municipality() -> None:
    assert not BRIDGE.is_working_day(date(2026, 5, 15))
    assert CAL.is_working_day(date(2026, 5, 15))


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 6), date(2026, 3, 9)),  # Fri -> Mon
        (date(2026, 3, 9), date(2026, 3, 10)),  # strictly after: Mon -> Tue
        (date(2026, 4, 2), date(2026, 4, 7)),  # Thu -> Good Fri, weekend, Easter Mon -> Tue
        (date(2026, 12, 24), date(2026, 12, 28)),  # Thu -> 25, 26 (Sat), 27 (Sun) -> Mon
    ],
)
def test_next_working_day(day: date, expected: date) -> None:
    assert CAL.next_working_day(day) == expected


# ---------------------------------------------------------------------------------
# Working days: the day of receipt never counts; the deadline is the end of the day
# local (END_OF_DAY, 23:59:59.999999: the whole last day up to midnight).
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "received", "days", "expected"),
    [
        # Mon -> Tue (1), Wed (2).
        (CAL, "2026-03-09T10:00", 2, "2026-03-11T23:59:59.999999+01:00"),
        # Received at the last second of Monday: still Monday, so still Wednesday.
        (CAL, "2026-03-09T23:59:59", 2, "2026-03-11T23:59:59.999999+01:00"),
        # Received at midnight: that is already Tuesday -> Wed (1), Thu (2).
        (CAL, "2026-03-10T00:00:00", 2, "2026-03-12T23:59:59.999999+01:00"),
        # 23:59:59 UTC on Monday is 00:59:59 Tuesday in Amsterdam: the local date counts.
        (CAL, "2026-03-09T23:59:59+00:00", 2, "2026-03-12T23:59:59.999999+01:00"),
        # Saturday: Mon (1), Tue (2).
        (CAL, "2026-03-07T09:00", 2, "2026-03-10T23:59:59.999999+01:00"),
        # Sunday, "the next working day": Monday.
        (CAL, "2026-03-08T18:00", 1, "2026-03-09T23:59:59.999999+01:00"),
        # Friday after closing time: the hour does not matter -> Mon (1), Tue (2).
        (CAL, "2026-03-06T17:30", 2, "2026-03-10T23:59:59.999999+01:00"),
        # Christmas 2026: Thu 24 Dec; Fri 25 (Christmas), Sat 26 (Boxing Day), Sun 27 do
        # not count -> Mon 28 (1), Tue 29 (2).
        (CAL, "2026-12-24T09:00", 2, "2026-12-29T23:59:59.999999+01:00"),
        # ...and "the next working day" is Monday 28 December.
        (CAL, "2026-12-24T09:00", 1, "2026-12-28T23:59:59.999999+01:00"),
        # Received on Christmas Day itself: the receipt day never counts either way.
        (CAL, "2026-12-25T11:00", 1, "2026-12-28T23:59:59.999999+01:00"),
        # Easter 2027: Thu 25 Mar; Good Friday, weekend (DST starts on the Sunday) and
        # Easter Monday do not count -> Tue 30 (1), Wed 31 (2), now in summer time.
        (CAL, "2027-03-25T12:00", 2, "2027-03-31T23:59:59.999999+02:00"),
        # King's Day 2026 is Monday 27 April: Fri 24 Apr -> Tue 28 Apr.
        (CAL, "2026-04-24T12:00", 1, "2026-04-28T23:59:59.999999+02:00"),
        # King's Day 2025 was Saturday 26 April: Monday 28 April 2025 is a working day.
        (CAL, "2025-04-25T12:00", 1, "2025-04-28T23:59:59.999999+02:00"),
        # Ascension 2026: Wed 13 May -> Thu 14 is a holiday -> Fri 15 (1).
        (CAL, "2026-05-13T12:00", 1, "2026-05-15T23:59:59.999999+02:00"),
        # ...but with Fri 15 May as a closing (bridge) day -> Mon 18 (1).
        (BRIDGE, "2026-05-13T12:00", 1, "2026-05-18T23:59:59.999999+02:00"),
        # Whit Monday 2026: Fri 22 May -> Mon 25 is a holiday -> Tue 26 (1).
        (CAL, "2026-05-22T12:00", 1, "2026-05-26T23:59:59.999999+02:00"),
        # Liberation Day 2025 (lustrum): Fri 2 May -> Mon 5 is a holiday -> Tue 6 (1).
        (CAL, "2025-05-02T12:00", 1, "2025-05-06T23:59:59.999999+02:00"),
        # Liberation Day 2026 is a working day: Mon 4 May -> Tue 5 (1).
        (CAL, "2026-05-04T12:00", 1, "2026-05-05T23:59:59.999999+02:00"),
        # Across the spring DST change: Fri 27 Mar 2026 -> Mon 30 (1), in summer time.
        (CAL, "2026-03-27T16:00", 1, "2026-03-30T23:59:59.999999+02:00"),
        # 10 working days from Wed 22 Apr 2026: Thu 23 (1), Fri 24 (2), [King's Day Mon 27],
        # Tue 28 (3), Wed 29 (4), Thu 30 (5), Fri 1 May (6), Mon 4 (7), Tue 5 (8, Liberation
        # Day is a working day in 2026), Wed 6 (9), Thu 7 (10).
        (CAL, "2026-04-22T09:00", 10, "2026-05-07T23:59:59.999999+02:00"),
    ],
)
def test_add_working_days(calendar: Calendar, received: str, days: int, expected: str) -> None:
    assert iso(calendar.add_working_days(at(received), days)) == expected


@pytest.mark.parametrize("days", [0, -1])
def test_add_working_days_needs_at_least_one_day(days: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CAL.add_working_days(at("2026-03-09T10:00"), days)


# ---------------------------------------------------------------------------------
# Calendar days and weeks: not moved off weekends or holidays.
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "days", "expected"),
    [
        # 2 weeks from Mon 12 Oct 2026 -> Mon 26 Oct, after DST ended on the 25th.
        ("2026-10-12T15:00", 14, "2026-10-26T23:59:59.999999+01:00"),
        # 1 week from Sat 19 Dec 2026 ends on Sat 26 Dec (Boxing Day): a service term
        # is not extended, only statutory terms are.
        ("2026-12-19T10:00", 7, "2026-12-26T23:59:59.999999+01:00"),
        # 23:30 UTC on Sat 28 Mar 2026 is 00:30 CET on Sun 29 Mar -> Sun 5 Apr.
        ("2026-03-28T23:30:00+00:00", 7, "2026-04-05T23:59:59.999999+02:00"),
        # Received at the very first second of a day: that day is the day of receipt.
        ("2026-03-10T00:00:00", 1, "2026-03-11T23:59:59.999999+01:00"),
    ],
)
def test_add_calendar_days(received: str, days: int, expected: str) -> None:
    assert iso(CAL.add_calendar_days(at(received), days)) == expected


def test_add_calendar_days_needs_at_least_one_day() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CAL.add_calendar_days(at("2026-03-09T10:00"), 0)


# ---------------------------------------------------------------------------------
# Elapsed real time, 24/7.
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "seconds", "expected"),
    [
        # Clocks go back at 03:00 CEST -> 02:00 CET on 25 Oct 2026. 02:59:50 CEST is
        # 00:59:50 UTC; 20 s later is 01:00:10 UTC = 02:00:10 CET (the second 02:00).
        ("2026-10-25T02:59:50+02:00", 20, "2026-10-25T02:00:10+01:00"),
        # Clocks go forward at 02:00 CET -> 03:00 CEST on 29 Mar 2026.
        ("2026-03-29T01:59:50+01:00", 20, "2026-03-29T03:00:10+02:00"),
        # 24 real hours from Sat 12:00 CET is Sun 13:00 CEST: the wall clock skipped an hour.
        ("2026-03-28T12:00:00+01:00", 24 * 3600, "2026-03-29T13:00:00+02:00"),
        # Any offset in, Amsterdam out: 5 minutes from 23:58 UTC on 31 Dec.
        ("2026-12-31T23:58:00+00:00", 300, "2027-01-01T01:03:00+01:00"),
    ],
)
def test_add_elapsed(start: str, seconds: int, expected: str) -> None:
    assert iso(CAL.add_elapsed(at(start), timedelta(seconds=seconds))) == expected


def test_add_elapsed_with_a_fold_1_start() -> None:
    # 02:30 with fold=1 is the second 02:30 (CET, 01:30 UTC) -> 02:30:20 CET.
    start = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=AMSTERDAM)
    assert iso(CAL.add_elapsed(start, timedelta(seconds=20))) == "2026-10-25T02:30:20+01:00"


# ---------------------------------------------------------------------------------
# Office hours.
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "start", "hours", "expected"),
    [
        # Inside office hours: Mon 10:00 + 2 h.
        (CAL, "2026-03-09T10:00", 2, "2026-03-09T12:00:00+01:00"),
        # Friday after closing: the clock starts Monday 08:30 -> 10:30.
        (CAL, "2026-03-06T17:30", 2, "2026-03-09T10:30:00+01:00"),
        # Friday 16:00: 1 h on Friday, 1 h from Monday 08:30 -> 09:30.
        (CAL, "2026-03-06T16:00", 2, "2026-03-09T09:30:00+01:00"),
        # Ends exactly at closing: Mon 15:00 + 2 h is 17:00 that Monday, not Tue 08:30.
        (CAL, "2026-03-09T15:00", 2, "2026-03-09T17:00:00+01:00"),
        # Started at the closing instant (office closed): Tue 08:30 + 1 h.
        (CAL, "2026-03-09T17:00", 1, "2026-03-10T09:30:00+01:00"),
        # Started at the opening instant (office open): 08:30 + 1 h.
        (CAL, "2026-03-09T08:30", 1, "2026-03-09T09:30:00+01:00"),
        # Received at midnight: the clock starts at 08:30.
        (CAL, "2026-03-10T00:00:00", 2, "2026-03-10T10:30:00+01:00"),
        # Saturday: Monday 08:30 + 2 h.
        (CAL, "2026-03-07T11:00", 2, "2026-03-09T10:30:00+01:00"),
        # Spring DST weekend: Fri 27 Mar 16:00 CET, 1 h Friday, 1 h Monday in CEST.
        (CAL, "2026-03-27T16:00", 2, "2026-03-30T09:30:00+02:00"),
        # Autumn DST weekend: Fri 23 Oct 16:30 CEST, 30 min Friday, 30 min Mon in CET.
        (CAL, "2026-10-23T16:30", 1, "2026-10-26T09:00:00+01:00"),
        # Easter 2026: Thu 2 Apr 16:00, 1 h Thursday, then Good Friday, weekend and
        # Easter Monday are closed -> Tue 7 Apr 09:30.
        (CAL, "2026-04-02T16:00", 2, "2026-04-07T09:30:00+02:00"),
        # Bridge day: Wed 13 May 16:00 -> 1 h Wed, Ascension and the closing day
        # Fri 15 May are closed -> Mon 18 May 09:30.
        (BRIDGE, "2026-05-13T16:00", 2, "2026-05-18T09:30:00+02:00"),
        # Lunch break: 11:30 + 2 h = 1 h to 12:30, lunch, 1 h from 13:30 -> 14:30.
        (LUNCH, "2026-03-09T11:30", 2, "2026-03-09T14:30:00+01:00"),
        # Started during lunch: the clock starts at 13:30 -> 14:30.
        (LUNCH, "2026-03-09T12:45", 1, "2026-03-09T14:30:00+01:00"),
        # Ends exactly when lunch starts: 10:30 + 2 h is the closing instant 12:30.
        (LUNCH, "2026-03-09T10:30", 2, "2026-03-09T12:30:00+01:00"),
        # A full lunch-break day holds 7.5 h: Mon 08:30 + 8 h -> Tue 09:00.
        (LUNCH, "2026-03-09T08:30", 8, "2026-03-10T09:00:00+01:00"),
        # Any offset in: 15:30 UTC on Friday is 16:30 CET -> 30 min Fri, 90 min Mon.
        (CAL, "2026-03-06T15:30:00+00:00", 2, "2026-03-09T10:00:00+01:00"),
    ],
)
def test_add_office_time(calendar: Calendar, start: str, hours: int, expected: str) -> None:
    assert iso(calendar.add_office_time(at(start), timedelta(hours=hours))) == expected


@pytest.mark.parametrize(
    ("calendar", "start", "end", "hours"),
    [
        # Friday 16:00 to Monday 09:30 across the spring change: 1 h + 1 h of office
        # time, although 64.5 real hours pass.
        (CAL, "2026-03-27T16:00", "2026-03-30T09:30", 2.0),
        # Two full days across the autumn change: 8.5 h + 8.5 h.
        (CAL, "2026-10-23T08:30", "2026-10-26T17:00", 17.0),
        # [start, end): the end instant is excluded, the start included.
        (CAL, "2026-03-09T08:30", "2026-03-09T08:30", 0.0),
        (CAL, "2026-03-09T16:59", "2026-03-09T17:00", 1 / 60),
        # A day with lunch break: 4 h + 3.5 h.
        (LUNCH, "2026-03-09T00:00", "2026-03-10T00:00", 7.5),
        # End before start: no time has elapsed.
        (CAL, "2026-03-10T12:00", "2026-03-09T12:00", 0.0),
        # Whole Ascension week with the bridge day: Mon, Tue, Wed only.
        (BRIDGE, "2026-05-11T00:00", "2026-05-18T00:00", 25.5),
    ],
)
def test_office_time_between(calendar: Calendar, start: str, end: str, hours: float) -> None:
    assert calendar.office_time_between(at(start), at(end)) == timedelta(hours=hours)


@pytest.mark.parametrize(
    ("calendar", "instant", "is_open", "next_opening"),
    [
        (CAL, "2026-03-09T08:30", True, "2026-03-09T08:30:00+01:00"),  # open included
        (CAL, "2026-03-09T16:59:59", True, "2026-03-09T16:59:59+01:00"),
        (CAL, "2026-03-09T17:00", False, "2026-03-10T08:30:00+01:00"),  # close excluded
        (CAL, "2026-03-09T08:29:59", False, "2026-03-09T08:30:00+01:00"),
        (CAL, "2026-03-07T12:00", False, "2026-03-09T08:30:00+01:00"),  # Saturday
        (CAL, "2026-04-06T12:00", False, "2026-04-07T08:30:00+02:00"),  # Easter Monday
        (LUNCH, "2026-03-09T12:30", False, "2026-03-09T13:30:00+01:00"),  # lunch starts
        (LUNCH, "2026-03-09T13:30", True, "2026-03-09T13:30:00+01:00"),  # lunch ends
        # 07:45 UTC is 08:45 CET: open, and reported back in Amsterdam time.
        (CAL, "2026-03-09T07:45:00+00:00", True, "2026-03-09T08:45:00+01:00"),
    ],
)
def test_is_open_and_next_opening(
    calendar: Calendar, instant: str, is_open: bool, next_opening: str
) -> None:
    assert calendar.is_open(at(instant)) is is_open
    assert iso(calendar.next_opening(at(instant))) == next_opening


def test_office_hours_count_real_seconds_in_a_dst_gap() -> None:
    # Amsterdam changes clocks on Sundays, when the office is shut, so the generic rule
    # is shown with Cairo: on Fri 24 Apr 2026 its clocks jump from 00:00 to 01:00. An
    # office open 00:00-02:00 that day is open for one real hour, not two.
    cairo = ZoneInfo("Africa/Cairo")
    night = Calendar(zone=cairo, office_hours=OfficeHours({5: ((time(0), time(2)),)}))
    friday = datetime(2026, 4, 24, tzinfo=cairo)
    assert night.office_time_between(friday, friday + timedelta(days=1)) == timedelta(hours=1)
    # One office hour from the opening ends at the closing instant 02:00 EEST.
    deadline = night.add_office_time(friday, timedelta(hours=1))
    assert deadline.isoformat() == "2026-04-24T02:00:00+03:00"


@pytest.mark.parametrize(
    "start",
    [
        "2026-03-06T18:00:00+01:00",  # closed (Friday evening)
        "2026-03-09T17:00:00+01:00",  # at a closing instant: must not jump to Tuesday
        "2026-03-09T10:00:00+01:00",  # open
    ],
)
def test_zero_office_time_moves_nothing(start: str) -> None:
    # The earliest instant by which no office time has elapsed is the start itself;
    # this keeps "extend a deadline by the office time of a pause" exact for empty pauses.
    assert iso(CAL.add_office_time(at(start), timedelta(0))) == start


# ---------------------------------------------------------------------------------
# Social media weekend rule: 12:00 on the next working day.
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "expected"),
    [
        ("2026-03-07T10:00", "2026-03-09T12:00:00+01:00"),  # Saturday -> Monday noon
        ("2026-03-08T23:59:59", "2026-03-09T12:00:00+01:00"),  # last second of Sunday
        ("2026-03-07T00:00:00", "2026-03-09T12:00:00+01:00"),  # first second of Saturday
        # Easter weekend 2026: Monday 6 April is Easter Monday -> Tuesday noon.
        ("2026-04-04T15:00", "2026-04-07T12:00:00+02:00"),
        # Sat 26 Dec 2026 (Boxing Day) -> Sun -> Monday 28 Dec noon.
        ("2026-12-26T15:00", "2026-12-28T12:00:00+01:00"),
        # Sat 28 Mar 2026 -> Monday noon, now summer time.
        ("2026-03-28T20:00", "2026-03-30T12:00:00+02:00"),
        # 23:30 UTC on Friday is 00:30 Saturday in Amsterdam: the weekend rule applies.
        ("2026-03-06T23:30:00+00:00", "2026-03-09T12:00:00+01:00"),
        # Sat 9 May 2026 -> Mon 11 May noon (a plain week).
        ("2026-05-09T09:00", "2026-05-11T12:00:00+02:00"),
    ],
)
def test_weekend_noon_rule(received: str, expected: str) -> None:
    deadline = CAL.weekend_noon_rule(at(received))
    assert deadline is not None
    assert iso(deadline) == expected


@pytest.mark.parametrize(
    "received",
    [
        "2026-03-06T22:00",  # Friday evening: not the weekend
        "2026-03-09T00:00:00",  # the first second of Monday
        "2026-04-06T10:00",  # Easter Monday: a holiday, but not a weekend day
        # 22:30 UTC on Sunday 31 May is 00:30 CEST on Monday: not the weekend.
        "2026-05-31T22:30:00+00:00",
    ],
)
def test_weekend_noon_rule_only_on_weekends(received: str) -> None:
    assert CAL.weekend_noon_rule(at(received)) is None


def test_weekend_noon_rule_respects_closing_days() -> None:
    # Sat 9 May 2026 with Mon 11 May as a closing day -> Tuesday noon.
    calendar = Calendar(closing_days=frozenset({date(2026, 5, 11)}))
    deadline = calendar.weekend_noon_rule(at("2026-05-09T09:00"))
    assert deadline is not None
    assert iso(deadline) == "2026-05-12T12:00:00+02:00"


# ---------------------------------------------------------------------------------
# Statutory terms (Algemene termijnenwet).
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        # Ends on Saturday 7 March 2026 -> Monday 9 March.
        ("2026-03-07T23:59:59.999999", "2026-03-09T23:59:59.999999+01:00"),
        # Ends on Tuesday 5 May 2026: a working day, but an Atw holiday every year.
        ("2026-05-05T23:59:59.999999", "2026-05-06T23:59:59.999999+02:00"),
        # Ends on Christmas Day 2026 (Fri): 26 (Sat), 27 (Sun) -> Monday 28 December.
        ("2026-12-25T23:59:59.999999", "2026-12-28T23:59:59.999999+01:00"),
        # Ends on Good Friday 2026: weekend, Easter Monday -> Tuesday 7 April.
        ("2026-04-03T23:59:59.999999", "2026-04-07T23:59:59.999999+02:00"),
        # Ends on King's Day 2025, Saturday 26 April -> Monday 28 April.
        ("2025-04-26T23:59:59.999999", "2025-04-28T23:59:59.999999+02:00"),
        # Ends on Ascension Day 2026 (Thu) -> Friday 15 May (closing days do not count).
        ("2026-05-14T23:59:59.999999", "2026-05-15T23:59:59.999999+02:00"),
        # Ends on New Year's Day 2027 (Fri) -> Monday 4 January.
        ("2027-01-01T23:59:59.999999", "2027-01-04T23:59:59.999999+01:00"),
        # Ends on an ordinary Thursday: unchanged.
        ("2026-12-24T23:59:59.999999", "2026-12-24T23:59:59.999999+01:00"),
        # 23:30 UTC on Friday is 00:30 Saturday in Amsterdam -> Monday.
        ("2026-03-06T23:30:00+00:00", "2026-03-09T23:59:59.999999+01:00"),
        # Unchanged, but returned as Amsterdam time: 12:00 UTC is 13:00 CET.
        ("2026-03-06T12:00:00+00:00", "2026-03-06T13:00:00+01:00"),
    ],
)
def test_statutory_term_end(end: str, expected: str) -> None:
    assert iso(statutory_term_end(at(end))) == expected


def test_closing_days_do_not_extend_statutory_terms() -> None:
    # The bridge day Fri 15 May 2026 closes the office but is not an Atw day.
    end = BRIDGE.end_of_day(date(2026, 5, 15))
    assert iso(statutory_term_end(end)) == "2026-05-15T23:59:59.999999+02:00"


def test_six_week_objection_term() -> None:
    # Term starts Fri 13 Nov 2026; 6 weeks = 42 days -> Fri 25 Dec 2026 (Christmas),
    # extended past Boxing Day (Sat) and Sunday to Monday 28 December.
    nominal = CAL.add_calendar_days(at("2026-11-13T10:00"), 42)
    assert iso(nominal) == "2026-12-25T23:59:59.999999+01:00"
    assert iso(statutory_term_end(nominal)) == "2026-12-28T23:59:59.999999+01:00"


# ---------------------------------------------------------------------------------
# Inputs and values.
# ---------------------------------------------------------------------------------


def test_end_of_day() -> None:
    # The last representable instant of the day: a day-based term ends at midnight.
    assert time(23, 59, 59, 999999) == END_OF_DAY
    assert iso(CAL.end_of_day(date(2026, 3, 29))) == "2026-03-29T23:59:59.999999+02:00"


@pytest.mark.parametrize(
    ("calendar", "received", "last_day"),
    [
        # Mon 9 Mar 2026 + 2 working days: Tue 10 (1), Wed 11 (2).
        (CAL, "2026-03-09T10:00", "2026-03-11"),
        # Thu 2 Apr 2026: Good Friday, the weekend and Easter Monday skipped; summer time.
        (CAL, "2026-04-02T15:00", "2026-04-08"),
        # Autumn DST weekend: Fri 23 Oct 2026 -> Mon 26 (1), Tue 27 (2), in winter time.
        (CAL, "2026-10-23T12:00", "2026-10-27"),
    ],
)
def test_a_working_day_deadline_includes_the_last_half_second_of_its_day(
    calendar: Calendar, received: str, last_day: str
) -> None:
    # A stop at 23:59:59.5 on the last day is in time: the term ends at midnight, not
    # at the last whole second. Midnight itself belongs to the next day.
    deadline = calendar.add_working_days(at(received), 2)
    assert deadline.date().isoformat() == last_day
    assert deadline >= at(f"{last_day}T23:59:59.500000")
    assert deadline < at(f"{last_day}T00:00:00") + timedelta(days=1)


@pytest.mark.parametrize(
    "call",
    [
        lambda: CAL.add_working_days(datetime(2026, 3, 9, 10), 1),  # noqa: DTZ001
        lambda: CAL.add_calendar_days(datetime(2026, 3, 9, 10), 1),  # noqa: DTZ001
        lambda: CAL.add_elapsed(datetime(2026, 3, 9, 10), timedelta(1)),  # noqa: DTZ001
        lambda: CAL.add_office_time(datetime(2026, 3, 9, 10), timedelta(1)),  # noqa: DTZ001
        lambda: CAL.is_open(datetime(2026, 3, 9, 10)),  # noqa: DTZ001
        lambda: statutory_term_end(datetime(2026, 3, 9, 10)),  # noqa: DTZ001
    ],
)
def test_naive_datetimes_are_refused(call: object) -> None:
    assert callable(call)
    with pytest.raises(ValueError, match="naive"):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: CAL.add_elapsed(at("2026-03-09T10:00"), timedelta(seconds=-1)),
        lambda: CAL.add_office_time(at("2026-03-09T10:00"), timedelta(seconds=-1)),
    ],
)
def test_negative_durations_are_refused(call: object) -> None:
    assert callable(call)
    with pytest.raises(ValueError, match="negative"):
        call()


def test_datetimes_are_not_dates() -> None:
    # A datetime never equals a date, so it would silently miss every holiday.
    with pytest.raises(TypeError):
        CAL.is_working_day(datetime(2026, 12, 25, tzinfo=UTC))
    with pytest.raises(TypeError):
        Calendar(closing_days=frozenset({datetime(2026, 5, 15, tzinfo=UTC)}))


def test_values_are_hashable_and_read_only() -> None:
    hours = {1: [(time(9), time(12))]}
    office = OfficeHours(hours)  # type: ignore[arg-type]  # lists are accepted and copied
    hours[1].append((time(13), time(17)))
    assert office.by_weekday[1] == ((time(9), time(12)),)
    assert office.by_weekday[7] == ()
    assert office == OfficeHours({1: ((time(9), time(12)),), 6: ()})
    assert hash(Calendar(closing_days={date(2026, 5, 15)})) == hash(BRIDGE)  # type: ignore[arg-type]
    assert OfficeHours.default() == CAL.office_hours


@pytest.mark.parametrize(
    ("by_weekday", "message"),
    [
        ({1: ((time(17), time(8, 30)),)}, "not before"),
        ({1: ((time(9), time(9)),)}, "not before"),
        ({1: ((time(9), time(12)), (time(11), time(14)))}, "overlapping"),
        ({1: ((time(13), time(17)), (time(9), time(12)))}, "unsorted"),
        ({6: ((time(9), time(12)),)}, "weekends"),
        ({0: ((time(9), time(12)),)}, "1 \\(Monday\\) to 7"),
        ({}, "at least one weekday"),
        ({1: ((time(9, tzinfo=UTC), time(12)),)}, "wall times"),
        ({1: ((time(9),),)}, "pair"),
    ],
)
def test_office_hours_validation(by_weekday: dict[int, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OfficeHours(by_weekday)  # type: ignore[arg-type]


def test_touching_intervals_are_allowed() -> None:
    # [08:30, 12:30) and [12:30, 17:00) do not overlap: together one long interval.
    split = Calendar(
        office_hours=OfficeHours({1: ((time(8, 30), time(12, 30)), (time(12, 30), time(17)))})
    )
    monday = at("2026-03-09T00:00")
    assert split.office_time_between(monday, monday + timedelta(days=1)) == timedelta(hours=8.5)
    assert split.is_open(at("2026-03-09T12:30"))


def test_any_fixed_offset_is_accepted() -> None:
    # 10:00 at -05:00 on Friday is 16:00 CET: 1 h Friday, 1 h Monday.
    start = datetime(2026, 3, 6, 10, tzinfo=timezone(timedelta(hours=-5)))
    assert iso(CAL.add_office_time(start, timedelta(hours=2))) == "2026-03-09T09:30:00+01:00"
