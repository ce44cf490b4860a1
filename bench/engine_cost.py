"""What one `apply` costs as a case grows: the pure engine, no broker, no services.

Two case shapes, each in event-time order: a subject whose calls (`call.queued`,
`call.answered`, `call.transferred`, `call.ended`, a few seconds apart) come a minute
apart (the main shape), and one whose e-mails (`email.received`, `email.acknowledged`,
`email.answered`, now and then a `case.paused` and `case.resumed` between) come an hour
apart. For each shape:

- the median time of one `apply` to a case that already holds N facts, N = 2, 10, 100
  and 1,000: the case is built by applying the shape's first N events (untimed); then a
  fresh copy of the next event (a new id each time, always the shape's "answered") is
  applied to that same case `repeats` times, `now` being its time;
- the same at the largest N for an event that arrives late: the answer to the case's
  first call or e-mail, withheld while the rest came, dated long before the case's
  latest fact (`now` is that latest fact's time, as the processor's watermark would be);
- the time to feed `max_events` events to one new case, one after the other, taken at
  every tenth of the way, so that one can see whether it stays linear.

The machine is shared and noisy: the sizes are measured in `rounds` rounds, in a
rotated order each round, and the figure quoted is the median of the rounds' medians.
"""

from __future__ import annotations

import gc
import hashlib
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from normwacht.catalogue_file import load
from normwacht.core import engine
from normwacht.core.catalogue import Catalogue
from normwacht.core.engine import Case, Fact, apply

SIZES = (2, 10, 100, 1_000)
APPLY_GOAL = 3.0
"""The median `apply` at the largest size within this many times the one at 2 facts."""
FEED_GOAL = 1.5
"""Feeding one case: the last slice within this many times the first."""
BASE = datetime(2026, 11, 2, 8, tzinfo=UTC)  # a Monday morning
MUNICIPALITY = "heiloo"
Echo = Callable[[str], object]


@dataclass(frozen=True)
class Shape:
    """A case's events as a repeating cycle: (type, offset in the cycle, data) each."""

    name: str
    source: str
    cycle: tuple[tuple[str, timedelta, Mapping[str, Any]], ...]
    period: timedelta
    answered: int
    """Index in `cycle` of the event that is timed: the first call's or e-mail's answer."""

    def facts(self, count: int, phase: int = 0) -> list[Fact]:
        """`count` events of the shape, starting `phase` events into its first cycle."""
        facts = []
        for n in range(phase, phase + count):
            cycle, index = divmod(n, len(self.cycle))
            type_, offset, data = self.cycle[index]
            at = BASE + cycle * self.period + offset
            facts.append(Fact(type_, at, f"{self.source} {self.name}-{cycle}-{index}", data))
        return facts

    def phase_for(self, size: int) -> int:
        """The phase at which the event after `size` events is the timed one."""
        return (self.answered - size) % len(self.cycle)


def _call() -> tuple[tuple[str, timedelta, Mapping[str, Any]], ...]:
    return tuple(
        (f"call.{kind}", timedelta(seconds=seconds), {})
        for kind, seconds in (("queued", 0), ("answered", 3), ("transferred", 6), ("ended", 9))
    )


def _emails() -> tuple[tuple[str, timedelta, Mapping[str, Any]], ...]:
    """Five e-mails an hour apart, answered in 40 minutes; the third waits on the resident."""
    events: list[tuple[str, timedelta, Mapping[str, Any]]] = []
    for mail in range(5):
        hour = timedelta(hours=mail)
        events += [
            ("email.received", hour, {}),
            ("email.acknowledged", hour + timedelta(minutes=1), {}),
        ]
        if mail == 2:
            events += [
                ("case.paused", hour + timedelta(minutes=5), {"reason": "waiting_for_resident"}),
                ("case.resumed", hour + timedelta(minutes=25), {}),
            ]
        events.append(("email.answered", hour + timedelta(minutes=40), {}))
    return tuple(events)


PHONE = Shape("phone", "urn:buch:kcc:telephony", _call(), timedelta(minutes=1), answered=1)
EMAIL = Shape("email", "urn:buch:kcc:email", _emails(), timedelta(hours=5), answered=2)
SHAPES = (PHONE, EMAIL)


def build(facts: Sequence[Fact], catalogue: Catalogue) -> Case:
    """The case these facts make, each applied at its own time."""
    case: Case | None = None
    for fact in facts:
        case = apply(
            case, fact, fact.time, catalogue, subject="BENCH-1", municipality=MUNICIPALITY
        ).case
    if case is None:
        raise ValueError("a case needs at least one fact")
    return case


