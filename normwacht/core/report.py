"""The year report: how well each municipality kept each norm over a calendar year.

Management reports each year on the norms. A clock counts in the year, in Dutch time,
in which it was decided (met when its stop came, breached at its deadline, excluded or
cancelled when that happened), with what stands for it now: a breach a late event
turned into met counts as met. The service level is met / (met + breached), as the
live recording rules compute it; excluded and cancelled clocks count on neither side.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from normwacht.core.calendars import AMSTERDAM
from normwacht.core.catalogue import Catalogue
from normwacht.core.engine import Kind

DECIDED = (Kind.MET, Kind.BREACHED, Kind.EXCLUDED, Kind.CANCELLED)
"""The states a clock ends in: the ones a report counts."""


@dataclass(frozen=True)
class NormYear:
    """One norm in one municipality over one year."""

    municipality: str
    norm: str
    channel: str
    met: int
    breached: int
    excluded: int
    cancelled: int
    objective: float

    @property
    def service_level(self) -> float | None:
        """met / (met + breached); None for a year without a met or breached clock."""
        judged = self.met + self.breached
        return self.met / judged if judged else None

    @property
    def objective_met(self) -> bool | None:
        level = self.service_level
        return None if level is None else level >= self.objective

    def as_dict(self) -> dict[str, Any]:
        """Its fields and the two derived figures, in report column order."""
        fields = asdict(self)
        objective = fields.pop("objective")
        return fields | {
            "service_level": self.service_level,
            "objective": objective,
            "objective_met": self.objective_met,
        }


COLUMNS = tuple(NormYear("", "", "", 0, 0, 0, 0, 0.0).as_dict())


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """The year in Dutch time as a UTC half-open interval [start, end)."""
    start = datetime(year, 1, 1, tzinfo=AMSTERDAM).astimezone(UTC)
    return start, datetime(year + 1, 1, 1, tzinfo=AMSTERDAM).astimezone(UTC)


def year_report(
    counts: Mapping[tuple[str, str, str], int],
    catalogue: Catalogue,
    municipalities: Iterable[str],
) -> list[NormYear]:
    """A line for every norm of the catalogue in each municipality, in catalogue order.

    `counts` holds the decided clocks of the year by (municipality, norm, state). Norms
    without clocks get a line too: a norm never tested is worth reporting, and a report
    that leaves it out reads as if it were kept.
    """
    return [
        NormYear(
            municipality=municipality,
            norm=norm.id,
            channel=norm.channel,
            met=counts.get((municipality, norm.id, Kind.MET), 0),
            breached=counts.get((municipality, norm.id, Kind.BREACHED), 0),
            excluded=counts.get((municipality, norm.id, Kind.EXCLUDED), 0),
            cancelled=counts.get((municipality, norm.id, Kind.CANCELLED), 0),
            objective=catalogue.objective(norm.id, municipality),
        )
        for municipality in municipalities
        for norm in catalogue.norms.values()
    ]
