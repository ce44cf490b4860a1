"""The norms: what starts a clock, what stops it, and how long it may run.

Each norm id is a stable public name: metrics, reports and the API use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["CATALOGUE", "Norm", "get_norm"]


@dataclass(frozen=True, slots=True)
class Norm:
    """One service norm read as a rule.

    A clock starts on any of `starts_on`; it is met by any of `met_on`, and ends
    `excluded` (neither met nor breached) by any of `excluded_on` that happens in
    time. An `excluded_on` event after the deadline is a breach.
    """

    id: str
    channel: str
    seed_text: str
    starts_on: frozenset[str]
    met_on: frozenset[str]
    term: timedelta
    excluded_on: frozenset[str] = frozenset()

    def deadline(self, start: datetime) -> datetime:
        """Latest instant at which the norm is still met (inclusive).

        Elapsed time is real seconds, so the sum is taken in UTC: a clock that
        runs across a DST change still gets exactly `term`.
        """
        return start.astimezone(UTC) + self.term

    @property
    def stops_on(self) -> frozenset[str]:
        return self.met_on | self.excluded_on


CATALOGUE: Mapping[str, Norm] = {
    norm.id: norm
    for norm in (
        Norm(
            id="phone.answer",
            channel="phone",
            seed_text="We nemen binnen 20 seconden de telefoon op.",
            starts_on=frozenset({"nl.buch.call.queued"}),
            met_on=frozenset({"nl.buch.call.answered"}),
            excluded_on=frozenset({"nl.buch.call.abandoned"}),
            term=timedelta(seconds=20),
        ),
    )
}


def get_norm(norm_id: str) -> Norm:
    """The norm with this id; KeyError names the unknown id."""
    try:
        return CATALOGUE[norm_id]
    except KeyError:
        raise KeyError(f"unknown norm {norm_id!r}") from None
