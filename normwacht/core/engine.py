"""The SLA engine: pure functions from (case, fact, now) to a new case and its outcomes.

No clock, no I/O: the caller says what time it is. A case keeps the facts (events)
it has seen, in event-time order, and the outcomes already published. Every call
derives each norm's clocks afresh from the facts and publishes the difference, so

- events may arrive in any order: the derivation sorts them by event time;
- a duplicate (same `source` and `id`) changes nothing;
- an event dated before a deadline that arrives after its breach was published turns
  the breach into `met` (or `excluded`), and that correction is an outcome of its own;
- replaying the same facts at the same `now` gives exactly the same outcomes.

Intervals: a clock is met by a stop event at or before its deadline (inclusive); it
is breached once `now` is strictly after the deadline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, computed_field

from normwacht.core.calendars import AMSTERDAM, Calendar
from normwacht.core.catalogue import Catalogue, NormSpec, Term
from normwacht.core.events import TYPE_PREFIX, Event

__all__ = [
    "FINAL_KINDS",
    "Case",
    "Clock",
    "Fact",
    "Kind",
    "Outcome",
    "Step",
    "apply",
    "clocks",
    "due",
    "next_due",
]


class Kind(StrEnum):
    """A clock's state, and the kind of the outcome that announces it."""

    OPENED = "opened"
    AT_RISK = "at_risk"
    MET = "met"
    BREACHED = "breached"
    EXCLUDED = "excluded"
    CANCELLED = "cancelled"


FINAL_KINDS = frozenset({Kind.MET, Kind.BREACHED, Kind.EXCLUDED, Kind.CANCELLED})


@dataclass(frozen=True, slots=True)
class Fact:
    """What the engine needs of an event. `type` is short (`call.queued`); `data` is JSON-like."""

    type: str
    time: datetime
    key: str
    data: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, event: Event) -> Fact:
        return cls(
            type=event.type.removeprefix(TYPE_PREFIX),
            time=event.time.astimezone(UTC),
            key=event.dedup_key,
            data=event.data.model_dump(mode="json", exclude_none=True),
        )


@dataclass(frozen=True, slots=True)
class Clock:
    """One norm on one case, as derived from the facts. `instance` counts from 1 per norm."""

    norm: str
    instance: int
    started_at: datetime
    deadline: datetime | None
    status: Kind = Kind.OPENED
    decided_at: datetime | None = None
    at_risk_at: datetime | None = None
    paused: bool = False

    @property
    def is_open(self) -> bool:
        return self.status is Kind.OPENED


@dataclass(frozen=True, slots=True)
class Case:
    subject: str
    municipality: str
    facts: tuple[Fact, ...] = ()
    published: tuple[tuple[str, int, str], ...] = ()
    """(norm, instance, kind) of every outcome published for this case."""


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
    deadline: AwareDatetime | None
    decided_at: AwareDatetime | None = None
    corrects: Kind | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def id(self) -> str:
        return f"{self.subject}/{self.norm}/{self.instance}/{self.kind}"


@dataclass(frozen=True, slots=True)
class Step:
    """What applying a fact or an instant did: the new case, its clocks, the outcomes to publish."""

    case: Case
    outcomes: tuple[Outcome, ...] = ()
    clocks: tuple[Clock, ...] = ()

    @property
    def next_due(self) -> datetime | None:
        """The earliest instant at which `due` would publish something new for this case."""
        return next_due(self.case, self.clocks)


def apply(case: Case | None, event: Event | Fact, now: datetime, catalogue: Catalogue,
          *, subject: str | None = None, municipality: str | None = None) -> Step:  # fmt: skip
    """Add one event to a case (None: a new case) and publish what changed by `now`."""
    if isinstance(event, Fact):
        fact = event
        if case is None:
            if subject is None or municipality is None:
                raise ValueError("a new case from a bare fact needs subject and municipality")
            case = Case(subject=subject, municipality=municipality)
    else:
        fact = Fact.of(event)
        case = case or Case(subject=event.subject, municipality=event.municipality.value)
    if fact.type == _PROBES:
        facts = _count_probe(case.facts, fact)
    elif any(f.key == fact.key for f in case.facts):
        return _publish(case, now, catalogue)
    else:
        facts = _insert_in_time_order(case.facts, fact)
    # The constructor, not `dataclasses.replace`: this is the hot path (a third cheaper).
    return _publish(Case(case.subject, case.municipality, facts, case.published), now, catalogue)


