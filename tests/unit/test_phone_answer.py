"""`phone.answer`: "We nemen binnen 20 seconden de telefoon op." (ZO BELLEN WIJ)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from normwacht.core.engine import Case, Kind, Outcome, Step, apply, due
from normwacht.core.events import Event, parse_event

QUEUED_AT = datetime.fromisoformat("2026-03-02T10:00:00+01:00")


def call_event(kind: str, after: float, *, event_id: str | None = None) -> Event:
    at = QUEUED_AT + timedelta(seconds=after)
    return parse_event(
        f"""{{"specversion": "1.0", "id": "{event_id or kind}", "source": "urn:buch:kcc:telephony",
        "type": "nl.buch.call.{kind}", "time": "{at.isoformat()}", "subject": "CALL-1",
        "municipality": "heiloo"}}"""
    )


def run(*events: Event) -> Step:
    step = Step(Case(subject="CALL-1", municipality="heiloo"))
    outcomes: list[Outcome] = []
    for event in events:
        step = apply(step.case, event)
        outcomes.extend(step.outcomes)
    return Step(step.case, tuple(outcomes))


def kinds(step: Step) -> list[Kind]:
    return [o.kind for o in step.outcomes]


def test_queued_opens_a_clock_due_twenty_seconds_later() -> None:
    step = run(call_event("queued", 0))
    [opened] = step.outcomes
    assert opened.kind is Kind.OPENED
    assert opened.deadline == QUEUED_AT + timedelta(seconds=20)
    assert opened.id == "CALL-1/phone.answer/1/opened"
    assert (opened.channel, opened.municipality) == ("phone", "heiloo")


@pytest.mark.parametrize("after", [0, 12.5, 20])
def test_answered_within_twenty_seconds_is_met(after: float) -> None:
    step = run(call_event("queued", 0), call_event("answered", after))
    assert kinds(step) == [Kind.OPENED, Kind.MET]
    assert step.outcomes[-1].decided_at == QUEUED_AT + timedelta(seconds=after)


def test_answered_after_twenty_seconds_is_breached_at_the_deadline() -> None:
    step = run(call_event("queued", 0), call_event("answered", 20.001))
    assert kinds(step) == [Kind.OPENED, Kind.BREACHED]
    assert step.outcomes[-1].decided_at == QUEUED_AT + timedelta(seconds=20)


def test_nothing_is_due_at_the_deadline_itself() -> None:
    case = run(call_event("queued", 0)).case
    assert due(case, QUEUED_AT + timedelta(seconds=20)).outcomes == ()


def test_unanswered_call_breaches_once_the_deadline_has_passed() -> None:
    case = run(call_event("queued", 0)).case
    step = due(case, QUEUED_AT + timedelta(seconds=20, milliseconds=1))
    [breach] = step.outcomes
    assert breach.kind is Kind.BREACHED
    assert breach.id == "CALL-1/phone.answer/1/breached"
    assert breach.decided_at == breach.deadline
    # Asking again, later, decides nothing new.
    assert due(step.case, QUEUED_AT + timedelta(hours=1)).outcomes == ()


def test_abandoned_within_twenty_seconds_is_excluded() -> None:
    step = run(call_event("queued", 0), call_event("abandoned", 19))
    assert kinds(step) == [Kind.OPENED, Kind.EXCLUDED]


def test_abandoned_after_twenty_seconds_is_breached() -> None:
    step = run(call_event("queued", 0), call_event("abandoned", 21))
    assert kinds(step) == [Kind.OPENED, Kind.BREACHED]


def test_late_answer_dated_in_time_corrects_a_published_breach_to_met() -> None:
    queued = run(call_event("queued", 0)).case
    breached = due(queued, QUEUED_AT + timedelta(seconds=25)).case
    step = apply(breached, call_event("answered", 15))
    [correction] = step.outcomes
    assert correction.kind is Kind.MET
    assert correction.corrects is Kind.BREACHED
    assert correction.id == "CALL-1/phone.answer/1/met"
    assert step.case.clocks[0].status is Kind.MET


def test_late_abandon_dated_in_time_corrects_a_published_breach_to_excluded() -> None:
    breached = due(run(call_event("queued", 0)).case, QUEUED_AT + timedelta(minutes=1)).case
    [correction] = apply(breached, call_event("abandoned", 3)).outcomes
    assert (correction.kind, correction.corrects) == (Kind.EXCLUDED, Kind.BREACHED)


def test_answer_dated_after_the_deadline_leaves_a_breach_alone() -> None:
    breached = due(run(call_event("queued", 0)).case, QUEUED_AT + timedelta(minutes=1)).case
    step = apply(breached, call_event("answered", 40))
    assert step.outcomes == ()
    assert step.case.clocks[0].status is Kind.BREACHED


def test_a_met_clock_stays_met() -> None:
    step = run(call_event("queued", 0), call_event("answered", 5), call_event("abandoned", 6))
    assert kinds(step) == [Kind.OPENED, Kind.MET]
    assert due(step.case, QUEUED_AT + timedelta(days=1)).outcomes == ()


def test_duplicate_event_changes_nothing() -> None:
    first = run(call_event("queued", 0))
    again = apply(first.case, call_event("queued", 0))
    assert again.outcomes == ()
    assert again.case == first.case


def test_answer_without_a_queued_call_decides_nothing() -> None:
    step = run(call_event("answered", 0))
    assert step.outcomes == ()
    assert step.case.clocks == ()


def test_a_requeued_call_gets_a_second_instance() -> None:
    step = run(
        call_event("queued", 0),
        call_event("answered", 4),
        call_event("queued", 60, event_id="queued-2"),
        call_event("answered", 90, event_id="answered-2"),
    )
    assert [(o.instance, o.kind) for o in step.outcomes] == [
        (1, Kind.OPENED),
        (1, Kind.MET),
        (2, Kind.OPENED),
        (2, Kind.BREACHED),
    ]


def test_twenty_seconds_are_real_seconds_across_the_dst_change() -> None:
    # 2026-10-25 03:00 CEST becomes 02:00 CET; a call queued at 02:59:50 CEST.
    queued = parse_event(
        """{"specversion": "1.0", "id": "q", "source": "urn:buch:kcc:telephony",
        "type": "nl.buch.call.queued", "time": "2026-10-25T02:59:50+02:00",
        "subject": "CALL-9", "municipality": "bergen"}"""
    )
    [opened] = apply(None, queued).outcomes
    assert opened.deadline == datetime.fromisoformat("2026-10-25T02:00:10+01:00")
