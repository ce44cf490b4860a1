"""The processor's deadline index: pure bookkeeping, tested without a broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from normwacht.core.engine import Clock, Kind
from services.sla_processor.deadlines import DeadlineIndex

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def clock(norm: str = "phone.answer", status: Kind = Kind.OPENED) -> Clock:
    return Clock(
        norm=norm, instance=1, started_at=T0, deadline=T0 + timedelta(seconds=20), status=status
    )


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_pops_only_what_is_due_in_order() -> None:
    index = DeadlineIndex()
    for subject, seconds in [("c", 30), ("a", 10), ("b", 20)]:
        index.track(subject, "bergen", [clock()], at(seconds))
    assert list(index.pop_due(at(25).timestamp())) == ["a", "b"]
    assert list(index.pop_due(at(25).timestamp())) == []
    assert index.due_cases == 1


def test_an_instant_is_not_due_at_itself() -> None:
    index = DeadlineIndex()
    index.track("a", "bergen", [clock()], at(10))
    assert list(index.pop_due(at(10).timestamp())) == []


def test_a_moved_instant_leaves_its_old_entry_stale() -> None:
    index = DeadlineIndex()
    index.track("a", "bergen", [clock()], at(10))
    index.track("a", "bergen", [clock()], at(30))
    assert list(index.pop_due(at(20).timestamp())) == []
    assert list(index.pop_due(at(31).timestamp())) == ["a"]


def test_a_retried_case_is_due_again() -> None:
    index = DeadlineIndex()
    index.track("a", "bergen", [clock()], at(10))
    [(subject, instant)] = index.pop_due(at(11).timestamp()).items()
    index.retry(subject, instant)
    assert list(index.pop_due(at(11).timestamp())) == ["a"]


def test_open_clocks_are_counted_per_norm_and_municipality() -> None:
    index = DeadlineIndex()
    index.track("a", "bergen", [clock(), clock("phone.transfers")], at(10))
    index.track("b", "heiloo", [clock(), clock(status=Kind.MET)], at(10))
    assert +index.open_counts == {
        ("phone.answer", "bergen"): 1,
        ("phone.transfers", "bergen"): 1,
        ("phone.answer", "heiloo"): 1,
    }
    index.track("a", "bergen", [clock(status=Kind.BREACHED)], None)
    assert index.open_counts[("phone.answer", "bergen")] == 0
    assert index.open_clocks == 1
    index.clear()
    assert index.open_clocks == 0
    assert not index.open_counts
