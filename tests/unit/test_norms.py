"""Every norm of the catalogue against hand-worked examples from the seed's own wording.

`phone.answer` has its own file (test_phone_answer.py). Each deadline below is a
Europe/Amsterdam RFC 3339 literal worked out by hand, with the reasoning beside it,
never computed by the code under test. Calendar facts of 2026 the examples rely on:

- Good Friday Fri 3 Apr, Easter Monday Mon 6 Apr, King's Day Mon 27 Apr, Ascension
  Thu 14 May, Whit Monday Mon 25 May, Christmas Fri 25 Dec, Boxing Day Sat 26 Dec.
- Liberation Day Tue 5 May: a working day (2026 is no lustrum year) but a holiday of
  the Algemene termijnenwet all the same.
- Summer time starts Sun 29 Mar (02:00 CET becomes 03:00 CEST) and ends Sun 25 Oct
  (03:00 CEST becomes 02:00 CET).
- Default office hours Monday to Friday 08:30-17:00 on working days.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError

from normwacht.catalogue_file import default_paths
from normwacht.core.calendars import NoHolidaysFor
from normwacht.core.catalogue import Catalogue
from normwacht.core.engine import Case, Clock, Kind, Outcome, Step, apply, due
from normwacht.core.events import Event, parse_event
from tests.support.events import cloud_event

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
SECOND = timedelta(seconds=1)
Data = Mapping[str, object]


# --- helpers ---------------------------------------------------------------------------------


def ev(
    type_: str,
    time: str,
    data: Data | None = None,
    *,
    municipality: str = "heiloo",
    event_id: str | None = None,
    subject: str = "CASE-1",
) -> Event:
    """A CloudEvent of type `nl.buch.<type_>` at `time` (RFC 3339 with offset)."""
    body = cloud_event(type_, time, subject, municipality=municipality,
                       event_id=event_id or f"{type_}@{time}", data=data)  # fmt: skip
    return parse_event(json.dumps(body))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def local(instant: datetime | None) -> str | None:
    """An instant as Europe/Amsterdam RFC 3339, the form the deadlines are written in."""
    return None if instant is None else instant.astimezone(AMSTERDAM).isoformat()


def later(text: str, seconds: int = 1) -> str:
    return (at(text) + timedelta(seconds=seconds)).isoformat()


def play(catalogue: Catalogue, *events: Event, now: str | None = None) -> Step:
    """Apply the events in the order given, each when it happens, then `due` at `now`.

    The returned step carries every outcome published along the way.
    """
    case: Case | None = None
    outcomes: list[Outcome] = []
    step: Step | None = None
    for event in events:
        step = apply(case, event, event.time, catalogue)
        case = step.case
        outcomes.extend(step.outcomes)
    assert step is not None
    if now is not None:
        step = due(step.case, at(now), catalogue)
        outcomes.extend(step.outcomes)
    return replace(step, outcomes=tuple(outcomes))


def of(step: Step, norm: str) -> list[Outcome]:
    return [o for o in step.outcomes if o.norm == norm]


def kinds(step: Step, norm: str) -> list[Kind]:
    return [o.kind for o in of(step, norm)]


def clock(step: Step, norm: str, instance: int = 1) -> Clock:
    [found] = [c for c in step.clocks if c.norm == norm and c.instance == instance]
    return found


# --- every timed norm: deadline, met in time, breached after ----------------------------------


@dataclass(frozen=True)
class Row:
    """One norm, the seed sentence it implements, a start and a hand-worked deadline."""

    norm: str
    seed: str  # the seed's Dutch wording, as quoted in the catalogue
    starts: tuple[Event, ...]
    stop: str
    deadline: str
    stop_data: Data | None = None
    late: Kind = Kind.BREACHED  # what a stop event after the deadline means

    def stop_at(self, time: str) -> Event:
        return ev(self.stop, time, self.stop_data)


ROWS = [
    Row(
        "phone.callback",
        "Bij een terugbelafpraak bellen wij uiterlijk de volgende werkdag terug.",
        # Promised on Christmas Eve, Thu 24 Dec: Fri 25 Christmas, Sat 26, Sun 27 are no
        # working days, so the next working day is Mon 28 Dec.
        (ev("callback.promised", "2026-12-24T16:00:00+01:00"),),
        "callback.made",
        "2026-12-28T23:59:59.999999+01:00",
    ),
    Row(
        "email.ack",
        "We sturen per direct een ontvangstbevestiging.",
        # 5 real minutes across the spring DST gap: 01:58 CET + 5 min = 02:03 CET = 03:03 CEST.
        (ev("email.received", "2026-03-29T01:58:00+01:00"),),
        "email.acknowledged",
        "2026-03-29T03:03:00+02:00",
    ),
    Row(
        "email.answer",
        "We sturen binnen 2 werkdagen een inhoudelijk antwoord.",
        # Thu 2 Apr; Good Friday 3, Sat 4, Sun 5 and Easter Monday 6 do not count:
        # Tue 7 Apr is working day 1, Wed 8 Apr working day 2.
        (ev("email.received", "2026-04-02T15:00:00+02:00"),),
        "email.answered",
        "2026-04-08T23:59:59.999999+02:00",
    ),
    Row(
        "email.answer.promised",
        "Lukt dat niet dan informeren wij over de contactpersoon, de termijn en het vervolg.",
        # A valid interim notice on Tue 7 Apr promises the answer by Fri 17 Apr: end of that day.
        (
            ev("email.received", "2026-04-02T15:00:00+02:00"),
            ev(
                "email.interim_sent",
                "2026-04-07T10:00:00+02:00",
                {"contact": "team:kcc", "promised_by": "2026-04-17"},
            ),
        ),
        "email.answered",
        "2026-04-17T23:59:59.999999+02:00",
    ),
    Row(
        "letter.ack",
        "We sturen binnen 2 werkdagen een ontvangstbevestiging.",
        # Received Sat 24 Oct (the day of receipt never counts): Mon 26 is day 1, Tue 27 day 2,
        # in winter time by then (+01:00).
        (ev("letter.received", "2026-10-24T10:00:00+02:00", {"kind": "other"}),),
        "letter.acknowledged",
        "2026-10-27T23:59:59.999999+01:00",
    ),
    Row(
        "letter.answer",
        "We sturen binnen 2 weken een antwoord op een inhoudelijke schriftelijke vraag.",
        # Fri 11 Dec after closing + 14 calendar days = Fri 25 Dec. Christmas, but only
        # statutory terms move off holidays.
        (ev("letter.received", "2026-12-11T17:30:00+01:00", {"kind": "question"}),),
        "letter.answered",
        "2026-12-25T23:59:59.999999+01:00",
    ),
    Row(
        "letter.contact",
        "Als het nodig is, nemen wij natuurlijk binnen een week contact op.",
        # Wed 25 Mar + 7 days = Wed 1 Apr, in summer time (+02:00).
        (ev("letter.contact_needed", "2026-03-25T10:00:00+01:00"),),
        "letter.contacted",
        "2026-04-01T23:59:59.999999+02:00",
    ),
    Row(
        "counter.wait.appointment",
        "We werken op afspraak. De wachttijd is maximaal 5 minuten.",
        # Checked in at 09:50 for a 10:00 appointment: the wait starts at 10:00; + 5 min.
        (
            ev(
                "visit.checked_in",
                "2026-03-03T09:50:00+01:00",
                {"appointment_at": "2026-03-03T10:00:00+01:00"},
            ),
        ),
        "visit.called",
        "2026-03-03T10:05:00+01:00",
    ),
    Row(
        "counter.wait.walkin",
        "Zonder afspraak is de wachttijd maximaal 15 minuten.",
        # Checked in at 14:50 without an appointment; + 15 min.
        (ev("visit.checked_in", "2026-06-01T14:50:00+02:00"),),
        "visit.called",
        "2026-06-01T15:05:00+02:00",
    ),
    Row(
        "social.answer",
        "We beantwoorden deze vragen tijdens kantooruren binnen 2 uur.",
        # Fri 6 Mar 16:30: 30 office minutes left on Friday, the other 90 from Mon 08:30.
        (ev("social.received", "2026-03-06T16:30:00+01:00", {"platform": "facebook"}),),
        "social.replied",
        "2026-03-09T10:00:00+01:00",
    ),
    Row(
        "whatsapp.answer",
        "We zijn ook per WhatsApp bereikbaar. Wij reageren tijdens kantooruren binnen 2 uur.",
        # Wed 13 May 16:00: 1 office hour on Wednesday; Thu 14 is Ascension (closed);
        # the second hour from Fri 15 May 08:30.
        (ev("social.received", "2026-05-13T16:00:00+02:00", {"platform": "whatsapp"}),),
        "social.replied",
        "2026-05-15T09:30:00+02:00",
    ),
    Row(
        "complaint.contact",
        "We nemen binnen 3 werkdagen telefonisch contact op om eventuele vervolgstappen te",
        # Fri 24 Apr; Mon 27 Apr is King's Day: Tue 28 (1), Wed 29 (2), Thu 30 (3).
        (ev("complaint.received", "2026-04-24T14:00:00+02:00"),),
        "complaint.contacted",
        "2026-04-30T23:59:59.999999+02:00",
        stop_data={"by": "phone"},
    ),
    Row(
        "complaint.answer",
        "We sturen binnen 2 weken een inhoudelijk antwoord.",
        # Tue 20 Oct + 14 days = Tue 3 Nov, after the autumn DST change (+01:00).
        (ev("complaint.received", "2026-10-20T11:00:00+02:00"),),
        "complaint.answered",
        "2026-11-03T23:59:59.999999+01:00",
    ),
    Row(
        "objection.contact",
        "We nemen binnen 1 week contact op.",
        # Received on Boxing Day, Sat 26 Dec; + 7 days = Sat 2 Jan 2027. Not a statutory
        # term, so a Saturday end stays where it is.
        (ev("objection.received", "2026-12-26T10:00:00+01:00"),),
        "objection.contacted",
        "2027-01-02T23:59:59.999999+01:00",
    ),
    Row(
        "objection.decision",
        "We handelen bezwaar binnen de wettelijke termijn af, zonder gebruik te maken van de",
        # Mon 23 Feb + 6 weeks = Mon 6 Apr, Easter Monday: the Algemene termijnenwet moves
        # the end to Tue 7 Apr.
        (ev("objection.received", "2026-02-23T10:00:00+01:00"),),
        "objection.decided",
        "2026-04-07T23:59:59.999999+02:00",
    ),
    Row(
        "report.resolve",
        "We handelen het binnen 10 werkdagen af.",
        # Mon 11 May: 12 (1), 13 (2), Thu 14 Ascension, 15 (3), 18-22 (4-8),
        # Mon 25 Whit Monday, 26 (9), Wed 27 May (10).
        (ev("report.received", "2026-05-11T09:00:00+02:00"),),
        "report.resolved",
        "2026-05-27T23:59:59.999999+02:00",
    ),
    Row(
        "report.urgent",
        "Bij spoed ondernemen wij natuurlijk direct actie.",
        # 2 real hours across the autumn DST change: 01:30 CEST is 23:30 UTC; + 2 h is
        # 01:30 UTC, which is 02:30 CET (the clocks went back at 01:00 UTC).
        (ev("report.received", "2026-10-25T01:30:00+02:00", {"urgent": True}),),
        "report.action_started",
        "2026-10-25T02:30:00+01:00",
    ),
    Row(
        "report.delay_notice",
        "We informeren op tijd als het langer duurt dan 10 werkdagen.",
        # The report.resolve deadline of the same report (see that row).
        (ev("report.received", "2026-05-11T09:00:00+02:00"),),
        "report.delay_notified",
        "2026-05-27T23:59:59.999999+02:00",
    ),
    Row(
        "appointment.kept",
        "We komen afspraken na. Lukt dat niet? Dan informeren wij op tijd.",
        # The appointment is Fri 27 Mar 10:00; the breach waits 30 minutes for the kept event.
        (
            ev(
                "appointment.scheduled",
                "2026-03-20T09:00:00+01:00",
                {"at": "2026-03-27T10:00:00+01:00"},
            ),
        ),
        "appointment.kept",
        "2026-03-27T10:30:00+01:00",
        late=Kind.MET,  # "kept" counts even after the time
    ),
]
ROW_PARAMS = [pytest.param(row, id=row.norm) for row in ROWS]

# Norms without a plain deadline, each with its own tests below.
UNTIMED = {"phone.transfers", "counter.home_visit", "website.availability"}


def test_every_norm_but_phone_answer_is_covered_here(catalogue: Catalogue) -> None:
    covered = {row.norm for row in ROWS} | UNTIMED
    assert covered == set(catalogue.norms) - {"phone.answer"}


@pytest.mark.parametrize("row", ROW_PARAMS)
def test_the_clock_opens_with_the_hand_worked_deadline(catalogue: Catalogue, row: Row) -> None:
    assert row.seed in catalogue.norms[row.norm].seed  # the row tests the sentence it quotes
    [opened] = of(play(catalogue, *row.starts), row.norm)
    assert opened.kind is Kind.OPENED
    assert local(opened.deadline) == row.deadline


@pytest.mark.parametrize("row", ROW_PARAMS)
def test_a_stop_at_the_deadline_itself_is_met(catalogue: Catalogue, row: Row) -> None:
    step = play(catalogue, *row.starts, row.stop_at(row.deadline))
    assert kinds(step, row.norm) == [Kind.OPENED, Kind.MET]
    assert local(of(step, row.norm)[-1].decided_at) == row.deadline


@pytest.mark.parametrize("row", ROW_PARAMS)
def test_due_breaches_only_strictly_after_the_deadline(catalogue: Catalogue, row: Row) -> None:
    case = play(catalogue, *row.starts).case
    at_deadline = due(case, at(row.deadline), catalogue)
    assert Kind.BREACHED not in kinds(at_deadline, row.norm)
    after = due(at_deadline.case, at(row.deadline) + SECOND, catalogue)
    assert [(o.kind, local(o.decided_at)) for o in of(after, row.norm)] == [
        (Kind.BREACHED, row.deadline)
    ]


@pytest.mark.parametrize("row", ROW_PARAMS)
def test_nothing_is_due_up_to_next_due_and_something_is_just_after(
    catalogue: Catalogue, row: Row
) -> None:
    # The processor skips `due` for a case whose stored next_due is not yet past:
    # that is only right if `due` publishes nothing up to that instant, in every state
    # the case passes through (opened, warned at risk, decided).
    step = play(catalogue, *row.starts)
    assert step.next_due is not None
    assert due(step.case, step.outcomes[-1].started_at, catalogue).outcomes == ()
    decided = []
    while step.next_due is not None:
        assert due(step.case, step.next_due, catalogue).outcomes == ()
        step = due(step.case, step.next_due + SECOND, catalogue)
        assert step.outcomes != ()
        decided += [o.kind for o in step.outcomes]
    assert Kind.BREACHED in decided or row.late in decided
    if catalogue.norms[row.norm].at_risk:
        assert Kind.AT_RISK in decided


@pytest.mark.parametrize("row", ROW_PARAMS)
def test_a_stop_one_second_late_is_a_breach_unless_late_is_allowed(
    catalogue: Catalogue, row: Row
) -> None:
    step = play(catalogue, *row.starts, row.stop_at(later(row.deadline)))
    # A breach whose stop came says so: the notice to whoever was told can be closed.
    ended = [Kind.STOPPED_LATE] if row.late is Kind.BREACHED else []
    assert kinds(step, row.norm) == [Kind.OPENED, row.late, *ended]


# --- phone.transfers: a count, not a timer -------------------------------------------------------

ANSWERED = "2026-03-02T10:00:00+01:00"


def transfers(count: int) -> list[Event]:
    return [
        ev("call.transferred", f"2026-03-02T10:0{n}:00+01:00", event_id=f"transfer-{n}")
        for n in range(1, count + 1)
    ]


def test_phone_transfers_two_transfers_then_ended_is_met(catalogue: Catalogue) -> None:
    """'We verbinden warm door, maximaal 2 keer.' Two transfers are allowed."""
    step = play(
        catalogue,
        ev("call.answered", ANSWERED),
        *transfers(2),
        ev("call.ended", "2026-03-02T10:09:00+01:00"),
    )
    assert kinds(step, "phone.transfers") == [Kind.OPENED, Kind.MET]
    assert of(step, "phone.transfers")[0].deadline is None  # a count has no deadline


def test_phone_transfers_the_third_transfer_is_a_breach_at_once(catalogue: Catalogue) -> None:
    step = play(catalogue, ev("call.answered", ANSWERED), *transfers(3))
    assert [(o.kind, local(o.decided_at)) for o in of(step, "phone.transfers")] == [
        (Kind.OPENED, "2026-03-02T10:00:00+01:00"),
        (Kind.BREACHED, "2026-03-02T10:03:00+01:00"),  # the third transfer's own time
    ]
    end = ev("call.ended", "2026-03-02T10:09:00+01:00")
    ended = apply(step.case, end, end.time, catalogue)
    # Ending the call does not undo the breach; it says the clock stopped, after it.
    assert [(o.kind, o.corrects) for o in of(ended, "phone.transfers")] == [
        (Kind.STOPPED_LATE, None)
    ]
    assert clock(ended, "phone.transfers").status is Kind.BREACHED


def test_phone_transfers_an_answer_after_a_transfer_is_still_the_same_call(
    catalogue: Catalogue,
) -> None:
    """A transfer through a queue is answered again (Asterisk logs a second CONNECT): the
    answer does not start a new count, so the third transfer still breaches. Each such
    answer is a clock of its own, excluded at once (neither met nor breached)."""
    answered_again = [
        ev("call.answered", f"2026-03-02T10:0{n}:30+01:00", event_id=f"answered-{n}")
        for n in (1, 2)
    ]
    transferred = transfers(3)
    step = play(
        catalogue,
        ev("call.answered", ANSWERED),
        transferred[0], answered_again[0], transferred[1], answered_again[1], transferred[2],
        ev("call.ended", "2026-03-02T10:09:00+01:00"),
    )  # fmt: skip
    assert [(o.instance, o.kind, local(o.decided_at)) for o in of(step, "phone.transfers")] == [
        (1, Kind.OPENED, "2026-03-02T10:00:00+01:00"),
        (2, Kind.OPENED, "2026-03-02T10:01:30+01:00"),
        (2, Kind.EXCLUDED, "2026-03-02T10:01:30+01:00"),
        (3, Kind.OPENED, "2026-03-02T10:02:30+01:00"),
        (3, Kind.EXCLUDED, "2026-03-02T10:02:30+01:00"),
        (1, Kind.BREACHED, "2026-03-02T10:03:00+01:00"),
        (1, Kind.STOPPED_LATE, "2026-03-02T10:09:00+01:00"),
    ]
    assert [(c.instance, c.status) for c in step.clocks if c.norm == "phone.transfers"] == [
        (1, Kind.BREACHED),
        (2, Kind.EXCLUDED),
        (3, Kind.EXCLUDED),
    ]


def test_phone_transfers_a_call_answered_after_the_last_one_ended_is_counted_anew(
    catalogue: Catalogue,
) -> None:
    step = play(
        catalogue,
        ev("call.answered", ANSWERED),
        *transfers(2),
        ev("call.ended", "2026-03-02T10:09:00+01:00"),
        ev("call.answered", "2026-03-02T11:00:00+01:00", event_id="answered-again"),
        ev("call.transferred", "2026-03-02T11:01:00+01:00", event_id="transfer-again"),
    )
    assert [(o.instance, o.kind) for o in of(step, "phone.transfers")] == [
        (1, Kind.OPENED),
        (1, Kind.MET),
        (2, Kind.OPENED),
    ]


def test_phone_transfers_an_open_call_never_breaches_by_time(catalogue: Catalogue) -> None:
    step = play(
        catalogue, ev("call.answered", ANSWERED), *transfers(2), now="2027-03-02T10:00:00+01:00"
    )
    assert kinds(step, "phone.transfers") == [Kind.OPENED]


# --- phone.callback --------------------------------------------------------------------------


def test_phone_callback_promised_friday_after_closing_is_due_monday_night(
    catalogue: Catalogue,
) -> None:
    """'uiterlijk de volgende werkdag': Fri 6 Mar 17:30 -> the next working day is Mon 9 Mar."""
    step = play(catalogue, ev("callback.promised", "2026-03-06T17:30:00+01:00"))
    assert local(clock(step, "phone.callback").deadline) == "2026-03-09T23:59:59.999999+01:00"


# --- email.answer and its interim notice --------------------------------------------------------

RECEIVED = "2026-04-02T15:00:00+02:00"  # Thu before Easter: due Wed 8 Apr 23:59:59 (see ROWS)


def test_email_interim_with_contact_and_date_meets_the_answer_and_starts_the_promise(
    catalogue: Catalogue,
) -> None:
    """'Lukt dat niet dan informeren wij over de contactpersoon, de termijn en het vervolg.'"""
    step = play(
        catalogue,
        ev("email.received", RECEIVED),
        ev(
            "email.interim_sent",
            "2026-04-08T16:00:00+02:00",
            {"contact": "employee:10423", "promised_by": "2026-04-20"},
        ),
        now="2026-04-20T23:59:59.999999+02:00",
    )
    assert [(o.kind, local(o.decided_at)) for o in of(step, "email.answer")] == [
        (Kind.OPENED, "2026-04-02T15:00:00+02:00"),
        (Kind.MET, "2026-04-08T16:00:00+02:00"),
    ]
    # The promise runs from the interim notice to the end of Mon 20 Apr; not yet breached.
    promised = of(step, "email.answer.promised")
    assert [o.kind for o in promised] == [Kind.OPENED, Kind.AT_RISK]
    assert local(promised[0].started_at) == "2026-04-08T16:00:00+02:00"
    assert local(promised[0].deadline) == "2026-04-20T23:59:59.999999+02:00"
    breached = due(step.case, at("2026-04-21T00:00:00+02:00"), catalogue)
    assert kinds(breached, "email.answer.promised") == [Kind.BREACHED]


@pytest.mark.parametrize(
    "interim",
    [
        pytest.param({"promised_by": "2026-04-20"}, id="no contact"),
        pytest.param({"contact": "team:kcc"}, id="no promised date"),
        pytest.param({}, id="neither"),
    ],
)
def test_email_interim_without_contact_and_date_does_not_count(
    catalogue: Catalogue, interim: Data
) -> None:
    step = play(
        catalogue,
        ev("email.received", RECEIVED),
        ev("email.interim_sent", "2026-04-07T10:00:00+02:00", interim),
        now="2026-04-09T00:00:00+02:00",
    )
    decided = [(o.kind, local(o.decided_at)) for o in of(step, "email.answer")]
    assert [d for d in decided if d[0] is not Kind.AT_RISK] == [
        (Kind.OPENED, "2026-04-02T15:00:00+02:00"),
        (Kind.BREACHED, "2026-04-08T23:59:59.999999+02:00"),
    ]
    assert of(step, "email.answer.promised") == []


def test_email_answer_pause_moves_the_deadline_by_the_paused_working_days(
    catalogue: Catalogue,
) -> None:
    """Received Mon 2 Mar 10:00: due Wed 4 Mar 23:59:59. Paused Tue 3 Mar 10:00, resumed
    Wed 4 Mar 10:00: working days after the pause's date up to the resume's date: Wed 4 = 1,
    so the deadline moves one working day to Thu 5 Mar 23:59:59."""
    paused = play(
        catalogue,
        ev("email.received", "2026-03-02T10:00:00+01:00"),
        ev("case.paused", "2026-03-03T10:00:00+01:00", {"reason": "waiting_for_resident"}),
    )
    # While paused the clock does not breach, even past its original deadline.
    waiting = due(paused.case, at("2026-03-05T09:00:00+01:00"), catalogue)
    assert Kind.BREACHED not in kinds(waiting, "email.answer")
    resumed = apply(
        waiting.case,
        ev("case.resumed", "2026-03-04T10:00:00+01:00"),
        at("2026-03-05T09:00:00+01:00"),
        catalogue,
    )
    assert local(clock(resumed, "email.answer").deadline) == "2026-03-05T23:59:59.999999+01:00"
    assert Kind.BREACHED not in kinds(resumed, "email.answer")
    after = due(resumed.case, at("2026-03-06T00:00:00+01:00"), catalogue)
    assert [(o.kind, local(o.decided_at)) for o in of(after, "email.answer")] == [
        (Kind.BREACHED, "2026-03-05T23:59:59.999999+01:00")
    ]


@pytest.mark.parametrize("resume_id", ["a-resume", "z-resume"])
def test_a_pause_and_a_resume_at_one_instant_change_nothing(
    catalogue: Catalogue, resume_id: str
) -> None:
    """Whichever of the two sorts first by id, the pause has no length: the clock runs on
    and breaches at its deadline (Wed 4 Mar 23:59:59), not held paused for good."""
    step = play(
        catalogue,
        ev("email.received", "2026-03-02T10:00:00+01:00"),
        ev("case.paused", "2026-03-03T10:00:00+01:00", {"reason": "waiting_for_resident"},
           event_id="m-pause"),
        ev("case.resumed", "2026-03-03T10:00:00+01:00", event_id=resume_id),
    )  # fmt: skip
    after = due(step.case, at("2026-03-06T00:00:00+01:00"), catalogue)
    assert [(o.kind, local(o.decided_at)) for o in of(after, "email.answer")] == [
        (Kind.BREACHED, "2026-03-04T23:59:59.999999+01:00")
    ]


def test_a_resumed_clock_is_still_at_risk_before_its_deadline(catalogue: Catalogue) -> None:
    """Received Thu 5 Mar 10:00: due Mon 9 Mar 23:59:59. Paused Fri 6 Mar 10:00, resumed
    Mon 9 Mar 10:00: one working day (Mon 9) given back, so due Tue 10 Mar 23:59:59. Whatever
    share of the running time the warning uses, it must come by the deadline, or it never
    comes: the clock breaches first."""
    step = play(
        catalogue,
        ev("email.received", "2026-03-05T10:00:00+01:00"),
        ev("case.paused", "2026-03-06T10:00:00+01:00", {"reason": "waiting_for_resident"}),
        ev("case.resumed", "2026-03-09T10:00:00+01:00"),
    )
    resumed = clock(step, "email.answer")
    assert local(resumed.deadline) == "2026-03-10T23:59:59.999999+01:00"
    assert resumed.at_risk_at is not None
    assert resumed.deadline is not None
    assert resumed.at_risk_at <= resumed.deadline
    at_deadline = due(step.case, at("2026-03-10T23:59:59.999999+01:00"), catalogue)
    assert Kind.AT_RISK in kinds(at_deadline, "email.answer")


def test_a_long_pause_does_not_put_a_clock_at_risk_on_resuming(catalogue: Catalogue) -> None:
    """Received Mon 2 Mar 10:00, paused 10:05, resumed Mon 16 Mar 10:00: ten working days
    given back (3-6, 9-13, 16 Mar), so due Wed 18 Mar 23:59:59. The office time that runs:
    5 min on 2 Mar, then Mon 16 10:00-17:00 7 h, Tue 17 and Wed 18 8.5 h each = 24 h 05 min.
    75 % is 18 h 03 min 45 s: 5 min before the pause, 7 h on Monday, 8.5 h on Tuesday and
    2 h 28 min 45 s from Wed 08:30 -> Wed 18 Mar 10:58:45. (Counting the paused time too put
    the warning inside the pause, published at once on resuming.)"""
    step = play(
        catalogue,
        ev("email.received", "2026-03-02T10:00:00+01:00"),
        ev("case.paused", "2026-03-02T10:05:00+01:00", {"reason": "waiting_for_resident"}),
        ev("case.resumed", "2026-03-16T10:00:00+01:00"),
    )
    resumed = clock(step, "email.answer")
    assert local(resumed.deadline) == "2026-03-18T23:59:59.999999+01:00"
    assert local(resumed.at_risk_at) == "2026-03-18T10:58:45+01:00"
    assert Kind.AT_RISK not in kinds(step, "email.answer")
    warned = due(step.case, at("2026-03-18T10:58:46+01:00"), catalogue)
    assert [(o.kind, local(o.decided_at)) for o in of(warned, "email.answer")] == [
        (Kind.AT_RISK, "2026-03-18T10:58:45+01:00")
    ]


def test_a_pause_does_not_stop_a_norm_that_is_not_pausable(catalogue: Catalogue) -> None:
    """email.ack is not pausable: 10:00 + 5 min is breached at 10:05:01 despite the pause."""
    step = play(
        catalogue,
        ev("email.received", "2026-03-02T10:00:00+01:00"),
        ev("case.paused", "2026-03-02T10:01:00+01:00", {"reason": "other"}),
        now="2026-03-02T10:05:01+01:00",
    )
    assert kinds(step, "email.ack")[-1] is Kind.BREACHED


# --- letter.ack, letter.answer ------------------------------------------------------------------

LETTER = "2026-10-24T10:00:00+02:00"  # Sat 24 Oct: due Tue 27 Oct 23:59:59+01:00 (see ROWS)
FULL_ACK = {"contact": "team:vergunningen", "term": "P8W", "next_step": "site_visit"}


@pytest.mark.parametrize(
    ("kind", "ack", "expected"),
    [
        pytest.param("application", FULL_ACK, Kind.MET, id="application, complete ack"),
        pytest.param(
            "application",
            {"contact": "team:vergunningen", "term": "P8W"},
            Kind.BREACHED,
            id="application, no next step",
        ),
        pytest.param("application", {}, Kind.BREACHED, id="application, bare ack"),
        pytest.param("question", {}, Kind.MET, id="question, bare ack"),
        pytest.param("other", {}, Kind.MET, id="other, bare ack"),
    ],
)
def test_letter_ack_for_an_application_needs_contact_term_and_next_step(
    catalogue: Catalogue, kind: str, ack: Data, expected: Kind
) -> None:
    """'Bij een aanvraag informeren wij over de contactpersoon, de termijn en het vervolg.'"""
    step = play(
        catalogue,
        ev("letter.received", LETTER, {"kind": kind}),
        ev("letter.acknowledged", "2026-10-26T11:00:00+01:00", ack),
        now="2026-10-28T00:00:00+01:00",
    )
    assert kinds(step, "letter.ack") == [Kind.OPENED, expected]


@pytest.mark.parametrize("kind", ["application", "other"])
def test_letter_answer_only_starts_for_a_question(catalogue: Catalogue, kind: str) -> None:
    """'een antwoord op een inhoudelijke schriftelijke vraag': only kind=question."""
    step = play(catalogue, ev("letter.received", LETTER, {"kind": kind}))
    assert kinds(step, "letter.answer") == []
    assert kinds(step, "letter.ack") == [Kind.OPENED]


# --- counter -------------------------------------------------------------------------------------


def test_counter_appointment_wait_starts_at_check_in_when_later_than_the_appointment(
    catalogue: Catalogue,
) -> None:
    """Checked in at 10:10 for a 10:00 appointment: the 5 minutes run from 10:10."""
    step = play(
        catalogue,
        ev(
            "visit.checked_in",
            "2026-03-03T10:10:00+01:00",
            {"appointment_at": "2026-03-03T10:00:00+01:00"},
        ),
    )
    [opened] = of(step, "counter.wait.appointment")
    assert local(opened.started_at) == "2026-03-03T10:10:00+01:00"
    assert local(opened.deadline) == "2026-03-03T10:15:00+01:00"
    assert of(step, "counter.wait.walkin") == []


def test_counter_appointment_called_before_the_appointment_time_is_met(
    catalogue: Catalogue,
) -> None:
    step = play(
        catalogue,
        ev(
            "visit.checked_in",
            "2026-03-03T09:50:00+01:00",
            {"appointment_at": "2026-03-03T10:00:00+01:00"},
        ),
        ev("visit.called", "2026-03-03T09:55:00+01:00"),
    )
    assert kinds(step, "counter.wait.appointment") == [Kind.OPENED, Kind.MET]


def test_counter_walkin_does_not_start_the_appointment_wait(catalogue: Catalogue) -> None:
    step = play(catalogue, ev("visit.checked_in", "2026-06-01T14:50:00+02:00"))
    assert [o.norm for o in step.outcomes] == ["counter.wait.walkin"]


def test_counter_home_visit_never_breaches_and_is_met_when_scheduled(
    catalogue: Catalogue,
) -> None:
    """'We gaan naar inwoners en ondernemers toe die niet zelf naar het gemeentehuis kunnen
    komen.' No term in the seed: tracked, never breached."""
    assert "niet zelf naar het gemeentehuis" in catalogue.norms["counter.home_visit"].seed
    requested = play(
        catalogue,
        ev("visit.home_requested", "2026-03-02T10:00:00+01:00"),
        now="2027-03-02T10:00:00+01:00",  # a year on: still open
    )
    assert [(o.kind, o.deadline) for o in of(requested, "counter.home_visit")] == [
        (Kind.OPENED, None)
    ]
    scheduled = apply(
        requested.case,
        ev("visit.home_scheduled", "2027-03-02T10:00:00+01:00"),
        at("2027-03-02T10:00:00+01:00"),
        catalogue,
    )
    assert kinds(scheduled, "counter.home_visit") == [Kind.MET]


