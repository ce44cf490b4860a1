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

    def get(self, partition: int) -> datetime | None:
        return self._marks.get(partition)

    def after_event(self, partition: int, event_time: datetime, wall: datetime) -> datetime:
        """Move past an event. Its time counts no later than the wall clock, so a
        sender whose clock runs ahead cannot breach other cases early."""
        return self._raise(partition, min(event_time, wall) - self.lateness)

    def after_due_record(self, partition: int, now: datetime) -> datetime:
        return self._raise(partition, now)

    def restore(self, partition: int, mark: datetime) -> None:
        self._raise(partition, mark)

    def clear(self) -> None:
        self._marks.clear()

    def items(self) -> Iterator[tuple[int, datetime]]:
        return iter(sorted(self._marks.items()))

    def _raise(self, partition: int, mark: datetime) -> datetime:
        current = self._marks.get(partition)
        if current is None or mark > current:
            self._marks[partition] = mark
            return mark
        return current