@dataclass(frozen=True)
class Probe:
    """One thing to time: `event` applied to `case` (at `now`), again and again."""

    shape: str
    label: str
    size: int
    case: Case
    event: Fact
    now: datetime

    @property
    def late(self) -> bool:
        return self.now > self.event.time

    def median_ms(self, repeats: int, round_: int, catalogue: Catalogue) -> float:
        """The median of `repeats` applies of the event, a new id each time, to the same case."""
        e, case, now = self.event, self.case, self.now
        copies = [Fact(e.type, e.time, f"{e.key}#{round_}-{n}", e.data) for n in range(repeats)]
        times = []
        gc.collect()
        for fact in copies:
            started = time.perf_counter_ns()
            apply(case, fact, now, catalogue)
            times.append(time.perf_counter_ns() - started)
        return statistics.median(times) / 1e6

    def outcomes(self, catalogue: Catalogue) -> list[str]:
        """What the timed event publishes (to show it takes the intended path)."""
        step = apply(self.case, self.event, self.now, catalogue)
        return [
            f"{o.norm}/{o.instance}/{o.kind}" + (f" corrects {o.corrects}" if o.corrects else "")
            for o in step.outcomes
        ]


def probes(shape: Shape, catalogue: Catalogue, echo: Echo) -> list[Probe]:
    """The cases of every size, built (untimed), and the late probe at the largest."""
    result = []
    for size in SIZES:
        started = time.perf_counter()
        facts = shape.facts(size + 1, shape.phase_for(size))
        case = build(facts[:-1], catalogue)
        result.append(Probe(shape.name, f"{size:,}", size, case, facts[-1], facts[-1].time))
        echo(f"  {shape.name}: {size:,} facts, built in {time.perf_counter() - started:.1f} s")
    size = SIZES[-1]
    started = time.perf_counter()
    facts = shape.facts(size + 1)
    late = facts.pop(shape.answered)  # the first call's (e-mail's) answer, withheld
    # `now` as the processor's watermark would be: the latest event's time.
    result.append(
        Probe(shape.name, f"{size:,} late", size, build(facts, catalogue), late, facts[-1].time)
    )
    echo(f"  {shape.name}: {size:,} facts (late), built in {time.perf_counter() - started:.1f} s")
    return result


def feed(facts: Sequence[Fact], slices: int, catalogue: Catalogue) -> list[float]:
    """Feed the facts to one new case; the cumulative seconds after each of `slices` slices."""
    step = len(facts) // slices
    marks: list[float] = []
    case: Case | None = None
    gc.collect()
    started = time.perf_counter_ns()
    for n, fact in enumerate(facts, 1):
        case = apply(
            case, fact, fact.time, catalogue, subject="BENCH-1", municipality=MUNICIPALITY
        ).case
        if n % step == 0:
            marks.append((time.perf_counter_ns() - started) / 1e9)
    return marks


def engine_version() -> dict[str, str]:
    """Which engine was measured: the commit, and a hash of engine.py as it was."""
    path = Path(engine.__file__)
    version = {
        "engine_path": str(path),
        "engine_sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16],
    }
    try:
        commit, dirty = (
            subprocess.run(
                command, cwd=path.parent, capture_output=True, text=True, check=True
            ).stdout.strip()
            for command in (
                ["git", "rev-parse", "HEAD"],
                ["git", "status", "--porcelain", "--", path.name],
            )
        )
    except (OSError, subprocess.CalledProcessError):
        return version
    return {**version, "commit": commit, "engine_modified": str(bool(dirty)).lower()}


def _print(table: Table) -> None:
    """Whole rows even when the output is not a terminal (rich assumes 80 columns then)."""
    console = Console()
    console.width = max(console.width, 132)
    console.print(table)


def _applies(
    every: list[Probe], repeats: int, rounds: int, catalogue: Catalogue, echo: Echo
) -> dict[str, Any]:
    """Time every probe in every round (in a rotated order); print and return the medians."""
    per_round: dict[tuple[str, str], list[float]] = {(p.shape, p.label): [] for p in every}
    for round_ in range(rounds):
        turn = round_ % len(every)
        for probe in every[turn:] + every[:turn]:
            per_round[probe.shape, probe.label].append(probe.median_ms(repeats, round_, catalogue))
        echo(f"round {round_ + 1} of {rounds} done")
    figures: dict[str, Any] = {}
    table = Table(title=f"apply: ms per event, median of {rounds} rounds of {repeats} each")
    for column in ("shape", "facts in case", "timed event", "median ms", "x 2 facts", "rounds"):
        left = column in ("shape", "timed event")
        table.add_column(column, justify="left" if left else "right", no_wrap=True)
    for probe in every:
        ms = per_round[probe.shape, probe.label]
        median = statistics.median(ms)
        ratio = median / statistics.median(per_round[probe.shape, f"{SIZES[0]:,}"])
        figures.setdefault(probe.shape, {})[probe.label] = {
            "facts": probe.size,
            "event": probe.event.type,
            "late": probe.late,
            "event_time": probe.event.time.isoformat(),
            "now": probe.now.isoformat(),
            "median_ms": median,
            "ratio_to_2": ratio,
            "rounds_ms": ms,
            "outcomes": probe.outcomes(catalogue),
        }
        table.add_row(
            probe.shape,
            probe.label,
            probe.event.type,
            f"{median:.3f}",
            f"{ratio:.1f}",
            " ".join(f"{m:.3f}" for m in ms),
        )
    _print(table)
    return figures