# --- social media ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "platform", "deadline"),
    [
        # Tue 10:00, inside office hours: 2 h later.
        ("2026-03-03T10:00:00+01:00", "facebook", "2026-03-03T12:00:00+01:00"),
        # Tue 07:00, before opening: from 08:30.
        ("2026-03-03T07:00:00+01:00", "twitter", "2026-03-03T10:30:00+01:00"),
        # Fri 16:00: 1 h on Friday, 1 h from Mon 08:30.
        ("2026-03-06T16:00:00+01:00", "facebook", "2026-03-09T09:30:00+01:00"),
        # Fri 16:30: 30 min on Friday, 90 min from Mon 08:30.
        ("2026-03-06T16:30:00+01:00", "twitter", "2026-03-09T10:00:00+01:00"),
        # Fri 18:00, after closing: nothing left on Friday; 2 h from Mon 08:30.
        ("2026-03-06T18:00:00+01:00", "facebook", "2026-03-09T10:30:00+01:00"),
        # Sat: "op maandag vóór 12.00 uur".
        ("2026-03-07T11:00:00+01:00", "facebook", "2026-03-09T12:00:00+01:00"),
        # Sun night of the spring DST change: Mon 30 Mar 12:00, now summer time.
        ("2026-03-29T01:30:00+01:00", "twitter", "2026-03-30T12:00:00+02:00"),
        # Easter Sunday: Monday is Easter Monday, so noon of Tue 7 Apr.
        ("2026-04-05T20:00:00+02:00", "facebook", "2026-04-07T12:00:00+02:00"),
        # King's Day is a Monday holiday, not a weekend: no noon rule; 2 h from Tue 08:30.
        ("2026-04-27T10:00:00+02:00", "facebook", "2026-04-28T10:30:00+02:00"),
    ],
)
def test_social_answer_two_office_hours_and_weekend_noon(
    catalogue: Catalogue, received: str, platform: str, deadline: str
) -> None:
    """'We beantwoorden deze vragen tijdens kantooruren binnen 2 uur. Op vragen die we in het
    weekend ontvangen antwoorden we op maandag vóór 12.00 uur.'"""
    step = play(catalogue, ev("social.received", received, {"platform": platform}))
    [opened] = of(step, "social.answer")
    assert local(opened.deadline) == deadline
    assert of(step, "whatsapp.answer") == []


