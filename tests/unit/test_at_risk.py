"""When a clock is at risk: a share of the office time to its deadline, 24/7 terms aside.

Every expected instant is a Europe/Amsterdam RFC 3339 literal worked out by hand, with
the reasoning beside it, never computed by the code under test. Calendar facts used:

- 2026: Fri 6 Mar, Sat 7 Mar; Sun 25 Oct (summer time ends: 03:00 CEST becomes 02:00
  CET, at 01:00 UTC); Christmas Fri 25 Dec, Boxing Day Sat 26 Dec.
- 2027: New Year's Day Fri 1 Jan.
- Default office hours Monday to Friday 08:30-17:00 (8.5 h) on working days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from normwacht.catalogue_file import default_paths
from normwacht.core.calendars import AMSTERDAM, DEFAULT_CALENDAR, Calendar, OfficeHours
from normwacht.core.catalogue import Catalogue, Term

CAL = DEFAULT_CALENDAR


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def local(instant: datetime | None) -> str | None:
    return None if instant is None else instant.astimezone(AMSTERDAM).isoformat()


# --- the worked examples, through the catalogue --------------------------------------------


def test_a_facebook_question_late_on_friday_is_at_risk_on_monday_morning(
    catalogue: Catalogue,
) -> None:
    """social.answer, 2 office hours, received Fri 6 Mar 16:30 in Heiloo.

    Deadline: 30 office minutes left on Friday, the other 90 from Mon 08:30 -> Mon 10:00.
    Office time in between: 2 h; 75 % of it is 90 min: 30 min on Friday, 60 min from
    Mon 08:30 -> Mon 09:30. (The old rule, 75 % of the 65.5 wall-clock hours, gave
    Sun 8 Mar 17:37:30, when nobody is there to act.)
    """
    received = at("2026-03-06T16:30:00+01:00")
    assert local(catalogue.deadline("social.answer", received, "heiloo")) == (
        "2026-03-09T10:00:00+01:00"
    )
    assert local(catalogue.at_risk("social.answer", received, "heiloo")) == (
        "2026-03-09T09:30:00+01:00"
    )


def test_a_public_space_report_before_christmas_is_at_risk_on_new_years_eve(
    catalogue: Catalogue,
) -> None:
    """report.resolve, 10 working days, received Fri 18 Dec 2026 16:00.

    Deadline: Mon 21 (1), Tue 22 (2), Wed 23 (3), Thu 24 (4), [Fri 25 Christmas, Sat 26,
    Sun 27], Mon 28 (5), Tue 29 (6), Wed 30 (7), Thu 31 (8), [Fri 1 Jan New Year, Sat 2,
    Sun 3], Mon 4 (9), Tue 5 Jan 2027 (10): the end of Tuesday 5 January.
    Office time in between: 1 h on Fri 18 Dec (16:00-17:00) + 10 working days x 8.5 h
    = 86 h. 75 % of it is 64.5 h: Fri 1 h (63.5 left), Mon 21, Tue 22, Wed 23, Thu 24,
    Mon 28, Tue 29, Wed 30 are 7 x 8.5 = 59.5 h (4 left), Thu 31 Dec 08:30 + 4 h -> 12:30.
    (The old rule, 75 % of the wall-clock span, gave Fri 1 Jan about 10:00.)
    """
    received = at("2026-12-18T16:00:00+01:00")
    assert local(catalogue.deadline("report.resolve", received)) == (
        "2027-01-05T23:59:59.999999+01:00"
    )
    assert local(catalogue.at_risk("report.resolve", received)) == "2026-12-31T12:30:00+01:00"


def test_a_weekend_social_question_is_at_risk_on_monday_before_noon(
    catalogue: Catalogue,
) -> None:
    """social.answer received Sat 7 Mar 10:00: due Mon 9 Mar 12:00 (the weekend rule).

    Office time in between: Mon 08:30-12:00 = 3.5 h; 75 % is 2 h 37 min 30 s from 08:30
    -> Mon 11:07:30. (The old rule, 75 % of 50 wall-clock hours, gave Sun 23:30.)
    """
    received = at("2026-03-07T10:00:00+01:00")
    assert local(catalogue.deadline("social.answer", received)) == "2026-03-09T12:00:00+01:00"
    assert local(catalogue.at_risk("social.answer", received)) == "2026-03-09T11:07:30+01:00"


def test_an_elapsed_norm_keeps_its_share_of_real_time(catalogue: Catalogue) -> None:
    """phone.answer, 20 s 24/7: received 10:00:00, at risk after 15 s at 10:00:15."""
    received = at("2026-03-02T10:00:00+01:00")
    assert local(catalogue.deadline("phone.answer", received)) == "2026-03-02T10:00:20+01:00"
    assert local(catalogue.at_risk("phone.answer", received)) == "2026-03-02T10:00:15+01:00"


def test_an_elapsed_norm_is_at_risk_at_night_and_in_real_time(catalogue: Catalogue) -> None:
    """report.urgent, 2 h 24/7, received Sun 25 Oct 01:30 CEST (23:30 UTC on the 24th).

    75 % of 2 h is 90 real minutes -> 01:00 UTC, the instant the clocks go back: 02:00 CET
    (a 24/7 norm is watched 24/7, so night and Sunday are fine).
    """
    received = at("2026-10-25T01:30:00+02:00")
    assert local(catalogue.at_risk("report.urgent", received)) == "2026-10-25T02:00:00+01:00"


def test_at_risk_is_local_time(catalogue: Catalogue) -> None:
    warned = catalogue.at_risk("phone.answer", at("2026-03-02T09:00:00+00:00"))
    assert warned is not None
    assert warned.tzinfo is AMSTERDAM
    assert warned.isoformat() == "2026-03-02T10:00:15+01:00"


def _with_home_visit_term() -> Catalogue:
    catalogue_path, _ = default_paths()
    spec: dict[str, Any] = yaml.safe_load(catalogue_path.read_text(encoding="utf-8"))
    places = {"municipalities": {"heiloo": {"terms": {"counter.home_visit": {"working_days": 5}}}}}
    return Catalogue(spec, places)


def test_a_norm_never_at_risk_has_no_at_risk_moment_even_with_a_deadline() -> None:
    """counter.home_visit has `at_risk: null`. With a term configured in Heiloo (5 working
    days) it has a deadline: received Mon 2 Mar -> Tue 3 (1) ... Fri 6 (4), Mon 9 Mar (5);
    but it is never at risk."""
    catalogue = _with_home_visit_term()
    received = at("2026-03-02T10:00:00+01:00")
    assert local(catalogue.deadline("counter.home_visit", received, "heiloo")) == (
        "2026-03-09T23:59:59.999999+01:00"
    )
    assert catalogue.at_risk("counter.home_visit", received, "heiloo") is None


@pytest.mark.parametrize(
    "norm",
    [
        "phone.transfers",  # a count, never at risk: no deadline from a start time either
        "counter.home_visit",  # no term unless a municipality configures one
        "email.answer.promised",  # the promised date is in the interim notice
        "appointment.kept",  # the appointment time is in the event
        "website.availability",  # probes
    ],
)
def test_at_risk_fails_like_deadline(catalogue: Catalogue, norm: str) -> None:
    received = at("2026-03-02T10:00:00+01:00")
    with pytest.raises(ValueError, match="no deadline from a start time alone"):
        catalogue.deadline(norm, received)
    with pytest.raises(ValueError, match="no deadline from a start time alone"):
        catalogue.at_risk(norm, received)


def test_at_risk_of_an_unknown_norm_is_a_key_error(catalogue: Catalogue) -> None:
    with pytest.raises(KeyError):
        catalogue.at_risk("phone.teleport", at("2026-03-02T10:00:00+01:00"))


def test_same_as_follows_the_other_norms_term(catalogue: Catalogue) -> None:
    """report.delay_notice has report.resolve's term, so the same at-risk moment."""
    received = at("2026-12-18T16:00:00+01:00")
    assert local(catalogue.at_risk("report.delay_notice", received)) == (
        "2026-12-31T12:30:00+01:00"
    )


