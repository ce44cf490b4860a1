"""Per partition, the event time up to which outcomes are decided.

A watermark moves only with the records of its partition: each event's time less
the allowed lateness, and the `now` of each due-record the timer wrote into the
partition. Replaying a partition therefore moves its watermark exactly as the live
run did, and decides exactly what the live run decided.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta


class Watermarks:
    def __init__(self, lateness: timedelta) -> None:
        self.lateness = lateness
        self._marks: dict[int, datetime] = {}
        self._restored: dict[int, tuple[int, datetime]] = {}

    def get(self, partition: int) -> datetime | None:
        return self._marks.get(partition)

    def after_event(self, partition: int, event_time: datetime, written: datetime) -> datetime:
        """Move past an event. Its time counts no later than when its record was written
        (and never later than now: handler.py), so a sender whose clock runs ahead cannot
        breach other cases early."""
        return self._raise(partition, min(event_time, written) - self.lateness)

    def after_due_record(self, partition: int, now: datetime) -> datetime:
        return self._raise(partition, now)

    def restore(self, partition: int, mark: datetime, offset: int) -> None:
        """A mark persisted before a restart, when the record at `offset` was read.

        It takes effect in `resume_at`, once we know where reading resumes.
        """
        self._restored[partition] = (offset, mark)

    def resume_at(self, partition: int, offset: int) -> None:
        """Reading resumes at `offset`. A restored mark persisted at an earlier record is
        the partition's mark so far. One persisted at this record or later is dropped:
        those records are read again and move the mark themselves; kept, it would
        decide them at a mark from their future (measured: a breach for a call
        answered in time, then its correction, after a kill -9)."""
        restored = self._restored.pop(partition, None)
        if restored is not None and restored[0] < offset:
            self._raise(partition, restored[1])

    def clear(self) -> None:
        self._marks.clear()
        self._restored.clear()

    def items(self) -> Iterator[tuple[int, datetime]]:
        return iter(sorted(self._marks.items()))

    def _raise(self, partition: int, mark: datetime) -> datetime:
        current = self._marks.get(partition)
        if current is None or mark > current:
            self._marks[partition] = mark
            return mark
        return current