def test_social_weekend_question_answered_at_noon_is_met_and_after_noon_breached(
    catalogue: Catalogue,
) -> None:
    saturday = ev("social.received", "2026-03-07T11:00:00+01:00", {"platform": "facebook"})
    noon = play(catalogue, saturday, ev("social.replied", "2026-03-09T12:00:00+01:00"))
    assert kinds(noon, "social.answer") == [Kind.OPENED, Kind.MET]
    late = play(catalogue, saturday, ev("social.replied", "2026-03-09T12:00:01+01:00"))
    assert kinds(late, "social.answer") == [Kind.OPENED, Kind.BREACHED, Kind.STOPPED_LATE]


def test_social_weekend_hour_is_the_one_the_catalogue_gives() -> None:
    """The catalogue writes the weekend rule's hour as data (`weekend_noon: "12:00"`); a
    catalogue that says 11:00 must get Monday 11:00 for a Saturday question."""
    spec = packaged_spec()
    [social] = [norm for norm in spec["norms"] if norm["id"] == "social.answer"]
    social["term"] = {"office_hours": "2h", "weekend_noon": "11:00"}
    saturday = ev("social.received", "2026-03-07T11:00:00+01:00", {"platform": "facebook"})
    step = play(Catalogue(spec), saturday)
    assert local(clock(step, "social.answer").deadline) == "2026-03-09T11:00:00+01:00"


