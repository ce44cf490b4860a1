"""The year report: which clocks count in a year, and how a norm's line is worked out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from normwacht.catalogue_file import default_paths
from normwacht.cli import _percent
from normwacht.core.catalogue import Catalogue
from normwacht.core.report import COLUMNS, ClockCount, NormYear, year_bounds, year_report


@pytest.fixture(scope="module")
def heiloo_at_80() -> Catalogue:
    """The packaged norms, with heiloo's phone objective at 80 % (the default is 90 %)."""
    spec = yaml.safe_load(default_paths()[0].read_text())
    return Catalogue(spec, {"municipalities": {"heiloo": {"objectives": {"phone.answer": 0.8}}}})


def lines_of(report: list[NormYear]) -> dict[tuple[str, str], NormYear]:
    return {(line.municipality, line.norm): line for line in report}


def test_a_year_runs_from_new_year_to_new_year_in_dutch_winter_time() -> None:
    assert year_bounds(2026) == (
        datetime(2025, 12, 31, 23, tzinfo=UTC),
        datetime(2026, 12, 31, 23, tzinfo=UTC),
    )


def test_every_norm_gets_a_line_in_each_municipality_asked_for(heiloo_at_80: Catalogue) -> None:
    report = year_report(2026, [], heiloo_at_80, ["heiloo", "bergen"])
    norms = len(heiloo_at_80.norms)
    assert len(report) == 2 * norms
    assert [line.municipality for line in report[::norms]] == ["heiloo", "bergen"]
    empty = report[0]
    assert (empty.year, empty.norm, empty.unit, empty.met, empty.breached, empty.open) == (
        2026, "phone.answer", "clock", 0, 0, 0,
    )  # fmt: skip
    assert empty.service_level is None
    assert empty.objective_met is None  # a norm never tested is neither kept nor broken


def test_a_line_counts_decided_clocks_and_judges_met_against_breached(
    heiloo_at_80: Catalogue,
) -> None:
    counts = [
        ClockCount("heiloo", "phone.answer", "phone", "met", 8),
        ClockCount("heiloo", "phone.answer", "phone", "breached", 2),
        ClockCount("heiloo", "phone.answer", "phone", "excluded", 5),  # abandoned in time
        ClockCount("heiloo", "phone.answer", "phone", "cancelled", 1),
        ClockCount("heiloo", "phone.answer", "phone", "open", 4),
        ClockCount("bergen", "phone.answer", "phone", "met", 8),
        ClockCount("bergen", "phone.answer", "phone", "breached", 2),
        ClockCount("heiloo", "email.answer", "email", "breached", 3),
    ]
    lines = lines_of(year_report(2026, counts, heiloo_at_80, ["heiloo", "bergen"]))
    heiloo = lines["heiloo", "phone.answer"]
    assert (heiloo.met, heiloo.breached, heiloo.excluded, heiloo.cancelled, heiloo.open) == (
        8, 2, 5, 1, 4,
    )  # fmt: skip
    assert heiloo.service_level == 0.8
    assert (heiloo.objective, heiloo.objective_met) == (0.8, True)  # exactly on the objective
    bergen = lines["bergen", "phone.answer"]
    assert (bergen.service_level, bergen.objective, bergen.objective_met) == (0.8, 0.9, False)
    email = lines["heiloo", "email.answer"]
    assert (email.channel, email.service_level, email.objective_met) == ("email", 0.0, False)
    assert lines["bergen", "email.answer"].breached == 0


def test_website_availability_counts_months(heiloo_at_80: Catalogue) -> None:
    counts = [
        ClockCount("bergen", "website.availability", "website", "met", 11),
        ClockCount("bergen", "website.availability", "website", "breached", 1),
    ]
    website = lines_of(year_report(2026, counts, heiloo_at_80, ["bergen"]))[
        "bergen", "website.availability"
    ]
    assert (website.unit, website.met, website.breached) == ("month", 11, 1)


def test_a_norm_the_catalogue_no_longer_has_keeps_its_clocks(heiloo_at_80: Catalogue) -> None:
    counts = [
        ClockCount("heiloo", "fax.answer", "fax", "met", 2),
        ClockCount("heiloo", "fax.answer", "fax", "breached", 2),
    ]
    report = year_report(2026, counts, heiloo_at_80, ["heiloo", "bergen"])
    assert len(report) == 2 * len(heiloo_at_80.norms) + 1  # and none for bergen: no clocks
    fax = lines_of(report)["heiloo", "fax.answer"]
    assert report.index(fax) == len(heiloo_at_80.norms)  # after heiloo's catalogue norms
    assert (fax.channel, fax.service_level, fax.objective, fax.objective_met) == (
        "fax", 0.5, None, None,
    )  # fmt: skip


def test_a_line_as_a_dict_has_the_report_columns_in_order() -> None:
    assert COLUMNS == (
        "year", "municipality", "norm", "channel", "unit", "met", "breached", "excluded",
        "cancelled", "open", "service_level", "objective", "objective_met",
    )  # fmt: skip
    line = NormYear(2026, "heiloo", "email.answer", "email", "clock", excluded=2, objective=0.9)
    assert line.as_dict() == {
        "year": 2026, "municipality": "heiloo", "norm": "email.answer", "channel": "email",
        "unit": "clock", "met": 0, "breached": 0, "excluded": 2, "cancelled": 0, "open": 0,
        "service_level": None, "objective": 0.9, "objective_met": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("share", "shown"),
    [(0.8996, "89.9%"), (0.9, "90.0%"), (0.57, "57.0%"), (1.0, "100.0%"), (0.0, "0.0%"),
     (None, "-")],
)  # fmt: skip
def test_the_command_lines_table_rounds_a_level_down(share: float | None, shown: str) -> None:
    # 2,249 met of 2,500 next to a 90 % objective: shown as 90.0 % it read as kept.
    assert _percent(share) == shown
