"""The cases this worker holds, indexed per partition by the next instant one falls due.

A heap of (instant, subject) per partition makes each timer tick cost in proportion
to the cases that are due, not to the clocks that are open. Entries are never removed
eagerly: when a case's next instant changes, its old heap entry goes stale and is
skipped when it surfaces. The index is memory only; it is rebuilt from the table
after every rebalance (see `app.py`), from the `IndexEntry` stored with each case, so
that a rebuild neither decodes a case nor derives its clocks.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import normwacht.core
from normwacht.core.catalogue import Catalogue
from normwacht.core.engine import Step


def rules_fingerprint(catalogue: Catalogue) -> str:
    """Names the rules an `IndexEntry` was derived under: the catalogue and the core's code.

    A stored entry is trusted only under the same rules. After a change of norms,
    calendars, holiday data or engine, a deadline may have moved earlier than the
    stored instant, so such an entry is derived again instead.
    """
    digest = hashlib.sha256(catalogue.fingerprint.encode())
    for source in sorted(Path(normwacht.core.__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


class IndexEntry(NamedTuple):
    """What the index keeps of a case: how many clocks are open, by norm and whether their
    at-risk warning is out, and when it is next due. Counts, not a clock each: it is
    stored with the case's head, which must not grow with its clocks."""

    open: tuple[tuple[str, bool, int], ...]
    due: float | None

    @classmethod
    def of(cls, step: Step) -> IndexEntry:
        counts: dict[tuple[str, bool], int] = {}  # (a Counter costs more for a few clocks)
        for clock in step.open:
            counts[clock] = counts.get(clock, 0) + 1
        return cls(
            tuple((norm, at_risk, count) for (norm, at_risk), count in sorted(counts.items())),
            None if step.next_due is None else step.next_due.timestamp(),
        )

    @staticmethod
    def trusted(value: Mapping[str, Any], rules: str) -> bool:
        """Whether a case's table value holds an entry derived under these `rules`.

        Not under other rules, nor in a value stored before entries were kept.
        """
        return value.get("rules") == rules

    @classmethod
    def stored(cls, value: Mapping[str, Any], rules: str) -> IndexEntry | None:
        """The entry stored in a case's table value, if derived under these `rules`."""
        if not cls.trusted(value, rules):
            return None
        return cls(tuple((n, at_risk, count) for n, at_risk, count in value["open"]), value["due"])


_FIRST_COMPACTION = 1_024


class DeadlineIndex:
    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[float, str]]] = {}
        # A heap entry goes stale when its case's due instant changes or goes; it leaves
        # only when popped, which for a case closed early may be weeks or years away. A
        # heap is rid of them whenever it has grown to this size (amortised: twice what
        # was left, so each push pays for at most one entry looked at again).
        self._compact_at: dict[int, int] = {}
        self._due: dict[str, float] = {}
        self._open: dict[str, tuple[tuple[str, str, bool, int], ...]] = {}
        self.open_counts: Counter[tuple[str, str]] = Counter()  # (norm, municipality) -> open
        self.at_risk_counts: Counter[tuple[str, str]] = Counter()  # ... open and at risk

    def track(self, subject: str, partition: int, municipality: str, entry: IndexEntry) -> None:
        """Record the case as it is now: its open clocks and when it is next due."""
        before = self._open.pop(subject, ())
        now = tuple((norm, municipality, at_risk, count) for norm, at_risk, count in entry.open)
        for norm, place, at_risk, count in before:
            self.open_counts[(norm, place)] -= count
            self.at_risk_counts[(norm, place)] -= at_risk * count
        for norm, place, at_risk, count in now:
            self.open_counts[(norm, place)] += count
            self.at_risk_counts[(norm, place)] += at_risk * count
        if now:
            self._open[subject] = now
        instant = entry.due
        if instant is None:
            self._due.pop(subject, None)
            return
        if self._due.get(subject) != instant:
            self._due[subject] = instant
            self._push(partition, instant, subject)

    def pop_due(self, partition: int, now: float) -> dict[str, float]:
        """The partition's cases due strictly before `now`, with their instant; they leave."""
        heap = self._heaps.get(partition, [])
        due: dict[str, float] = {}
        while heap and heap[0][0] < now:
            instant, subject = heapq.heappop(heap)
            if self._due.get(subject) == instant:
                del self._due[subject]
                due[subject] = instant
        return due

    def retry(self, subject: str, partition: int, instant: float) -> None:
        """Put a due case back, when its due-record could not be sent."""
        self._due[subject] = instant
        self._push(partition, instant, subject)

    def _push(self, partition: int, instant: float, subject: str) -> None:
        heap = self._heaps.setdefault(partition, [])
        heapq.heappush(heap, (instant, subject))
        if len(heap) >= self._compact_at.get(partition, _FIRST_COMPACTION):
            heap[:] = [(at, case) for at, case in heap if self._due.get(case) == at]
            heapq.heapify(heap)
            self._compact_at[partition] = 2 * len(heap) + _FIRST_COMPACTION

    @property
    def heap_entries(self) -> int:
        """Entries in the heaps, stale ones included (for tests and memory figures)."""
        return sum(len(heap) for heap in self._heaps.values())

    def clear(self) -> None:
        self._heaps.clear()
        self._compact_at.clear()
        self._due.clear()
        self._open.clear()
        self.open_counts.clear()
        self.at_risk_counts.clear()

    @property
    def open_clocks(self) -> int:
        return sum(count for clocks in self._open.values() for *_, count in clocks)

    @property
    def due_cases(self) -> int:
        return len(self._due)
