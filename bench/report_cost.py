"""What the year report costs over a large read model: `year_lines` on a SQLite file.

A million clock rows of one year (random norms and municipalities of the packaged
catalogue, most met, some breached, excluded or running), written straight into the
API's `clocks` table in a temporary folder; then the report of that year asked for
`runs` times. The figure is wall time per report (one process, nothing else running in
it); the least and the median are quoted.
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
from services.api.db import ClockRow, connect
from services.api.report import year_lines

YEAR = 2026
STATES = ["met"] * 8 + ["breached", "excluded", "opened"]


def _rows(clocks: int, norms: list[tuple[str, str]], places: list[str]) -> list[dict[str, Any]]:
    """Clocks started in the year (Dutch time): each is in the report, decided or open."""
    rnd = random.Random(1)
    since, until = year_bounds(YEAR)
    seconds = int((until - since).total_seconds())
    rows = []
    for number in range(clocks):
        norm, channel = rnd.choice(norms)
        started = since + timedelta(seconds=rnd.randrange(seconds))
        state = rnd.choice(STATES)
        rows.append({
            "subject": f"S{number}", "norm": norm, "instance": 1, "status": state,
            "standing": f"S{number}/{norm}/1/{state}", "channel": channel,
            "municipality": rnd.choice(places), "started_at": started,
            "deadline": started + timedelta(hours=1),
            "decided_at": None if state == "opened" else started + timedelta(minutes=5),
        })  # fmt: skip
    return rows


def measure(clocks: int, runs: int, echo: Callable[[str], Any]) -> dict[str, Any]:
    catalogue = load()
    places = list(catalogue.municipalities)
    norms = [(norm.id, norm.channel) for norm in catalogue.norms.values()]
    seconds: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        engine = connect(f"sqlite:///{Path(folder) / 'api.db'}")
        rows = _rows(clocks, norms, places)
        with Session(engine) as session:
            for first in range(0, clocks, 50_000):
                session.execute(insert(ClockRow), rows[first : first + 50_000])
            session.commit()
        del rows
        for run in range(1, runs + 1):
            with Session(engine) as session:
                began = time.perf_counter()
                lines = year_lines(session, catalogue, YEAR, places)
                seconds.append(time.perf_counter() - began)
            counted = sum(line.met + line.breached + line.excluded + line.open for line in lines)
            echo(f"run {run}: {seconds[-1]:.2f} s, {len(lines)} lines, {counted:,} clocks")
        engine.dispose()
    figures = {"clocks": clocks, "runs": runs, "seconds": seconds,
               "least_s": min(seconds), "median_s": statistics.median(seconds)}  # fmt: skip
    echo(f"the year report over {clocks:,} clocks: median {figures['median_s']:.2f} s "
         f"(least {figures['least_s']:.2f} s) of {runs} runs")  # fmt: skip
    return figures
