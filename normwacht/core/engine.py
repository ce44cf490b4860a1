"""The SLA engine: pure functions from (case, event) and (case, instant) to a new case and outcomes.

No clock, no I/O: the caller says what time it is. The processor keeps a `Case` per
subject in its table, feeds it every event with `apply`, asks `due` when a
deadline has passed, and publishes the outcomes that come back.

Outcomes are decided on event time: an event dated before the deadline that
arrives after the breach was published turns the breach into `met` (or
`excluded`), and that correction is an outcome of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, computed_field

from normwacht.core.events import Event
from normwacht.core.norms import CATALOGUE, Norm

__all__ = ["SEEN_LIMIT", "Case", "Clock", "Kind", "Outcome", "Step", "apply", "due", "open_clocks"]

SEEN_LIMIT = 256
"""How many recent (source, id) pairs a case remembers to drop duplicates."""


class Kind(StrEnum):
    """A clock's state, and the kind of the outcome that announces it."""

    OPENED = "opened"
    MET = "met"
    BREACHED = "breached"
    EXCLUDED = "excluded"
    CANCELLED = "cancelled"


FINAL_KINDS = frozenset({Kind.MET, Kind.BREACHED, Kind.EXCLUDED, Kind.CANCELLED})


@dataclass(frozen=True, slots=True)
class Clock:
    """One norm on one case: its `instance` counts from 1 per norm and case."""

    norm: str
    instance: int
    started_at: datetime
    deadline: datetime
    status: Kind = Kind.OPENED
    decided_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status is Kind.OPENED


@dataclass(frozen=True, slots=True)
class Case:
    subject: str
    municipality: str
    clocks: tuple[Clock, ...] = ()
    seen: tuple[str, ...] = ()


class Outcome(BaseModel):
    """A clock's change of state, as published on the outcomes topic.

    `id` is stable for (subject, norm, instance, kind), so any consumer can drop
    a duplicate; a correction has its own kind and therefore its own id. On input
    `id` is ignored and derived again, so it can never disagree with the fields.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    subject: str
    norm: str
    instance: int
    kind: Kind
    channel: str
    municipality: str
    started_at: AwareDatetime
    deadline: AwareDatetime
    decided_at: AwareDatetime | None = None
    corrects: Kind | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def id(self) -> str:
        return f"{self.subject}/{self.norm}/{self.instance}/{self.kind}"


@dataclass(frozen=True, slots=True)
class Step:
    """What applying an event or an instant did: the new case and its outcomes."""

    case: Case
    outcomes: tuple[Outcome, ...] = ()


def apply(case: Case | None, event: Event, norms: Mapping[str, Norm] = CATALOGUE) -> Step:
    """Apply one event to a case (None: the case is new). A duplicate changes nothing."""
    if case is None:
        case = Case(subject=event.subject, municipality=event.municipality.value)
    if event.dedup_key in case.seen:
        return Step(case)
    clocks = list(case.clocks)
    outcomes: list[Outcome] = []
    for norm in norms.values():
        if event.type in norm.starts_on:
            clock = _start(norm, clocks, event.time)
            clocks.append(clock)
            outcomes.append(_outcome(case, norm, clock))
        if event.type in norm.stops_on:
            _stop(case, norm, clocks, event, outcomes)
    seen = (*case.seen[-(SEEN_LIMIT - 1) :], event.dedup_key)
    return Step(replace(case, clocks=tuple(clocks), seen=seen), tuple(outcomes))


def due(case: Case, now: datetime, norms: Mapping[str, Norm] = CATALOGUE) -> Step:
    """Breach every open clock whose deadline lies strictly before `now`.

    The breach is dated at its deadline, not at `now`, so a replay decides exactly
    what the live run decided however late the question is asked.
    """
    if not any(c.is_open and c.deadline < now for c in case.clocks):
        return Step(case)
    clocks: list[Clock] = []
    outcomes: list[Outcome] = []
    for clock in case.clocks:
        if clock.is_open and clock.deadline < now:
            breached = replace(clock, status=Kind.BREACHED, decided_at=clock.deadline)
            outcomes.append(_outcome(case, norms[clock.norm], breached))
            clocks.append(breached)
        else:
            clocks.append(clock)
    return Step(replace(case, clocks=tuple(clocks)), tuple(outcomes))


def open_clocks(case: Case) -> Iterator[Clock]:
    """The case's clocks that still run, each with its deadline."""
    return (clock for clock in case.clocks if clock.is_open)


def _start(norm: Norm, clocks: list[Clock], at: datetime) -> Clock:
    instance = 1 + sum(1 for c in clocks if c.norm == norm.id)
    return Clock(norm=norm.id, instance=instance, started_at=at, deadline=norm.deadline(at))


def _stop(case: Case, norm: Norm, clocks: list[Clock], event: Event, out: list[Outcome]) -> None:
    """Decide the clock this event stops: the latest one of the norm started by then."""
    index = _latest_started(clocks, norm.id, event.time)
    if index is None:
        return
    clock = clocks[index]
    in_time = event.time <= clock.deadline
    wanted = Kind.MET if event.type in norm.met_on else Kind.EXCLUDED
    if clock.is_open:
        if in_time:
            decided = replace(clock, status=wanted, decided_at=event.time)
        else:
            decided = replace(clock, status=Kind.BREACHED, decided_at=clock.deadline)
        clocks[index] = decided
        out.append(_outcome(case, norm, decided))
    elif clock.status is Kind.BREACHED and in_time:
        # The event happened in time but reached us after the breach went out.
        corrected = replace(clock, status=wanted, decided_at=event.time)
        clocks[index] = corrected
        out.append(_outcome(case, norm, corrected, corrects=Kind.BREACHED))


def _latest_started(clocks: list[Clock], norm_id: str, at: datetime) -> int | None:
    """Index of the latest clock of the norm started at or before `at`, if any."""
    started = [i for i, c in enumerate(clocks) if c.norm == norm_id and c.started_at <= at]
    return started[-1] if started else None


def _outcome(case: Case, norm: Norm, clock: Clock, corrects: Kind | None = None) -> Outcome:
    return Outcome(
        subject=case.subject,
        norm=norm.id,
        instance=clock.instance,
        kind=clock.status,
        channel=norm.channel,
        municipality=case.municipality,
        started_at=clock.started_at,
        deadline=clock.deadline,
        decided_at=clock.decided_at,
        corrects=corrects,
    )