def due(case: Case, now: datetime, catalogue: Catalogue) -> Step:
    """Publish what `now` decides: breaches past their deadline, clocks at risk."""
    return _publish(case, now, catalogue)


def next_due(case: Case, clocks: Iterable[Clock]) -> datetime | None:
    """The earliest instant at which `due` would publish something new for these clocks.

    A clock already decided by the `now` it was derived at, whose outcome is not yet
    published, is due at once (at its decision): a worker that takes over a case must
    publish what the one before it decided but did not get out.
    """
    published = set(case.published)
    instants = []
    for clock in clocks:
        if clock.status in FINAL_KINDS:
            if (clock.norm, clock.instance, clock.status.value) not in published:
                instants.append(clock.decided_at or clock.started_at)
            continue
        if clock.paused or clock.deadline is None:
            continue
        instants.append(clock.deadline)
        if clock.at_risk_at and (clock.norm, clock.instance, Kind.AT_RISK.value) not in published:
            instants.append(clock.at_risk_at)
    return min(instants, default=None)


def clocks(case: Case, now: datetime, catalogue: Catalogue) -> list[Clock]:
    """Every clock of the case as the facts and `now` decide it."""
    derived: list[Clock] = []
    seen: set[str] = set()
    calendar = catalogue.calendar(case.municipality)
    for type_ in sorted({f.type for f in case.facts}):
        for norm in catalogue.started_by(type_):
            if norm.id in seen:
                continue
            seen.add(norm.id)
            if norm.availability is not None:
                derived.extend(_availability(norm, case.facts, now))
                continue
            term = catalogue.term(norm, case.municipality)
            longer = norm.longer_term.term if norm.longer_term else None
            derived.extend(_Derivation(norm, term, longer, calendar).run(case.facts, now))
    return derived


# --- deriving one norm's clocks ------------------------------------------------------------


@dataclass(slots=True)
class _Run:
    """A clock while it is being derived (mutable; frozen into `Clock` at the end)."""

    instance: int
    opened_at: datetime
    started_at: datetime
    reference: datetime
    start_data: Mapping[str, Any]
    deadline: datetime | None
    at_risk_at: datetime | None = None
    status: Kind = Kind.OPENED
    decided_at: datetime | None = None
    paused_since: datetime | None = None
    pauses: list[tuple[datetime, datetime]] = field(default_factory=list)
    count: int = 0
    longer: bool = False

    def decide(self, status: Kind, at: datetime | None) -> None:
        self.status, self.decided_at = status, at