# --- Term.at_risk ------------------------------------------------------------------------------

OFFICE_2H = Term(office_hours=timedelta(hours=2))
ELAPSED_20S = Term(elapsed=timedelta(seconds=20))
APPOINTMENT = Term(at_time_field="at", grace=timedelta(minutes=30))
PROMISED = Term(end_of_date_field="promised_by")


def test_term_at_risk_is_utc() -> None:
    start = at("2026-03-09T10:00:00+01:00")
    warned = OFFICE_2H.at_risk(start, at("2026-03-09T12:00:00+01:00"), 0.75, CAL)
    assert warned is not None
    assert warned.tzinfo is UTC
    # 75 % of 2 office hours from Mon 10:00 is 90 minutes -> 11:30 CET = 10:30 UTC.
    assert warned.isoformat() == "2026-03-09T10:30:00+00:00"


def test_term_at_risk_ends_at_a_closing_instant_not_the_next_opening() -> None:
    """2 office hours from Mon 9 Mar 15:30: 1.5 h on Monday, 0.5 h from Tue 08:30 -> due
    Tue 09:00. 75 % is 1.5 h, which runs out exactly at Monday's 17:00 close: the warning
    comes then, not at Tuesday's opening."""
    start = at("2026-03-09T15:30:00+01:00")
    deadline = OFFICE_2H.deadline(start, {}, CAL)
    assert local(deadline) == "2026-03-10T09:00:00+01:00"
    assert deadline is not None
    assert local(OFFICE_2H.at_risk(start, deadline, 0.75, CAL)) == "2026-03-09T17:00:00+01:00"


