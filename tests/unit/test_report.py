"""The year report: which clocks count in a year, and how a norm's line is worked out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from normwacht.catalogue_file import default_paths
from normwacht.core.catalogue import Catalogue
from normwacht.core.report import COLUMNS, NormYear, year_bounds, year_report


@pytest.fixture(scope="module")
def heiloo_at_80() -> Catalogue:
    """The packaged norms, with heiloo's phone objective at 80 % (the default is 90 %)."""
    spec = yaml.safe_load(default_paths()[0].read_text())
    return Catalogue(spec, {"municipalities": {"heiloo": {"objectives": {"phone.answer": 0.8}}}})


def test_a_year_runs_from_new_year_to_new_year_in_dutch_winter_time() -> None:
    assert year_bounds(2026) == (
        datetime(2025, 12, 31, 23, tzinfo=UTC),
        datetime(2026, 12, 31, 23, tzinfo=UTC),
    )


def test_every_norm_gets_a_line_in_each_municipality_asked_for(heiloo_at_80: Catalogue) -> None:
    lines = year_report({}, heiloo_at_80, ["heiloo", "bergen"])
    assert len(lines) == 2 * len(heiloo_at_80.norms)
    assert [line.municipality for line in lines[:: len(heiloo_at_80.norms)]] == ["heiloo", "bergen"]
    empty = lines[0]
    assert (empty.norm, empty.met, empty.breached) == ("phone.answer", 0, 0)
    assert empty.service_level is None
    assert empty.objective_met is None  # a norm never tested is neither kept nor broken


def test_a_line_counts_decided_clocks_and_judges_met_against_breached(
    heiloo_at_80: Catalogue,
) -> None:
    counts = {
        ("heiloo", "phone.answer", "met"): 8,
        ("heiloo", "phone.answer", "breached"): 2,
        ("heiloo", "phone.answer", "excluded"): 5,  # abandoned within 20 s: neither side
        ("heiloo", "phone.answer", "cancelled"): 1,
        ("bergen", "phone.answer", "met"): 8,
        ("bergen", "phone.answer", "breached"): 2,
        ("heiloo", "email.answer", "breached"): 3,
    }
    lines = {(line.municipality, line.norm): line for line in
             year_report(counts, heiloo_at_80, ["heiloo", "bergen"])}  # fmt: skip
    heiloo = lines["heiloo", "phone.answer"]
    assert (heiloo.met, heiloo.breached, heiloo.excluded, heiloo.cancelled) == (8, 2, 5, 1)
    assert heiloo.service_level == 0.8
    assert (heiloo.objective, heiloo.objective_met) == (0.8, True)  # exactly on the objective
    bergen = lines["bergen", "phone.answer"]
    assert (bergen.service_level, bergen.objective, bergen.objective_met) == (0.8, 0.9, False)
    email = lines["heiloo", "email.answer"]
    assert (email.channel, email.service_level, email.objective_met) == ("email", 0.0, False)
    assert lines["bergen", "email.answer"].breached == 0


def test_a_line_as_a_dict_has_the_report_columns_in_order() -> None:
    line = NormYear("heiloo", "email.answer", "email", 0, 0, 2, 0, 0.9).as_dict()
    assert tuple(line) == COLUMNS
    assert COLUMNS[-3:] == ("service_level", "objective", "objective_met")
    assert (line["excluded"], line["service_level"], line["objective_met"]) == (2, None, None)
