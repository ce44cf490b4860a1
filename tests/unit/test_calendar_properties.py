"""Properties of the calendar arithmetic that hold for every input, checked with hypothesis."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo

from hypothesis import given, settings
from hypothesis import strategies as st

from normwacht.core.calendars import (
    AMSTERDAM,
    DEFAULT_CALENDAR,
    Calendar,
    OfficeHours,
    statutory_term_end,
)

# No deadline: the first example of a run fills the holiday caches, and CI runs on a
# slow two-core machine. Fewer examples than the default keep the file under a few
# seconds; the table tests pin the hand-worked cases.
FAST = settings(deadline=None, max_examples=150)

ONE_MICROSECOND = timedelta(microseconds=1)


def utc(at: datetime) -> datetime:
    """`at` in UTC, for comparing: two datetimes that share a tzinfo compare and subtract
    by wall clock, ignoring `fold`, which is wrong in the hour the clocks go back."""
    return at.astimezone(UTC)


# Instants from 2024 to 2032 near DST changes and holidays alike, presented in several
# offsets: inputs may carry any offset, and the local date must be taken in Amsterdam.
ZONES: list[tzinfo] = [
    AMSTERDAM,
    UTC,
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=14)),
]
# EU clocks change at 01:00 UTC on the last Sundays of March and October.
DST_CHANGES = [
    datetime(year, month, last_day, 1, tzinfo=UTC)
    - timedelta(days=(date(year, month, last_day).weekday() + 1) % 7)
    for year in range(2024, 2033)
    for month, last_day in ((3, 31), (10, 31))
]
anywhere = st.datetimes(
    min_value=datetime(2024, 1, 1),  # noqa: DTZ001  (read as UTC below)
    max_value=datetime(2032, 12, 31),  # noqa: DTZ001
).map(lambda naive: naive.replace(tzinfo=UTC))
# Uniform instants rarely land in the hour the clocks go back, where wall-clock
# comparisons go wrong, so a third of the examples are drawn within 3 h of a change.
near_dst = st.builds(
    lambda change, offset: change + offset,
    st.sampled_from(DST_CHANGES),
    st.timedeltas(min_value=timedelta(hours=-3), max_value=timedelta(hours=3)),
)
instants = st.builds(
    lambda instant, zone: instant.astimezone(zone),
    st.one_of(anywhere, anywhere, near_dst),
    st.sampled_from(ZONES),
)
two_instants = st.tuples(instants, instants).map(lambda pair: sorted(pair, key=utc))

LUNCH = ((time(8, 30), time(12, 30)), (time(13, 30), time(17, 0)))
OFFICE_HOURS = [
    OfficeHours.default(),
    OfficeHours(dict.fromkeys(range(1, 6), LUNCH)),
    # Closed on Wednesday, short Friday, touching intervals on Monday.
    OfficeHours(
        {
            1: ((time(8), time(12)), (time(12), time(16))),
            2: ((time(9), time(17)),),
            4: ((time(9), time(12)), (time(19), time(21))),
            5: ((time(9), time(12)),),
        }
    ),
    # Open only on Tuesday mornings: long searches for the next opening.
    OfficeHours({2: ((time(10), time(11)),)}),
]
calendars = st.builds(
    Calendar,
    office_hours=st.sampled_from(OFFICE_HOURS),
    closing_days=st.frozensets(
        st.dates(min_value=date(2024, 1, 1), max_value=date(2033, 12, 31)), max_size=30
    ),
)
# Office-time durations from zero to a few working weeks, down to the microsecond.
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=120))
working_days = st.integers(min_value=1, max_value=40)


def is_closing_instant(calendar: Calendar, at: datetime) -> bool:
    """Closed at `at`, but open just before it."""
    return not calendar.is_open(at) and calendar.is_open(utc(at) - ONE_MICROSECOND)


# -- never earlier than the start ------------------------------------------------------


@FAST
@given(calendars, instants, working_days)
def test_working_days_deadline_is_after_receipt(cal: Calendar, start: datetime, n: int) -> None:
    deadline = cal.add_working_days(start, n)
    assert utc(deadline) > utc(start)
    assert deadline.tzinfo is AMSTERDAM
    assert cal.is_working_day(deadline.date())


@FAST
@given(instants, st.integers(min_value=1, max_value=400))
def test_calendar_days_deadline_is_after_receipt(start: datetime, n: int) -> None:
    deadline = DEFAULT_CALENDAR.add_calendar_days(start, n)
    assert utc(deadline) > utc(start)
    assert deadline.date() - start.astimezone(AMSTERDAM).date() == timedelta(days=n)


@FAST
@given(calendars, instants, durations)
def test_office_deadline_is_not_before_start(cal: Calendar, start: datetime, d: timedelta) -> None:
    assert utc(cal.add_office_time(start, d)) >= utc(start)


@FAST
@given(instants, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)))
def test_elapsed_is_exact_real_time(start: datetime, d: timedelta) -> None:
    deadline = DEFAULT_CALENDAR.add_elapsed(start, d)
    assert utc(deadline) - utc(start) == d
    assert deadline.tzinfo is AMSTERDAM


@FAST
@given(calendars, instants)
def test_weekend_noon_rule(cal: Calendar, received: datetime) -> None:
    deadline = cal.weekend_noon_rule(received)
    weekend = received.astimezone(AMSTERDAM).isoweekday() >= 6
    assert (deadline is not None) is weekend
    if deadline is not None:
        assert utc(deadline) > utc(received)
        assert deadline.time() == time(12)
        assert cal.is_working_day(deadline.date())
        assert deadline.date() - received.astimezone(AMSTERDAM).date() <= timedelta(days=10)


@FAST
@given(instants)
def test_statutory_term_end_never_earlier_and_lands_on_a_statutory_working_day(
    end: datetime,
) -> None:
    extended = statutory_term_end(end)
    assert utc(extended) >= utc(end)
    assert extended.isoweekday() <= 5
    assert utc(statutory_term_end(extended)) == utc(extended)  # applying it twice changes nothing


# -- monotone in the start -------------------------------------------------------------


@FAST
@given(calendars, two_instants, working_days)
def test_working_days_monotone(cal: Calendar, starts: list[datetime], n: int) -> None:
    early, late = starts
    assert utc(cal.add_working_days(early, n)) <= utc(cal.add_working_days(late, n))


@FAST
@given(two_instants, st.integers(min_value=1, max_value=400))
def test_calendar_days_monotone(starts: list[datetime], n: int) -> None:
    early, late = starts
    cal = DEFAULT_CALENDAR
    assert utc(cal.add_calendar_days(early, n)) <= utc(cal.add_calendar_days(late, n))


@FAST
@given(calendars, two_instants, durations)
def test_office_time_monotone(cal: Calendar, starts: list[datetime], d: timedelta) -> None:
    early, late = starts
    assert utc(cal.add_office_time(early, d)) <= utc(cal.add_office_time(late, d))


# -- composition -----------------------------------------------------------------------


@FAST
@given(calendars, instants, working_days, working_days)
def test_working_days_compose(cal: Calendar, received: datetime, n: int, m: int) -> None:
    # add_working_days(received, n) is the end of some working day D. Counting m more
    # working days from the end of D (D itself is the "day of receipt" and does not
    # count) gives the (n + m)-th working day after the day of receipt.
    end_of_d = cal.add_working_days(received, n)
    assert utc(cal.add_working_days(end_of_d, m)) == utc(cal.add_working_days(received, n + m))


@FAST
@given(calendars, instants, durations, durations)
def test_office_time_composes(
    cal: Calendar, start: datetime, first: timedelta, second: timedelta
) -> None:
    # Also for zero legs and legs that end at a closing instant: the second leg then
    # starts from that close, which is closed, so it runs from the next opening.
    halfway = cal.add_office_time(start, first)
    assert utc(cal.add_office_time(halfway, second)) == utc(
        cal.add_office_time(start, first + second)
    )


# -- office hours ----------------------------------------------------------------------


@FAST
@given(calendars, instants, durations)
def test_office_deadline_is_open_or_exactly_at_a_closing_instant(
    cal: Calendar, start: datetime, d: timedelta
) -> None:
    # As documented on add_office_time: for a positive duration, inside [open, close),
    # or exactly at a close when the time runs out there (never moved on to the next
    # opening). A zero duration returns the start unchanged.
    deadline = cal.add_office_time(start, d)
    if d:
        assert cal.is_open(deadline) or is_closing_instant(cal, deadline)
    else:
        assert utc(deadline) == utc(start)


@FAST
@given(calendars, instants, durations)
def test_office_time_between_inverts_add_office_time(
    cal: Calendar, start: datetime, d: timedelta
) -> None:
    assert cal.office_time_between(start, cal.add_office_time(start, d)) == d


@FAST
@given(calendars, two_instants)
def test_office_time_between_is_bounded_by_real_time(
    cal: Calendar, instants_: list[datetime]
) -> None:
    start, end = instants_
    between = cal.office_time_between(start, end)
    assert timedelta(0) <= between <= utc(end) - utc(start)
    assert cal.office_time_between(end, start) == timedelta(0)


@FAST
@given(calendars, instants)
def test_next_opening_agrees_with_is_open(cal: Calendar, at: datetime) -> None:
    opening = cal.next_opening(at)
    assert utc(opening) >= utc(at)
    assert cal.is_open(opening)
    assert (utc(opening) == utc(at)) is cal.is_open(at)
    # Nothing is open in between: no office time passes before the next opening.
    assert cal.office_time_between(at, opening) == timedelta(0)
