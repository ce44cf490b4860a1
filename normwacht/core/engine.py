"""The SLA engine: pure functions from (case, fact, now) to a new case and its outcomes.

No clock, no I/O: the caller says what time it is. A case keeps the facts (events)
it has seen, in event-time order, and what it has published for each clock.

- **Identity.** A clock is its start: the fact that started it (a month, for website
  availability). Its `instance` number is given the first time that start is applied,
  counting from 1 per norm in arrival order, and kept with the case for good: a late
  start adds a clock and never renumbers the others, and a replay of the same records
  gives the same numbers.
- **Order.** Facts are applied in event-time order whatever order they arrive in
  (at equal times: starts first, then what changes a running clock before what stops
  it, a resume after a pause, withdrawals last, then by key), so the final state of
  every clock depends only on the set of facts and `now`. When a fact that arrives late
  changes a decision already published, the new decision is published with `corrects`
  naming the one it replaces; one that changes only when a clock was decided (or its
  deadline) publishes the same kind again, correcting itself.
- **Cost.** Each norm's derivation state (its open clocks and its latest one) is kept
  with the case, so a fact later than the norm's last fact (the usual arrival) advances
  just the norms it concerns, at a cost that does not grow with the case's facts; an
  earlier fact derives the norms it concerns again from their facts. That state is a
  cache: it is not stored, and a case read back from storage derives it once.
- A duplicate (same `source` and `id`) changes nothing; a case is never decided at an
  instant earlier than one it was decided at before.

Intervals: a clock is met by a stop event at or before its deadline (inclusive); it
is breached once `now` is strictly after the deadline.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, overload

from immutables import Map
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, computed_field
from pyrsistent import PVector, pvector

from normwacht.core.calendars import AMSTERDAM, Calendar
from normwacht.core.catalogue import Catalogue, NormSpec, Start, Term
from normwacht.core.events import TYPE_PREFIX, Event

__all__ = [
    "FINAL_KINDS",
    "MAX_FACTS",
    "Case",
    "Clock",
    "Fact",
    "Kind",
    "Outcome",
    "Step",
    "apply",
    "clocks",
    "due",
    "refuses",
    "view",
]

MAX_FACTS = 1_000
"""The most facts one case holds. Real cases hold a handful (a call, an e-mail thread, a
report); the bound keeps one subject from costing its partition without limit. The
processor refuses further events for a full case; website probes are tallied per month,
not kept, and do not count."""


class Kind(StrEnum):
    """A clock's state, and the kind of the outcome that announces it."""

    OPENED = "opened"
    AT_RISK = "at_risk"
    MET = "met"
    BREACHED = "breached"
    EXCLUDED = "excluded"
    CANCELLED = "cancelled"
    STOPPED_LATE = "stopped_late"
    """A breached clock's stop came after its deadline: the breach stands, the clock no
    longer runs (e.g. an urgent report acted on late). Published once per breach."""


FINAL_KINDS = frozenset({Kind.MET, Kind.BREACHED, Kind.EXCLUDED, Kind.CANCELLED})
NOTES = frozenset({Kind.AT_RISK, Kind.STOPPED_LATE})
"""Kinds that tell something about a clock without deciding it: never standing, never
corrected, and never the subject of a `corrects`."""


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
    """One norm on one case, as the facts and `now` decide it.

    `start` identifies it: the key of the fact that started it (for website
    availability, the month `YYYY-MM`); `instance` is the number that start was given.
    """

    norm: str
    instance: int
    start: str
    started_at: datetime
    deadline: datetime | None
    status: Kind = Kind.OPENED
    decided_at: datetime | None = None
    at_risk_at: datetime | None = None
    paused: bool = False
    ended_at: datetime | None = None
    """When a stop came for the clock after it was breached."""

    @property
    def is_open(self) -> bool:
        return self.status is Kind.OPENED


Instances = Mapping[str, Map[str, int]]
"""norm -> start key -> instance number. The outer mapping has a key per norm at most, so
it is a plain dict, copied on change (cheaper than a persistent map at that size)."""
Published = Map[tuple[str, int], tuple[str, ...]]
"""(norm, instance) -> the kinds published for that clock, in order."""

# Empty persistent values (immutable, so one of each serves every case). Vectors from
# pyrsistent (in C); maps and the set of keys from `immutables` (a HAMT in C: a change
# costs 0.3 us where pyrsistent's maps, written in Python, took 2.6 us, measured here).
_NO_FACTS: PVector[Fact] = pvector()
_NOTHING: Map[Any, Any] = Map()