def _feeds(max_events: int, runs: int, catalogue: Catalogue, echo: Echo) -> dict[str, Any]:
    """Feed each shape's events to one case, `runs` times; print and return the medians."""
    slices = 10
    step = max_events // slices
    marks: dict[str, list[list[float]]] = {shape.name: [] for shape in SHAPES}
    streams = {shape.name: shape.facts(step * slices) for shape in SHAPES}
    for run in range(runs):
        for shape in SHAPES[run % 2 :] + SHAPES[: run % 2]:
            marks[shape.name].append(feed(streams[shape.name], slices, catalogue))
            echo(
                f"feed {run + 1} of {runs}: {shape.name}, {step * slices:,} events "
                f"in {marks[shape.name][-1][-1]:.2f} s"
            )
    figures: dict[str, Any] = {}
    table = Table(title=f"feeding {step * slices:,} events to one case, median of {runs}")
    for column in ("shape", "events", "cumulative s", "ms per 1,000 events", "x first slice"):
        table.add_column(column, justify="left" if column == "shape" else "right", no_wrap=True)
    for name, cumulatives in marks.items():
        cumulative = [statistics.median(run[i] for run in cumulatives) for i in range(slices)]
        # Each slice's seconds, as milliseconds per 1,000 events.
        per_slice = [
            statistics.median(run[i] - (run[i - 1] if i else 0.0) for run in cumulatives)
            * 1e6
            / step
            for i in range(slices)
        ]
        figures[name] = {
            "events": step * slices,
            "slice_events": step,
            "at_events": [step * (i + 1) for i in range(slices)],
            "cumulative_s": cumulative,
            "slice_ms_per_1000": per_slice,
            "last_to_first": per_slice[-1] / per_slice[0],
            "runs_cumulative_s": cumulatives,
        }
        for i in range(slices):
            table.add_row(
                name,
                f"{step * (i + 1):,}",
                f"{cumulative[i]:.3f}",
                f"{per_slice[i]:.2f}",
                f"{per_slice[i] / per_slice[0]:.2f}",
            )
    _print(table)
    return figures


def measure(
    max_events: int, repeats: int, rounds: int, feed_runs: int, echo: Echo
) -> dict[str, Any]:
    """Every figure of the benchmark (see the module's docstring); prints the tables."""
    if max_events < 10:
        raise ValueError("feed at least 10 events (ten slices)")
    catalogue = load()
    echo("building the cases (untimed)")
    every = [probe for shape in SHAPES for probe in probes(shape, catalogue, echo)]
    applies = _applies(every, repeats, rounds, catalogue, echo)
    feeds = _feeds(max_events, feed_runs, catalogue, echo)
    largest = f"{SIZES[-1]:,}"
    goals = {}
    for shape in SHAPES:
        ratio = applies[shape.name][largest]["ratio_to_2"]
        linear = feeds[shape.name]["last_to_first"]
        goals[shape.name] = {
            "apply_ratio": ratio,
            "apply_met": ratio <= APPLY_GOAL,
            "feed_last_to_first": linear,
            # Judged only over the whole 10,000 events.
            "feed_met": linear <= FEED_GOAL and max_events >= 10_000,
        }
        echo(
            f"{shape.name}: apply at {largest} facts is {ratio:.1f}x the 2-fact figure "
            f"(goal <= {APPLY_GOAL:g}x): {'met' if goals[shape.name]['apply_met'] else 'NOT met'}"
            f"; feeding {max_events:,} events, the last slice is {linear:.2f}x the first "
            f"(goal <= {FEED_GOAL:g}x over 10,000 events): "
            + ("met" if goals[shape.name]["feed_met"] else "NOT met")
        )
    return {
        "settings": {
            "sizes": list(SIZES),
            "repeats": repeats,
            "rounds": rounds,
            "max_events": max_events,
            "feed_runs": feed_runs,
            "municipality": MUNICIPALITY,
        },
        "engine": engine_version(),
        "apply": applies,
        "feed": feeds,
        "goals": goals,
    }
