"""The engine keeps its word under any arrival order: property tests on the pure core.

Hypothesis builds cases with several clocks of several norms (calls with transfers,
e-mails with interim notices, reports with pauses, appointments, a withdrawal), then
feeds their events in a random order, in random batches, with duplicates, moving the
watermark as the processor moves it (each event at the largest event time seen so
far, and due-records in between that carry it further) and storing the case and
reading it back now and then, as the processor's table does. Whatever the order:

- the final state of every clock, keyed by its start, equals what arrival in time
  order gives;
- what stands published for every clock (its last decision) is that final state, so
  every breach published that is no longer true has been corrected;
- no clock has more than one final outcome standing, no outcome id is published twice,
  and a start keeps the number it was first given.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from normwacht.core.catalogue import Catalogue
from normwacht.core.engine import (
    FINAL_KINDS,
    NOTES,
    Case,
    Clock,
    Fact,
    Kind,
    Outcome,
    apply,
    clocks,
    due,
)
from services.sla_processor.codec import decode_whole_case, encode_case

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 09:00 in Amsterdam
END = T0 + timedelta(days=90)  # after every deadline the cases below can have
SUBJECT, MUNICIPALITY = "CASE-P", "heiloo"


@dataclass
class Events:
    """Facts of one case under construction; ids are unique per case."""

    facts: list[Fact] = field(default_factory=list)

    def add(self, type_: str, at: datetime, data: dict[str, Any] | None = None) -> None:
        key = f"urn:buch:test/{type_}-{len(self.facts)}"
        self.facts.append(Fact(type_, at, key, data or {}))


def seconds(low: int, high: int) -> st.SearchStrategy[timedelta]:
    return st.integers(low, high).map(lambda s: timedelta(seconds=s))


@st.composite
def a_call(draw: st.DrawFn, events: Events) -> None:
    queued = T0 + draw(seconds(0, 3 * 3600))
    events.add("call.queued", queued)
    ending = draw(st.sampled_from(["answered", "abandoned", "nothing"]))
    if ending == "nothing":
        return
    picked_up = queued + draw(seconds(0, 40))
    events.add(f"call.{ending}", picked_up)
    if ending == "answered":
        for transfer in range(draw(st.integers(0, 3))):
            events.add(
                "call.transferred", picked_up + timedelta(seconds=10 + transfer), {"to": "q"}
            )
        if draw(st.booleans()):
            events.add("call.ended", picked_up + draw(seconds(15, 600)))


@st.composite
def an_email(draw: st.DrawFn, events: Events) -> None:
    received = T0 + draw(seconds(0, 5 * 86400))
    events.add("email.received", received)
    if draw(st.booleans()):
        interim = received + draw(seconds(60, 4 * 86400))
        promised = (interim + timedelta(days=draw(st.integers(1, 6)))).date().isoformat()
        events.add("email.interim_sent", interim, {"contact": "team:kcc", "promised_by": promised})
    if draw(st.booleans()):
        events.add("email.answered", received + draw(seconds(60, 12 * 86400)))


@st.composite
def a_report(draw: st.DrawFn, events: Events) -> None:
    received = T0 + draw(seconds(0, 5 * 86400))
    urgent = draw(st.booleans())
    events.add("report.received", received, {"urgent": urgent})
    if urgent and draw(st.booleans()):
        events.add("report.action_started", received + draw(seconds(60, 4 * 3600)))
    if draw(st.booleans()):
        events.add("report.delay_notified", received + draw(seconds(3600, 20 * 86400)))
    if draw(st.booleans()):
        events.add("report.resolved", received + draw(seconds(3600, 20 * 86400)))


@st.composite
def an_appointment(draw: st.DrawFn, events: Events) -> None:
    scheduled = T0 + draw(seconds(0, 3 * 86400))
    at = scheduled + draw(seconds(3600, 5 * 86400))
    events.add("appointment.scheduled", scheduled, {"at": at.isoformat()})
    outcome = draw(st.sampled_from(["kept", "cancelled_notice", "nothing"]))
    if outcome != "nothing":
        events.add(f"appointment.{outcome}", at + draw(seconds(-7200, 7200)))


@st.composite
def a_case(draw: st.DrawFn) -> list[Fact]:
    """Several clocks of several norms on one case, with pauses and maybe a withdrawal."""
    events = Events()
    kinds = [a_call, an_email, a_report, an_appointment]
    for _ in range(draw(st.integers(2, 7))):
        draw(draw(st.sampled_from(kinds))(events))
    for _ in range(draw(st.integers(0, 2))):
        paused = T0 + draw(seconds(0, 10 * 86400))
        events.add("case.paused", paused, {"reason": "waiting_for_resident"})
        if draw(st.booleans()):
            events.add("case.resumed", paused + draw(seconds(60, 6 * 86400)))
    if draw(st.integers(0, 4)) == 0:
        events.add("case.withdrawn", T0 + draw(seconds(0, 15 * 86400)))
    return events.facts


@dataclass
class Processor:
    """The processor's order of work on one case, without Kafka: its watermark, its table."""

    catalogue: Catalogue
    case: Case | None = None
    mark: datetime | None = None
    published: list[Outcome] = field(default_factory=list)

    def event(self, fact: Fact) -> None:
        before = self.mark
        self.mark = fact.time if before is None else max(before, fact.time)
        if self.case is not None and before is not None:
            # What the watermark had decided before this event comes first (as the record
            # handler does it: the case as that left it).
            settled = due(self.case, before, self.catalogue)
            self.take(settled.outcomes, settled.case)
        step = apply(self.case, fact, self.mark, self.catalogue,
                     subject=SUBJECT, municipality=MUNICIPALITY)  # fmt: skip
        self.take(step.outcomes, step.case)
        self.case = step.case

    def due_record(self, now: datetime) -> None:
        self.mark = now if self.mark is None else max(self.mark, now)
        if self.case is not None:
            step = due(self.case, self.mark, self.catalogue)
            self.take(step.outcomes, step.case)
            self.case = step.case

    def take(self, outcomes: Iterable[Outcome], case: Case) -> None:
        self.published.extend(outcomes)
        self.case = case

    def store_and_read_back(self) -> None:
        """As a restart does: the table's JSON, without the engine's derivation cache."""
        if self.case is not None:
            self.case = decode_whole_case(json.loads(json.dumps(encode_case(self.case))))

    def final_clocks(self) -> dict[tuple[str, str], Clock]:
        self.due_record(END)
        assert self.case is not None
        return {(c.norm, c.start): c for c in clocks(self.case, END, self.catalogue)}