@pytest.mark.parametrize(
    ("received", "deadline"),
    [
        # Sat 11:00: no weekend rule for WhatsApp; 2 h from Mon 08:30.
        ("2026-03-07T11:00:00+01:00", "2026-03-09T10:30:00+01:00"),
        # Christmas Eve Thu 16:30: 30 min; Fri 25 Christmas, weekend; 90 min from Mon 28 08:30.
        ("2026-12-24T16:30:00+01:00", "2026-12-28T10:00:00+01:00"),
        # Fri 27 Mar 16:00: 1 h; the weekend brings summer time; 1 h from Mon 30 Mar 08:30.
        ("2026-03-27T16:00:00+01:00", "2026-03-30T09:30:00+02:00"),
        # Thu 2 Apr 16:00: 1 h; Good Friday, weekend, Easter Monday; 1 h from Tue 7 Apr 08:30.
        ("2026-04-02T16:00:00+02:00", "2026-04-07T09:30:00+02:00"),
    ],
)
def test_whatsapp_answer_two_office_hours_without_weekend_noon(
    catalogue: Catalogue, received: str, deadline: str
) -> None:
    """'Wij reageren tijdens kantooruren binnen 2 uur.'"""
    step = play(catalogue, ev("social.received", received, {"platform": "whatsapp"}))
    [opened] = of(step, "whatsapp.answer")
    assert local(opened.deadline) == deadline
    assert of(step, "social.answer") == []


