"""The processor's deadline index and watermarks: pure bookkeeping, tested without a broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from kafka.partitioner.default import murmur2

from normwacht.catalogue_file import default_paths
from normwacht.core.catalogue import Catalogue
from normwacht.core.engine import Case, apply, due
from normwacht.core.events import Event, parse_event
from services.sla_processor.codec import decode_whole_case, encode_case
from services.sla_processor.deadlines import DeadlineIndex, IndexEntry, rules_fingerprint
from services.sla_processor.handler import may_be_due, partition_of, rebuild_index, stored_case
from services.sla_processor.watermarks import Watermarks

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


Open = tuple[str, bool, int]
"""Open clocks as the index keeps them: a norm, whether their at-risk warning is out, how many."""


def track(index: DeadlineIndex, subject: str, due_s: float | None, *open_clocks: Open,
          partition: int = 0, municipality: str = "bergen") -> None:  # fmt: skip
    due_at = None if due_s is None else at(due_s).timestamp()
    index.track(subject, partition, municipality, IndexEntry(open_clocks, due_at))


def test_pops_only_what_is_due_in_order_per_partition() -> None:
    index = DeadlineIndex()
    for subject, seconds in [("c", 30), ("a", 10), ("b", 20)]:
        track(index, subject, seconds)
    track(index, "other", 5, partition=1)
    assert list(index.pop_due(0, at(25).timestamp())) == ["a", "b"]
    assert list(index.pop_due(0, at(25).timestamp())) == []
    assert list(index.pop_due(1, at(25).timestamp())) == ["other"]
    assert index.due_cases == 1


def test_an_instant_is_not_due_at_itself() -> None:
    index = DeadlineIndex()
    track(index, "a", 10)
    assert list(index.pop_due(0, at(10).timestamp())) == []


def test_a_moved_instant_leaves_its_old_entry_stale() -> None:
    index = DeadlineIndex()
    track(index, "a", 10)
    track(index, "a", 30)
    assert list(index.pop_due(0, at(20).timestamp())) == []
    assert list(index.pop_due(0, at(31).timestamp())) == ["a"]


def test_cases_closed_long_before_their_instant_leave_no_lasting_entries() -> None:
    """Stale entries are dropped as the heap grows, not only when their instant passes:
    3,000 e-mails answered at once leave no 3,000 entries until their deadlines."""
    index = DeadlineIndex()
    for n in range(3_000):
        track(index, f"mail-{n}", 86_400 + n, ("email.answer", False, 1))
        track(index, f"mail-{n}", None)  # answered: nothing due any more
    assert (index.due_cases, index.open_clocks) == (0, 0)
    assert index.heap_entries < 1_100
    track(index, "open", 100, ("email.answer", False, 1))
    track(index, "moved", 50)
    track(index, "moved", 200)  # a stale entry at 50 and a live one at 200
    assert index.pop_due(0, at(86_400 * 2).timestamp()) == {
        "open": at(100).timestamp(),
        "moved": at(200).timestamp(),
    }


def test_a_retried_case_is_due_again() -> None:
    index = DeadlineIndex()
    track(index, "a", 10)
    [(subject, instant)] = index.pop_due(0, at(11).timestamp()).items()
    index.retry(subject, 0, instant)
    assert list(index.pop_due(0, at(11).timestamp())) == ["a"]


def test_open_and_at_risk_clocks_are_counted_per_norm_and_municipality() -> None:
    index = DeadlineIndex()
    track(index, "a", 10, ("phone.answer", True, 1), ("phone.transfers", False, 1))
    track(index, "b", 10, ("phone.answer", False, 1), municipality="heiloo")
    assert +index.open_counts == {
        ("phone.answer", "bergen"): 1,
        ("phone.transfers", "bergen"): 1,
        ("phone.answer", "heiloo"): 1,
    }
    assert +index.at_risk_counts == {("phone.answer", "bergen"): 1}
    track(index, "a", None)  # both clocks ended
    assert index.open_counts[("phone.answer", "bergen")] == 0
    assert index.at_risk_counts[("phone.answer", "bergen")] == 0
    assert index.open_clocks == 1
    index.clear()
    assert index.open_clocks == 0
    assert not index.open_counts


def test_a_watermark_moves_only_forward_and_lags_by_the_allowed_lateness() -> None:
    marks = Watermarks(timedelta(seconds=5))
    wall = at(3600)
    assert marks.get(0) is None
    assert marks.after_event(0, at(100), wall) == at(95)
    assert marks.after_event(0, at(50), wall) == at(95)  # an older event does not pull it back
    assert marks.after_due_record(0, at(200)) == at(200)
    assert marks.get(1) is None


def test_an_event_from_the_future_moves_the_watermark_no_further_than_it_was_written() -> None:
    marks = Watermarks(timedelta(0))
    assert marks.after_event(0, at(7200), written=at(60)) == at(60)


def test_partitions_agree_with_kafka_pythons_partitioner() -> None:
    # Ingest (aiokafka) and the tests' producers (kafka-python) place records with
    # their default partitioners; rebuilding the index must agree with both.
    for n in range(2000):
        key = f"KCC-{n}"
        assert partition_of(key, 6) == (murmur2(key.encode()) & 0x7FFFFFFF) % 6


@pytest.mark.parametrize(
    ("key", "partition"),
    [("", 681), ("a", 524), ("ab", 434), ("abc", 107), ("123456789", 566), ("\x00 ", 742)],
)
def test_partitions_are_the_java_clients(key: str, partition: int) -> None:
    # Of 1,000 partitions, as Kafka's Java client places these keys (the values that
    # kafka-python's own tests pin for its murmur2).
    assert partition_of(key, 1000) == partition


def test_an_index_entry_keeps_the_open_clocks_and_the_due_instant(catalogue: Catalogue) -> None:
    queued = apply(None, event("call.queued", "CALL", T0), T0, catalogue)
    assert IndexEntry.of(queued) == IndexEntry((("phone.answer", False, 1),), at(15).timestamp())
    warned = due(queued.case, at(16), catalogue)  # at risk at 15 s: the deadline is next
    assert IndexEntry.of(warned) == IndexEntry((("phone.answer", True, 1),), at(20).timestamp())
    breached = due(warned.case, at(21), catalogue)
    assert IndexEntry.of(breached) == IndexEntry((), None)


def test_a_rebuild_from_stored_entries_equals_tracking_the_clocks() -> None:
    # The processor stores each case's IndexEntry and rebuilds the index from it.
    tracked, rebuilt = DeadlineIndex(), DeadlineIndex()
    open_clocks = (("phone.answer", True, 2), ("phone.transfers", False, 1))
    for subject, due_s, partition in [("a", 10, 0), ("b", 5, 1), ("c", None, 0)]:
        track(tracked, subject, due_s, *open_clocks, partition=partition)
        stored = {"open": [list(c) for c in open_clocks], "rules": "r",
                  "due": None if due_s is None else at(due_s).timestamp()}  # fmt: skip
        entry = IndexEntry.stored(json.loads(json.dumps(stored)), "r")
        assert entry is not None
        rebuilt.track(subject, partition, "bergen", entry)
    assert rebuilt.open_counts == tracked.open_counts
    assert rebuilt.at_risk_counts == tracked.at_risk_counts
    for partition in (0, 1):
        assert rebuilt.pop_due(partition, at(60).timestamp()) == tracked.pop_due(
            partition, at(60).timestamp()
        )


def test_a_stored_case_may_be_due_only_from_its_due_instant_on() -> None:
    rules = "rules-1"
    stored = {"due": at(10).timestamp(), "rules": rules}
    assert not may_be_due(stored, at(9), rules)
    assert may_be_due(stored, at(10), rules)  # at the instant itself: let the engine decide
    assert may_be_due(stored, at(11), rules)
    assert not may_be_due({"due": None, "rules": rules}, at(11), rules)  # never due
    assert may_be_due(None, at(11), rules)  # a new case: the engine decides
    assert may_be_due({"case": {}}, at(11), rules)  # stored by an earlier version: derive
    assert may_be_due(stored, at(9), "rules-2")  # other rules may have moved it earlier


def event(type_: str, subject: str, when: datetime) -> Event:
    return parse_event(
        json.dumps(
            {
                "specversion": "1.0",
                "id": f"{subject}-{type_}",
                "source": "urn:buch:test",
                "type": f"nl.buch.{type_}",
                "time": when.isoformat(),
                "subject": subject,
                "municipality": "castricum",
            }
        ).encode()
    )


CASES: dict[str, Case] = {}
"""The cases `table_of` made, as the processor would read them back whole."""


def table_of(catalogue: Catalogue, now: datetime, rules: str) -> list[tuple[str, Any]]:
    """Real cases, each brought to `now` and their heads stored as the processor stores
    them (JSON); `CASES` holds each case itself."""
    started = {
        "CALL-OPEN": ("call.queued", now - timedelta(seconds=10)),
        "CALL-AT-RISK": ("call.queued", now - timedelta(seconds=17)),
        "CALL-BREACHED": ("call.queued", now - timedelta(seconds=30)),
        "MAIL": ("email.received", now - timedelta(minutes=4)),
        "REPORT": ("report.received", now - timedelta(days=3)),
    }
    table = []
    for subject, (type_, when) in started.items():
        case = apply(None, event(type_, subject, when), when, catalogue).case
        step = due(case, now, catalogue)
        entry = IndexEntry.of(step)
        value = stored_case(step.case, 0, partition_of(subject, 2), entry, rules)
        CASES[subject] = decode_whole_case(json.loads(json.dumps(encode_case(step.case))))
        table.append((subject, json.loads(json.dumps(value))))
    return table


def test_a_rebuild_from_the_stored_entries_equals_deriving_every_case(
    catalogue: Catalogue,
) -> None:
    now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    rules = rules_fingerprint(catalogue)
    table = table_of(catalogue, now, rules)
    from_entries, derived = DeadlineIndex(), DeadlineIndex()
    rebuild_index(from_entries, table, rules, catalogue, 2, lambda _: now, CASES.get)
    # Under other rules no stored entry is trusted: every case is derived at `now`.
    rebuild_index(derived, table, "other rules", catalogue, 2, lambda _: now, CASES.get)
    assert from_entries.open_counts == derived.open_counts
    assert from_entries.at_risk_counts == derived.at_risk_counts
    assert from_entries.at_risk_counts[("phone.answer", "castricum")] == 1
    assert from_entries.at_risk_counts[("email.ack", "castricum")] == 1
    assert from_entries.open_counts[("phone.answer", "castricum")] == 2
    assert due_cases(from_entries) == due_cases(derived)


def due_cases(index: DeadlineIndex) -> dict[str, float]:
    later = datetime(2027, 1, 1, tzinfo=UTC).timestamp()
    return {**index.pop_due(0, later), **index.pop_due(1, later)}


def test_an_entry_stored_under_other_rules_is_derived_again(catalogue: Catalogue) -> None:
    now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    rules = rules_fingerprint(catalogue)
    table = table_of(catalogue, now, rules)
    expected = DeadlineIndex()
    rebuild_index(expected, table, rules, catalogue, 2, lambda _: now, CASES.get)
    # An entry gone stale, as one would after a rules change moved its deadline.
    stale = [(s, {**v, "due": None}) if s == "CALL-OPEN" else (s, v) for s, v in table]
    trusted, rederived = DeadlineIndex(), DeadlineIndex()
    rebuild_index(trusted, stale, rules, catalogue, 2, lambda _: now, CASES.get)
    rebuild_index(rederived, stale, "new rules", catalogue, 2, lambda _: now, CASES.get)
    assert "CALL-OPEN" not in due_cases(trusted)  # the same rules trust the entry
    assert due_cases(rederived) == due_cases(expected)  # other rules derive it again


def test_the_rules_fingerprint_changes_with_the_catalogue(catalogue: Catalogue) -> None:
    spec = yaml.safe_load(default_paths()[0].read_text())
    places = yaml.safe_load(default_paths()[1].read_text())
    assert rules_fingerprint(Catalogue(spec, places)) == rules_fingerprint(catalogue)
    places["municipalities"]["castricum"] = {"closing_days": ["2026-12-31"]}
    assert rules_fingerprint(Catalogue(spec, places)) != rules_fingerprint(catalogue)
