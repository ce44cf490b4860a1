"""The cases this worker holds, indexed by the next instant something falls due.

A heap of (instant, subject) makes each timer tick cost in proportion to the cases
that are due, not to the clocks that are open. Entries are never removed eagerly:
when a case's next instant changes, its old heap entry goes stale and is skipped
when it surfaces. The index is memory only; it is rebuilt from the table after every
rebalance (see `app.py`).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from normwacht.core.engine import Clock


class DeadlineIndex:
    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}
        self._open: dict[str, tuple[tuple[str, str], ...]] = {}
        self.open_counts: Counter[tuple[str, str]] = Counter()  # (norm, municipality) -> open

    def track(
        self, subject: str, municipality: str, clocks: Iterable[Clock], next_due: datetime | None
    ) -> None:
        """Record the case as it is now: its open clocks and when it is next due."""
        before = self._open.pop(subject, ())
        now = tuple((c.norm, municipality) for c in clocks if c.is_open)
        self.open_counts.subtract(before)
        self.open_counts.update(now)
        if now:
            self._open[subject] = now
        if next_due is None:
            self._due.pop(subject, None)
            return
        instant = next_due.timestamp()
        if self._due.get(subject) != instant:
            self._due[subject] = instant
            heapq.heappush(self._heap, (instant, subject))

    def pop_due(self, now: float) -> dict[str, float]:
        """Cases due strictly before `now`, each with its instant; they leave the index."""
        due: dict[str, float] = {}
        while self._heap and self._heap[0][0] < now:
            instant, subject = heapq.heappop(self._heap)
            if self._due.get(subject) == instant:
                del self._due[subject]
                due[subject] = instant
        return due

    def retry(self, subject: str, instant: float) -> None:
        """Put a due case back, when its tick could not be sent."""
        self._due[subject] = instant
        heapq.heappush(self._heap, (instant, subject))

    def clear(self) -> None:
        self._heap.clear()
        self._due.clear()
        self._open.clear()
        self.open_counts.clear()

    @property
    def open_clocks(self) -> int:
        return sum(len(clocks) for clocks in self._open.values())

    @property
    def due_cases(self) -> int:
        return len(self._due)
