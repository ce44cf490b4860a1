"""The norm catalogue as data: what starts a clock, what stops it, how long it may run.

The catalogue file (`normwacht/data/catalogue.yaml`) and the municipalities'
configuration (`normwacht/data/municipalities.yaml`) are parsed elsewhere; this
module validates their content and answers the engine's questions: which norms
an event concerns, and each norm's deadline and at-risk moment on a municipality's
calendar.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Annotated, Any, Literal

from holidays.version import __version__ as holidays_version
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from normwacht.core.calendars import (
    AMSTERDAM,
    DEFAULT_CALENDAR,
    Calendar,
    OfficeHours,
    statutory_term_end,
)
from normwacht.core.events import EVENT_TYPES, TYPE_PREFIX, Municipality

__all__ = [
    "DEFAULT_OBJECTIVE",
    "Catalogue",
    "CatalogueSpec",
    "Municipalities",
    "NormSpec",
    "Notify",
    "Term",
    "cross_check",
]

_SHORT_TYPES = frozenset(t.removeprefix(TYPE_PREFIX) for t in EVENT_TYPES)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
_MICROSECOND = timedelta(microseconds=1)

Notify = Literal["page", "notice", "count"]
"""Who hears of one clock's breach or risk: `page` the on-call person at any hour, `notice`
the municipality's team in its office hours, `count` no one (aggregate alerts only)."""
DEFAULT_OBJECTIVE = 0.9
Objective = Annotated[float, Field(gt=0, lt=1, description="The share of clocks to be met.")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: Any) -> timedelta:
    """`20s`, `5m`, `2h` (or a number of seconds)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a duration like 20s, 5m or 2h")
    return timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])


Duration = Annotated[timedelta, Field(description="e.g. 20s, 5m, 2h")]


class Match(_Spec):
    """An event of type `event` whose data equals `where` (a list: any of) and has `has`.

    (`event`, not `on`: YAML 1.1 reads a bare `on` as the boolean true.)
    """

    event: str
    where: dict[str, Any] = {}
    absent: list[str] = []
    has: list[str] = []

    @field_validator("event")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in _SHORT_TYPES:
            raise ValueError(f"unknown event type {value!r}")
        return value

    def matches(self, type_: str, data: Mapping[str, Any]) -> bool:
        if type_ != self.event:
            return False
        for field, wanted in self.where.items():
            value = data.get(field)
            if isinstance(wanted, list):
                if value not in wanted:
                    return False
            elif value != wanted:
                return False
        return all(data.get(f) is None for f in self.absent) and all(
            data.get(f) is not None for f in self.has
        )


class Start(Match):
    start_field: str | None = Field(
        default=None,
        description="A datetime in the data; the clock starts at the later of it and the event.",
    )
    term_start_field: str | None = Field(
        default=None,
        description="A date in the data: the term's first day (the day after 'receipt').",
    )


class Stop(Match):
    outcome: Literal["met", "excluded"] = "met"
    late: Literal["breached", "met"] = Field(
        default="breached",
        description="What the event means after the deadline: `met` where arriving late is normal.",
    )
    has_if_started_with: dict[str, Any] = Field(
        default={}, description="Apply `has` only when the starting event's data equals this."
    )
    by_start_field: str | None = Field(
        default=None,
        description="In time only before this datetime of the starting event (not the deadline).",
    )

    def stops(self, type_: str, data: Mapping[str, Any], start_data: Mapping[str, Any]) -> bool:
        if type_ != self.event:
            return False
        if self.has_if_started_with and any(
            start_data.get(k) != v for k, v in self.has_if_started_with.items()
        ):
            return Match(event=self.event, where=self.where, absent=self.absent).matches(
                type_, data
            )
        return self.matches(type_, data)


_TERM_KINDS = ("elapsed", "office_hours", "working_days", "days", "weeks",
               "end_of_date_field", "at_time_field", "same_as")  # fmt: skip


class Term(_Spec):
    """Exactly one way of computing a deadline; see docs/NORMS.md for each."""

    elapsed: Duration | None = None
    office_hours: Duration | None = None
    weekend_noon: time | None = None
    working_days: Annotated[int, Field(ge=1)] | None = None
    days: Annotated[int, Field(ge=1)] | None = None
    weeks: Annotated[int, Field(ge=1)] | None = None
    statutory: bool = False
    end_of_date_field: str | None = None
    at_time_field: str | None = None
    grace: Duration = timedelta(0)
    same_as: str | None = None

    @field_validator("elapsed", "office_hours", "grace", mode="before")
    @classmethod
    def _parse_duration(cls, value: Any) -> Any:
        return None if value is None else _duration(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> Term:
        kinds = [k for k in _TERM_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"a term needs exactly one of {', '.join(_TERM_KINDS)}; got {kinds or 'none'}"
            )
        if self.statutory and kinds[0] not in ("days", "weeks"):
            raise ValueError("statutory applies to days or weeks only")
        if self.weekend_noon is not None and kinds[0] != "office_hours":
            raise ValueError("weekend_noon applies to office_hours only")
        return self

    def deadline(
        self,
        start: datetime,
        data: Mapping[str, Any],
        calendar: Calendar,
        pauses: Sequence[tuple[datetime, datetime]] = (),
    ) -> datetime | None:
        """The last instant at which the norm is still met (inclusive), in UTC.

        `pauses` are [paused, resumed) intervals; each lengthens the term by its own
        length counted in the term's unit (working days, calendar days, office time
        or real time), and a statutory term is moved by the Algemene termijnenwet
        after that. UTC because aware datetimes in a zone's DST fold compare unequal
        to the same instant in another zone (PEP 495); local time is for display.
        """
        local = self._local_deadline(start, data, calendar, pauses)
        return None if local is None else local.astimezone(UTC)

    def _local_deadline(
        self,
        start: datetime,
        data: Mapping[str, Any],
        calendar: Calendar,
        pauses: Sequence[tuple[datetime, datetime]],
    ) -> datetime | None:
        # Real time: two datetimes sharing a zone subtract by wall clock, an hour off
        # across a DST change, so the pauses are measured in UTC.
        elapsed = sum(
            (resumed.astimezone(UTC) - paused.astimezone(UTC) for paused, resumed in pauses),
            timedelta(),
        )
        if self.elapsed is not None:
            return calendar.add_elapsed(start, self.elapsed + elapsed)
        if self.office_hours is not None:
            office = sum(
                (calendar.office_time_between(paused, resumed) for paused, resumed in pauses),
                timedelta(),
            )
            local = start.astimezone(calendar.zone)
            if self.weekend_noon is not None and local.isoweekday() >= 6:
                first = calendar.next_working_day(local.date())
                noon = datetime.combine(first, self.weekend_noon, calendar.zone)
                return calendar.add_office_time(noon, office) if office else noon
            return calendar.add_office_time(start, self.office_hours + office)
        if self.working_days is not None:
            extra = sum(_working_days_in(calendar, paused, resumed) for paused, resumed in pauses)
            return calendar.add_working_days(start, self.working_days + extra)
        if self.days is not None or self.weeks is not None:
            extra = sum(_days_in(calendar, paused, resumed) for paused, resumed in pauses)
            end = calendar.add_calendar_days(start, (self.days or 7 * (self.weeks or 0)) + extra)
            return statutory_term_end(end, calendar.zone) if self.statutory else end
        if self.end_of_date_field is not None:
            value = data.get(self.end_of_date_field)
            if value is None:
                return None
            # Real time after the day's end: adding a timedelta to a local datetime would
            # be wall-clock arithmetic, an hour off across a DST change.
            return calendar.add_elapsed(calendar.end_of_day(date.fromisoformat(value)), elapsed)
        if self.at_time_field is not None:
            value = data.get(self.at_time_field)
            if value is None:
                return None
            return calendar.add_elapsed(datetime.fromisoformat(value), self.grace + elapsed)
        raise ValueError("same_as is resolved by the catalogue")

    def at_risk(
        self,
        start: datetime,
        deadline: datetime,
        share: float,
        calendar: Calendar,
        pauses: Sequence[tuple[datetime, datetime]] = (),
    ) -> datetime | None:
        """UTC instant at which `share` of the clock's time from `start` to `deadline` has run.

        Time within `pauses` ([paused, resumed) intervals, as for `deadline`) does not
        run: a clock paused for weeks is not at risk the moment it resumes.

        None when `deadline` <= `start`, or (for any term but `elapsed`) when no office
        time lies between them.

        For an `elapsed` term (24/7) the time is real time: `share` of the span. For every
        other kind (office hours, working days, days and weeks, the end of a date, an
        appointment time) it is office time on `calendar`: the instant by which `share` of
        the office time in [start, deadline) has elapsed. The people who act on an at-risk
        warning work office hours, so the moment falls inside office hours (or exactly at a
        closing instant, when the share runs out there) rather than on a night, a weekend
        or a holiday. Either way it is never after `deadline`. `share` lies in (0, 1), as in
        the catalogue (ValueError otherwise); a `same_as` term is resolved by the catalogue
        first (ValueError).
        """
        if not 0 < share < 1:
            raise ValueError(f"share must lie between 0 and 1 (exclusive), got {share}")
        if self.same_as is not None:
            raise ValueError("same_as is resolved by the catalogue")
        if start.utcoffset() is None or deadline.utcoffset() is None:
            raise ValueError("naive datetime: start and deadline need a timezone")
        start, deadline = start.astimezone(UTC), deadline.astimezone(UTC)
        if deadline <= start:
            return None
        between: Callable[[datetime, datetime], timedelta] = calendar.office_time_between
        add: Callable[[datetime, timedelta], datetime] = calendar.add_office_time
        if self.elapsed is not None:  # real time, in UTC (a wall clock is off across DST)
            between, add = _real_time_between, calendar.add_elapsed
        running = between(start, deadline)
        # The pauses within the clock's span, in order: the stretches between them run.
        stopped: list[tuple[datetime, datetime]] = []
        if pauses:  # (most clocks have none: a phone call's is computed for every call)
            clipped = sorted(
                (max(paused.astimezone(UTC), start), min(resumed.astimezone(UTC), deadline))
                for paused, resumed in pauses
            )
            stopped = [(paused, resumed) for paused, resumed in clipped if paused < resumed]
            for paused, resumed in stopped:
                running -= between(paused, resumed)
        if running <= timedelta(0):
            return None
        # At least a microsecond: a share of a sliver of office time can round to zero,
        # and adding zero office time leaves `start`, which may be outside office hours.
        left = max(running * share, _MICROSECOND)
        at = start
        for paused, resumed in stopped:
            if paused > at:
                before = between(at, paused)
                if before >= left:
                    break
                left -= before
            at = max(at, resumed)
        return add(at, left).astimezone(UTC)


def _real_time_between(start: datetime, end: datetime) -> timedelta:
    return end - start  # both in UTC


def _working_days_in(calendar: Calendar, paused: datetime, resumed: datetime) -> int:
    """Working days d with paused's local date < d <= resumed's local date."""
    day = paused.astimezone(calendar.zone).date()
    last = resumed.astimezone(calendar.zone).date()
    count = 0
    while day < last:
        day += timedelta(days=1)
        count += calendar.is_working_day(day)
    return count


def _days_in(calendar: Calendar, paused: datetime, resumed: datetime) -> int:
    """Calendar days from paused's local date to resumed's (0 within one day)."""
    days = (resumed.astimezone(calendar.zone).date() - paused.astimezone(calendar.zone).date()).days
    return max(0, days)


class LongerTerm(_Spec):
    """A longer term that replaces the norm's own when the start or a later event says so."""

    when_started_with: dict[str, Any] = {}
    events: list[str] = []
    term: Term


