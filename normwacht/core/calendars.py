"""Calendar arithmetic for the norms: working days, office hours and statutory terms.

Pure: no clock and no I/O. Every input instant must be timezone-aware (any offset);
every output is an aware datetime in the calendar's zone (Europe/Amsterdam unless
configured otherwise). Sums and differences of instants are taken in UTC, because
Python compares and subtracts two datetimes that share a tzinfo by wall clock, which
is off by an hour across a DST change.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import holidays
from holidays.constants import OPTIONAL, PUBLIC
from holidays.countries.netherlands import Netherlands

__all__ = [
    "AMSTERDAM",
    "DEFAULT_CALENDAR",
    "END_OF_DAY",
    "HOLIDAY_YEARS",
    "Calendar",
    "NoHolidaysFor",
    "OfficeHours",
    "dutch_public_holidays",
    "statutory_holidays",
    "statutory_term_end",
]

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# The last representable instant of a local day: a day-based deadline includes the whole
# day up to midnight, so a stop at 23:59:59.5 on the last day is in time. Shown to people
# as 23:59:59 (the CLI prints such instants to whole seconds). The time exists on every
# day in Amsterdam: DST changes happen at 02:00/03:00.
END_OF_DAY = time(23, 59, 59, 999999)
NOON = time(12, 0)

_ONE_DAY = timedelta(days=1)
_ZERO = timedelta(0)
_SATURDAY = 5  # date.weekday(): Monday is 0

Interval = tuple[time, time]
DayHours = tuple[Interval, ...]

# ---------------------------------------------------------------------------------
# Holidays
#
# What `holidays` (0.109, the locked version) gives for NL:
#   PUBLIC:   New Year's Day, Good Friday, Easter Sunday, Easter Monday, King's Day
#             (27 April, 26 April when the 27th is a Sunday), Liberation Day only when
#             year % 5 == 0, Ascension Day, Whit Sunday, Whit Monday, Christmas Day,
#             Boxing Day.
#   OPTIONAL: Liberation Day (5 May) in every year.
# Earlier releases kept Good Friday and Liberation Day in OPTIONAL only (vacanza/holidays
# issue #1653), so we always ask for PUBLIC + OPTIONAL and apply the lustrum rule for
# 5 May ourselves: the result is then the same whichever of the two categories a release
# files them under. Easter Sunday and Whit Sunday are dropped: they are always Sundays,
# the Algemene termijnenwet does not name them, and no answer here depends on them.
# Every other holiday that can fall on a Sunday has a fixed date, so "a Sunday that is
# not a fixed-date feast" picks out exactly those two without relying on translated
# names. The unit tests pin the full sets for several years, so a change of the package
# data fails loudly. The package has no NL data before 1966 (the Atw's first full year).
# ---------------------------------------------------------------------------------

_FIXED_DATE_FEASTS = frozenset({(1, 1), (5, 5), (12, 25), (12, 26)})
_LIBERATION_DAY = (5, 5)


HOLIDAY_YEARS = range(Netherlands.start_year, Netherlands.end_year + 1)
"""The years the package has Dutch holidays for (1966-2100 in the pinned release)."""


class NoHolidaysFor(ValueError):
    """A working day, office hour or statutory term in a year without holiday data: refused,
    because counting every day as a working day would give a wrong deadline silently."""

    def __init__(self, year: int) -> None:
        super().__init__(
            f"no Dutch public holidays are known for {year} (the holidays package has "
            f"{HOLIDAY_YEARS.start}-{HOLIDAY_YEARS.stop - 1}), so no working day or "
            "statutory term can be counted in it"
        )


@cache
def statutory_holidays(year: int) -> frozenset[date]:
    """The Algemene termijnenwet's holidays in `year` (`NoHolidaysFor` outside `HOLIDAY_YEARS`).

    New Year's Day, Good Friday, Easter Monday, King's Day, 5 May (every year),
    Ascension Day, Whit Monday, Christmas Day and Boxing Day.
    """
    if year not in HOLIDAY_YEARS:
        raise NoHolidaysFor(year)
    package = holidays.country_holidays("NL", years=year, categories=(PUBLIC, OPTIONAL))
    return frozenset(
        day
        for day in package
        if day.year == year
        and (day.isoweekday() != 7 or (day.month, day.day) in _FIXED_DATE_FEASTS)
    )


@cache
def dutch_public_holidays(year: int) -> frozenset[date]:
    """The holidays that are not working days in `year`.

    The statutory list, except that 5 May (Liberation Day) is a day off only in
    lustrum years (year % 5 == 0).
    """
    days = statutory_holidays(year)
    if year % 5 == 0:
        return days
    return frozenset(day for day in days if (day.month, day.day) != _LIBERATION_DAY)


def _is_statutory_rest_day(day: date) -> bool:
    return day.weekday() >= _SATURDAY or day in statutory_holidays(day.year)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: the instant needs a timezone")
    return at


def _a_date(day: date) -> date:
    # datetime is a subclass of date, but never equal to one: a datetime would
    # silently miss every holiday and closing day.
    if isinstance(day, datetime) or not isinstance(day, date):
        raise TypeError(f"expected a date, got {day!r}")
    return day


def statutory_term_end(end: datetime, zone: ZoneInfo = AMSTERDAM) -> datetime:
    """A statutory term's end, extended by the Algemene termijnenwet (article 1).

    `end` is the term's nominal end. If its local date is a Saturday, Sunday or
    statutory holiday, the term runs to the end (`END_OF_DAY` local, inclusive) of the
    next day that is none of those; otherwise `end` is returned unchanged, as local
    time. Municipal closing days do not extend a statutory term.
    """
    local = _aware(end).astimezone(zone)
    day = local.date()
    if not _is_statutory_rest_day(day):
        return local
    while _is_statutory_rest_day(day):
        day += _ONE_DAY
    return datetime.combine(day, END_OF_DAY, tzinfo=zone)


# ---------------------------------------------------------------------------------
# Office hours
# ---------------------------------------------------------------------------------


class _Week(Mapping[int, DayHours]):
    """A read-only, hashable weekday -> intervals mapping with all seven days present.

    OfficeHours is a frozen value and Calendar hashes it; a plain dict would make both
    unhashable and let a caller change the hours after validation.
    """

    __slots__ = ("_days",)

    def __init__(self, days: tuple[DayHours, ...]) -> None:
        self._days = days

    def __getitem__(self, weekday: int) -> DayHours:
        if not isinstance(weekday, int) or not 1 <= weekday <= 7:
            raise KeyError(weekday)
        return self._days[weekday - 1]

    def __iter__(self) -> Iterator[int]:
        return iter(range(1, 8))

    def __len__(self) -> int:
        return 7

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Week):
            return self._days == other._days
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash(self._days)

    def __repr__(self) -> str:
        return repr({weekday: hours for weekday, hours in self.items() if hours})


@dataclass(frozen=True, slots=True)
class OfficeHours:
    """Opening intervals per ISO weekday (1=Monday..7=Sunday), each [open, close) in local time.

    Open is included and close is excluded. Intervals lie within one local day, are
    sorted and do not overlap (one may close when the next opens). A weekday that is
    missing, or maps to (), has no office hours. Saturday and Sunday are never working
    days, so giving them intervals is an error rather than a silent no-op. After
    construction `by_weekday` is a read-only mapping holding all seven weekdays.
    """

    by_weekday: Mapping[int, DayHours]

    def __post_init__(self) -> None:
        unknown = [key for key in self.by_weekday if key not in range(1, 8)]
        if unknown:
            raise ValueError(f"weekdays are 1 (Monday) to 7 (Sunday), got {unknown}")
        week = tuple(
            _check_day(weekday, self.by_weekday.get(weekday, ())) for weekday in range(1, 8)
        )
        if not any(week[:5]):
            raise ValueError("office hours must open on at least one weekday")
        object.__setattr__(self, "by_weekday", _Week(week))

    @classmethod
    def default(cls) -> OfficeHours:
        """Monday to Friday, 08:30 (included) to 17:00 (excluded)."""
        day = ((time(8, 30), time(17, 0)),)
        return cls(dict.fromkeys(range(1, 6), day))


def _check_day(weekday: int, intervals: object) -> DayHours:
    """`intervals` validated and copied into tuples (a caller may pass lists)."""
    if not isinstance(intervals, tuple | list):
        raise ValueError(f"weekday {weekday}: expected a sequence of (open, close) pairs")
    if intervals and weekday >= 6:
        raise ValueError(f"weekday {weekday}: weekends are never working days")
    checked: list[Interval] = []
    for interval in intervals:
        if not (isinstance(interval, tuple | list) and len(interval) == 2):
            raise ValueError(f"weekday {weekday}: {interval!r} is not an (open, close) pair")
        opens, closes = interval
        if not (isinstance(opens, time) and isinstance(closes, time)):
            raise ValueError(f"weekday {weekday}: {interval!r} is not a pair of times")
        if opens.tzinfo is not None or closes.tzinfo is not None:
            raise ValueError(f"weekday {weekday}: office hours are local wall times")
        if not opens < closes:
            raise ValueError(f"weekday {weekday}: opens {opens} is not before closes {closes}")
        if checked and opens < checked[-1][1]:
            raise ValueError(f"weekday {weekday}: intervals unsorted or overlapping")
        checked.append((opens, closes))
    return tuple(checked)


@lru_cache(maxsize=4096)
def _utc_intervals(
    zone: ZoneInfo, hours: DayHours, day: date
) -> tuple[tuple[datetime, datetime], ...]:
    """One day's office intervals as UTC instants [open, close).

    Cached because the hot paths visit the same few days over and over. A wall time
    in a DST gap is read with fold=0 (PEP 495), so the interval keeps its real length.
    """
    result = []
    for opens, closes in hours:
        start = datetime.combine(day, opens, tzinfo=zone).astimezone(UTC)
        end = datetime.combine(day, closes, tzinfo=zone).astimezone(UTC)
        if start < end:  # an interval swallowed whole by a DST gap has no time in it
            result.append((start, end))
    return tuple(result)


# ---------------------------------------------------------------------------------
# The calendar
# ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Calendar:
    """One municipality's calendar: zone, office hours and extra closing days.

    A working day is Monday to Friday, not a `dutch_public_holidays` day and not one
    of `closing_days`. Office hours apply on working days only.
    """

    zone: ZoneInfo = AMSTERDAM
    office_hours: OfficeHours = field(default_factory=OfficeHours.default)
    # The municipality's own extra non-working days (e.g. a bridge day).
    closing_days: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        # Accept any iterable of dates, but store a frozenset so the value stays hashable.
        object.__setattr__(
            self, "closing_days", frozenset(_a_date(day) for day in self.closing_days)
        )

    # -- days ---------------------------------------------------------------------

    def _is_working(self, day: date) -> bool:
        return (
            day.weekday() < _SATURDAY
            and day not in dutch_public_holidays(day.year)
            and day not in self.closing_days
        )

    def is_working_day(self, day: date) -> bool:
        """Monday to Friday, not a public holiday and not a closing day."""
        return self._is_working(_a_date(day))

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        day = _a_date(day) + _ONE_DAY
        while not self._is_working(day):
            day += _ONE_DAY
        return day

    def end_of_day(self, day: date) -> datetime:
        """`END_OF_DAY` (23:59:59.999999) local on `day`.

        The last instant a day-based deadline includes: the day is in time up to midnight.
        """
        return datetime.combine(_a_date(day), END_OF_DAY, tzinfo=self.zone)

    def _local_date(self, at: datetime) -> date:
        return _aware(at).astimezone(self.zone).date()

    def add_working_days(self, received: datetime, days: int) -> datetime:
        """End of the `days`-th working day after the local date of `received` (`END_OF_DAY`).

        The day of receipt is never counted, whatever its hour or kind; counting starts
        the day after. `days` = 1 is "the next working day". `days` < 1 is a ValueError.
        """
        if days < 1:
            raise ValueError(f"working days must be at least 1, got {days}")
        day = self._local_date(received)
        remaining = days
        while remaining:
            day += _ONE_DAY
            if self._is_working(day):
                remaining -= 1
        return self.end_of_day(day)

    def add_calendar_days(self, received: datetime, days: int) -> datetime:
        """End of the day `days` calendar days after the local date of `received` (`END_OF_DAY`).

        For "within N weeks" pass 7 * N. The end is not moved off weekends or holidays;
        only statutory terms move (see `statutory_term_end`). `days` < 1 is a ValueError.
        """
        if days < 1:
            raise ValueError(f"calendar days must be at least 1, got {days}")
        return self.end_of_day(self._local_date(received) + timedelta(days=days))

    def add_elapsed(self, start: datetime, duration: timedelta) -> datetime:
        """`start` + `duration` of real time, 24/7 (summed in UTC, so DST does not bend it)."""
        if duration < _ZERO:
            raise ValueError(f"duration must not be negative, got {duration}")
        return (_aware(start).astimezone(UTC) + duration).astimezone(self.zone)

    # -- office hours -------------------------------------------------------------

    def _day_intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        if not self._is_working(day):
            return ()
        hours = self.office_hours.by_weekday[day.isoweekday()]
        if not hours:
            return ()
        return _utc_intervals(self.zone, hours, day)

    def _intervals_from(self, at_utc: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Office intervals, as UTC [open, close), that end after `at_utc`, in order.

        Infinite: OfficeHours guarantees at least one weekday opens, and holidays and
        closing days are finite per year.
        """
        day = at_utc.astimezone(self.zone).date()
        while True:
            for opens, closes in self._day_intervals(day):
                if closes > at_utc:
                    yield opens, closes
            day += _ONE_DAY

    def is_open(self, at: datetime) -> bool:
        """True inside an office interval: open included, close excluded."""
        at_utc = _aware(at).astimezone(UTC)
        day = at_utc.astimezone(self.zone).date()
        return any(opens <= at_utc < closes for opens, closes in self._day_intervals(day))

    def next_opening(self, at: datetime) -> datetime:
        """`at` itself if the office is open then, else the next opening instant after it.

        At a closing instant the office is closed, so that gives the next opening.
        """
        at_utc = _aware(at).astimezone(UTC)
        opens, _ = next(self._intervals_from(at_utc))
        return max(opens, at_utc).astimezone(self.zone)

    def add_office_time(self, start: datetime, duration: timedelta) -> datetime:
        """The earliest instant by which `duration` of office time has elapsed since `start`.

        Only real seconds inside office intervals count, so a clock started outside
        office hours starts at the next opening. Being the earliest such instant, a
        positive duration that runs out exactly at a closing instant ends at that
        closing instant (not at the next opening): every result for a positive duration
        is inside office hours or exactly at a closing instant. A zero duration returns
        `start` itself (adding nothing moves nothing; `next_opening` is separate), so
        `office_time_between(start, result) == duration` always. Negative: ValueError.
        """
        if duration < _ZERO:
            raise ValueError(f"duration must not be negative, got {duration}")
        if not duration:
            return _aware(start).astimezone(self.zone)
        at_utc = _aware(start).astimezone(UTC)
        remaining = duration
        for opens, closes in self._intervals_from(at_utc):
            begin = max(opens, at_utc)
            available = closes - begin
            if remaining <= available:  # "<=": ending at a close stays at that close
                return (begin + remaining).astimezone(self.zone)
            remaining -= available
        raise AssertionError("unreachable: _intervals_from never ends")  # pragma: no cover

    def office_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Office time inside [start, end): start included, end excluded.

        Zero when `end` is not after `start` (no time has elapsed).
        """
        start_utc = _aware(start).astimezone(UTC)
        end_utc = _aware(end).astimezone(UTC)
        total = _ZERO
        if end_utc <= start_utc:
            return total
        for opens, closes in self._intervals_from(start_utc):
            if opens >= end_utc:
                break
            total += min(closes, end_utc) - max(opens, start_utc)
        return total

    def weekend_noon_rule(self, received: datetime) -> datetime | None:
        """12:00 local on the next working day if `received` is on a local Saturday or Sunday.

        None on any other day, holidays included: the social media promise names the
        weekend only. Noon is the deadline instant itself (a reply at 12:00:00 is in time
        if the caller's comparison is inclusive, as the engine's is).
        """
        day = self._local_date(received)
        if day.weekday() < _SATURDAY:
            return None
        return datetime.combine(self.next_working_day(day), NOON, tzinfo=self.zone)


DEFAULT_CALENDAR = Calendar()
