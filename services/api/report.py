"""The year report from the read model: shared by `GET /v1/report` and `normwacht report`."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from normwacht.core.catalogue import Catalogue
from normwacht.core.report import COLUMNS, NormYear, year_bounds, year_report
from services.api.db import year_clocks


def year_lines(
    session: Session, catalogue: Catalogue, year: int, municipalities: Sequence[str]
) -> list[NormYear]:
    since, until = year_bounds(year)
    # A year not begun has nothing decided in it and nothing running in it yet; read as
    # any other, every clock running now would count as its backlog (`open`).
    begun = since <= datetime.now(UTC)
    counts = year_clocks(session, since, until, municipalities) if begun else []
    return year_report(year, counts, catalogue, municipalities)


def as_csv(lines: Iterable[NormYear]) -> str:
    """The lines as CSV (RFC 4180), a header first; an absent figure is an empty cell."""
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(line.as_dict() for line in lines)
    return out.getvalue()