class Limit(_Spec):
    """A count rule: more than `max` events of type `event` breaches at once."""

    event: str
    max: Annotated[int, Field(ge=0)]


class Availability(_Spec):
    """Share of `up` probes per calendar month."""

    minimum: Annotated[float, Field(gt=0, le=1)]


class NormSpec(_Spec):
    id: Annotated[str, Field(pattern=r"^[a-z]+(\.[a-z_]+)+$")]
    channel: str
    section: str
    seed: str = Field(description="The seed's own Dutch wording this norm implements.")
    reading: str = Field(description="How we read it, in English.")
    starts: list[Start] = []
    stops: list[Stop] = []
    term: Term | None = None
    longer_term: LongerTerm | None = None
    breach_on: list[Match] = []
    limit: Limit | None = None
    availability: Availability | None = None
    at_risk: Annotated[float, Field(gt=0, lt=1)] | None = 0.75
    pausable: bool = False
    one_clock_at_a_time: bool = Field(
        default=False,
        description=(
            "A start while a clock of this norm runs belongs to that clock: a call answered "
            "again after a transfer is still one call, and its transfers count on."
        ),
    )
    notify: Notify = "notice"
    objective: Objective = DEFAULT_OBJECTIVE

    @model_validator(mode="after")
    def _consistent(self) -> NormSpec:
        if self.availability is None and not self.starts:
            raise ValueError("a clock needs at least one start")
        if self.availability is not None and (self.starts or self.stops or self.term):
            raise ValueError("an availability norm has no starts, stops or term")
        return self

    @cached_property
    def start_types(self) -> frozenset[str]:
        return frozenset(s.event for s in self.starts) | (
            {"website.probe"} if self.availability else frozenset()
        )