def test_term_at_risk_of_an_elapsed_term_ignores_office_hours() -> None:
    """20 s from Sat 7 Mar 03:00:00: 75 % is 15 s -> 03:00:15, a Saturday night."""
    start = at("2026-03-07T03:00:00+01:00")
    deadline = at("2026-03-07T03:00:20+01:00")
    assert local(ELAPSED_20S.at_risk(start, deadline, 0.75, CAL)) == "2026-03-07T03:00:15+01:00"


def test_term_at_risk_counts_office_time_for_an_appointment() -> None:
    """Scheduled Mon 9 Mar 10:00 for Wed 11 Mar 10:00 (+30 min grace -> due 10:30).
    Office time: Mon 10:00-17:00 7 h, Tue 8.5 h, Wed 08:30-10:30 2 h = 17.5 h; half of it
    (share 0.5) is 8.75 h: Mon 7 h, then 1.75 h from Tue 08:30 -> Tue 10:15."""
    start = at("2026-03-09T10:00:00+01:00")
    deadline = APPOINTMENT.deadline(start, {"at": "2026-03-11T10:00:00+01:00"}, CAL)
    assert local(deadline) == "2026-03-11T10:30:00+01:00"
    assert deadline is not None
    assert local(APPOINTMENT.at_risk(start, deadline, 0.5, CAL)) == "2026-03-10T10:15:00+01:00"


def test_term_at_risk_counts_only_the_office_time_outside_pauses() -> None:
    """2 office hours from Mon 9 Mar 09:00, paused 09:30 to Tue 09:00: the pause holds
    8 office hours (Mon 09:30-17:00, Tue 08:30-09:00), so due after 10 -> Tue 10:30. The
    clock runs 2 h: 75 % is 1.5 h, 0.5 h before the pause and 1 h from Tue 09:00 -> 10:00
    (not 75 % of all 10 h, Mon 16:30, inside the pause)."""
    start = at("2026-03-09T09:00:00+01:00")
    pauses = [(at("2026-03-09T09:30:00+01:00"), at("2026-03-10T09:00:00+01:00"))]
    deadline = OFFICE_2H.deadline(start, {}, CAL, pauses)
    assert local(deadline) == "2026-03-10T10:30:00+01:00"
    assert deadline is not None
    warned = OFFICE_2H.at_risk(start, deadline, 0.75, CAL, pauses)
    assert local(warned) == "2026-03-10T10:00:00+01:00"


def test_term_at_risk_of_an_elapsed_term_skips_pauses_in_real_time() -> None:
    """20 s from 03:00:00, paused 03:00:05 to 03:01:05 -> due 03:01:20; 75 % of the 20 s
    that run is 15 s: 5 s before the pause, 10 s after -> 03:01:15."""
    start = at("2026-03-07T03:00:00+01:00")
    pauses = [(at("2026-03-07T03:00:05+01:00"), at("2026-03-07T03:01:05+01:00"))]
    deadline = ELAPSED_20S.deadline(start, {}, CAL, pauses)
    assert local(deadline) == "2026-03-07T03:01:20+01:00"
    assert deadline is not None
    warned = ELAPSED_20S.at_risk(start, deadline, 0.75, CAL, pauses)
    assert local(warned) == "2026-03-07T03:01:15+01:00"


def test_term_at_risk_is_none_without_office_time() -> None:
    """An appointment made Sat 7 Mar 09:00 for Sat 7 Mar 14:00: no office hour in between."""
    start = at("2026-03-07T09:00:00+01:00")
    deadline = APPOINTMENT.deadline(start, {"at": "2026-03-07T14:00:00+01:00"}, CAL)
    assert deadline is not None
    assert APPOINTMENT.at_risk(start, deadline, 0.75, CAL) is None


@pytest.mark.parametrize("term", [OFFICE_2H, ELAPSED_20S, PROMISED])
@pytest.mark.parametrize("later", [timedelta(0), timedelta(hours=1)])
def test_term_at_risk_is_none_when_the_deadline_is_not_after_the_start(
    term: Term, later: timedelta
) -> None:
    # A promised date already past when the promise is made, or an empty term.
    deadline = at("2026-03-09T10:00:00+01:00")
    assert term.at_risk(deadline + later, deadline, 0.75, CAL) is None


