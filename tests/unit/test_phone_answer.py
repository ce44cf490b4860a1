"""`phone.answer`: "We nemen binnen 20 seconden de telefoon op." (ZO BELLEN WIJ)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from normwacht.core.catalogue import Catalogue
from normwacht.core.engine import Case, Kind, Outcome, Step, apply, due
from normwacht.core.events import Event, parse_event

QUEUED_AT = datetime.fromisoformat("2026-03-02T10:00:00+01:00")
LATER = QUEUED_AT + timedelta(seconds=1)  # "now" while the call is still young


def call_event(kind: str, after: float, *, event_id: str | None = None) -> Event:
    at = QUEUED_AT + timedelta(seconds=after)
    return parse_event(
        f"""{{"specversion": "1.0", "id": "{event_id or kind}", "source": "urn:buch:kcc:telephony",
        "type": "nl.buch.call.{kind}", "time": "{at.isoformat()}", "subject": "CALL-1",
        "municipality": "heiloo"}}"""
    )


def run(catalogue: Catalogue, *events: Event, now: datetime | None = None) -> Step:
    """Apply the events in order, each at its own time (or `now`), collecting the outcomes."""
    case: Case | None = None
    outcomes: list[Outcome] = []
    step = None
    for event in events:
        step = apply(case, event, now or event.time, catalogue)
        case = step.case
        outcomes.extend(o for o in step.outcomes if o.norm == "phone.answer")
    assert step is not None
    return replace(step, outcomes=tuple(outcomes))


def kinds(step: Step) -> list[Kind]:
    return [o.kind for o in step.outcomes]


def test_queued_opens_a_clock_due_twenty_seconds_later(catalogue: Catalogue) -> None:
    [opened] = run(catalogue, call_event("queued", 0)).outcomes
    assert opened.kind is Kind.OPENED
    assert opened.deadline == QUEUED_AT + timedelta(seconds=20)
    assert opened.id == "CALL-1/phone.answer/1/opened"
    assert (opened.channel, opened.municipality) == ("phone", "heiloo")


@pytest.mark.parametrize("after", [0, 12.5, 20])
def test_answered_within_twenty_seconds_is_met(catalogue: Catalogue, after: float) -> None:
    step = run(catalogue, call_event("queued", 0), call_event("answered", after))
    assert kinds(step) == [Kind.OPENED, Kind.MET]
    assert step.outcomes[-1].decided_at == QUEUED_AT + timedelta(seconds=after)


def test_answered_after_twenty_seconds_is_breached_at_the_deadline(catalogue: Catalogue) -> None:
    step = run(catalogue, call_event("queued", 0), call_event("answered", 20.001))
    assert kinds(step) == [Kind.OPENED, Kind.BREACHED, Kind.STOPPED_LATE]
    assert step.outcomes[1].decided_at == QUEUED_AT + timedelta(seconds=20)


def test_nothing_is_due_at_the_deadline_itself(catalogue: Catalogue) -> None:
    case = run(catalogue, call_event("queued", 0)).case
    at_deadline = due(case, QUEUED_AT + timedelta(seconds=20), catalogue)
    assert [o.kind for o in at_deadline.outcomes] == [Kind.AT_RISK]  # 15 s spent: at risk
    assert at_deadline.next_due == QUEUED_AT + timedelta(seconds=20)


def test_unanswered_call_breaches_once_the_deadline_has_passed(catalogue: Catalogue) -> None:
    step = run(catalogue, call_event("queued", 0))
    assert step.next_due == QUEUED_AT + timedelta(seconds=15)  # at risk at 75 %
    step = due(step.case, QUEUED_AT + timedelta(seconds=20, milliseconds=1), catalogue)
    # Asked only after the deadline, the at-risk warning is moot: just the breach.
    assert [o.kind for o in step.outcomes] == [Kind.BREACHED]
    breach = step.outcomes[-1]
    assert breach.id == "CALL-1/phone.answer/1/breached"
    assert breach.decided_at == breach.deadline
    assert step.next_due is None
    # Asking again, later, decides nothing new.
    assert due(step.case, QUEUED_AT + timedelta(hours=1), catalogue).outcomes == ()


def test_abandoned_within_twenty_seconds_is_excluded(catalogue: Catalogue) -> None:
    step = run(catalogue, call_event("queued", 0), call_event("abandoned", 19))
    assert kinds(step) == [Kind.OPENED, Kind.EXCLUDED]


def test_abandoned_after_twenty_seconds_is_breached(catalogue: Catalogue) -> None:
    step = run(catalogue, call_event("queued", 0), call_event("abandoned", 21))
    assert kinds(step) == [Kind.OPENED, Kind.BREACHED, Kind.STOPPED_LATE]


def test_late_answer_dated_in_time_corrects_a_published_breach_to_met(catalogue: Catalogue) -> None:
    queued = run(catalogue, call_event("queued", 0)).case
    breached = due(queued, QUEUED_AT + timedelta(seconds=25), catalogue).case
    step = apply(breached, call_event("answered", 15), QUEUED_AT + timedelta(seconds=30), catalogue)
    [correction] = [o for o in step.outcomes if o.norm == "phone.answer"]
    assert correction.kind is Kind.MET
    assert correction.corrects is Kind.BREACHED
    assert correction.id == "CALL-1/phone.answer/1/met"


def test_late_abandon_dated_in_time_corrects_a_published_breach_to_excluded(
    catalogue: Catalogue,
) -> None:
    minute = QUEUED_AT + timedelta(minutes=1)
    breached = due(run(catalogue, call_event("queued", 0)).case, minute, catalogue).case
    [correction] = apply(breached, call_event("abandoned", 3), minute, catalogue).outcomes
    assert (correction.kind, correction.corrects) == (Kind.EXCLUDED, Kind.BREACHED)


def test_answer_dated_after_the_deadline_leaves_a_breach_alone(catalogue: Catalogue) -> None:
    minute = QUEUED_AT + timedelta(minutes=1)
    breached = due(run(catalogue, call_event("queued", 0)).case, minute, catalogue).case
    step = apply(breached, call_event("answered", 40), minute, catalogue)
    # The breach stands (nothing corrects it); the answer is noted as having come late.
    [noted] = [o for o in step.outcomes if o.norm == "phone.answer"]
    assert (noted.kind, noted.corrects) == (Kind.STOPPED_LATE, None)
    assert noted.decided_at == QUEUED_AT + timedelta(seconds=40)


def test_a_met_clock_stays_met(catalogue: Catalogue) -> None:
    step = run(
        catalogue, call_event("queued", 0), call_event("answered", 5), call_event("abandoned", 6)
    )
    assert kinds(step) == [Kind.OPENED, Kind.MET]
    assert due(step.case, QUEUED_AT + timedelta(days=1), catalogue).outcomes == ()


def test_duplicate_event_changes_nothing(catalogue: Catalogue) -> None:
    first = run(catalogue, call_event("queued", 0))
    again = apply(first.case, call_event("queued", 0), LATER, catalogue)
    assert again.outcomes == ()
    assert again.case == first.case


def test_answer_arriving_before_its_queued_event_is_applied_in_event_time_order(
    catalogue: Catalogue,
) -> None:
    answered_first = apply(None, call_event("answered", 8), LATER, catalogue)
    assert [o.norm for o in answered_first.outcomes] == ["phone.transfers"]
    step = apply(answered_first.case, call_event("queued", 0), LATER, catalogue)
    assert [(o.norm, o.kind) for o in step.outcomes if o.norm == "phone.answer"] == [
        ("phone.answer", Kind.OPENED),
        ("phone.answer", Kind.MET),
    ]


def test_a_requeued_call_gets_a_second_instance(catalogue: Catalogue) -> None:
    step = run(
        catalogue,
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
        (2, Kind.STOPPED_LATE),
    ]


def test_twenty_seconds_are_real_seconds_across_the_dst_change(catalogue: Catalogue) -> None:
    # 2026-10-25 03:00 CEST becomes 02:00 CET; a call queued at 02:59:50 CEST.
    queued = parse_event(
        """{"specversion": "1.0", "id": "q", "source": "urn:buch:kcc:telephony",
        "type": "nl.buch.call.queued", "time": "2026-10-25T02:59:50+02:00",
        "subject": "CALL-9", "municipality": "bergen"}"""
    )
    [opened] = apply(None, queued, queued.time, catalogue).outcomes
    assert opened.deadline == datetime.fromisoformat("2026-10-25T02:00:10+01:00")
