"""The norm catalogue as data: what starts a clock, what stops it, how long it may run.

The catalogue file (`normwacht/data/catalogue.yaml`) and the municipalities'
configuration (`normwacht/data/municipalities.yaml`) are parsed elsewhere; this
module validates their content and answers the engine's questions: which norms
an event concerns, and each norm's deadline on a municipality's calendar.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from normwacht.core.calendars import (
    AMSTERDAM,
    DEFAULT_CALENDAR,
    Calendar,
    OfficeHours,
    statutory_term_end,
)
from normwacht.core.events import EVENT_TYPES, TYPE_PREFIX

__all__ = ["Catalogue", "Municipalities", "NormSpec", "Term"]

_SHORT_TYPES = frozenset(t.removeprefix(TYPE_PREFIX) for t in EVENT_TYPES)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


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
        description="In time only up to this datetime of the starting event (not the deadline).",
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
        self, start: datetime, data: Mapping[str, Any], calendar: Calendar
    ) -> datetime | None:
        """The last instant at which the norm is still met (inclusive), in UTC.

        UTC because aware datetimes in a zone's DST fold compare unequal to the same
        instant in another zone (PEP 495); local time is for display only.
        """
        local = self._local_deadline(start, data, calendar)
        return None if local is None else local.astimezone(UTC)

    def _local_deadline(
        self, start: datetime, data: Mapping[str, Any], calendar: Calendar
    ) -> datetime | None:
        if self.elapsed is not None:
            return calendar.add_elapsed(start, self.elapsed)
        if self.office_hours is not None:
            if self.weekend_noon is not None and (noon := calendar.weekend_noon_rule(start)):
                return noon
            return calendar.add_office_time(start, self.office_hours)
        if self.working_days is not None:
            return calendar.add_working_days(start, self.working_days)
        if self.days is not None or self.weeks is not None:
            end = calendar.add_calendar_days(start, self.days or 7 * (self.weeks or 0))
            return statutory_term_end(end, calendar.zone) if self.statutory else end
        if self.end_of_date_field is not None:
            value = data.get(self.end_of_date_field)
            return None if value is None else calendar.end_of_day(date.fromisoformat(value))
        if self.at_time_field is not None:
            value = data.get(self.at_time_field)
            return None if value is None else datetime.fromisoformat(value) + self.grace
        raise ValueError("same_as is resolved by the catalogue")


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

    @field_validator("office_hours")
    @classmethod
    def _intervals(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        for intervals in (value or {}).values():
            for interval in intervals:
                if not re.match(r"^\d\d:\d\d-\d\d:\d\d$", interval):
                    raise ValueError(f"{interval!r} is not an interval like 08:30-17:00")
        return value

    def calendar(self) -> Calendar:
        if self.office_hours is None:
            hours = OfficeHours.default()
        else:
            days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
            hours = OfficeHours(
                by_weekday={
                    days.index(day) + 1: tuple(
                        (time.fromisoformat(i[:5]), time.fromisoformat(i[6:])) for i in intervals
                    )
                    for day, intervals in self.office_hours.items()
                }
            )
        return Calendar(
            zone=AMSTERDAM, office_hours=hours, closing_days=frozenset(self.closing_days)
        )


class Municipalities(_Spec):
    municipalities: dict[
        Literal["bergen", "uitgeest", "castricum", "heiloo"], _MunicipalitySpec
    ] = {}


class _CatalogueSpec(_Spec):
    version: Literal[1]
    norms: list[NormSpec]

    @model_validator(mode="after")
    def _unique_and_resolvable(self) -> _CatalogueSpec:
        ids = [n.id for n in self.norms]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate norm ids: {duplicates}")
        for norm in self.norms:
            if norm.term and norm.term.same_as and norm.term.same_as not in ids:
                raise ValueError(f"{norm.id}: same_as names unknown norm {norm.term.same_as!r}")
        return self


class Catalogue:
    """Validated norms plus each municipality's calendar and term overrides."""

    def __init__(
        self, spec: Mapping[str, Any], municipalities: Mapping[str, Any] | None = None
    ) -> None:
        self._spec = _CatalogueSpec.model_validate(spec)
        self._places = Municipalities.model_validate(municipalities or {})
        for name, place in self._places.municipalities.items():
            unknown = set(place.terms) - {n.id for n in self._spec.norms}
            if unknown:
                raise ValueError(f"municipalities.{name}.terms: unknown norms {sorted(unknown)}")
        self.norms: Mapping[str, NormSpec] = {n.id: n for n in self._spec.norms}
        self._calendars: dict[str, Calendar] = {
            name: p.calendar() for name, p in self._places.municipalities.items()
        }
        by_type: dict[str, list[NormSpec]] = {}
        for norm in self._spec.norms:
            for type_ in norm.start_types:
                by_type.setdefault(type_, []).append(norm)
        self._started_by = {t: tuple(n) for t, n in by_type.items()}

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
        norm = self.norms[norm_id]
        calendar = self.calendar(municipality) if municipality else DEFAULT_CALENDAR
        term = self.term(norm, municipality or "")
        if term is None or term.end_of_date_field or term.at_time_field:
            raise ValueError(f"{norm_id} has no deadline from a start time alone")
        deadline = term.deadline(received, {}, calendar)
        assert deadline is not None
        return deadline.astimezone(calendar.zone)

    def term(self, norm: NormSpec, municipality: str) -> Term | None:
        """The norm's term in this municipality, with `same_as` followed."""
        place = self._places.municipalities.get(municipality)  # type: ignore[call-overload]
        term = place.terms.get(norm.id) if place else None
        term = term or norm.term
        if term is not None and term.same_as is not None:
            return self.term(self.norms[term.same_as], municipality)
        return term