def in_time_order(catalogue: Catalogue, facts: list[Fact]) -> Processor:
    processor = Processor(catalogue)
    for fact in sorted(facts, key=lambda f: f.time):
        processor.event(fact)
    return processor


@st.composite
def an_arrival(draw: st.DrawFn, facts: list[Fact]) -> list[tuple[str, Any]]:
    """A random order of the facts, with duplicates, due-records and restarts between them."""
    shuffled = draw(st.permutations(facts))
    work: list[tuple[str, Any]] = []
    for fact in shuffled:
        work.append(("event", fact))
        if draw(st.integers(0, 5)) == 0:
            work.append(("event", draw(st.sampled_from(facts))))  # a resent event
        if draw(st.integers(0, 3)) == 0:
            work.append(("due", draw(seconds(0, 3 * 86400))))
        if draw(st.integers(0, 6)) == 0:
            work.append(("restart", None))
    return work


def replay(catalogue: Catalogue, work: list[tuple[str, Any]]) -> Processor:
    processor = Processor(catalogue)
    for what, value in work:
        if what == "event":
            processor.event(value)
        elif what == "due":
            processor.due_record((processor.mark or T0) + value)
        else:
            processor.store_and_read_back()
    return processor


def state(clock: Clock) -> tuple[Any, ...]:
    return (clock.status, clock.started_at, clock.deadline, clock.decided_at, clock.paused,
            clock.ended_at)  # fmt: skip


