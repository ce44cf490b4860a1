"""The catalogue files as a reviewer meets them: every mistake named with its line.

Also the command line on top of them: `normwacht norms check`, `normwacht norms list`
and `normwacht deadlines`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from normwacht.catalogue_file import Problem, check, default_paths, load
from normwacht.cli import app

# A small valid catalogue; the line numbers of the mistakes below refer to it.
BASE = """\
version: 1
norms:
  - id: test.answer
    channel: phone
    section: ZO BELLEN WIJ
    seed: We nemen binnen 20 seconden de telefoon op.
    reading: Picked up within 20 s.
    starts: [{event: call.queued}]
    stops: [{event: call.answered}]
    term: {elapsed: 20s}
  - id: test.callback
    channel: phone
    section: ZO BELLEN WIJ
    seed: Bij een terugbelafpraak bellen wij uiterlijk de volgende werkdag terug.
    reading: By the end of the next working day.
    starts:
      - event: callback.promised
    stops:
      - event: callback.made
    term:
      working_days: 1
"""
PLACES = "municipalities:\n  heiloo: {}\n"


def write(directory: Path, text: str, name: str = "catalogue.yaml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def mistake(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new, 1)


def located(problems: list[Problem]) -> list[tuple[int | None, str]]:
    return [(p.line, p.where) for p in problems]


# --- check(): the catalogue file -------------------------------------------------------------


def test_the_packaged_files_check_clean() -> None:
    catalogue, municipalities = default_paths()
    assert check(catalogue, municipalities) == []


def test_the_small_catalogue_the_mistakes_start_from_checks_clean(tmp_path: Path) -> None:
    assert check(write(tmp_path, BASE), write(tmp_path, PLACES, "places.yaml")) == []
    assert set(load(write(tmp_path, BASE), write(tmp_path, PLACES, "p.yaml")).norms) == {
        "test.answer",
        "test.callback",
    }


# `colour: red` inserted as line 13, in the second norm.
UNKNOWN_FIELD = (
    "    channel: phone\n    section: ZO BELLEN WIJ\n    seed: Bij",
    "    channel: phone\n    colour: red\n    section: ZO BELLEN WIJ\n    seed: Bij",
)
CATALOGUE_MISTAKES = [
    pytest.param(
        mistake("event: callback.made", "event: callback.mad"),
        (19, "norms.1.stops.0.event"),
        "unknown event type 'callback.mad'",
        id="unknown event type",
    ),
    pytest.param(
        mistake("term: {elapsed: 20s}", "term: {elapsed: 20s, working_days: 2}"),
        (10, "norms.0.term"),
        "a term needs exactly one of",
        id="a term with two kinds",
    ),
    pytest.param(
        mistake(*UNKNOWN_FIELD),
        (13, "norms.1.colour"),
        "Extra inputs are not permitted",
        id="an unknown field",
    ),
    pytest.param(
        mistake("term: {elapsed: 20s}", "term: {elapsed: 20 seconds}"),
        (10, "norms.0.term.elapsed"),
        "is not a duration like 20s, 5m or 2h",
        id="a malformed duration",
    ),
    pytest.param(
        mistake("    channel: phone\n", "    channel: phone: extra\n"),
        (4, ""),
        "not valid YAML: mapping values are not allowed here",
        id="invalid YAML syntax",
    ),
    # The second `id: test.answer` is on line 11: that is the line to fix.
    pytest.param(
        mistake("id: test.callback", "id: test.answer"),
        (11, "norms.1.id"),
        "duplicate norm ids: ['test.answer']",
        id="a duplicate id",
    ),
    # `same_as` on line 21 names a norm that does not exist.
    pytest.param(
        mistake("      working_days: 1", "      same_as: test.nope"),
        (21, "norms.1.term.same_as"),
        "unknown norm 'test.nope'",
        id="same_as naming an unknown norm",
    ),
    # A norm whose term is its own: no deadline can ever be computed.
    pytest.param(
        mistake("      working_days: 1", "      same_as: test.callback"),
        (21, "norms.1.term.same_as"),
        "test.callback",
        id="same_as naming itself",
    ),
]


@pytest.mark.parametrize(("text", "where", "message"), CATALOGUE_MISTAKES)
def test_check_names_a_catalogue_mistake_with_its_line(
    tmp_path: Path, text: str, where: tuple[int, str], message: str
) -> None:
    path = write(tmp_path, text)
    problems = check(path, write(tmp_path, PLACES, "places.yaml"))
    assert located(problems) == [where]
    assert problems[0].path == path
    assert message in problems[0].message


def test_a_same_as_cycle_across_two_norms_is_a_mistake(tmp_path: Path) -> None:
    """test.answer's term is test.callback's, and test.callback's is test.answer's."""
    text = mistake("term: {elapsed: 20s}", "term: {same_as: test.callback}")
    text = text.replace("      working_days: 1", "      same_as: test.answer")
    problems = check(write(tmp_path, text), write(tmp_path, PLACES, "places.yaml"))
    assert problems != []
    assert {p.line for p in problems} <= {10, 21}  # the two same_as lines


def test_check_explains_every_mistake_not_just_the_first(tmp_path: Path) -> None:
    text = mistake("event: callback.made", "event: callback.mad")
    text = text.replace("term: {elapsed: 20s}", "term: {elapsed: 20s, weeks: 1}")
    problems = check(write(tmp_path, text), write(tmp_path, PLACES, "places.yaml"))
    assert sorted(located(problems), key=str) == [
        (10, "norms.0.term"),
        (19, "norms.1.stops.0.event"),
    ]


def test_check_of_a_missing_file_says_it_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    [problem] = check(path, write(tmp_path, PLACES, "places.yaml"))
    assert (problem.path, problem.line) == (path, None)
    assert problem.message.startswith("cannot read")


# --- check(): the municipalities file ----------------------------------------------------------

MUNICIPALITY_MISTAKES = [
    # Line 5 names a norm the catalogue does not have.
    pytest.param(
        "municipalities:\n"
        "  heiloo:\n"
        "    closing_days: [2026-05-15]\n"
        "    terms:\n"
        "      test.nope: {working_days: 8}\n",
        5,
        "test.nope",
        id="terms naming an unknown norm",
    ),
    pytest.param(
        "municipalities:\n  hoorn: {}\n",
        2,
        "'bergen', 'uitgeest', 'castricum' or 'heiloo'",
        id="an unknown municipality",
    ),
    pytest.param(
        "municipalities:\n  heiloo:\n    terms:\n      test.callback: {working_days: 0}\n",
        4,
        "greater than or equal to 1",
        id="a term of zero working days",
    ),
    pytest.param(
        "municipalities:\n  castricum:\n    office_hours: {monday: [8.30-17.00]}\n",
        3,
        "is not an interval like 08:30-17:00",
        id="malformed office hours",
    ),
    # Line 4: an override whose `same_as` names no norm; deadlines would fail at run time.
    pytest.param(
        "municipalities:\n  heiloo:\n    terms:\n      test.callback: {same_as: test.nope}\n",
        4,
        "test.nope",
        id="an override with same_as naming an unknown norm",
    ),
]


@pytest.mark.parametrize(("text", "line", "message"), MUNICIPALITY_MISTAKES)
def test_check_names_a_municipalities_mistake_with_its_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    places = write(tmp_path, text, "places.yaml")
    problems = check(write(tmp_path, BASE), places)
    assert [(p.path, p.line) for p in problems] == [(places, line)]
    assert message in problems[0].message
    assert problems[0].where.startswith("municipalities.")


# --- the command line ------------------------------------------------------------------------

runner = CliRunner()
PROBLEM_LINE = re.compile(r"^(?P<file>.+):(?P<line>\d+): (?P<where>[^ ]+): (?P<message>.+)$")


def test_cli_norms_check_of_a_valid_file_says_so(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    result = runner.invoke(app, ["norms", "check", str(path)])
    assert result.exit_code == 0
    assert result.stdout == f"{path}: valid\n"
    assert result.stderr == ""


def test_cli_norms_check_prints_file_line_where_message_and_fails(tmp_path: Path) -> None:
    text = mistake("event: callback.made", "event: callback.mad")
    text = text.replace(UNKNOWN_FIELD[0], UNKNOWN_FIELD[1])
    path = write(tmp_path, text)
    result = runner.invoke(app, ["norms", "check", str(path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    parsed = [PROBLEM_LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert sorted((m["file"], int(m["line"]), m["where"]) for m in parsed if m) == [
        (str(path), 13, "norms.1.colour"),
        (str(path), 20, "norms.1.stops.0.event"),  # one line lower: `colour` was inserted above
    ]


def test_cli_norms_check_reads_the_municipalities_option(tmp_path: Path) -> None:
    places = write(tmp_path, "municipalities:\n  hoorn: {}\n", "places.yaml")
    result = runner.invoke(
        app, ["norms", "check", str(write(tmp_path, BASE)), "--municipalities", str(places)]
    )
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{places}:2: municipalities.hoorn")


def test_cli_norms_list_prints_every_norm_id(tmp_path: Path) -> None:
    result = runner.invoke(app, ["norms", "list"])
    assert result.exit_code == 0
    # The first column of each table row; a wrapped id would show as a fragment.
    first_column = re.findall(r"^│ (\S+)\s+│", result.stdout, flags=re.MULTILINE)
    assert first_column == list(load().norms)
    assert len(first_column) == 23


def test_cli_norms_list_of_a_broken_file_fails_with_the_problem(tmp_path: Path) -> None:
    path = write(tmp_path, mistake("event: callback.made", "event: callback.mad"))
    result = runner.invoke(app, ["norms", "list", str(path)])
    assert result.exit_code == 1
    assert f"{path}:19: norms.1.stops.0.event:" in result.stderr


DEADLINES_IN = (
    # Thu before Easter: Good Friday, Easter Monday skipped -> Tue 7 (1), Wed 8 Apr (2).
    "email.answer\t2026-04-02T15:00:00+02:00\n"
    # Mon 11 May + 10 working days skipping Ascension and Whit Monday.
    "report.resolve\t2026-05-11T09:00:00+02:00\theiloo\n"
    "nope.norm\t2026-05-11T09:00:00+02:00\n"
    "phone.callback\tyesterday\n"
    # Saturday: Monday 12:00.
    "social.answer\t2026-03-07T11:00:00+01:00\n"
    # Mon 23 Feb + 6 weeks = Easter Monday -> Tue 7 Apr (Algemene termijnenwet).
    "objection.decision\t2026-02-23T10:00:00+01:00\tbergen\n"
    # The first 02:58 of 25 Oct (CEST) + 5 min = 02:03 CET, after the clocks went back.
    "email.ack\t2026-10-25T02:58:00+02:00\n"
    # 1 Mar 23:30 UTC is Mon 2 Mar 00:30 local: 2 working days end Wed 4 Mar.
    "email.answer\t2026-03-01T23:30:00Z\n"
)
DEADLINES_OUT = (
    "2026-04-08T23:59:59+02:00\n"
    "2026-05-27T23:59:59+02:00\n"
    "\n"
    "\n"
    "2026-03-09T12:00:00+01:00\n"
    "2026-04-07T23:59:59+02:00\n"
    "2026-10-25T02:03:00+01:00\n"
    "2026-03-04T23:59:59+01:00\n"
)


def test_cli_deadlines_prints_each_deadline_in_order_and_fails_for_bad_lines() -> None:
    result = runner.invoke(app, ["deadlines"], input=DEADLINES_IN)
    assert result.stdout == DEADLINES_OUT
    [unknown, bad_time] = result.stderr.splitlines()
    assert unknown == "line 3: unknown norm 'nope.norm'"
    assert bad_time.startswith("line 4: ")
    assert "yesterday" in bad_time
    assert result.exit_code == 1


def test_cli_deadlines_takes_rfc_3339_in_lower_case_too() -> None:
    """RFC 3339 (section 5.6) allows `t` and `z`."""
    result = runner.invoke(app, ["deadlines"], input="email.ack\t2026-03-02t09:00:00z\n")
    assert (result.exit_code, result.stdout) == (0, "2026-03-02T10:05:00+01:00\n")


def test_cli_deadlines_prints_an_offset_of_seconds_in_utc() -> None:
    """Amsterdam kept its local mean time, +00:19:32 (+01:19:32 in summer), until 1937; RFC
    3339 offsets are whole minutes. 1 Jun 1936 12:00Z + 20 s, printed in UTC, reads again."""
    result = runner.invoke(app, ["deadlines"], input="phone.answer\t1936-06-01T12:00:00Z\n")
    assert (result.exit_code, result.stdout) == (0, "1936-06-01T12:00:20+00:00\n")
    again = runner.invoke(app, ["deadlines"], input=f"phone.answer\t{result.stdout}")
    assert (again.exit_code, again.stdout) == (0, "1936-06-01T12:00:40+00:00\n")


def test_cli_deadlines_keeps_a_fraction_that_is_no_days_end() -> None:
    """Only a day's last instant (23:59:59.999999) is printed to the second."""
    lines = "email.ack\t2026-03-02T10:00:00.999999+01:00\n"
    result = runner.invoke(app, ["deadlines"], input=lines)
    assert (result.exit_code, result.stdout) == (0, "2026-03-02T10:05:00.999999+01:00\n")


