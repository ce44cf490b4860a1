"""The processor's state, written behind: held in memory until the next commit writes it.

faust writes a table change to the changelog (and the local store) at once, one record
per write: an event for a case written ten times in a commit interval cost ten
changelog records, and that write path was the largest single cost of a faust worker
here (docs/BENCHMARKS.md). So the processor's writes stay in `StagedState` and reach
the tables only when faust is about to commit source offsets (see app.py): each key's
last value once, in one batch.

That is also what makes a crash safe without resending anything. The batch is written
in this order, each step awaited before the next:

1. the outcomes of every record whose state is in the batch, acknowledged (a record
   hands its outcomes over, batches.py, before it stages its state), and everything
   else the producer holds (due-records, dead letters);
2. the batch's `FIRST` tables (a case's fact chunks and spilled clock rows);
3. the rest (the case heads, which say which chunks and rows exist, and the watermarks);
4. then faust commits the source offsets.

A kill -9 anywhere leaves stored state that is never ahead of the published outcomes,
and heads never ahead of their chunks. A record read again after a restart is either
older than its case's stored offset (its outcomes are out: skip it) or is applied
again to the state it first met (and publishes what it published, with the same ids).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FIRST = ("case_facts", "case_clocks")
"""Tables a batch writes before the others: what the heads point to."""


@dataclass(frozen=True)
class Write:
    table: str
    key: str
    value: Any
    partition: int


class StagedState:
    """Reads see the latest value put; `take` hands over what changed since the last take.

    `stored(table, key)` reads what the tables hold. Values are treated as immutable:
    a caller must not change a value after putting it.
    """

    def __init__(self, stored: Callable[[str, str], Any]) -> None:
        self._stored = stored
        self._pending: dict[tuple[str, str], Write] = {}
        # Taken and being written: still served to readers until the tables hold it.
        self._writing: dict[tuple[str, str], Write] = {}

    def get(self, table: str, key: str) -> Any:
        found = self._pending.get((table, key)) or self._writing.get((table, key))
        return found.value if found is not None else self._stored(table, key)

    def put(self, table: str, key: str, value: Any, partition: int) -> None:
        self._pending[(table, key)] = Write(table, key, value, partition)

    def take(self) -> list[list[Write]]:
        """What to write now, in two steps (`FIRST` tables, then the rest); the writes stay
        readable until `written`."""
        taken, self._pending = self._pending, {}
        self._writing.update(taken)
        first = [write for write in taken.values() if write.table in FIRST]
        rest = [write for write in taken.values() if write.table not in FIRST]
        return [first, rest]

    def written(self, writes: list[list[Write]]) -> None:
        """The tables hold `writes` now."""
        for step in writes:
            for write in step:
                if self._writing.get((write.table, write.key)) is write:
                    del self._writing[(write.table, write.key)]

    def not_written(self, writes: list[list[Write]]) -> None:
        """Writing `writes` failed (the commit fails with it): they are pending again,
        where nothing newer for their key is, and go with the next batch."""
        for step in writes:
            for write in step:
                slot = (write.table, write.key)
                if self._writing.get(slot) is write:
                    del self._writing[slot]
                    self._pending.setdefault(slot, write)

    def discard(self) -> None:
        """Drop what was not written (after a rebalance: those records are read again)."""
        self._pending.clear()
        self._writing.clear()

    def pending(self) -> int:
        """Writes not yet taken."""
        return len(self._pending)