class _MunicipalitySpec(_Spec):
    office_hours: dict[Literal["monday", "tuesday", "wednesday", "thursday", "friday",
                               "saturday", "sunday"], list[str]] | None = None  # fmt: skip
    closing_days: list[date] = []
    terms: dict[str, Term] = {}
    notify: dict[str, Notify] = {}
    objectives: dict[str, Objective] = {}

    @field_validator("office_hours")
    @classmethod
    def _intervals(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        for intervals in (value or {}).values():
            for interval in intervals:
                if not re.match(r"^\d\d:\d\d-\d\d:\d\d$", interval):
                    raise ValueError(f"{interval!r} is not an interval like 08:30-17:00")
        if value is not None:
            _office_hours(value)  # the calendar's own rules: ordered, no overlap, weekdays only
        return value

    def calendar(self) -> Calendar:
        hours = (
            OfficeHours.default() if self.office_hours is None else _office_hours(self.office_hours)
        )
        return Calendar(
            zone=AMSTERDAM, office_hours=hours, closing_days=frozenset(self.closing_days)
        )


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _office_hours(by_day: Mapping[Any, list[str]]) -> OfficeHours:
    return OfficeHours(
        by_weekday={
            _WEEKDAYS.index(day) + 1: tuple(
                (time.fromisoformat(i[:5]), time.fromisoformat(i[6:])) for i in intervals
            )
            for day, intervals in by_day.items()
        }
    )


class Municipalities(_Spec):
    municipalities: dict[
        Literal["bergen", "uitgeest", "castricum", "heiloo"], _MunicipalitySpec
    ] = {}


class CatalogueSpec(_Spec):
    version: Literal[1]
    norms: list[NormSpec]


Location = tuple[int | str, ...]


def cross_check(spec: Mapping[str, Any], places: Mapping[str, Any]) -> list[tuple[Location, str]]:
    """Mistakes between entries (ids, `same_as`, overrides), each at its location.

    Raises pydantic's ValidationError first if either document is malformed itself.
    """
    catalogue = CatalogueSpec.model_validate(spec)
    municipalities = Municipalities.model_validate(places)
    mistakes: list[tuple[Location, str]] = []
    first: dict[str, int] = {}
    for i, norm in enumerate(catalogue.norms):
        if norm.id in first:
            mistakes.append((("norms", i, "id"), f"duplicate norm ids: [{norm.id!r}]"))
        first.setdefault(norm.id, i)
    terms = {n.id: n.term for n in catalogue.norms}
    for i, norm in enumerate(catalogue.norms):
        if norm.term is None or norm.term.same_as is None:
            continue
        if norm.term.same_as not in terms:
            mistakes.append(
                (("norms", i, "term", "same_as"), f"unknown norm {norm.term.same_as!r}")
            )
            continue
        chain = [norm.id]
        target: str | None = norm.term.same_as
        while target is not None and target in terms and target not in chain:
            chain.append(target)
            term = terms[target]
            target = term.same_as if term else None
        if target in chain:
            path = " -> ".join([*chain, target])
            mistakes.append((("norms", i, "term", "same_as"), f"same_as goes round: {path}"))
    mistakes.extend(_override_mistakes(municipalities, terms))
    return mistakes


def _override_mistakes(
    municipalities: Municipalities, terms: Mapping[str, Term | None]
) -> list[tuple[Location, str]]:
    mistakes: list[tuple[Location, str]] = []
    for name, place in municipalities.municipalities.items():
        for norm_id, term in place.terms.items():
            at: Location = ("municipalities", name, "terms", norm_id)
            if norm_id not in terms:
                mistakes.append((at, f"unknown norm {norm_id!r}"))
            elif term.same_as is not None and term.same_as not in terms:
                mistakes.append(((*at, "same_as"), f"unknown norm {term.same_as!r}"))
        for setting in ("notify", "objectives"):
            for norm_id in getattr(place, setting):
                if norm_id not in terms:
                    mistakes.append(
                        (("municipalities", name, setting, norm_id), f"unknown norm {norm_id!r}")
                    )
    return mistakes


class Catalogue:
    """Validated norms plus each municipality's calendar and term overrides."""

    def __init__(
        self, spec: Mapping[str, Any], municipalities: Mapping[str, Any] | None = None
    ) -> None:
        if mistakes := cross_check(spec, municipalities or {}):
            raise ValueError("; ".join(f"{'.'.join(map(str, at))}: {m}" for at, m in mistakes))
        self._spec = CatalogueSpec.model_validate(spec)
        self._places = Municipalities.model_validate(municipalities or {})
        self.norms: Mapping[str, NormSpec] = {n.id: n for n in self._spec.norms}
        self._calendars: dict[str, Calendar] = {
            name: p.calendar() for name, p in self._places.municipalities.items()
        }
        by_type: dict[str, list[NormSpec]] = {}
        for norm in self._spec.norms:
            for type_ in norm.start_types:
                by_type.setdefault(type_, []).append(norm)
        self._started_by = {t: tuple(n) for t, n in by_type.items()}

    @cached_property
    def fingerprint(self) -> str:
        """A hash of what deadlines depend on here: norms, calendars and holiday data.

        With a case's own facts and the engine's code, that is everything. Computed on
        first use, as only the processor needs it.
        """
        parts = (self._spec.model_dump_json(), self._places.model_dump_json(), holidays_version)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def started_by(self, short_type: str) -> tuple[NormSpec, ...]:
        """Norms a clock of which this event type can start."""
        return self._started_by.get(short_type, ())

    def calendar(self, municipality: str) -> Calendar:
        return self._calendars.get(municipality, DEFAULT_CALENDAR)

    def deadline(
        self, norm_id: str, received: datetime, municipality: str | None = None
    ) -> datetime:
        """When a clock of this norm started at `received` is due, in local time.

        KeyError for an unknown norm; ValueError for a norm whose deadline needs more
        than a start time (an event's data, a count, probes).
        """
        _, term, calendar = self._from_start(norm_id, municipality)
        deadline = term.deadline(received, {}, calendar)
        assert deadline is not None
        return deadline.astimezone(calendar.zone)

    def at_risk(
        self, norm_id: str, received: datetime, municipality: str | None = None
    ) -> datetime | None:
        """When a clock of this norm started at `received` is at risk, in local time.

        The rule is `Term.at_risk`'s, with the norm's own share. None for a norm that is
        never at risk (`at_risk: null`). The same errors as `deadline`, for the same norms.
        """
        norm, term, calendar = self._from_start(norm_id, municipality)
        deadline = term.deadline(received, {}, calendar)
        assert deadline is not None
        if norm.at_risk is None:
            return None
        at_risk = term.at_risk(received, deadline, norm.at_risk, calendar)
        return None if at_risk is None else at_risk.astimezone(calendar.zone)

    def _from_start(
        self, norm_id: str, municipality: str | None
    ) -> tuple[NormSpec, Term, Calendar]:
        """The norm, its term and calendar, for a clock known only by its start time."""
        norm = self.norms[norm_id]
        calendar = self.calendar(municipality) if municipality else DEFAULT_CALENDAR
        term = self.term(norm, municipality or "")
        if term is None or term.end_of_date_field or term.at_time_field:
            raise ValueError(f"{norm_id} has no deadline from a start time alone")
        return norm, term, calendar

    @cached_property
    def channels(self) -> tuple[str, ...]:
        """Every norm's channel, in the catalogue's order, once."""
        return tuple(dict.fromkeys(n.channel for n in self._spec.norms))

    def channel_of(self, short_type: str) -> str | None:
        """The channel of the first norm that names this event type; None for an event no
        norm names (`case.*`, which concern every norm of a case)."""
        for norm in self._spec.norms:
            named = {m.event for m in (*norm.stops, *norm.breach_on)} | norm.start_types
            if norm.limit:
                named.add(norm.limit.event)
            if norm.longer_term:
                named.update(norm.longer_term.events)
            if short_type in named:
                return norm.channel
        return None

    @property
    def municipalities(self) -> tuple[str, ...]:
        """Every municipality, configured or not, in the order of the event vocabulary."""
        return tuple(m.value for m in Municipality)

    def notify(self, norm_id: str, municipality: str) -> Notify:
        """Who hears of one clock of this norm here; KeyError for an unknown norm."""
        place = self._places.municipalities.get(municipality)  # type: ignore[call-overload]
        return (place.notify.get(norm_id) if place else None) or self.norms[norm_id].notify

    def objective(self, norm_id: str, municipality: str) -> float:
        """The share of this norm's clocks to be met here; KeyError for an unknown norm."""
        place = self._places.municipalities.get(municipality)  # type: ignore[call-overload]
        found = place.objectives.get(norm_id) if place else None
        return self.norms[norm_id].objective if found is None else found

    def term(self, norm: NormSpec, municipality: str) -> Term | None:
        """The norm's term in this municipality, with `same_as` followed."""
        place = self._places.municipalities.get(municipality)  # type: ignore[call-overload]
        term = place.terms.get(norm.id) if place else None
        term = term or norm.term
        if term is not None and term.same_as is not None:
            return self.term(self.norms[term.same_as], municipality)
        return term