def test_cli_deadlines_refuses_a_year_without_holiday_data() -> None:
    """Sat 24 Dec 2101: the next working day is Tue 27 Dec, but the holidays package knows
    no holidays after 2100: an error, not Boxing Day printed as the deadline."""
    result = runner.invoke(app, ["deadlines"], input="phone.callback\t2101-12-24T10:00:00+01:00\n")
    assert (result.exit_code, result.stdout) == (1, "\n")
    assert "no Dutch public holidays are known for 2101" in result.stderr


def test_cli_deadlines_succeeds_when_every_line_is_good() -> None:
    result = runner.invoke(app, ["deadlines"], input="phone.callback\t2026-12-24T16:00:00+01:00\n")
    # Christmas Eve: Christmas, Boxing Day (Sat), Sunday -> Mon 28 Dec.
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "2026-12-28T23:59:59+01:00\n",
        "",
    )


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("email.answer.promised\t2026-04-02T15:00:00+02:00", "email.answer.promised"),
        ("appointment.kept\t2026-04-02T15:00:00+02:00", "appointment.kept"),
        ("website.availability\t2026-04-02T15:00:00+02:00", "website.availability"),
        ("email.answer\t2026-04-02T15:00:00", "with seconds and an offset"),
        ("email.answer\t20260402T150000+0200", "with seconds and an offset"),  # not RFC 3339
        ("email.answer\t2026-W14-4T15:00+02:00", "with seconds and an offset"),
        # The years an event may carry: the deadline of a later one may not fit a datetime.
        ("report.resolve\t9999-12-30T10:00:00+00:00", "outside the years 1900 to 2999"),
        ("phone.answer\t0001-01-01T00:00:00+01:00", "outside the years 1900 to 2999"),
        ("email.answer\t2026-04-02T15:00:00+02:00\thoorn", "unknown municipality 'hoorn'"),
        ("email.answer", "expected NORM_ID<TAB>START[<TAB>MUNICIPALITY]"),
    ],
)
def test_cli_deadlines_explains_a_bad_line_and_keeps_the_lines_aligned(
    line: str, error: str
) -> None:
    good = "email.ack\t2026-03-02T10:00:00+01:00\n"
    result = runner.invoke(app, ["deadlines"], input=f"{line}\n{good}")
    assert result.stdout == "\n2026-03-02T10:05:00+01:00\n"
    [message] = result.stderr.splitlines()
    assert message.startswith("line 1: ")
    assert error in message
    assert result.exit_code == 1


