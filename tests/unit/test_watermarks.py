"""A watermark restored after a restart counts only where reading resumes past it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.sla_processor.watermarks import Watermarks

NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def restored_at(offset: int, resumes_at: int) -> datetime | None:
    marks = Watermarks(timedelta(0))
    marks.restore(0, NOON, offset)
    marks.resume_at(0, resumes_at)
    return marks.get(0)


def test_a_mark_persisted_before_the_resumption_point_is_the_mark_so_far() -> None:
    assert restored_at(offset=40, resumes_at=41) == NOON


def test_a_mark_persisted_at_a_record_read_again_is_dropped() -> None:
    # Those records move the mark themselves; the stored one is from their future.
    assert restored_at(offset=40, resumes_at=40) is None
    assert restored_at(offset=40, resumes_at=0) is None


def test_only_the_first_record_after_a_rebalance_decides() -> None:
    marks = Watermarks(timedelta(0))
    marks.restore(0, NOON, 40)
    marks.resume_at(0, 0)
    marks.after_event(0, NOON - timedelta(hours=1), written=NOON)
    marks.resume_at(0, 41)  # later records do not bring the dropped mark back
    assert marks.get(0) == NOON - timedelta(hours=1)
