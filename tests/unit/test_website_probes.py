"""`website.availability` tallies probes per month; a resent batch is not counted twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from normwacht.core.catalogue import Catalogue
from normwacht.core.engine import Case, Kind, apply, due
from normwacht.core.events import parse_event

START = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
AFTER_JUNE = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def probe(n: int, up: bool) -> str:
    return json.dumps({
        "specversion": "1.0", "id": f"p-{n}", "source": "urn:buch:monitoring",
        "type": "nl.buch.website.probe", "time": (START + timedelta(minutes=n)).isoformat(),
        "subject": "WEB-heiloo", "municipality": "heiloo",
        "data": {"target": "www.heiloo.nl", "up": up},
    })  # fmt: skip


def play(catalogue: Catalogue, probes: list[str]) -> Case:
    case = None
    for raw in probes:
        case = apply(case, parse_event(raw), START, catalogue).case
    assert case is not None
    return case


def test_a_month_below_999_per_mille_is_breached_once_it_is_over(catalogue: Catalogue) -> None:
    probes = [probe(n, up=n not in (10, 20)) for n in range(1000)]  # 99.8 %
    [breach] = [o for o in due(play(catalogue, probes), AFTER_JUNE, catalogue).outcomes
                if o.kind is not Kind.OPENED]  # fmt: skip
    assert (breach.kind, breach.instance) == (Kind.BREACHED, 202606)
    assert breach.deadline == datetime.fromisoformat(
        "2026-06-30T23:59:59.999999+02:00"
    )  # the month ends at midnight


def test_a_resent_batch_is_not_counted_twice(catalogue: Catalogue) -> None:
    down = [probe(n, up=False) for n in range(1)]
    ups = [probe(n, up=True) for n in range(1, 1000)]
    # 1 down in 1000 is exactly 99.9 %: met. Sending the ups again must not change that,
    # and sending the down one again must not make it a breach.
    case = play(catalogue, down + ups + ups[-400:] + down)
    [decided] = [o for o in due(case, AFTER_JUNE, catalogue).outcomes if o.kind is not Kind.OPENED]
    assert decided.kind is Kind.MET
