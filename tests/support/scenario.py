"""A deterministic stream of phone calls with every kind of outcome, for resilience tests."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from normwacht.core.engine import NOTES
from tests.support.events import call_event

NOTE_KINDS = tuple(sorted(k.value for k in NOTES))
"""Outcome kinds that note something about a clock without deciding it."""


def calls(count: int, start: datetime, seed: int = 11) -> list[dict[str, Any]]:
    """`count` calls one second apart from `start`, their events in time order.

    A quarter each: answered in 5 s (met), answered after 30 s (breached), abandoned
    in 3 s (excluded), never answered (breached once the watermark passes).
    """
    rng = random.Random(seed)
    timed: list[tuple[datetime, dict[str, Any]]] = []
    for n in range(count):
        subject = f"CALL-{seed}-{n}"
        queued = start + timedelta(seconds=n)
        municipality = rng.choice(["bergen", "uitgeest", "castricum", "heiloo"])
        timed.append((queued, call_event(subject, "queued", queued, municipality=municipality,
                                         event_id=f"{subject}-q")))  # fmt: skip
        ending = {
            0: ("answered", 5),
            1: ("answered", 30),
            2: ("abandoned", 3),
        }.get(n % 4)
        if ending:
            kind, after = ending
            at = queued + timedelta(seconds=after)
            timed.append((at, call_event(subject, kind, at, municipality=municipality,
                                         event_id=f"{subject}-{kind}")))  # fmt: skip
    timed.sort(key=lambda pair: pair[0])
    return [event for _, event in timed]


def an_hour_ago() -> datetime:
    return (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)


def outcome_map(values: list[bytes]) -> dict[str, dict[str, Any]]:
    """Outcomes by id; fails if one id was published with two different meanings."""
    by_id: dict[str, dict[str, Any]] = {}
    for value in values:
        outcome = json.loads(value)
        seen = by_id.setdefault(outcome["id"], outcome)
        assert seen == outcome, f"{outcome['id']} published twice with different content"
    return by_id