# --- complaints --------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["email", "letter", "visit"])
def test_complaint_contact_counts_only_by_phone(catalogue: Catalogue, by: str) -> None:
    """'We nemen binnen 3 werkdagen telefonisch contact op': contact by other means does not
    stop the clock; due Thu 30 Apr 23:59:59 (see ROWS)."""
    step = play(
        catalogue,
        ev("complaint.received", "2026-04-24T14:00:00+02:00"),
        ev("complaint.contacted", "2026-04-28T10:00:00+02:00", {"by": by}),
        now="2026-05-01T00:00:00+02:00",
    )
    decided = [(o.kind, local(o.decided_at)) for o in of(step, "complaint.contact")]
    assert [d for d in decided if d[0] is not Kind.AT_RISK] == [
        (Kind.OPENED, "2026-04-24T14:00:00+02:00"),
        (Kind.BREACHED, "2026-04-30T23:59:59.999999+02:00"),
    ]


# --- objections --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "received", "deadline"),
    [
        # Thu 5 Mar + 6 weeks = Thu 16 Apr: an ordinary day, not moved.
        ({}, "2026-03-05T10:00:00+01:00", "2026-04-16T23:59:59.999999+02:00"),
        # Mon 23 Feb + 6 weeks = Easter Monday 6 Apr -> Tue 7 Apr.
        ({}, "2026-02-23T10:00:00+01:00", "2026-04-07T23:59:59.999999+02:00"),
        # Tue 24 Mar + 6 weeks = Tue 5 May: Liberation Day is an Atw holiday every year
        # (though a working day in 2026) -> Wed 6 May.
        ({}, "2026-03-24T10:00:00+01:00", "2026-05-06T23:59:59.999999+02:00"),
        # Sat 5 Sep + 6 weeks = Sat 17 Oct -> Mon 19 Oct.
        ({}, "2026-09-05T10:00:00+02:00", "2026-10-19T23:59:59.999999+02:00"),
        # Term starts Tue 17 Mar (its first day): 42 days are 17 Mar..27 Apr, King's Day
        # -> Tue 28 Apr. The date of receipt does not matter then.
        (
            {"term_start": "2026-03-17"},
            "2026-02-20T10:00:00+01:00",
            "2026-04-28T23:59:59.999999+02:00",
        ),
        # With an advisory committee, 12 weeks: Fri 2 Oct + 84 days = Fri 25 Dec, Christmas;
        # Sat 26 Boxing Day, Sun 27 -> Mon 28 Dec.
        (
            {"advisory_committee": True},
            "2026-10-02T10:00:00+02:00",
            "2026-12-28T23:59:59.999999+01:00",
        ),
    ],
)
def test_objection_decision_statutory_term(
    catalogue: Catalogue, data: Data, received: str, deadline: str
) -> None:
    """'We handelen bezwaar binnen de wettelijke termijn af': 6 weeks (Awb 7:10), 12 with an
    advisory committee; an end on a Saturday, Sunday or Atw holiday moves to the next day."""
    step = play(catalogue, ev("objection.received", received, data))
    [opened] = of(step, "objection.decision")
    assert local(opened.deadline) == deadline
    if not data:  # `normwacht deadlines` knows only the receipt, so it agrees on these
        assert local(catalogue.deadline("objection.decision", at(received))) == deadline


def test_objection_decision_term_start_is_where_the_clock_starts(catalogue: Catalogue) -> None:
    step = play(
        catalogue,
        ev("objection.received", "2026-02-20T10:00:00+01:00", {"term_start": "2026-03-17"}),
    )
    [opened] = of(step, "objection.decision")
    assert local(opened.started_at) == "2026-03-17T00:00:00+01:00"
    # objection.contact still counts from receipt: Fri 20 Feb + 7 = Fri 27 Feb.
    assert local(of(step, "objection.contact")[0].deadline) == "2026-02-27T23:59:59.999999+01:00"


@pytest.mark.parametrize("term_start", ["9999-12-01", "0001-01-01", "3000-01-01"])
def test_a_term_start_outside_the_event_years_is_refused(term_start: str) -> None:
    # Its deadline would lie past what a datetime holds: the processor could not decide it.
    with pytest.raises(ValidationError, match="outside the years 1900 to 2999"):
        ev("objection.received", "2026-02-20T10:00:00+01:00", {"term_start": term_start})


@pytest.mark.parametrize(
    ("event", "year"),
    [
        # The last term start an event may carry: twelve weeks on is in the year 3000.
        (ev("objection.received", "2999-12-20T10:00:00+01:00",
            {"term_start": "2999-12-31", "advisory_committee": True}), 2999),
        # Sat 24 Dec 2101: the next working day would be Boxing Day, not known as a holiday.
        (ev("callback.promised", "2101-12-24T10:00:00+01:00"), 2101),
        (ev("email.received", "1965-06-01T10:00:00+01:00"), 1965),
    ],
)  # fmt: skip
def test_a_term_in_a_year_without_holiday_data_is_refused_not_miscounted(
    catalogue: Catalogue, event: Event, year: int
) -> None:
    # The holidays package knows the Dutch holidays of 1966-2100 only; counting every day
    # of another year as a working day would give a wrong deadline silently. (The
    # processor dead-letters such an event as `unprocessable_event`.)
    with pytest.raises(NoHolidaysFor, match=f"for {year}"):
        play(catalogue, event)


def test_objection_committee_assigned_later_lengthens_the_term_to_twelve_weeks(
    catalogue: Catalogue,
) -> None:
    """Fri 2 Oct + 6 weeks = Fri 13 Nov; once a committee is assigned, 12 weeks: Mon 28 Dec."""
    received = ev("objection.received", "2026-10-02T10:00:00+02:00")
    opened = play(catalogue, received)
    assert local(of(opened, "objection.decision")[0].deadline) == "2026-11-13T23:59:59.999999+01:00"
    step = play(
        catalogue,
        received,
        ev("objection.committee_assigned", "2026-10-20T09:00:00+02:00"),
        now="2026-11-14T00:00:00+01:00",  # past the 6 weeks: no breach now
    )
    assert local(clock(step, "objection.decision").deadline) == "2026-12-28T23:59:59.999999+01:00"
    assert Kind.BREACHED not in kinds(step, "objection.decision")
    decided = apply(
        step.case,
        ev("objection.decided", "2026-12-01T10:00:00+01:00"),
        at("2026-12-01T10:00:00+01:00"),
        catalogue,
    )
    assert kinds(decided, "objection.decision") == [Kind.MET]


def test_objection_decision_paused_onto_a_saturday_still_moves_by_the_atw(
    catalogue: Catalogue,
) -> None:
    """Received Thu 5 Mar: 6 weeks end Thu 16 Apr. Paused Mon 9 Mar 10:00, resumed Wed 11 Mar
    10:00: 2 calendar days, so the term ends Sat 18 Apr, and a statutory term ending on a
    Saturday runs to the end of the next day that is no Saturday, Sunday or holiday: Mon 20 Apr.
    """
    step = play(
        catalogue,
        ev("objection.received", "2026-03-05T10:00:00+01:00"),
        ev("case.paused", "2026-03-09T10:00:00+01:00", {"reason": "waiting_for_resident"}),
        ev("case.resumed", "2026-03-11T10:00:00+01:00"),
    )
    assert local(clock(step, "objection.decision").deadline) == "2026-04-20T23:59:59.999999+02:00"


@pytest.mark.parametrize(
    ("paused", "resumed", "deadline"),
    [
        # All of it before the term's first day: nothing of the term was spent waiting,
        # so still due Tue 28 Apr (see above).
        ("2026-03-02T10:00:00+01:00", "2026-03-10T10:00:00+01:00", "2026-04-28"),
        # Only 17, 18 and 19 Mar lie in the term, so 3 days more: Thu 30 Apr. (Counted from
        # 13 Mar, 6 days: Sun 3 May, moved to Mon 4 May.)
        ("2026-03-13T10:00:00+01:00", "2026-03-19T10:00:00+01:00", "2026-04-30"),
    ],
)
def test_objection_decision_paused_only_counts_from_its_term_start(
    catalogue: Catalogue, paused: str, resumed: str, deadline: str
) -> None:
    """Term from Tue 17 Mar (42 days: 17 Mar..Mon 27 Apr, King's Day -> Tue 28 Apr)."""
    step = play(
        catalogue,
        ev("objection.received", "2026-02-20T10:00:00+01:00", {"term_start": "2026-03-17"}),
        ev("case.paused", paused, {"reason": "waiting_for_resident"}),
        ev("case.resumed", resumed),
    )
    assert local(clock(step, "objection.decision").deadline) == f"{deadline}T23:59:59.999999+02:00"


