"""What the year report costs over a large read model: `year_lines` on a SQLite file.

`clocks` clock rows for each of `years` years, the last 2026 (random norms and
municipalities of the packaged catalogue, most met, some breached or excluded; in the
last year some still running), written straight into the API's `clocks` table in a
temporary folder; then the report of the last year asked for `runs` times with the
index `ix_clocks_decided` (migration api_0002) and as often without it, alternately, in one
process: the index is dropped and made again between the two. The figure is wall time
per report; the least and the median of each are quoted.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from normwacht.catalogue_file import load
from normwacht.core.report import year_bounds
from services.api.db import Base, ClockRow, connect
from services.api.report import year_lines

YEAR = 2026
DECIDED = ["met"] * 8 + ["breached", "excluded"]
INDEX = "ix_clocks_decided"


def _rows(
    clocks: int, year: int, norms: list[tuple[str, str]], places: list[str]
) -> list[dict[str, Any]]:
    """Clocks started in `year` (Dutch time), decided 5 minutes later; in the report's
    year one in eleven still running."""
    rnd = random.Random(year)
    since, until = year_bounds(year)
    seconds = int((until - since).total_seconds())
    states = DECIDED + (["opened"] if year == YEAR else [])
    rows = []
    for number in range(clocks):
        norm, channel = rnd.choice(norms)
        started = since + timedelta(seconds=rnd.randrange(seconds))
        state = rnd.choice(states)
        subject = f"S{year}-{number}"
        rows.append({
            "subject": subject, "norm": norm, "instance": 1, "status": state,
            "standing": f"{subject}/{norm}/1/{state}", "channel": channel,
            "municipality": rnd.choice(places), "started_at": started,
            "deadline": started + timedelta(hours=1),
            "decided_at": None if state == "opened" else started + timedelta(minutes=5),
        })  # fmt: skip
    return rows


def measure(clocks: int, years: int, runs: int, echo: Callable[[str], Any]) -> dict[str, Any]:
    catalogue = load()
    places = list(catalogue.municipalities)
    norms = [(norm.id, norm.channel) for norm in catalogue.norms.values()]
    seconds: dict[str, list[float]] = {"indexed": [], "scanned": []}
    with tempfile.TemporaryDirectory() as folder:
        engine = connect(f"sqlite:///{Path(folder) / 'api.db'}")
        for year in range(YEAR - years + 1, YEAR + 1):
            rows = _rows(clocks, year, norms, places)
            with Session(engine) as session:
                for first in range(0, clocks, 50_000):
                    session.execute(insert(ClockRow), rows[first : first + 50_000])
                session.commit()
            del rows
        echo(f"{clocks * years:,} clocks stored, {clocks:,} in each of {years} years")
        (index,) = (
            index for index in Base.metadata.tables["clocks"].indexes if index.name == INDEX
        )
        for run in range(1, runs + 1):
            for way in ("indexed", "scanned"):
                if way == "scanned":
                    index.drop(engine)
                with Session(engine) as session:
                    began = time.perf_counter()
                    lines = year_lines(session, catalogue, YEAR, places)
                    seconds[way].append(time.perf_counter() - began)
                if way == "scanned":
                    index.create(engine)
                counted = sum(
                    line.met + line.breached + line.excluded + line.open for line in lines
                )
                echo(f"run {run}, {way}: {seconds[way][-1]:.2f} s, {len(lines)} lines, "
                     f"{counted:,} clocks")  # fmt: skip
        engine.dispose()
    figures: dict[str, Any] = {"clocks_per_year": clocks, "years": years, "runs": runs}
    for way, taken in seconds.items():
        figures[way] = {
            "seconds": taken,
            "least_s": min(taken),
            "median_s": statistics.median(taken),
        }
        echo(f"the {YEAR} report, {way}: median {figures[way]['median_s']:.2f} s "
             f"(least {figures[way]['least_s']:.2f} s) of {runs} runs")  # fmt: skip
    return figures