def test_cli_deadlines_uses_the_municipalities_option(tmp_path: Path) -> None:
    """Heiloo closed Fri 15 May, 8 working days for reports: from Mon 11 May: 12, 13,
    (14 Ascension, 15 closed), 18-22, (25 Whit Monday), Tue 26 May. Bergen keeps 10."""
    places = write(
        tmp_path,
        "municipalities:\n"
        "  heiloo:\n"
        "    closing_days: [2026-05-15]\n"
        "    terms: {report.resolve: {working_days: 8}}\n",
        "places.yaml",
    )
    result = runner.invoke(
        app,
        ["deadlines", "--municipalities", str(places)],
        input="report.delay_notice\t2026-05-11T09:00:00+02:00\theiloo\n"
        "report.resolve\t2026-05-11T09:00:00+02:00\tbergen\n",
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "2026-05-26T23:59:59+02:00\n2026-05-27T23:59:59+02:00\n"


AT_RISK_IN = (
    # Fri 6 Mar 16:30, 2 office hours: due Mon 10:00; 75 % of the 2 office hours is
    # 30 min on Friday and 60 from Mon 08:30 -> Mon 09:30.
    "social.answer\t2026-03-06T16:30:00+01:00\theiloo\n"
    # Fri 18 Dec, 10 working days: due Tue 5 Jan 2027 (end of day). 86 office hours in
    # between (1 on Friday, 10 working days of 8.5); 75 % is 64.5 h: Friday 1 h, seven
    # full days to Wed 30 Dec (59.5 h), 4 h from Thu 31 Dec 08:30 -> 12:30.
    "report.resolve\t2026-12-18T16:00:00+01:00\n"
    # 20 s 24/7: at risk after 15 s.
    "phone.answer\t2026-03-02T10:00:00+01:00\n"
    "phone.transfers\t2026-03-02T10:00:00+01:00\n"
    # Configured below to 5 working days in Heiloo: Mon 2 Mar -> Mon 9 Mar; never at risk.
    "counter.home_visit\t2026-03-02T10:00:00+01:00\theiloo\n"
)
AT_RISK_OUT = (
    "2026-03-09T10:00:00+01:00\t2026-03-09T09:30:00+01:00\n"
    "2027-01-05T23:59:59+01:00\t2026-12-31T12:30:00+01:00\n"
    "2026-03-02T10:00:20+01:00\t2026-03-02T10:00:15+01:00\n"
    "\n"
    "2026-03-09T23:59:59+01:00\t\n"
)


def test_cli_deadlines_at_risk_prints_the_moment_after_a_tab(tmp_path: Path) -> None:
    places = write(
        tmp_path,
        "municipalities:\n  heiloo:\n    terms: {counter.home_visit: {working_days: 5}}\n",
        "places.yaml",
    )
    result = runner.invoke(
        app, ["deadlines", "--at-risk", "--municipalities", str(places)], input=AT_RISK_IN
    )
    assert result.stdout == AT_RISK_OUT
    [message] = result.stderr.splitlines()
    assert message == "line 4: phone.transfers has no deadline from a start time alone"
    assert result.exit_code == 1


def test_cli_deadlines_prints_a_day_end_to_whole_seconds_and_other_instants_unchanged() -> None:
    # The day ends at midnight (23:59:59.999999 inside) but is printed as 23:59:59; an
    # instant with other microseconds is printed as it is: 10:00:00.250 + 20 s.
    result = runner.invoke(
        app,
        ["deadlines"],
        input="email.answer\t2026-03-02T10:00:00+01:00\n"
        "phone.answer\t2026-03-02T10:00:00.250000+01:00\n",
    )
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == "2026-03-04T23:59:59+01:00\n2026-03-02T10:00:20.250000+01:00\n"