def test_term_at_risk_compares_instants_not_wall_clocks() -> None:
    """Sun 25 Oct 2026: 02:30 CEST (00:30 UTC) comes before 02:10 CET (01:10 UTC). Read
    by wall clock the deadline would be before the start; it is 40 real minutes after it,
    and 75 % of those is 30 minutes -> 01:00 UTC, which is 02:00 CET."""
    start = datetime(2026, 10, 25, 2, 30, tzinfo=AMSTERDAM)  # fold=0: the first, CEST
    deadline = datetime(2026, 10, 25, 2, 10, fold=1, tzinfo=AMSTERDAM)  # the second, CET
    assert local(ELAPSED_20S.at_risk(start, deadline, 0.75, CAL)) == "2026-10-25T02:00:00+01:00"


@pytest.mark.parametrize("share", [0.0, 1.0, -0.5, 1.5])
def test_term_at_risk_needs_a_share_between_0_and_1(share: float) -> None:
    start = at("2026-03-09T10:00:00+01:00")
    with pytest.raises(ValueError, match="share"):
        OFFICE_2H.at_risk(start, at("2026-03-09T12:00:00+01:00"), share, CAL)


def test_term_at_risk_of_same_as_is_resolved_by_the_catalogue() -> None:
    start = at("2026-03-09T10:00:00+01:00")
    with pytest.raises(ValueError, match="same_as"):
        Term(same_as="report.resolve").at_risk(start, start + timedelta(days=1), 0.75, CAL)


def test_term_at_risk_refuses_naive_datetimes() -> None:
    naive = datetime(2026, 3, 9, 10)  # noqa: DTZ001
    with pytest.raises(ValueError, match="naive"):
        OFFICE_2H.at_risk(naive, at("2026-03-09T12:00:00+01:00"), 0.75, CAL)


# --- a property: inside office hours, never after the deadline -----------------------------

FAST = settings(deadline=None, max_examples=150)
ONE_MICROSECOND = timedelta(microseconds=1)

# Instants 2024-2032, near DST changes and holidays alike, at microsecond resolution.
instants = st.datetimes(
    min_value=datetime(2024, 1, 1),  # noqa: DTZ001  (read as UTC below)
    max_value=datetime(2032, 12, 31),  # noqa: DTZ001
).map(lambda naive: naive.replace(tzinfo=UTC))
calendars = st.builds(
    Calendar,
    office_hours=st.sampled_from(
        [
            OfficeHours.default(),
            OfficeHours(
                dict.fromkeys(
                    range(1, 6), ((time(8, 30), time(12, 30)), (time(13, 30), time(17, 0)))
                )
            ),
            # Open only on Tuesday mornings: many working days without office time.
            OfficeHours({2: ((time(10), time(11)),)}),
        ]
    ),
    closing_days=st.frozensets(
        st.dates(min_value=date(2024, 1, 1), max_value=date(2033, 12, 31)), max_size=30
    ),
)
# Every kind that counts office time, with the day-based ones.
office_terms = st.one_of(
    st.builds(
        Term,
        office_hours=st.timedeltas(min_value=ONE_MICROSECOND, max_value=timedelta(hours=40)),
    ),
    st.builds(
        Term,
        office_hours=st.timedeltas(min_value=ONE_MICROSECOND, max_value=timedelta(hours=40)),
        weekend_noon=st.just(time(12)),
    ),
    st.builds(Term, working_days=st.integers(min_value=1, max_value=15)),
    st.builds(Term, days=st.integers(min_value=1, max_value=30)),
    st.builds(Term, weeks=st.integers(min_value=1, max_value=12), statutory=st.booleans()),
)
shares = st.floats(min_value=0.0, max_value=1.0, exclude_min=True, exclude_max=True)


def is_closing_instant(calendar: Calendar, instant: datetime) -> bool:
    """Closed at `instant`, but open just before it."""
    return not calendar.is_open(instant) and calendar.is_open(instant - ONE_MICROSECOND)


@FAST
@given(calendars, office_terms, instants, shares)
def test_office_at_risk_is_in_office_hours_and_never_after_the_deadline(
    calendar: Calendar, term: Term, start: datetime, share: float
) -> None:
    deadline = term.deadline(start, {}, calendar)
    assert deadline is not None
    warned = term.at_risk(start, deadline, share, calendar)
    office = calendar.office_time_between(start, deadline)
    if not office:
        assert warned is None
        return
    assert warned is not None
    assert warned.tzinfo is UTC
    assert start <= warned <= deadline
    assert calendar.is_open(warned) or is_closing_instant(calendar, warned)
    # The share of the office time, to the microsecond (and at least one microsecond).
    assert calendar.office_time_between(start, warned) == max(office * share, ONE_MICROSECOND)
