"""The open clocks this worker knows, indexed by deadline.

A heap of (deadline, subject) makes each timer tick cost in proportion to the
clocks that are due, not to those that are open. Entries are never removed
eagerly: when a clock is decided its heap entry goes stale and is skipped when it
surfaces. The index is memory only; it is rebuilt from the table after every
rebalance (see `app.py`).
"""

from __future__ import annotations

import heapq
from collections import Counter

from normwacht.core.engine import Case, open_clocks

ClockKey = tuple[str, int]  # (norm, instance)


class DeadlineIndex:
    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._open: dict[str, dict[ClockKey, tuple[float, str]]] = {}
        self.open_counts: Counter[tuple[str, str]] = (
            Counter()
        )  # (norm, municipality) -> open clocks

    def track(self, case: Case) -> None:
        """Record the case's open clocks as they are now."""
        before = self._open.pop(case.subject, {})
        now = {
            (c.norm, c.instance): (c.deadline.timestamp(), case.municipality)
            for c in open_clocks(case)
        }
        for key, (_, municipality) in before.items():
            if key not in now:
                self.open_counts[(key[0], municipality)] -= 1
        for key, (deadline, municipality) in now.items():
            if key not in before:
                self.open_counts[(key[0], municipality)] += 1
                heapq.heappush(self._heap, (deadline, case.subject))
        if now:
            self._open[case.subject] = now

    def pop_due(self, now: float) -> dict[str, float]:
        """Subjects with an open clock due strictly before `now`, each with that deadline."""
        due: dict[str, float] = {}
        while self._heap and self._heap[0][0] < now:
            deadline, subject = heapq.heappop(self._heap)
            clocks = self._open.get(subject, {})
            if any(d == deadline for d, _ in clocks.values()):
                due.setdefault(subject, deadline)
        return due

    def retry(self, subject: str, deadline: float) -> None:
        """Put a due subject back, when its tick could not be sent."""
        heapq.heappush(self._heap, (deadline, subject))

    def clear(self) -> None:
        self._heap.clear()
        self._open.clear()
        self.open_counts.clear()

    def __len__(self) -> int:
        return sum(len(clocks) for clocks in self._open.values())