def test_objection_committee_assigned_after_a_pause_keeps_the_paused_days(
    catalogue: Catalogue,
) -> None:
    """Received Thu 5 Mar; paused Mon 9 Mar, resumed Mon 16 Mar: 7 days, so 6 weeks end
    Thu 16 Apr + 7 = Thu 23 Apr. A committee assigned Tue 17 Mar makes it 12 weeks: Thu 28 May,
    and the 7 paused days still count: Thu 4 Jun (no weekend or holiday to move off)."""
    paused = play(
        catalogue,
        ev("objection.received", "2026-03-05T10:00:00+01:00"),
        ev("case.paused", "2026-03-09T10:00:00+01:00", {"reason": "waiting_for_resident"}),
        ev("case.resumed", "2026-03-16T10:00:00+01:00"),
    )
    assert local(clock(paused, "objection.decision").deadline) == "2026-04-23T23:59:59.999999+02:00"
    assigned = apply(
        paused.case,
        ev("objection.committee_assigned", "2026-03-17T10:00:00+01:00"),
        at("2026-03-17T10:00:00+01:00"),
        catalogue,
    )
    assert (
        local(clock(assigned, "objection.decision").deadline) == "2026-06-04T23:59:59.999999+02:00"
    )


def test_objection_extension_is_a_breach_at_once(catalogue: Catalogue) -> None:
    """'zonder gebruik te maken van de verdagingstermijn': extending is itself the breach."""
    step = play(
        catalogue,
        ev("objection.received", "2026-02-23T10:00:00+01:00"),
        ev("objection.extended", "2026-03-10T09:00:00+01:00"),
        ev("objection.decided", "2026-03-20T09:00:00+01:00"),  # decided in time, too late
    )
    assert [(o.kind, local(o.decided_at)) for o in of(step, "objection.decision")] == [
        (Kind.OPENED, "2026-02-23T10:00:00+01:00"),
        (Kind.BREACHED, "2026-03-10T09:00:00+01:00"),
        (Kind.STOPPED_LATE, "2026-03-20T09:00:00+01:00"),
    ]


# --- public-space reports -------------------------------------------------------------------

REPORT = "2026-05-11T09:00:00+02:00"  # Mon 11 May: resolve due Wed 27 May 23:59:59 (see ROWS)


def test_report_urgent_only_when_marked_urgent(catalogue: Catalogue) -> None:
    """'Bij spoed ondernemen wij natuurlijk direct actie.'"""
    plain = play(catalogue, ev("report.received", REPORT, {"urgent": False}))
    assert sorted(o.norm for o in plain.outcomes) == ["report.delay_notice", "report.resolve"]
    urgent = play(catalogue, ev("report.received", REPORT, {"urgent": True}))
    # 09:00 + 2 h, 24/7.
    assert local(of(urgent, "report.urgent")[0].deadline) == "2026-05-11T11:00:00+02:00"


def test_urgent_report_acted_on_late_stays_breached_and_says_when_action_came(
    catalogue: Catalogue,
) -> None:
    """The breach stands; `stopped_late` (once) tells the on-call person action has started."""
    received = ev("report.received", REPORT, {"urgent": True})
    breached = play(catalogue, received, now="2026-05-11T11:00:01+02:00")
    assert kinds(breached, "report.urgent") == [Kind.OPENED, Kind.BREACHED]
    action = "2026-05-11T11:40:00+02:00"
    step = apply(breached.case, ev("report.action_started", action), at(action), catalogue)
    [ended] = of(step, "report.urgent")
    assert (ended.kind, ended.corrects, local(ended.decided_at)) == (
        Kind.STOPPED_LATE,
        None,
        action,
    )
    assert clock(step, "report.urgent").status is Kind.BREACHED
    again = "2026-05-11T11:50:00+02:00"
    step = apply(step.case, ev("report.action_started", again), at(again), catalogue)
    assert of(step, "report.urgent") == []


def test_report_delay_notified_in_time_meets_the_notice_but_not_the_resolution(
    catalogue: Catalogue,
) -> None:
    """'We informeren op tijd als het langer duurt dan 10 werkdagen.'"""
    step = play(
        catalogue,
        ev("report.received", REPORT),
        ev("report.delay_notified", "2026-05-26T10:00:00+02:00"),
        now="2026-05-28T00:00:00+02:00",
    )
    assert kinds(step, "report.delay_notice") == [Kind.OPENED, Kind.MET]
    assert kinds(step, "report.resolve")[-1] is Kind.BREACHED


def test_report_resolved_in_time_meets_the_notice_too(catalogue: Catalogue) -> None:
    step = play(
        catalogue,
        ev("report.received", REPORT),
        ev("report.resolved", "2026-05-20T10:00:00+02:00"),
        now="2026-06-30T00:00:00+02:00",
    )
    assert kinds(step, "report.resolve") == [Kind.OPENED, Kind.MET]
    assert kinds(step, "report.delay_notice") == [Kind.OPENED, Kind.MET]


def test_report_resolve_pause_moves_the_deadline_by_the_paused_working_days(
    catalogue: Catalogue,
) -> None:
    """Paused Tue 12 May 10:00, resumed Mon 18 May 10:00: working days after 12 May up to
    18 May are Wed 13, Fri 15, Mon 18 (Thu 14 is Ascension) = 3. Wed 27 May + 3 working days:
    Thu 28, Fri 29, Mon 1 Jun."""
    step = play(
        catalogue,
        ev("report.received", REPORT),
        ev("case.paused", "2026-05-12T10:00:00+02:00", {"reason": "waiting_for_third_party"}),
        ev("case.resumed", "2026-05-18T10:00:00+02:00"),
        now="2026-05-28T12:00:00+02:00",  # past the unpaused deadline
    )
    for norm in ("report.resolve", "report.delay_notice"):
        assert local(clock(step, norm).deadline) == "2026-06-01T23:59:59.999999+02:00"
        assert Kind.BREACHED not in kinds(step, norm)
    after = due(step.case, at("2026-06-02T00:00:00+02:00"), catalogue)
    assert [(o.norm, o.kind, local(o.decided_at)) for o in after.outcomes] == [
        ("report.resolve", Kind.BREACHED, "2026-06-01T23:59:59.999999+02:00"),
        ("report.delay_notice", Kind.BREACHED, "2026-06-01T23:59:59.999999+02:00"),
    ]


# --- website.availability ---------------------------------------------------------------------
# The shared contract leaves the month open; docs/NORMS.md fixes it: calendar months of
# Europe/Amsterdam, probes tallied per month, instance YYYYMM.


def probes(total: int, down: int, start: str = "2026-03-02T00:00:00+01:00") -> list[Event]:
    """`total` probes a minute apart from `start`, the first `down` of them finding it down."""
    first = at(start)
    return [
        ev(
            "website.probe",
            (first + timedelta(minutes=n)).isoformat(),
            {"target": "www.heiloo.nl", "up": n >= down},
            event_id=f"probe-{start}-{n}",
        )
        for n in range(total)
    ]


def monitor(catalogue: Catalogue, events: list[Event], now: str) -> Step:
    case: Case | None = None
    for event in events:
        case = apply(case, event, event.time, catalogue).case
    assert case is not None
    return due(case, at(now), catalogue)


@pytest.mark.parametrize(
    ("total", "down", "expected"),
    [
        (1000, 1, Kind.MET),  # 999 / 1000 = 99.9 %: exactly the minimum
        (999, 1, Kind.BREACHED),  # 998 / 999 = 99.8999 %: just under
        (1000, 0, Kind.MET),
    ],
)
def test_website_availability_is_decided_when_the_month_is_over(
    catalogue: Catalogue, total: int, down: int, expected: Kind
) -> None:
    """'Onze websites zijn 24/7 toegankelijk.': at least 99.9 % of March's probes up.
    March ends at midnight after Tue 31 Mar (summer time since the 29th): its last instant
    is 23:59:59.999999 local."""
    step = monitor(catalogue, probes(total, down), "2026-04-01T00:00:00+02:00")
    [decided] = of(step, "website.availability")
    assert (decided.instance, decided.kind) == (202603, expected)
    assert local(decided.deadline) == "2026-03-31T23:59:59.999999+02:00"
    assert local(decided.decided_at) == "2026-03-31T23:59:59.999999+02:00"


def test_website_availability_is_open_until_the_month_is_over(catalogue: Catalogue) -> None:
    step = monitor(catalogue, probes(10, 10), "2026-03-31T23:59:59+02:00")
    assert [c.status for c in step.clocks if c.norm == "website.availability"] == [Kind.OPENED]
    assert step.outcomes == ()


def test_website_availability_months_are_local_calendar_months(catalogue: Catalogue) -> None:
    """31 Mar 21:30 UTC is 23:30 in Amsterdam (March); 31 Mar 22:30 UTC is 1 Apr 00:30
    (April), though still March in UTC."""
    events = [
        *probes(1, 0, "2026-03-31T21:30:00+00:00"),
        *probes(1, 1, "2026-03-31T22:30:00+00:00"),
    ]
    step = monitor(catalogue, events, "2026-05-01T00:00:00+02:00")
    decided = {(c.instance, c.status) for c in step.clocks if c.norm == "website.availability"}
    assert decided == {(202603, Kind.MET), (202604, Kind.BREACHED)}


# --- appointment.kept -----------------------------------------------------------------------

SCHEDULED = ev(
    "appointment.scheduled", "2026-03-20T09:00:00+01:00", {"at": "2026-03-27T10:00:00+01:00"}
)


