"""The processor's deadline index: pure bookkeeping, tested without a broker."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from normwacht.core.engine import Case, Clock, Kind
from services.sla_processor.deadlines import DeadlineIndex

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def case(subject: str, *deadlines_s: int, municipality: str = "bergen") -> Case:
    return Case(
        subject=subject,
        municipality=municipality,
        clocks=tuple(
            Clock(
                norm="phone.answer",
                instance=i + 1,
                started_at=T0,
                deadline=T0 + timedelta(seconds=s),
            )
            for i, s in enumerate(deadlines_s)
        ),
    )


def test_pops_only_what_is_due_in_deadline_order() -> None:
    index = DeadlineIndex()
    for subject, seconds in [("c", 30), ("a", 10), ("b", 20)]:
        index.track(case(subject, seconds))
    assert list(index.pop_due((T0 + timedelta(seconds=25)).timestamp())) == ["a", "b"]
    assert list(index.pop_due((T0 + timedelta(seconds=25)).timestamp())) == []


def test_a_retried_subject_is_due_again() -> None:
    index = DeadlineIndex()
    index.track(case("a", 10))
    later = (T0 + timedelta(seconds=11)).timestamp()
    [(subject, deadline)] = index.pop_due(later).items()
    index.retry(subject, deadline)
    assert list(index.pop_due(later)) == ["a"]


def test_a_deadline_is_not_due_at_its_own_instant() -> None:
    index = DeadlineIndex()
    index.track(case("a", 10))
    assert list(index.pop_due((T0 + timedelta(seconds=10)).timestamp())) == []


def test_decided_clocks_are_skipped_and_uncounted() -> None:
    index = DeadlineIndex()
    open_case = case("a", 10)
    index.track(open_case)
    assert index.open_counts[("phone.answer", "bergen")] == 1
    met = replace(open_case, clocks=(replace(open_case.clocks[0], status=Kind.MET),))
    index.track(met)
    assert index.open_counts[("phone.answer", "bergen")] == 0
    assert len(index) == 0
    assert list(index.pop_due((T0 + timedelta(hours=1)).timestamp())) == []


def test_counts_per_norm_and_municipality() -> None:
    index = DeadlineIndex()
    index.track(case("a", 10, 20))
    index.track(case("b", 10, municipality="heiloo"))
    assert index.open_counts == {("phone.answer", "bergen"): 2, ("phone.answer", "heiloo"): 1}
    index.clear()
    assert len(index) == 0
    assert not index.open_counts