class _Derivation:
    def __init__(
        self, norm: NormSpec, term: Term | None, longer: Term | None, calendar: Calendar
    ) -> None:
        self.norm, self.term, self.longer, self.calendar = norm, term, longer, calendar

    def run(self, facts: Iterable[Fact], now: datetime) -> list[Clock]:
        runs: list[_Run] = []
        for fact in facts:
            self._settle(runs, fact.time)
            self._apply(runs, fact)
        self._settle(runs, now)
        return [
            Clock(
                norm=self.norm.id,
                instance=r.instance,
                started_at=r.started_at,
                deadline=r.deadline,
                status=r.status,
                decided_at=r.decided_at,
                at_risk_at=r.at_risk_at,
                paused=r.paused_since is not None,
            )
            for r in runs
        ]

    def _settle(self, runs: list[_Run], now: datetime) -> None:
        """Breach open, running clocks whose deadline lies strictly before `now`."""
        for run in runs:
            if (
                run.status is Kind.OPENED
                and run.paused_since is None
                and run.deadline
                and run.deadline < now
            ):
                run.decide(Kind.BREACHED, run.deadline)

    def _apply(self, runs: list[_Run], fact: Fact) -> None:
        if self._apply_to_case(runs, fact):
            return
        for start in self.norm.starts:
            if start.matches(fact.type, fact.data):
                runs.append(
                    self._start(len(runs) + 1, fact, start.start_field, start.term_start_field)
                )
                return
        current = self._current(runs, fact.time)
        if current is not None:
            self._apply_to_clock(current, fact)

    def _apply_to_case(self, runs: list[_Run], fact: Fact) -> bool:
        """Withdrawal, pause and resume concern every open clock; True if the fact was one."""
        open_runs = [r for r in runs if r.status is Kind.OPENED]
        if fact.type == "case.withdrawn":
            for run in open_runs:
                run.decide(Kind.CANCELLED, fact.time)
            return True
        if fact.type == "case.paused" and self.norm.pausable:
            for run in open_runs:
                run.paused_since = run.paused_since or fact.time
            return True
        if fact.type == "case.resumed" and self.norm.pausable:
            for run in open_runs:
                if run.paused_since is not None:
                    self._resume(run, run.paused_since, fact.time)
            return True
        return False

    def _apply_to_clock(self, run: _Run, fact: Fact) -> None:
        norm = self.norm
        for stop in norm.stops:
            if stop.stops(fact.type, fact.data, run.start_data):
                self._stop(run, stop.outcome, stop.late, stop.by_start_field, fact)
                return
        if run.status is not Kind.OPENED:
            return
        if any(m.matches(fact.type, fact.data) for m in norm.breach_on):
            run.decide(Kind.BREACHED, fact.time)
        elif norm.limit and fact.type == norm.limit.event:
            run.count += 1
            if run.count > norm.limit.max:
                run.decide(Kind.BREACHED, fact.time)
        elif norm.longer_term and fact.type in norm.longer_term.events and not run.longer:
            self._lengthen(run)

    def _start(
        self, instance: int, fact: Fact, start_field: str | None, term_start_field: str | None
    ) -> _Run:
        started_at = reference = fact.time
        if start_field and (value := fact.data.get(start_field)):
            started_at = reference = max(fact.time, datetime.fromisoformat(value))
        if term_start_field and (value := fact.data.get(term_start_field)):
            # The term's first day is given: count as if received the day before it.
            first_day = date.fromisoformat(value)
            started_at = datetime.combine(first_day, datetime.min.time(), self.calendar.zone)
            reference = started_at - timedelta(seconds=1)
        run = _Run(instance, fact.time, started_at, reference, fact.data, deadline=None)
        longer = self.norm.longer_term
        if (
            longer
            and longer.when_started_with
            and all(fact.data.get(k) == v for k, v in longer.when_started_with.items())
        ):
            run.longer = True
        self._set_deadline(run, (self.longer if run.longer else self.term))
        return run

    def _set_deadline(self, run: _Run, term: Term | None) -> None:
        run.deadline = (
            term.deadline(run.reference, run.start_data, self.calendar, run.pauses)
            if term
            else None
        )
        at_risk = self.norm.at_risk
        if run.deadline is not None and at_risk is not None and run.deadline > run.started_at:
            run.at_risk_at = run.started_at + (run.deadline - run.started_at) * at_risk
        else:
            run.at_risk_at = None

    def _lengthen(self, run: _Run) -> None:
        run.longer = True
        self._set_deadline(run, self.longer)

    def _current(self, runs: list[_Run], at: datetime) -> _Run | None:
        """The clock a stop or count event concerns: the latest one whose start event came by `at`.

        The start event's time, not the clock's start: a visitor called to the desk
        before their appointment time is served in time.
        """
        started = [r for r in runs if r.opened_at <= at]
        return started[-1] if started else None

    def _stop(self, run: _Run, outcome: str, late: str, by_field: str | None, fact: Fact) -> None:
        wanted = Kind(outcome)
        in_time = True
        if by_field and (limit := run.start_data.get(by_field)):
            in_time = fact.time <= datetime.fromisoformat(limit)
        if run.status is Kind.OPENED:
            run.decide(wanted if in_time else Kind.BREACHED, fact.time)
        elif run.status is Kind.BREACHED and late == "met":
            run.decide(wanted, fact.time)

    def _resume(self, run: _Run, paused: datetime, resumed: datetime) -> None:
        """The pause lengthens the term (in the term's own unit): compute it afresh."""
        run.paused_since = None
        run.pauses.append((paused, resumed))
        self._set_deadline(run, self.longer if run.longer else self.term)


_PROBES = "website.probe"
_RECENT_PROBES = 1024
"""Probe keys remembered per month: more than a resent batch (ingest takes at most 500)."""