def standing(outcomes: list[Outcome]) -> dict[tuple[str, int], Kind]:
    """Per clock, the decision that stands: its last outcome that is not a note."""
    last: dict[tuple[str, int], Kind] = {}
    for outcome in outcomes:
        if outcome.kind not in NOTES:
            last[(outcome.norm, outcome.instance)] = outcome.kind
    return last


def check_published(processor: Processor, final: dict[tuple[str, str], Clock]) -> None:
    outcomes = processor.published
    ids = [o.id for o in outcomes]
    assert len(ids) == len(set(ids)), "an outcome id was published twice"
    by_clock: dict[tuple[str, int], list[Outcome]] = {}
    for outcome in outcomes:
        by_clock.setdefault((outcome.norm, outcome.instance), []).append(outcome)
    stands = standing(outcomes)
    instance_of = {(c.norm, c.instance): c for c in final.values()}
    assert set(by_clock) == set(instance_of), "a clock without outcomes, or outcomes without one"
    for key, mine in by_clock.items():
        clock = instance_of[key]
        assert stands[key] == clock.status, f"{key}: {stands[key]} stands, {clock.status} is true"
        assert [o.kind for o in mine].count(Kind.OPENED) >= 1
        assert mine[0].kind is Kind.OPENED
        assert mine[0].corrects is None
        # Each decision replaces the one before it by name: never two final ones standing.
        decided: Kind | None = None
        for outcome in mine:
            if outcome.kind in NOTES:
                continue
            if decided in FINAL_KINDS:
                assert outcome.corrects is decided, f"{outcome.id} replaces {decided} silently"
            decided = outcome.kind
        # And it is dated as the clock is decided: a year's report counts it by that date.
        last = [o for o in mine if o.kind not in NOTES][-1]
        if clock.status in FINAL_KINDS:
            assert (last.decided_at, last.deadline) == (clock.decided_at, clock.deadline), (
                f"{last.id} stands at {last.decided_at}, the clock was decided at "
                f"{clock.decided_at}"
            )
        # A breach whose stop came late says so once, after that breach. A note is never
        # withdrawn: a late start that takes the stop over to a newer clock leaves it.
        since_breach = [o.kind for o in mine][
            max(i for i, o in enumerate(mine) if o.kind not in NOTES) :
        ]
        ended = clock.status is Kind.BREACHED and clock.ended_at is not None
        told = since_breach.count(Kind.STOPPED_LATE)
        assert told == 1 if ended else told <= 1, f"{key}: {since_breach}"
        for position, outcome in enumerate(mine):
            if outcome.kind is Kind.BREACHED and clock.status is not Kind.BREACHED:
                assert any(o.corrects is Kind.BREACHED for o in mine[position + 1 :])
    for norm in {c.norm for c in final.values()}:
        numbers = sorted(c.instance for c in final.values() if c.norm == norm)
        if norm != "website.availability":
            assert numbers == list(range(1, len(numbers) + 1))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_arrival_order_decides_what_time_order_decides(
    catalogue: Catalogue, data: st.DataObject
) -> None:
    facts = data.draw(a_case())
    expected = in_time_order(catalogue, facts)
    wanted = expected.final_clocks()
    check_published(expected, wanted)
    shuffled = replay(catalogue, data.draw(an_arrival(facts)))
    final = shuffled.final_clocks()
    assert {k: state(c) for k, c in final.items()} == {k: state(c) for k, c in wanted.items()}
    check_published(shuffled, final)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_reading_a_case_back_from_storage_changes_no_decision(
    catalogue: Catalogue, data: st.DataObject
) -> None:
    """The derivation cache is only a cache: a case read back derives the same."""
    work = data.draw(an_arrival(data.draw(a_case())))
    with_restarts = replay(catalogue, work)
    in_memory = replay(catalogue, [(what, value) for what, value in work if what != "restart"])
    assert with_restarts.published == in_memory.published
    assert with_restarts.final_clocks() == in_memory.final_clocks()