@pytest.mark.parametrize(
    ("notice", "expected"),
    [
        ("2026-03-26T15:00:00+01:00", Kind.MET),  # the day before
        ("2026-03-27T09:59:59+01:00", Kind.MET),  # the second before it
        ("2026-03-27T10:00:00+01:00", Kind.BREACHED),  # at the appointment time: not before
        ("2026-03-27T10:01:00+01:00", Kind.BREACHED),  # after it, though within the 30 min
    ],
)
def test_appointment_cancellation_counts_only_before_the_appointment_time(
    catalogue: Catalogue, notice: str, expected: Kind
) -> None:
    """'We komen afspraken na. Lukt dat niet? Dan informeren wij op tijd.'"""
    step = play(catalogue, SCHEDULED, ev("appointment.cancelled_notice", notice))
    assert [(o.kind, local(o.decided_at)) for o in of(step, "appointment.kept")][-1] == (
        expected,
        notice,
    )


def test_appointment_kept_late_corrects_a_published_breach(catalogue: Catalogue) -> None:
    breached = play(catalogue, SCHEDULED, now="2026-03-27T10:31:00+01:00")
    assert kinds(breached, "appointment.kept")[-1] is Kind.BREACHED
    kept = apply(
        breached.case,
        ev("appointment.kept", "2026-03-27T10:45:00+01:00"),
        at("2026-03-27T10:46:00+01:00"),
        catalogue,
    )
    [correction] = of(kept, "appointment.kept")
    assert (correction.kind, correction.corrects) == (Kind.MET, Kind.BREACHED)


def test_appointment_cancelled_after_a_published_breach_stays_breached(
    catalogue: Catalogue,
) -> None:
    breached = play(catalogue, SCHEDULED, now="2026-03-27T10:31:00+01:00")
    notice = apply(
        breached.case,
        ev("appointment.cancelled_notice", "2026-03-27T10:45:00+01:00"),
        at("2026-03-27T10:46:00+01:00"),
        catalogue,
    )
    assert [o.kind for o in of(notice, "appointment.kept")] == [Kind.STOPPED_LATE]
    assert clock(notice, "appointment.kept").status is Kind.BREACHED


# --- any case: withdrawal, at risk, duplicates, order, corrections -----------------------------


def final_states(step: Step, norm: str) -> dict[int, Kind]:
    """Each clock's standing outcome, by its number (a late stop leaves a breach standing)."""
    states: dict[int, Kind] = {}
    for outcome in of(step, norm):
        if outcome.kind not in (Kind.OPENED, Kind.AT_RISK, Kind.STOPPED_LATE):
            states[outcome.instance] = outcome.kind
    return states


TWO_PROMISED_DATES = (
    ev("email.received", "2026-03-02T09:00:00+01:00"),
    ev("email.interim_sent", "2026-03-03T09:00:00+01:00",
       {"contact": "team:kcc", "promised_by": "2026-03-10"}),
    ev("email.interim_sent", "2026-03-05T09:00:00+01:00",
       {"contact": "team:kcc", "promised_by": "2026-03-20"}),
)  # fmt: skip


@pytest.mark.parametrize(
    ("events", "norms"),
    [
        pytest.param(
            [
                *TWO_PROMISED_DATES,
                ev("email.answered", "2026-03-09T09:00:00+01:00"),
            ],
            ["email.answer.promised"],
            id="two promised dates, answered before both",
        ),
        pytest.param(
            [
                ev("callback.promised", "2026-03-02T09:00:00+01:00"),
                ev("callback.promised", "2026-03-02T11:00:00+01:00"),
                ev("callback.made", "2026-03-02T14:00:00+01:00"),
            ],
            ["phone.callback"],
            id="a callback promised twice, made once",
        ),
        pytest.param(
            [
                ev("report.received", "2026-03-02T09:00:00+01:00"),
                ev("report.received", "2026-03-03T09:00:00+01:00"),
                ev("report.resolved", "2026-03-04T09:00:00+01:00"),
            ],
            ["report.resolve", "report.delay_notice"],
            id="a report received twice, resolved once",
        ),
    ],
)  # fmt: skip
def test_one_stop_keeps_every_promise_of_its_norm_on_the_case(
    catalogue: Catalogue, events: list[Event], norms: list[str]
) -> None:
    """A norm keeps one promise on a case: a stop ends each of its clocks that waits for
    one, so a promise repeated and then kept in time is not also broken."""
    step = play(catalogue, *events, now="2026-04-30T12:00:00+02:00")
    for norm in norms:
        assert final_states(step, norm) == {1: Kind.MET, 2: Kind.MET}, norm


def test_a_stop_does_not_reach_back_to_a_clock_already_breached(catalogue: Catalogue) -> None:
    """The first promised date passed before the answer: that promise stays broken as it
    was published (nothing more is said of it), the second is kept."""
    step = play(
        catalogue,
        *TWO_PROMISED_DATES,
        ev("email.answered", "2026-03-16T09:00:00+01:00"),
        now="2026-04-30T12:00:00+02:00",
    )  # fmt: skip
    assert final_states(step, "email.answer.promised") == {1: Kind.BREACHED, 2: Kind.MET}
    assert [o.kind for o in of(step, "email.answer.promised") if o.instance == 1] == [
        Kind.OPENED,
        Kind.BREACHED,
    ]


TWO_APPOINTMENTS = (  # on 10 and 20 March, in one case
    ev("appointment.scheduled", "2026-03-01T09:00:00+01:00", {"at": "2026-03-10T10:00:00+01:00"}),
    ev("appointment.scheduled", "2026-03-05T09:00:00+01:00", {"at": "2026-03-20T10:00:00+01:00"}),
)


def test_an_appointment_rescheduled_and_kept_leaves_the_first_one_breached(
    catalogue: Catalogue,
) -> None:
    """A second `appointment.scheduled` is a clock of its own: the first appointment's
    time passed without a kept event or a notice, and its breach is not corrected by the
    second one's kept event (the first is `late: met` only for its own)."""
    step = play(
        catalogue,
        *TWO_APPOINTMENTS,
        ev("appointment.kept", "2026-03-20T10:05:00+01:00"),
        now="2026-04-30T12:00:00+02:00",
    )  # fmt: skip
    assert final_states(step, "appointment.kept") == {1: Kind.BREACHED, 2: Kind.MET}
    assert [o.corrects for o in of(step, "appointment.kept")] == [None] * 4


def test_a_stop_late_for_an_earlier_clock_is_not_its_stop(catalogue: Catalogue) -> None:
    """The second appointment is cancelled with notice after the first one's time: that
    notice is in time for the second, too late to be the first's, so it leaves the first
    alone, which is then kept within its grace."""
    step = play(
        catalogue,
        *TWO_APPOINTMENTS,
        ev("appointment.cancelled_notice", "2026-03-10T10:10:00+01:00"),
        ev("appointment.kept", "2026-03-10T10:20:00+01:00"),
        now="2026-04-30T12:00:00+02:00",
    )  # fmt: skip
    assert final_states(step, "appointment.kept") == {1: Kind.MET, 2: Kind.MET}


def test_case_withdrawn_cancels_the_open_clocks_only(catalogue: Catalogue) -> None:
    step = play(
        catalogue,
        ev("email.received", "2026-03-02T10:00:00+01:00"),
        ev("email.acknowledged", "2026-03-02T10:01:00+01:00"),
        ev("case.withdrawn", "2026-03-02T11:00:00+01:00"),
    )
    assert kinds(step, "email.ack") == [Kind.OPENED, Kind.MET]
    assert [(o.kind, local(o.decided_at)) for o in of(step, "email.answer")] == [
        (Kind.OPENED, "2026-03-02T10:00:00+01:00"),
        (Kind.CANCELLED, "2026-03-02T11:00:00+01:00"),
    ]
    assert due(step.case, at("2026-04-01T00:00:00+02:00"), catalogue).outcomes == ()


def test_a_clock_is_at_risk_once_three_quarters_of_its_time_is_spent(
    catalogue: Catalogue,
) -> None:
    """counter.wait.walkin: 15 min from 14:50; 75 % is 11 min 15 s, so at risk after 15:01:15."""
    case = play(catalogue, ev("visit.checked_in", "2026-06-01T14:50:00+02:00")).case
    assert due(case, at("2026-06-01T15:01:15+02:00"), catalogue).outcomes == ()
    step = due(case, at("2026-06-01T15:01:16+02:00"), catalogue)
    assert [(o.kind, local(o.decided_at)) for o in step.outcomes] == [
        (Kind.AT_RISK, "2026-06-01T15:01:15+02:00")
    ]
    assert local(step.next_due) == "2026-06-01T15:05:00+02:00"
    # Called in time after all: met.
    called = apply(
        step.case,
        ev("visit.called", "2026-06-01T15:04:00+02:00"),
        at("2026-06-01T15:04:00+02:00"),
        catalogue,
    )
    assert kinds(called, "counter.wait.walkin") == [Kind.MET]


def test_a_duplicate_event_changes_nothing(catalogue: Catalogue) -> None:
    received = ev("report.received", REPORT)
    resolved = ev("report.resolved", "2026-05-20T10:00:00+02:00")
    first = play(catalogue, received, resolved)
    for again in (received, resolved):
        step = apply(first.case, again, at("2026-05-20T11:00:00+02:00"), catalogue)
        assert step.outcomes == ()
        assert step.case == first.case