@dataclass(frozen=True, slots=True)
class Case:
    """A case: its facts, what it published, and the numbers its starts were given.

    `derived` caches each norm's derivation state. It is not part of the case's value
    (not stored, not compared) and is derived again from the facts when missing.
    """

    subject: str
    municipality: str
    facts: PVector[Fact] = _NO_FACTS
    """In `_Index.order`: event time, then starts first and withdrawals last, then key."""
    keys: Map[str, bool] = _NOTHING
    """The keys of `facts` (a set: the values are all True), to drop duplicates."""
    published: Published = _NOTHING
    instances: Instances = field(default_factory=dict)
    now: datetime | None = None
    """The latest instant the case was decided at."""
    probes: Map[str, tuple[int, int]] = _NOTHING
    """Website probes per month `YYYY-MM` (Europe/Amsterdam): (up, total)."""
    recent_probes: bytes = b""
    """Digests of the latest probes' keys, so that a resent batch is not counted twice."""
    derived: Mapping[str, _NormState] | None = field(default=None, compare=False, repr=False)

    @property
    def full(self) -> bool:
        """Whether the case holds `MAX_FACTS` facts: the processor takes no new ones."""
        return len(self.facts) >= MAX_FACTS


class Outcome(BaseModel):
    """A clock's change of state, as published on the outcomes topic.

    `id` is stable for (subject, norm, instance, kind, revision), so any consumer can
    drop a duplicate. On input `id` is ignored and derived again, so it can never
    disagree with the fields.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    subject: str
    norm: str
    instance: int = Field(
        description=(
            "The clock's number within its norm and case. A clock is identified by its "
            "start (the event that started it; the month for website availability, where "
            "the number is YYYYMM). The number is given when that start is first seen, "
            "counting from 1 in arrival order, and never changes: a start that arrives "
            "late adds a clock, it does not renumber the others."
        )
    )
    kind: Kind
    channel: str
    municipality: str
    started_at: AwareDatetime
    deadline: AwareDatetime | None
    decided_at: AwareDatetime | None = None
    corrects: Kind | None = Field(
        default=None,
        description=(
            "The decision this outcome replaces, because an event that arrived late "
            "changed it: e.g. `met` correcting `breached`, or `opened` correcting a final "
            "kind when the clock runs again (a late pause); or the same kind, decided at "
            "another instant (an earlier stop that arrived late)."
        ),
    )
    revision: int = Field(
        default=1,
        ge=1,
        description="n when this kind is published for the n-th time for the clock.",
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def id(self) -> str:
        """`subject/norm/instance/kind`, and `/revision` from the second time on."""
        base = f"{self.subject}/{self.norm}/{self.instance}/{self.kind}"
        return base if self.revision == 1 else f"{base}/{self.revision}"


@dataclass(frozen=True)
class Step:
    """What applying a fact or an instant did.

    `clocks` is every clock of the case at that instant, derived when first read (so
    not for hot paths). `open` names each open clock's norm and whether its at-risk
    warning is out; `next_due` is the earliest instant at which `due` would publish
    something new; `changed` says whether the case's stored value changed, and
    `recorded` which clocks' entries in `published` did.
    """

    case: Case
    outcomes: tuple[Outcome, ...] = ()
    clocks: Sequence[Clock] = ()
    open: tuple[tuple[str, bool], ...] = ()
    next_due: datetime | None = None
    changed: bool = False
    recorded: tuple[Clock, ...] = ()
    """The clocks whose published kinds changed (the case's `published` says to what)."""


def apply(case: Case | None, event: Event | Fact, now: datetime, catalogue: Catalogue,
          *, subject: str | None = None, municipality: str | None = None) -> Step:  # fmt: skip
    """Add one event to a case (None: a new case) and publish what changed by `now`."""
    if isinstance(event, Fact):
        fact = event
        if case is None:
            if subject is None or municipality is None:
                raise ValueError("a new case from a bare fact needs subject and municipality")
            # A new case: nothing to derive (so nothing to look at whole, as one read back).
            case = Case(subject=subject, municipality=municipality, derived={})
    else:
        fact = Fact.of(event)
        if case is None:
            case = Case(subject=event.subject, municipality=event.municipality.value,
                        derived={})  # fmt: skip
    if fact.type == _PROBES:
        counted = _count_probe(case, fact)
        return _publish(counted, now, catalogue, changed=counted is not case)
    if fact.key in case.keys:
        return _publish(case, now, catalogue)
    index = _index(catalogue)
    read_back = case.derived is None
    case = _warm(case, index)
    assert case.derived is not None
    order = index.order(fact)
    facts = _insert(case.facts, fact, order, index.order)
    numbers = _Numbers(case.instances)
    states, touched, moved = _advance(
        case, fact, order, facts, numbers, _later(now, case.now), index
    )
    updated = Case(case.subject, case.municipality, facts, case.keys.set(fact.key, True),
                   case.published, numbers.given, case.now, case.probes, case.recent_probes,
                   states)  # fmt: skip
    return _publish(updated, now, catalogue, touched, changed=True, whole=read_back, moved=moved)


def _advance(case: Case, fact: Fact, order: _Order, facts: PVector[Fact], numbers: _Numbers,
             at: datetime, index: _Index,
             ) -> tuple[dict[str, _NormState], list[Clock], set[tuple[str, int]]]:  # fmt: skip
    """Each norm's state after the fact; the clocks that left the live set (or all of a
    norm derived again); and the clocks decided as before, at another instant (`_moved`)."""
    assert case.derived is not None
    states = dict(case.derived)  # a key per norm at most: copied, never changed in place
    touched: list[Clock] = []
    moved: set[tuple[str, int]] = set()
    for rules in index.concerned(fact.type, case.municipality):
        state = states.get(rules.id)
        if state is not None and order > state.order:
            new = state.advance(rules, fact, order, numbers)
            touched.extend(new.closed[len(state.closed) :])
            for run in state.runs:
                if run.overdue(at):  # breached by its deadline: a fact may date it earlier
                    moved |= _moved(rules.id, state, new, at)
                    break
        elif state is not None or rules.start_for(fact) is not None:
            # An earlier fact, or this norm's first start: derive it from its facts.
            new = _derive(rules, facts, numbers, index)
            touched.extend(new.closed)
            if state is not None:
                moved |= _moved(rules.id, state, new, at)
        else:
            continue  # no clock of this norm yet, and this fact starts none
        states[rules.id] = new
    return states, touched, moved


def refuses(case: Case, event: Event) -> bool:
    """Whether a full case refuses this event: a new fact beyond `MAX_FACTS`.

    A duplicate is still taken (it changes nothing), and so is a website probe (tallied).
    """
    return case.full and event.type != TYPE_PREFIX + _PROBES and event.dedup_key not in case.keys


def due(case: Case, now: datetime, catalogue: Catalogue) -> Step:
    """Publish what `now` decides: breaches past their deadline, clocks at risk."""
    return _publish(case, now, catalogue)


def view(case: Case, now: datetime, catalogue: Catalogue) -> Step:
    """The case at `now` as `due` would see it, publishing nothing.

    A clock whose change is not yet published is due at once: a worker that takes
    over a case publishes what the one before it decided but did not get out.
    """
    return _publish(case, now, catalogue, dry=True)


def clocks(case: Case, now: datetime, catalogue: Catalogue) -> list[Clock]:
    """Every clock of the case as the facts and `now` decide it, by norm (in the
    catalogue's order) and instance."""
    index = _index(catalogue)
    case = _warm(case, index)
    return _every_clock(case, _later(now, case.now), index)


# --- the order of facts, and what each concerns ----------------------------------------------

_Order = tuple[datetime, int, str]


@dataclass(frozen=True, slots=True)
class _Rules:
    """One norm's rules in one municipality, resolved once."""

    norm: NormSpec
    term: Term | None
    longer: Term | None
    calendar: Calendar
    types: frozenset[str]
    """The event types its derivation reads."""

    @property
    def id(self) -> str:
        return self.norm.id

    def start_for(self, fact: Fact) -> Start | None:
        for start in self.norm.starts:
            if start.matches(fact.type, fact.data):
                return start
        return None


def _types_read(norm: NormSpec) -> frozenset[str]:
    types = {s.event for s in norm.starts} | {s.event for s in norm.stops}
    types |= {m.event for m in norm.breach_on} | {"case.withdrawn"}
    if norm.limit:
        types.add(norm.limit.event)
    if norm.longer_term:
        types.update(norm.longer_term.events)
    if norm.pausable:
        types.update(("case.paused", "case.resumed"))
    return frozenset(types)


class _Index:
    """What the engine asks of a catalogue for every fact, worked out once per catalogue."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.timed = tuple(n for n in catalogue.norms.values() if n.availability is None)
        self.availability = tuple(n for n in catalogue.norms.values() if n.availability)
        concerned: dict[str, list[NormSpec]] = {}
        starts: set[str] = set()
        stops: set[str] = set()
        for norm in self.timed:
            own = {s.event for s in norm.starts}
            starts |= own
            stops |= _types_read(norm) - own
            for type_ in _types_read(norm):
                concerned.setdefault(type_, []).append(norm)
        self._concerned = {t: tuple(n) for t, n in concerned.items()}
        self.position = {norm: at for at, norm in enumerate(catalogue.norms)}
        # At equal times: what only starts clocks, then what starts one and stops another
        # (an answered call), then what changes a running clock (a transfer counted, an
        # extension, a committee: each must have come before a stop at its instant, as a
        # call is transferred before it ends), then the rest, then a resume; a withdrawal
        # last, after a stop at its instant.
        changers: set[str] = set()
        for norm in self.timed:
            changers.update(m.event for m in norm.breach_on)
            changers.update(norm.longer_term.events if norm.longer_term else ())
            changers.update((norm.limit.event,) if norm.limit else ())
        self._rank = dict.fromkeys(changers - starts, 2)
        self._rank.update({t: 1 if t in stops else 0 for t in starts})
        # A pause and a resume at one instant are a pause of no length, whatever their
        # keys: the resume after it (before it, the pause would hold the clock for good).
        self._rank["case.resumed"] = 4
        self._rank["case.withdrawn"] = 5
        self._rules: dict[tuple[str, str], _Rules] = {}

    def order(self, fact: Fact) -> _Order:
        return (fact.time, self._rank.get(fact.type, 3), fact.key)

    def rules(self, norm: NormSpec, municipality: str) -> _Rules:
        found = self._rules.get((norm.id, municipality))
        if found is None:
            longer = norm.longer_term.term if norm.longer_term else None
            found = _Rules(
                norm,
                self.catalogue.term(norm, municipality),
                longer,
                self.catalogue.calendar(municipality),
                _types_read(norm),
            )
            self._rules[(norm.id, municipality)] = found
        return found

    def concerned(self, type_: str, municipality: str) -> Iterator[_Rules]:
        """The rules of each norm whose derivation reads this event type."""
        for norm in self._concerned.get(type_, ()):
            yield self.rules(norm, municipality)


@lru_cache(maxsize=16)
def _index(catalogue: Catalogue) -> _Index:
    return _Index(catalogue)


def _insert(facts: PVector[Fact], fact: Fact, order: _Order,
            order_of: Callable[[Fact], _Order]) -> PVector[Fact]:  # fmt: skip
    """Keep facts in order: appended in the usual case, inserted when one comes late."""
    if not facts or order_of(facts[-1]) <= order:
        return facts.append(fact)
    at = bisect.bisect_right(facts, order, key=order_of)
    items = facts.tolist()
    items.insert(at, fact)
    return pvector(items)


def _later(now: datetime, before: datetime | None) -> datetime:
    return now if before is None or now > before else before


# --- deriving one norm's clocks ------------------------------------------------------------


class _Numbers:
    """Instance numbers: a start gets the next one the first time it is applied, for good."""

    def __init__(self, given: Instances) -> None:
        self.given = given

    def of(self, norm: str, start: str) -> int:
        mine: Map[str, int] = self.given.get(norm) or _NOTHING
        number = mine.get(start)
        if number is None:
            number = len(mine) + 1
            self.given = {**self.given, norm: mine.set(start, number)}
        return number


@dataclass(slots=True)
class _Run:
    """A clock while it is derived. Mutable, but never once it is in a `_NormState`:
    advancing a state copies its runs first."""

    instance: int
    start: str
    opened_at: datetime
    started_at: datetime
    reference: datetime
    start_data: Mapping[str, Any]
    deadline: datetime | None = None
    at_risk_at: datetime | None = None
    status: Kind = Kind.OPENED
    decided_at: datetime | None = None
    paused_since: datetime | None = None
    pauses: tuple[tuple[datetime, datetime], ...] = ()
    count: int = 0
    longer: bool = False
    ended_at: datetime | None = None

    def copy(self) -> _Run:
        # The constructor, not `copy.copy` or `dataclasses.replace`: this is the hot path.
        return _Run(self.instance, self.start, self.opened_at, self.started_at, self.reference,
                    self.start_data, self.deadline, self.at_risk_at, self.status,
                    self.decided_at, self.paused_since, self.pauses, self.count,
                    self.longer, self.ended_at)  # fmt: skip

    def decide(self, status: Kind, at: datetime | None) -> None:
        self.status, self.decided_at = status, at

    def overdue(self, now: datetime) -> bool:
        """Whether it is open and running with its deadline strictly before `now`: breached
        by the deadline alone."""
        return (
            self.status is Kind.OPENED
            and self.paused_since is None
            and self.deadline is not None
            and self.deadline < now
        )

    def at(self, norm: str, now: datetime) -> Clock:
        """The clock at `now`: an overdue clock is breached at its deadline."""
        status, decided = self.status, self.decided_at
        if self.overdue(now):
            status, decided = Kind.BREACHED, self.deadline
        return Clock(norm, self.instance, self.start, self.started_at, self.deadline, status,
                     decided, self.at_risk_at, self.paused_since is not None,
                     self.ended_at)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _NormState:
    """A norm's derivation after its facts up to `order`: the runs a later fact can still
    change (the open ones and the latest one) and the clocks no later fact can."""

    order: _Order
    runs: tuple[_Run, ...]
    closed: PVector[Clock]

    def advance(self, rules: _Rules, fact: Fact, order: _Order, numbers: _Numbers) -> _NormState:
        """This state after one more fact, later than every fact applied so far."""
        runs = [run.copy() for run in self.runs]
        closed: list[Clock] = []
        _step(rules, runs, closed, fact, numbers)
        return _NormState(order, tuple(runs), self.closed.extend(closed) if closed else self.closed)


def _moved(norm: str, before: _NormState, after: _NormState, now: datetime) -> set[tuple[str, int]]:
    """The clocks an earlier fact left decided the same way but at another instant or
    deadline (a stop that came earlier, a pause that moved a breach's deadline): their
    decision is published again, or the read model would keep its old instant."""

    def decided(state: _NormState) -> dict[int, Clock]:
        every = [*state.closed, *(run.at(norm, now) for run in state.runs)]
        return {clock.instance: clock for clock in every if clock.status is not Kind.OPENED}

    was = decided(before)
    return {
        (norm, instance)
        for instance, clock in decided(after).items()
        if (old := was.get(instance)) is not None
        and old.status is clock.status
        and (old.decided_at, old.deadline) != (clock.decided_at, clock.deadline)
    }


def _derive(rules: _Rules, facts: Iterable[Fact], numbers: _Numbers, index: _Index) -> _NormState:
    """A norm's state from all its facts; the facts must include a start of it."""
    runs: list[_Run] = []
    closed: list[Clock] = []
    last: Fact | None = None
    for fact in facts:
        if fact.type in rules.types:
            _step(rules, runs, closed, fact, numbers)
            last = fact
    assert last is not None
    return _NormState(index.order(last), tuple(runs), pvector(closed))


def _step(rules: _Rules, runs: list[_Run], closed: list[Clock], fact: Fact,
          numbers: _Numbers) -> None:  # fmt: skip
    """Apply one fact to a norm's live runs; the runs no later fact can change leave them."""
    _settle(runs, fact.time)
    if not _apply_to_case(rules, runs, fact):
        start = rules.start_for(fact)
        if start is not None and rules.norm.one_clock_at_a_time and _unstopped(runs):
            # Part of the clock that runs (a call answered again after a transfer): a
            # clock of its own, excluded at once, so that it neither counts nor resets
            # the count. Kept, not dropped: a start that arrives late may come before
            # one already published, and a published clock never disappears.
            part = _start(rules, fact, start, numbers)
            part.decide(Kind.EXCLUDED, fact.time)
            closed.append(part.at(rules.id, fact.time))
        elif start is not None:
            runs.append(_start(rules, fact, start, numbers))
        elif runs:
            # The clocks whose start event came by now (not the clock's start: a visitor
            # called to the desk before their appointment time is served in time). A norm
            # keeps one promise on a case: a stop also keeps each earlier clock still open
            # that it comes in time for (a callback promised twice is kept by one
            # callback, a report received twice is resolved once); an earlier clock it
            # is late for is not its clock, and one already breached stays as it is.
            for run in runs[:-1]:
                if run.status is Kind.OPENED:
                    _stop_if_stopped_by(rules, run, fact, in_time_only=True)
            _apply_to_clock(rules, runs[-1], fact)
    if len(runs) > 1 and any(run.status is not Kind.OPENED for run in runs[:-1]):
        live = []
        for run in runs[:-1]:
            if run.status is Kind.OPENED:
                live.append(run)
            else:
                closed.append(run.at(rules.id, run.opened_at))
        runs[:-1] = live


def _unstopped(runs: list[_Run]) -> bool:
    """Whether the latest clock has had no stop yet (open, or breached and running on)."""
    if not runs:
        return False
    latest = runs[-1]
    return latest.status is Kind.OPENED or (
        latest.status is Kind.BREACHED and latest.ended_at is None
    )


def _settle(runs: list[_Run], now: datetime) -> None:
    """Breach open, running clocks whose deadline lies strictly before `now`."""
    for run in runs:
        if run.overdue(now):
            run.decide(Kind.BREACHED, run.deadline)


def _apply_to_case(rules: _Rules, runs: list[_Run], fact: Fact) -> bool:
    """Withdrawal, pause and resume concern every open clock; True if the fact was one."""
    if fact.type == "case.withdrawn":
        for run in runs:
            if run.status is Kind.OPENED:
                run.decide(Kind.CANCELLED, fact.time)
        return True
    if fact.type == "case.paused" and rules.norm.pausable:
        for run in runs:
            if run.status is Kind.OPENED:
                run.paused_since = run.paused_since or fact.time
        return True
    if fact.type == "case.resumed" and rules.norm.pausable:
        for run in runs:
            if run.status is Kind.OPENED and run.paused_since is not None:
                # The pause lengthens the term (in the term's own unit): compute it afresh.
                # Only the part after the term began counts: an objection's term may
                # begin weeks after its receipt (`term_start`).
                paused = max(run.paused_since, run.reference)
                run.paused_since = None
                if fact.time > paused:
                    run.pauses = (*run.pauses, (paused, fact.time))
                    _set_deadline(rules, run)
        return True
    return False


def _stop_if_stopped_by(
    rules: _Rules, run: _Run, fact: Fact, *, in_time_only: bool = False
) -> bool:
    for stop in rules.norm.stops:
        if stop.stops(fact.type, fact.data, run.start_data):
            if in_time_only and not _in_time(run, stop.by_start_field, fact):
                return False
            _stop(run, stop.outcome, stop.late, stop.by_start_field, fact)
            return True
    return False


def _apply_to_clock(rules: _Rules, run: _Run, fact: Fact) -> None:
    """A fact of the norm that neither starts a clock nor concerns the whole case, on
    its latest clock: a stop, or what breaches or lengthens it."""
    norm = rules.norm
    if _stop_if_stopped_by(rules, run, fact) or run.status is not Kind.OPENED:
        return
    if any(m.matches(fact.type, fact.data) for m in norm.breach_on):
        run.decide(Kind.BREACHED, fact.time)
    elif norm.limit and fact.type == norm.limit.event:
        run.count += 1
        if run.count > norm.limit.max:
            run.decide(Kind.BREACHED, fact.time)
    elif norm.longer_term and fact.type in norm.longer_term.events and not run.longer:
        run.longer = True
        _set_deadline(rules, run)


def _start(rules: _Rules, fact: Fact, start: Start, numbers: _Numbers) -> _Run:
    started_at = reference = fact.time
    if start.start_field and (value := fact.data.get(start.start_field)):
        started_at = reference = max(fact.time, datetime.fromisoformat(value))
    if start.term_start_field and (value := fact.data.get(start.term_start_field)):
        # The term's first day is given: count as if received the day before it.
        first_day = date.fromisoformat(value)
        started_at = datetime.combine(first_day, datetime.min.time(), rules.calendar.zone)
        reference = started_at - timedelta(seconds=1)
    instance = numbers.of(rules.id, fact.key)
    run = _Run(instance, fact.key, fact.time, started_at, reference, fact.data)
    longer = rules.norm.longer_term
    if (
        longer
        and longer.when_started_with
        and all(fact.data.get(k) == v for k, v in longer.when_started_with.items())
    ):
        run.longer = True
    _set_deadline(rules, run)
    return run


def _set_deadline(rules: _Rules, run: _Run) -> None:
    term = rules.longer if run.longer else rules.term
    if term is None:
        run.deadline = run.at_risk_at = None
        return
    run.deadline = term.deadline(run.reference, run.start_data, rules.calendar, run.pauses)
    share = rules.norm.at_risk
    if run.deadline is not None and share is not None:
        run.at_risk_at = term.at_risk(
            run.started_at, run.deadline, share, rules.calendar, run.pauses
        )
    else:
        run.at_risk_at = None


def _in_time(run: _Run, by_field: str | None, fact: Fact) -> bool:
    """Whether a stop keeps the clock's promise when it comes: an open clock's deadline
    has not passed (`_settle` breached it otherwise), but a stop may have to come before
    a time the start named (a cancellation before the appointment)."""
    if by_field and (limit := run.start_data.get(by_field)):
        return fact.time < datetime.fromisoformat(limit)  # before it, not at it
    return True


def _stop(run: _Run, outcome: str, late: str, by_field: str | None, fact: Fact) -> None:
    wanted = Kind(outcome)
    in_time = _in_time(run, by_field, fact)
    if run.status is Kind.OPENED:
        run.decide(wanted if in_time else Kind.BREACHED, fact.time)
    elif run.status is Kind.BREACHED and late == "met":
        run.decide(wanted, fact.time)
    elif run.status is Kind.BREACHED and run.ended_at is None:
        run.ended_at = fact.time


# --- the derivation cache ---------------------------------------------------------------------


def _warm(case: Case, index: _Index) -> Case:
    """The case with every norm's derivation state (once per case read from storage)."""
    if case.derived is not None:
        return case
    facts = case.facts
    ordered = sorted(facts, key=index.order)  # a rules change may order ties differently
    if ordered != list(facts):
        facts = pvector(ordered)
    by_norm: dict[str, list[Fact]] = {}
    numbers = _Numbers(case.instances)
    for fact in facts:
        for rules in index.concerned(fact.type, case.municipality):
            by_norm.setdefault(rules.id, []).append(fact)
    states: dict[str, _NormState] = {}
    for norm in index.timed:
        mine = by_norm.get(norm.id)
        rules = index.rules(norm, case.municipality)
        if mine and any(rules.start_for(f) is not None for f in mine):
            states[norm.id] = _derive(rules, mine, numbers, index)
    return Case(case.subject, case.municipality, facts, case.keys, case.published,
                numbers.given, case.now, case.probes, case.recent_probes, states)  # fmt: skip


def _live(case: Case, now: datetime, index: _Index) -> list[Clock]:
    """The clocks a later fact or instant can still change, at `now`."""
    assert case.derived is not None
    live: list[Clock] = []
    derived = list(case.derived.items())
    if len(derived) > 1:  # in the catalogue's order, so outcomes come out in it
        derived.sort(key=lambda item: index.position[item[0]])
    for norm, state in derived:
        live.extend(run.at(norm, now) for run in state.runs)
    live.extend(_availability(case, now, index))
    return live


def _every_clock(case: Case, now: datetime, index: _Index) -> list[Clock]:
    assert case.derived is not None
    closed = [clock for state in case.derived.values() for clock in state.closed]
    every = [*closed, *_live(case, now, index)]
    return sorted(every, key=lambda c: (index.position[c.norm], c.instance))


class _Clocks(Sequence[Clock]):
    """Every clock of a case at an instant, derived when first read."""

    def __init__(self, case: Case, now: datetime, index: _Index) -> None:
        self._case, self._now, self._index = case, now, index
        self._clocks: list[Clock] | None = None

    def _all(self) -> list[Clock]:
        if self._clocks is None:
            self._clocks = _every_clock(self._case, self._now, self._index)
        return self._clocks

    @overload
    def __getitem__(self, index: int) -> Clock: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Clock]: ...
    def __getitem__(self, index: int | slice) -> Clock | Sequence[Clock]:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __repr__(self) -> str:
        return repr(self._all())


# --- publishing ---------------------------------------------------------------------------------


def _publish(case: Case, now: datetime, catalogue: Catalogue, touched: Iterable[Clock] = (),
             *, changed: bool = False, dry: bool = False, whole: bool = False,
             moved: Set[tuple[str, int]] = frozenset()) -> Step:  # fmt: skip
    """Publish what differs between the clocks and what the case has published.

    `touched` are clocks that left the live set in this step (or all of a norm derived
    again); every live clock is looked at too. The decision rule, per clock: `opened`
    once; `at_risk` once, while it runs past its at-risk instant; a final kind when it
    differs from the one standing (with `corrects` naming that one); `opened` again,
    correcting the standing final kind, if a late fact set the clock running again; and
    the standing kind again, correcting itself, for a clock in `moved` (decided the same
    way, at another instant).
    """
    index = _index(catalogue)
    warmed = _warm(case, index)
    changed = changed or warmed.instances is not case.instances
    now = _later(now, case.now)
    live = _live(warmed, now, index)
    published = warmed.published
    outcomes: list[Outcome] = []
    pending: list[datetime] = []
    if whole or warmed is not case:
        # A case read back from storage is looked at whole, once: under other rules than
        # it was stored under, a clock no later fact concerns may have changed, and old
        # facts may have started new clocks, each of which must get its entry in
        # `published` (storage knows a clock by it).
        looked_at = _every_clock(warmed, now, index)
    else:
        looked_at = [*touched, *live]
    if len(looked_at) > 1:  # in the catalogue's order, then by number: the same every time
        looked_at.sort(key=lambda c: (index.position[c.norm], c.instance))
    recorded: list[Clock] = []
    for clock in looked_at:
        before = published.get((clock.norm, clock.instance), ())
        again = bool(moved) and (clock.norm, clock.instance) in moved  # rarely any
        kinds = _decide(clock, before, now, again=again)
        if len(kinds) == len(before):
            continue
        if dry:
            pending.append(clock.decided_at or clock.started_at)
            continue
        for position in range(len(before), len(kinds)):
            outcomes.append(_outcome(warmed, clock, kinds, position, catalogue))
        published = published.set((clock.norm, clock.instance), kinds)
        recorded.append(clock)
    after = warmed  # when nothing changed, only the derivation cache may have
    if outcomes or changed:
        after = Case(warmed.subject, warmed.municipality, warmed.facts, warmed.keys, published,
                     warmed.instances, now, warmed.probes, warmed.recent_probes,
                     warmed.derived)  # fmt: skip
    open_clocks: list[tuple[str, bool]] = []
    for clock in live:
        if not clock.is_open:
            continue
        warned = Kind.AT_RISK in published.get((clock.norm, clock.instance), ())
        open_clocks.append((clock.norm, warned))
        if clock.paused or clock.deadline is None:
            continue
        pending.append(clock.deadline)
        if clock.at_risk_at is not None and not warned:
            pending.append(clock.at_risk_at)
    return Step(
        after,
        tuple(outcomes),
        _Clocks(after, now, index),
        tuple(open_clocks),
        min(pending, default=None),
        changed or bool(outcomes),
        tuple(recorded),
    )


def _standing(kinds: Sequence[str]) -> str | None:
    """The decision that stands: the last kind published that is not a note."""
    for kind in reversed(kinds):
        if kind not in NOTES:
            return kind
    return None


def _ended_since_breach(kinds: Sequence[str]) -> bool:
    """Whether `stopped_late` was published after the latest `breached`."""
    for kind in reversed(kinds):
        if kind == Kind.BREACHED:
            return False
        if kind == Kind.STOPPED_LATE:
            return True
    return False


def _decide(
    clock: Clock, before: tuple[str, ...], now: datetime, *, again: bool = False
) -> tuple[str, ...]:
    """The kinds published for the clock once it is published at `now`; `again`: its
    decision stands, but at another instant, so it is published once more."""
    kinds = before or (Kind.OPENED.value,)
    standing = _standing(kinds)
    if clock.status is Kind.OPENED:
        if standing in FINAL_KINDS:
            kinds = (*kinds, Kind.OPENED.value)
        if (
            not clock.paused
            and clock.at_risk_at is not None
            and clock.at_risk_at < now
            and Kind.AT_RISK not in kinds
        ):
            kinds = (*kinds, Kind.AT_RISK.value)
    elif clock.status != standing or (again and before):
        kinds = (*kinds, clock.status.value)
    if (
        clock.status is Kind.BREACHED
        and clock.ended_at is not None
        and not _ended_since_breach(kinds)
    ):
        # Also after a breach published again: its note follows it in the same step.
        kinds = (*kinds, Kind.STOPPED_LATE.value)
    return kinds


def _outcome(case: Case, clock: Clock, kinds: tuple[str, ...], position: int,
             catalogue: Catalogue) -> Outcome:  # fmt: skip
    kind = Kind(kinds[position])
    earlier = kinds[:position]
    corrects = None
    if kind not in NOTES:
        standing = _standing(earlier)
        corrects = Kind(standing) if standing in FINAL_KINDS else None
    if kind is Kind.OPENED:
        decided_at: datetime | None = clock.started_at
    elif kind is Kind.AT_RISK:
        decided_at = clock.at_risk_at
    elif kind is Kind.STOPPED_LATE:
        decided_at = clock.ended_at
    else:
        decided_at = clock.decided_at
    return Outcome(
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
        revision=earlier.count(kind) + 1,
    )


# --- website availability -------------------------------------------------------------------

_PROBES = "website.probe"
_RECENT_PROBES = 1024
"""Probe keys remembered: twice what a resent batch can hold (ingest takes at most 500)."""
_DIGEST = 6
"""Bytes of a key's digest: 48 bits. The 1,024 remembered take 6 KiB (the keys themselves
took about 30), and a new key matches one of them by chance about once in 3 * 10^11."""


def _count_probe(case: Case, probe: Fact) -> Case:
    """Fold a probe into its month's tally (months of Europe/Amsterdam).

    A website is probed every minute and only the share of `up` probes per month
    matters, so single probes are not kept: only a digest of the latest keys, so that
    a resent batch (ingest asks for a retry after a 503) is not counted twice.
    """
    digest = hashlib.blake2b(probe.key.encode(), digest_size=_DIGEST).digest()
    recent = case.recent_probes
    at = recent.find(digest)
    while at != -1:
        if at % _DIGEST == 0:
            return case
        at = recent.find(digest, at + 1)
    local = probe.time.astimezone(AMSTERDAM)
    month = f"{local.year:04d}-{local.month:02d}"
    up, total = case.probes.get(month, (0, 0))
    tally = (up + (1 if probe.data.get("up") else 0), total + 1)
    return Case(case.subject, case.municipality, case.facts, case.keys, case.published,
                case.instances, case.now, case.probes.set(month, tally),
                (recent + digest)[-_RECENT_PROBES * _DIGEST :], case.derived)  # fmt: skip


def _availability(case: Case, now: datetime, index: _Index) -> Iterator[Clock]:
    """One clock per calendar month with probes, decided once the month is over.

    The instance is the month as YYYYMM, so it is stable however probes arrive.
    """
    if not case.probes:
        return
    for norm in index.availability:
        assert norm.availability is not None
        for month, (up, total) in sorted(case.probes.items()):  # the same order everywhere
            year, number = int(month[:4]), int(month[5:])
            first = datetime(year, number, 1, tzinfo=AMSTERDAM)
            following = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=AMSTERDAM)
            started = first.astimezone(UTC)
            end = following.astimezone(UTC) - timedelta(microseconds=1)
            clock = Clock(norm.id, year * 100 + number, month, started, end)
            if end < now:
                met = up / total >= norm.availability.minimum
                status = Kind.MET if met else Kind.BREACHED
                clock = Clock(norm.id, clock.instance, month, started, end, status, end)
            yield clock