def calls_arriving(catalogue: Catalogue, *arrivals: tuple[str, str, str]) -> list[Outcome]:
    """(type, UTC time on Monday 2 March 2026, key) in arrival order, then a due-record at
    10:05: the phone.answer outcomes published."""
    processor = Processor(catalogue)
    for type_, time, key in arrivals:
        processor.event(Fact(type_, datetime.fromisoformat(f"2026-03-02T{time}+00:00"), key))
    processor.due_record(datetime.fromisoformat("2026-03-02T10:05:00+00:00"))
    return [o for o in processor.published if o.norm == "phone.answer"]


def test_the_issue_probe_a_late_earlier_start_adds_a_clock(catalogue: Catalogue) -> None:
    """Issue 9's probe (heiloo, Monday 2 March 2026, UTC): a call queued at 10:01:40 and
    answered at 10:01:45 arrives before an earlier call, queued at 10:00:00 and never
    answered. The first keeps number 1 and stays met; the late one is number 2, breached."""
    at = datetime.fromisoformat
    calls = calls_arriving(
        catalogue,
        ("call.queued", "10:01:40", "q2"),
        ("call.answered", "10:01:45", "a"),
        ("call.queued", "10:00:00", "q1"),
    )
    assert [(o.id, o.corrects) for o in calls] == [
        ("CASE-P/phone.answer/1/opened", None),
        ("CASE-P/phone.answer/1/met", None),
        ("CASE-P/phone.answer/2/opened", None),
        ("CASE-P/phone.answer/2/breached", None),
    ]
    assert calls[3].started_at == at("2026-03-02T10:00:00+00:00")
    assert calls[3].deadline == at("2026-03-02T10:00:20+00:00")


def test_a_late_start_before_a_stop_is_stopped_by_it_too(catalogue: Catalogue) -> None:
    """Queued 10:00:00 (A), answered 10:00:10: A is met. A queue entry at 10:00:05 (B)
    arrives late, with the watermark at 10:00:10: the answer came after both, and a stop
    ends every clock of its norm still waiting for one, so B is met too and A's met
    stands: nothing is corrected."""
    calls = calls_arriving(
        catalogue,
        ("call.queued", "10:00:00", "A"),
        ("call.answered", "10:00:10", "x"),
        ("call.queued", "10:00:05", "B"),
    )
    assert [(o.id, o.corrects) for o in calls] == [
        ("CASE-P/phone.answer/1/opened", None),
        ("CASE-P/phone.answer/1/met", None),
        ("CASE-P/phone.answer/2/opened", None),
        ("CASE-P/phone.answer/2/met", None),
    ]


def test_a_late_pause_sets_a_breached_clock_running_again(catalogue: Catalogue) -> None:
    """A report received Monday 2 March is due Monday 16 March 23:59:59.999999 (10 working
    days). Its breach is published on the 17th; then a pause dated Friday 13 March arrives,
    never resumed: the clock runs no more, so the breach no longer stands."""
    at = datetime.fromisoformat
    processor = Processor(catalogue)
    processor.event(Fact("report.received", at("2026-03-02T10:00:00+01:00"), "r", {}))
    processor.due_record(at("2026-03-17T09:00:00+01:00"))
    paused = Fact("case.paused", at("2026-03-13T10:00:00+01:00"), "p", {"reason": "other"})
    processor.event(paused)
    resolve = [(o.id, o.corrects) for o in processor.published if o.norm == "report.resolve"]
    assert resolve[-2:] == [
        ("CASE-P/report.resolve/1/breached", None),
        ("CASE-P/report.resolve/1/opened/2", Kind.BREACHED),
    ]


@pytest.mark.parametrize(
    ("start", "changes", "stop", "norm", "status"),
    [
        # The third transfer and the end of the call in one second: transferred first.
        ("call.answered", ["call.transferred"] * 3, "call.ended", "phone.transfers",
         Kind.BREACHED),
        # Extended and decided in one second: the extension was made, so it counts.
        ("objection.received", ["objection.extended"], "objection.decided",
         "objection.decision", Kind.BREACHED),
    ],
)  # fmt: skip
def test_what_changes_a_clock_comes_before_a_stop_at_its_instant(
    catalogue: Catalogue, start: str, changes: list[str], stop: str, norm: str, status: Kind
) -> None:
    """Whatever their ids and whichever arrives first."""
    at = datetime.fromisoformat("2026-03-02T10:00:00+00:00")
    later = at + timedelta(days=3)
    started = Fact(start, at, "m-start")
    changed = [Fact(type_, later, f"z-change-{n}") for n, type_ in enumerate(changes)]
    stopped = Fact(stop, later, "a-stop")
    for order in ([started, *changed, stopped], [stopped, *changed, started]):
        processor = Processor(catalogue)
        for fact in order:
            processor.event(fact)
        assert processor.final_clocks()[(norm, "m-start")].status is status