def test_a_redelivery_with_the_same_source_and_id_is_a_duplicate(catalogue: Catalogue) -> None:
    first = play(catalogue, ev("report.received", REPORT, event_id="r-1"))
    resent = ev("report.received", "2026-05-12T09:00:00+02:00", event_id="r-1")
    step = apply(first.case, resent, at("2026-05-12T09:00:00+02:00"), catalogue)
    assert step.outcomes == ()
    assert step.case == first.case


ORDER_CASES = [
    pytest.param(
        ev("email.received", "2026-03-02T10:00:00+01:00"),
        ev("email.answered", "2026-03-03T10:00:00+01:00"),
        ("email.answer", Kind.MET),
        id="email answered in time",
    ),
    pytest.param(
        ev("report.received", REPORT),
        ev("report.resolved", "2026-05-29T10:00:00+02:00"),
        ("report.resolve", Kind.BREACHED),  # two days late: breached either way
        id="report resolved late",
    ),
    pytest.param(
        ev(
            "visit.checked_in",
            "2026-03-03T09:50:00+01:00",
            {"appointment_at": "2026-03-03T10:00:00+01:00"},
        ),
        ev("visit.called", "2026-03-03T09:55:00+01:00"),
        ("counter.wait.appointment", Kind.MET),
        id="called before the appointment",
    ),
]


@pytest.mark.parametrize(("start", "stop", "decided"), ORDER_CASES)
def test_a_stop_arriving_before_its_start_gives_the_same_outcomes(
    catalogue: Catalogue, start: Event, stop: Event, decided: tuple[str, Kind]
) -> None:
    def arriving(first: Event, second: Event) -> set[tuple[str, Kind, str | None, str | None]]:
        one = apply(None, first, stop.time, catalogue)
        two = apply(one.case, second, stop.time, catalogue)
        return {
            (o.norm, o.kind, local(o.decided_at), local(o.deadline))
            for o in (*one.outcomes, *two.outcomes)
        }

    in_order = arriving(start, stop)
    assert decided in {(norm, kind) for norm, kind, _, _ in in_order}
    assert arriving(stop, start) == in_order


def test_a_late_stop_dated_before_the_deadline_corrects_a_published_breach(
    catalogue: Catalogue,
) -> None:
    """report.resolve due Wed 27 May 23:59:59; breach published at midnight; then a
    resolution dated Wed 27 May 16:00 arrives: `met`, correcting the breach."""
    breached = play(catalogue, ev("report.received", REPORT), now="2026-05-28T00:00:00+02:00")
    assert kinds(breached, "report.resolve")[-1] is Kind.BREACHED
    step = apply(
        breached.case,
        ev("report.resolved", "2026-05-27T16:00:00+02:00"),
        at("2026-05-28T09:00:00+02:00"),
        catalogue,
    )
    assert [(o.norm, o.kind, o.corrects, local(o.decided_at)) for o in step.outcomes] == [
        ("report.resolve", Kind.MET, Kind.BREACHED, "2026-05-27T16:00:00+02:00"),
        ("report.delay_notice", Kind.MET, Kind.BREACHED, "2026-05-27T16:00:00+02:00"),
    ]
    # The correction's id differs from the breach's, so both can be published.
    assert step.outcomes[0].id == "CASE-1/report.resolve/1/met"


# --- per-municipality calendars and terms ------------------------------------------------------


def packaged_spec() -> dict[str, Any]:
    catalogue_path, _ = default_paths()
    spec: dict[str, Any] = yaml.safe_load(catalogue_path.read_text(encoding="utf-8"))
    return spec


@pytest.fixture(scope="module")
def local_catalogue() -> Catalogue:
    """Heiloo closes on the bridge day after Ascension and resolves reports in 8 working
    days; Castricum closes for lunch; Bergen keeps the defaults."""
    return Catalogue(
        packaged_spec(),
        {
            "municipalities": {
                "heiloo": {
                    "closing_days": ["2026-05-15"],
                    "terms": {"report.resolve": {"working_days": 8}},
                },
                "castricum": {
                    "office_hours": {
                        day: ["08:30-12:30", "13:30-17:00"]
                        for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
                    }
                },
            }
        },
    )


def test_municipal_closing_day_and_term_override_take_effect(local_catalogue: Catalogue) -> None:
    """Heiloo, 8 working days from Mon 11 May: 12 (1), 13 (2), Thu 14 Ascension, Fri 15
    closed, 18-22 (3-7), Mon 25 Whit Monday, Tue 26 May (8). report.delay_notice follows
    report.resolve (same_as)."""
    step = play(local_catalogue, ev("report.received", REPORT, municipality="heiloo"))
    assert local(clock(step, "report.resolve").deadline) == "2026-05-26T23:59:59.999999+02:00"
    assert local(clock(step, "report.delay_notice").deadline) == "2026-05-26T23:59:59.999999+02:00"
    received = at(REPORT)
    assert local(local_catalogue.deadline("report.resolve", received, "heiloo")) == (
        "2026-05-26T23:59:59.999999+02:00"
    )
    assert local(local_catalogue.deadline("report.delay_notice", received, "heiloo")) == (
        "2026-05-26T23:59:59.999999+02:00"
    )


def test_other_municipalities_keep_the_catalogue_term(
    local_catalogue: Catalogue, catalogue: Catalogue
) -> None:
    """Bergen in the same configuration, and Heiloo in the packaged one: 10 working days."""
    bergen = play(local_catalogue, ev("report.received", REPORT, municipality="bergen"))
    assert local(clock(bergen, "report.resolve").deadline) == "2026-05-27T23:59:59.999999+02:00"
    heiloo = play(catalogue, ev("report.received", REPORT, municipality="heiloo"))
    assert local(clock(heiloo, "report.resolve").deadline) == "2026-05-27T23:59:59.999999+02:00"


def test_a_closing_day_is_no_working_day_for_any_norm(local_catalogue: Catalogue) -> None:
    """A callback promised Wed 13 May: Thu 14 Ascension; Heiloo is closed Fri 15, so Mon 18;
    Bergen calls back by Fri 15."""
    promised = "2026-05-13T10:00:00+02:00"
    heiloo = play(local_catalogue, ev("callback.promised", promised, municipality="heiloo"))
    assert local(clock(heiloo, "phone.callback").deadline) == "2026-05-18T23:59:59.999999+02:00"
    bergen = play(local_catalogue, ev("callback.promised", promised, municipality="bergen"))
    assert local(clock(bergen, "phone.callback").deadline) == "2026-05-15T23:59:59.999999+02:00"


def test_a_municipality_may_give_the_home_visit_a_term(catalogue: Catalogue) -> None:
    """counter.home_visit has no term in the seed; "breached only if a municipality configures
    one". Uitgeest: 5 working days from Mon 2 Mar = Mon 9 Mar."""
    configured = Catalogue(
        packaged_spec(),
        {"municipalities": {"uitgeest": {"terms": {"counter.home_visit": {"working_days": 5}}}}},
    )
    requested = ev("visit.home_requested", "2026-03-02T10:00:00+01:00", municipality="uitgeest")
    step = play(configured, requested, now="2026-03-10T00:00:00+01:00")
    assert [(o.kind, local(o.decided_at)) for o in of(step, "counter.home_visit")] == [
        (Kind.OPENED, "2026-03-02T10:00:00+01:00"),
        (Kind.BREACHED, "2026-03-09T23:59:59.999999+01:00"),
    ]
    assert local(configured.deadline("counter.home_visit", requested.time, "uitgeest")) == (
        "2026-03-09T23:59:59.999999+01:00"
    )
    with pytest.raises(ValueError, match=r"counter\.home_visit"):
        configured.deadline("counter.home_visit", requested.time, "bergen")


def test_municipal_office_hours_with_a_lunch_break(local_catalogue: Catalogue) -> None:
    """Tue 3 Mar 11:30 on Facebook: Castricum has 1 h until 12:30, then 1 h from 13:30."""
    message = {"platform": "facebook"}
    received = "2026-03-03T11:30:00+01:00"
    castricum = play(
        local_catalogue, ev("social.received", received, message, municipality="castricum")
    )
    assert local(clock(castricum, "social.answer").deadline) == "2026-03-03T14:30:00+01:00"
    bergen = play(local_catalogue, ev("social.received", received, message, municipality="bergen"))
    assert local(clock(bergen, "social.answer").deadline) == "2026-03-03T13:30:00+01:00"


# --- Catalogue.deadline: the `normwacht deadlines` contract ---------------------------------


def test_catalogue_deadline_is_local_time_and_counts_from_the_local_date(
    catalogue: Catalogue,
) -> None:
    """1 Mar 23:30 UTC is Mon 2 Mar 00:30 in Amsterdam: 2 working days end Wed 4 Mar, not
    Tue 3 Mar as the UTC date (a Sunday) would give."""
    deadline = catalogue.deadline("email.answer", at("2026-03-01T23:30:00+00:00"))
    assert deadline.isoformat() == "2026-03-04T23:59:59.999999+01:00"


def test_catalogue_deadline_of_an_unknown_norm_is_a_key_error(catalogue: Catalogue) -> None:
    with pytest.raises(KeyError):
        catalogue.deadline("phone.teleport", at(REPORT))


@pytest.mark.parametrize(
    "norm",
    [
        "email.answer.promised",  # the promised date is in the interim notice
        "appointment.kept",  # the appointment time is in the event
        "phone.transfers",  # a count
        "counter.home_visit",  # no term
        "website.availability",  # probes
    ],
)
def test_catalogue_deadline_of_a_norm_needing_event_data_is_a_value_error(
    catalogue: Catalogue, norm: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(norm)):
        catalogue.deadline(norm, at(REPORT))
