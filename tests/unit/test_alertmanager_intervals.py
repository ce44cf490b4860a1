"""Alertmanager's time intervals come from the municipalities' calendars, and only from them.

Pure: the generator takes a catalogue and text and returns text. Read back, the intervals
name exactly the calendar's non-working weekdays and its office hours.
"""

from __future__ import annotations

from datetime import date, timedelta
from importlib import resources
from typing import Any

import pytest
import yaml

from normwacht.core.catalogue import Catalogue
from normwacht.ops.alertmanager import (
    DEFAULT_YEARS,
    END_MARKER,
    BlockNotFound,
    begin_marker,
    block,
    closed_days,
    intervals_by_name,
    is_current,
    rewrite,
    time_intervals,
    years_of,
)

_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")  # fmt: skip

PLACES = {
    "municipalities": {
        "heiloo": {
            "office_hours": {
                "monday": ["09:00-12:30", "13:30-16:00"],
                "tuesday": ["09:00-12:30", "13:30-16:00"],
                "wednesday": ["09:00-12:00"],
                "friday": ["09:00-12:30", "13:30-16:00"],
            },
            # The bridge day after Ascension 2026.
            "closing_days": ["2026-05-15"],
        }
    }
}


@pytest.fixture(scope="module")
def spec() -> Any:
    text = (resources.files("normwacht") / "data" / "catalogue.yaml").read_text("utf-8")
    return yaml.safe_load(text)


@pytest.fixture(scope="module")
def catalogue(spec: Any) -> Catalogue:
    return Catalogue(spec, PLACES)


def listed_dates(entries: list[dict[str, Any]]) -> set[date]:
    """The dates a generated closed-* interval names (each entry: one year and month)."""
    dates = set()
    for entry in entries:
        assert entry["location"] == "Europe/Amsterdam"
        (year,), (month,) = entry["years"], entry["months"]
        for day in entry["days_of_month"]:
            dates.add(date(int(year), _MONTHS.index(month) + 1, int(day)))
    return dates


def by_name(catalogue: Catalogue, years: tuple[int, int] = DEFAULT_YEARS) -> dict[str, Any]:
    return {i["name"]: i["time_intervals"] for i in time_intervals(catalogue, years)}


def test_every_municipality_gets_office_hours_and_closed_days(catalogue: Catalogue) -> None:
    names = [i["name"] for i in time_intervals(catalogue, DEFAULT_YEARS)]
    assert names == [
        f"{kind}-{m}"
        for m in ("bergen", "uitgeest", "castricum", "heiloo")
        for kind in ("office-hours", "closed")
    ]


def test_default_office_hours(catalogue: Catalogue) -> None:
    assert by_name(catalogue)["office-hours-bergen"] == [
        {
            "weekdays": ["monday:friday"],
            "times": [{"start_time": "08:30", "end_time": "17:00"}],
            "location": "Europe/Amsterdam",
        }
    ]


def test_configured_office_hours_are_grouped_by_equal_days(catalogue: Catalogue) -> None:
    split = [
        {"start_time": "09:00", "end_time": "12:30"},
        {"start_time": "13:30", "end_time": "16:00"},
    ]
    assert by_name(catalogue)["office-hours-heiloo"] == [
        {"weekdays": ["monday:tuesday", "friday"], "times": split, "location": "Europe/Amsterdam"},
        {
            "weekdays": ["wednesday"],
            "times": [{"start_time": "09:00", "end_time": "12:00"}],
            "location": "Europe/Amsterdam",
        },
    ]


def test_holidays_are_closed_and_weekends_not_listed(catalogue: Catalogue) -> None:
    closed = listed_dates(by_name(catalogue)["closed-bergen"])
    assert date(2026, 4, 27) in closed  # Koningsdag, a Monday
    assert date(2026, 12, 25) in closed  # Christmas Day, a Friday
    assert date(2027, 3, 29) in closed  # Easter Monday
    assert date(2030, 5, 30) in closed  # Ascension Day
    assert date(2026, 12, 26) not in closed  # Boxing Day 2026 is a Saturday
    assert date(2026, 4, 25) not in closed  # an ordinary Saturday
    assert date(2026, 5, 5) not in closed  # Liberation Day: a day off in lustrum years only
    assert all(day.isoweekday() <= 5 for day in closed)


def test_a_closing_day_is_closed_only_where_configured(catalogue: Catalogue) -> None:
    intervals = by_name(catalogue)
    assert date(2026, 5, 15) in listed_dates(intervals["closed-heiloo"])
    assert date(2026, 5, 15) not in listed_dates(intervals["closed-bergen"])


@pytest.mark.parametrize("municipality", ["bergen", "heiloo"])
def test_closed_days_are_exactly_the_calendars_non_working_weekdays(
    catalogue: Catalogue, municipality: str
) -> None:
    calendar = catalogue.calendar(municipality)
    listed = listed_dates(by_name(catalogue)[f"closed-{municipality}"])
    day, expected = date(2026, 1, 1), set()
    while day <= date(2030, 12, 31):
        if day.isoweekday() <= 5 and not calendar.is_working_day(day):
            expected.add(day)
        day += timedelta(days=1)
    assert listed == expected == set(closed_days(calendar, DEFAULT_YEARS))
    assert min(listed).year == 2026
    assert max(listed).year == 2030


def config_text(catalogue: Catalogue, years: tuple[int, int] = DEFAULT_YEARS) -> str:
    return f"route:\n  receiver: x\n\n{block(catalogue, years)}# after\n"


def test_the_block_is_valid_yaml_that_reads_back(catalogue: Catalogue) -> None:
    text = config_text(catalogue)
    assert intervals_by_name(text) == by_name(catalogue)
    assert text.endswith(f"{END_MARKER}\n# after\n")


def test_rewrite_keeps_the_years_of_the_marker(catalogue: Catalogue) -> None:
    stale = f"head: 1\n{begin_marker((2027, 2027))}\ntime_intervals: []\n{END_MARKER}\ntail: 2\n"
    fresh = rewrite(stale, catalogue)
    assert fresh.startswith("head: 1\n")
    assert fresh.endswith(f"{END_MARKER}\ntail: 2\n")
    assert years_of(fresh) == (2027, 2027)
    assert {d.year for d in listed_dates(intervals_by_name(fresh)["closed-bergen"])} == {2027}
    assert not is_current(stale, catalogue)
    assert is_current(fresh, catalogue)
    assert rewrite(fresh, catalogue) == fresh


def test_a_marker_without_years_uses_the_default_span(catalogue: Catalogue) -> None:
    text = (
        f"# BEGIN time_intervals: generated by `normwacht alertmanager-intervals`\n{END_MARKER}\n"
    )
    assert years_of(text) == DEFAULT_YEARS
    assert years_of(rewrite(text, catalogue)) == DEFAULT_YEARS


def test_a_changed_calendar_makes_the_block_stale(catalogue: Catalogue, spec: Any) -> None:
    text = config_text(catalogue)
    assert is_current(text, catalogue)
    assert not is_current(text, Catalogue(spec, {}))


@pytest.mark.parametrize(
    "text",
    ["no markers\n", f"{END_MARKER}\n", "# BEGIN time_intervals: generated by `normwacht"],
)
def test_missing_markers_are_an_error(catalogue: Catalogue, text: str) -> None:
    with pytest.raises(BlockNotFound):
        rewrite(text, catalogue)