def test_a_late_fact_that_dates_a_decision_earlier_publishes_it_again(
    catalogue: Catalogue,
) -> None:
    """An objection breached at its deadline in January; the extension that broke it in
    December is registered late. Still breached, but in the other year: published again."""
    received = Fact("objection.received", datetime(2026, 11, 20, 9, tzinfo=UTC), "o-1",
                    {"term_start": "2026-11-24", "advisory_committee": False})  # fmt: skip
    step = apply(None, received, received.time, catalogue, subject="B-1", municipality="heiloo")
    overdue = due(step.case, datetime(2027, 1, 7, tzinfo=UTC), catalogue)
    [breach] = [o for o in overdue.outcomes if o.norm == "objection.decision"]
    assert breach.decided_at is not None
    assert (breach.kind, breach.decided_at.year) == (Kind.BREACHED, 2027)
    extended = Fact("objection.extended", datetime(2026, 12, 15, 9, tzinfo=UTC), "o-2")
    late = apply(overdue.case, extended, datetime(2027, 1, 10, tzinfo=UTC), catalogue)
    [again] = late.outcomes
    assert (again.id, again.corrects, again.decided_at) == (
        "B-1/objection.decision/1/breached/2", Kind.BREACHED, extended.time,
    )  # fmt: skip


def test_a_breach_dated_again_is_followed_by_its_late_stop_again(catalogue: Catalogue) -> None:
    """A report resolved after its deadline (breached, stopped late); then a pause before
    the deadline arrives late, moving the deadline: the breach is published again at the
    new deadline, and its late stop with it, in the same step."""
    at = datetime(2026, 3, 2, 8, tzinfo=UTC)
    facts = [
        Fact("report.received", at, "r-1", {"urgent": False}),
        Fact("report.resolved", datetime(2026, 3, 17, 23, tzinfo=UTC), "r-2"),
        Fact("case.resumed", at + timedelta(hours=15), "r-3"),
    ]
    case = None
    for fact in facts:
        step = apply(case, fact, fact.time, catalogue, subject="M-1", municipality="heiloo")
        case = step.case
    paused = Fact("case.paused", at, "r-4", {"reason": "waiting_for_resident"})
    late = apply(case, paused, facts[1].time, catalogue)
    mine = [(o.id, o.corrects) for o in late.outcomes if o.norm == "report.resolve"]
    assert mine == [
        ("M-1/report.resolve/1/breached/2", Kind.BREACHED),
        ("M-1/report.resolve/1/stopped_late/2", None),
    ]


def test_events_at_one_instant_apply_starts_first_and_withdrawals_last(
    catalogue: Catalogue,
) -> None:
    """Telephony stamps whole seconds: a call queued and answered in the same second was
    answered in time, and a case answered and withdrawn at one instant was answered,
    whichever event arrives first and whatever their ids."""
    at = datetime.fromisoformat("2026-03-02T10:00:00+00:00")
    queued = Fact("call.queued", at, "z-queued")
    answered = Fact("call.answered", at, "a-answered")
    ended = Fact("call.ended", at + timedelta(seconds=30), "m-ended")
    withdrawn = Fact("case.withdrawn", at + timedelta(seconds=30), "a-withdrawn")
    for order in ([queued, answered, ended, withdrawn], [withdrawn, ended, answered, queued]):
        processor = Processor(catalogue)
        for fact in order:
            processor.event(fact)
        final = processor.final_clocks()
        assert final[("phone.answer", "z-queued")].status is Kind.MET
        assert final[("phone.transfers", "a-answered")].status is Kind.MET