def _count_probe(facts: tuple[Fact, ...], probe: Fact) -> tuple[Fact, ...]:
    """Fold a probe into its month's tally (months of Europe/Amsterdam).

    A website is probed every minute and only the share of `up` probes per month
    matters, so single probes are not kept. The keys of the most recent probes are,
    so that a resent batch (ingest asks for a retry after a 503) is not counted twice.
    """
    local = probe.time.astimezone(AMSTERDAM)
    key = f"probes {local.year:04d}-{local.month:02d}"
    up = 1 if probe.data.get("up") else 0
    for index, fact in enumerate(facts):
        if fact.key == key:
            recent = fact.data["recent"]
            if probe.key in recent:
                return facts
            data = {
                "up": fact.data["up"] + up,
                "total": fact.data["total"] + 1,
                "recent": [*recent[-(_RECENT_PROBES - 1) :], probe.key],
            }
            return (*facts[:index], replace(fact, data=data), *facts[index + 1 :])
    start = datetime(local.year, local.month, 1, tzinfo=AMSTERDAM).astimezone(UTC)
    tally = Fact(_PROBES, start, key, {"up": up, "total": 1, "recent": [probe.key]})
    return _insert_in_time_order(facts, tally)


def _availability(norm: NormSpec, facts: Iterable[Fact], now: datetime) -> list[Clock]:
    """One clock per calendar month with probes; decided when the month is over.

    The instance is the month as YYYYMM, so it is stable however probes arrive.
    """
    assert norm.availability is not None
    result = []
    for fact in facts:
        if fact.type != _PROBES:
            continue
        local = fact.time.astimezone(AMSTERDAM)
        year, month = local.year, local.month
        next_month = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=AMSTERDAM)
        end = next_month.astimezone(UTC) - timedelta(seconds=1)
        clock = Clock(norm=norm.id, instance=year * 100 + month, started_at=fact.time, deadline=end)
        if end < now:
            met = fact.data["up"] / fact.data["total"] >= norm.availability.minimum
            clock = replace(clock, status=Kind.MET if met else Kind.BREACHED, decided_at=end)
        result.append(clock)
    return result


def _publish(case: Case, now: datetime, catalogue: Catalogue) -> Step:
    # Kind is a StrEnum: a member equals and hashes as its string, so the published
    # tuples (plain strings, as stored) are looked up with members directly.
    published = set(case.published)
    finals: dict[tuple[str, int], Kind] = {
        (norm_id, instance): Kind(kind)
        for norm_id, instance, kind in case.published
        if kind in FINAL_KINDS
    }
    outcomes: list[Outcome] = []
    added: list[tuple[str, int, str]] = []
    derived = tuple(clocks(case, now, catalogue))
    for clock in derived:
        norm_id, instance = clock.norm, clock.instance

        def emit(kind: Kind, decided_at: datetime | None, corrects: Kind | None = None,
                 clock: Clock = clock) -> None:  # fmt: skip
            outcomes.append(
                Outcome(
                    subject=case.subject,
                    norm=clock.norm,
                    instance=clock.instance,
                    kind=kind,
                    channel=catalogue.norms[clock.norm].channel,
                    municipality=case.municipality,
                    started_at=clock.started_at,
                    deadline=clock.deadline,
                    decided_at=decided_at,
                    corrects=corrects,
                )
            )
            entry = (clock.norm, clock.instance, kind.value)
            if entry not in published:
                published.add(entry)
                added.append(entry)

        if (norm_id, instance, Kind.OPENED) not in published:
            emit(Kind.OPENED, clock.started_at)
        if (
            clock.status is Kind.OPENED
            and not clock.paused
            and clock.at_risk_at is not None
            and clock.at_risk_at < now
            and (norm_id, instance, Kind.AT_RISK) not in published
        ):
            emit(Kind.AT_RISK, clock.at_risk_at)
        if clock.status in FINAL_KINDS and (norm_id, instance, clock.status) not in published:
            emit(clock.status, clock.decided_at, corrects=finals.get((norm_id, instance)))
    if not outcomes:
        return Step(case, (), derived)
    updated = Case(case.subject, case.municipality, case.facts, case.published + tuple(added))
    return Step(updated, tuple(outcomes), derived)


def _insert_in_time_order(facts: tuple[Fact, ...], fact: Fact) -> tuple[Fact, ...]:
    """Keep facts sorted by event time; equal times keep their arrival order."""
    index = len(facts)
    while index and facts[index - 1].time > fact.time:
        index -= 1
    return (*facts[:index], fact, *facts[index:])
