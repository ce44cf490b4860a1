"""The year report: how well each municipality kept each norm over a calendar year.

Management reports each year on the norms. A clock counts in the year, in Dutch time,
of its `decided_at` (the moment its final outcome names: its stop for met, its deadline
or the event that broke it for breached, the month's end for website availability),
with what stands for it now: a breach a late event turned into met counts as met, in
the year of the met. The service level is met / (met + breached), the ratio the live
recording rules compute over a window; excluded and cancelled clocks count on neither
side. The clocks running at the year's end, whenever they started, are counted apart
(`open`): the backlog the year leaves (for the year under way: running now).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from normwacht.core.calendars import AMSTERDAM
from normwacht.core.catalogue import Catalogue
from normwacht.core.engine import Kind

DECIDED = (Kind.MET, Kind.BREACHED, Kind.EXCLUDED, Kind.CANCELLED)
"""The states a clock ends in."""
RUNNING = (Kind.OPENED, Kind.AT_RISK)
OPEN = "open"
"""The state a report gives a clock that runs still."""

COLUMNS = (
    "year", "municipality", "norm", "channel", "unit", "met", "breached", "excluded",
    "cancelled", "open", "service_level", "objective", "objective_met",
)  # fmt: skip


class ClockCount(NamedTuple):
    """How many clocks of a norm in a municipality are in a state (a decided one, or open)."""

    municipality: str
    norm: str
    channel: str
    state: str
    clocks: int


@dataclass(frozen=True)
class NormYear:
    """One norm in one municipality over one year."""

    year: int
    municipality: str
    norm: str
    channel: str
    unit: Literal["clock", "month"]
    """What one count is: a clock (a call, an e-mail, ...) or, for website availability,
    a calendar month, met when at least the norm's minimum of its probes found the site up."""
    met: int = 0
    breached: int = 0
    excluded: int = 0
    cancelled: int = 0
    open: int = 0
    objective: float | None = None
    """The share to be met, as the catalogue sets it now; None for a norm it no longer has."""

    @property
    def service_level(self) -> float | None:
        """met / (met + breached); None for a year without a met or breached clock."""
        judged = self.met + self.breached
        return self.met / judged if judged else None

    @property
    def objective_met(self) -> bool | None:
        level = self.service_level
        return None if level is None or self.objective is None else level >= self.objective

    def as_dict(self) -> dict[str, Any]:
        """Its fields and the two derived figures, in the order of `COLUMNS`."""
        derived = {"service_level": self.service_level, "objective_met": self.objective_met}
        return {name: derived[name] if name in derived else getattr(self, name) for name in COLUMNS}


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """The year in Dutch time as a UTC half-open interval [start, end)."""
    start = datetime(year, 1, 1, tzinfo=AMSTERDAM).astimezone(UTC)
    return start, datetime(year + 1, 1, 1, tzinfo=AMSTERDAM).astimezone(UTC)


def year_report(
    year: int, counts: Iterable[ClockCount], catalogue: Catalogue, municipalities: Sequence[str]
) -> list[NormYear]:
    """A line for every norm of the catalogue in each municipality, in catalogue order,
    each followed by a line for each norm with clocks there that the catalogue no longer
    has (counted in clocks: the catalogue no longer says what they were).

    Norms without clocks get a line too: a norm never tested is worth reporting, and a
    report that leaves it out reads as if it were kept. So does a norm since dropped
    from the catalogue: its clocks happened.
    """
    tally: dict[tuple[str, str], dict[str, int]] = {}
    channels: dict[str, str] = {}
    for count in counts:
        states = tally.setdefault((count.municipality, count.norm), {})
        states[count.state] = states.get(count.state, 0) + count.clocks
        channels.setdefault(count.norm, count.channel)
    dropped = sorted(set(channels) - set(catalogue.norms))
    lines = []
    for municipality in municipalities:
        for norm in catalogue.norms.values():
            states = tally.get((municipality, norm.id), {})
            unit: Literal["clock", "month"] = "month" if norm.availability else "clock"
            lines.append(_line(year, municipality, norm.id, norm.channel, unit, states,
                               catalogue.objective(norm.id, municipality)))  # fmt: skip
        for norm_id in dropped:
            if states := tally.get((municipality, norm_id), {}):
                lines.append(
                    _line(year, municipality, norm_id, channels[norm_id], "clock", states, None)
                )
    return lines


def _line(
    year: int,
    municipality: str,
    norm: str,
    channel: str,
    unit: Literal["clock", "month"],
    states: dict[str, int],
    objective: float | None,
) -> NormYear:
    return NormYear(
        year=year, municipality=municipality, norm=norm, channel=channel, unit=unit,
        met=states.get(Kind.MET, 0), breached=states.get(Kind.BREACHED, 0),
        excluded=states.get(Kind.EXCLUDED, 0), cancelled=states.get(Kind.CANCELLED, 0),
        open=states.get(OPEN, 0), objective=objective,
    )  # fmt: skip
