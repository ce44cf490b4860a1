"""How the processor stores a case (services/sla_processor/codec.py), without a broker.

A case is a head, chunks of facts and a row per clock, so that what one event writes
does not grow with the case; and the head decides what a crash left half-written.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from normwacht.core.catalogue import Catalogue
from normwacht.core.engine import Case, Fact, apply, clocks
from services.sla_processor.codec import (
    FACTS_PER_CHUNK,
    clock_row,
    clocks_of,
    decode_case,
    decode_whole_case,
    encode_case,
    encode_fact,
    head,
)

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def calls(catalogue: Catalogue, count: int) -> Case:
    """A case of `count` facts: calls queued and answered 5 s later, a minute apart."""
    case = None
    for n in range(count):
        call, answered = divmod(n, 2)
        at = T0 + timedelta(minutes=call, seconds=5 * answered)
        kind = "call.answered" if answered else "call.queued"
        case = apply(case, Fact(kind, at, f"t/{n}"), at, catalogue,
                     subject="BIG", municipality="bergen").case  # fmt: skip
    assert case is not None
    return case


def size(value: object) -> int:
    return len(json.dumps(value))


def test_a_case_read_back_whole_is_the_same_case(catalogue: Catalogue) -> None:
    case = calls(catalogue, 41)
    back = decode_whole_case(json.loads(json.dumps(encode_case(case))))
    assert back == case
    later = T0 + timedelta(hours=1)
    assert clocks(back, later, catalogue) == clocks(case, later, catalogue)


def test_the_head_does_not_grow_with_the_case(catalogue: Catalogue) -> None:
    small, big = head(calls(catalogue, 10)), head(calls(catalogue, 1_000))
    assert big["facts"] == 1_000
    assert big["numbered"] == {"phone.answer": 500, "phone.transfers": 500}
    assert size(big) - size(small) < 20  # a few more digits in the counts
    assert size(big) < 1_000


def test_a_website_subject_writes_kilobytes_not_tens_of_them(catalogue: Catalogue) -> None:
    """Probes are tallied per month; the head keeps 6 KiB of recent keys' digests (to
    drop a resent batch), however many probes came (the keys themselves took ~30 KiB)."""
    case = None
    sizes = []
    for n in range(5_000):
        at = T0 + timedelta(minutes=n)
        probe = Fact("website.probe", at, f"urn:buch:monitoring/probe-{n:06d}", {"up": True})
        case = apply(case, probe, at, catalogue, subject="WEB-bergen", municipality="bergen").case
        if n in (1_500, 4_999):
            sizes.append(size(head(case)))
    assert case is not None
    assert case.probes == {"2026-03": (5_000, 5_000)}
    assert sizes[0] == sizes[1]  # full ring: no longer growing
    assert sizes[1] < 9_000


def test_facts_beyond_the_heads_count_are_not_read(catalogue: Catalogue) -> None:
    """A chunk written by a record whose head was lost holds one fact too many."""
    case = calls(catalogue, 7)
    own = head(case)
    extra = Fact("call.queued", T0 + timedelta(hours=2), "t/lost")
    facts = [*map(encode_fact, case.facts), encode_fact(extra)]
    back = decode_case(own, facts, rows_of(case, offset=5), offset=5)
    assert back == case
    assert "t/lost" not in back.keys


def test_a_clock_row_newer_than_the_head_is_read_as_it_was(catalogue: Catalogue) -> None:
    """The record at offset 6 answered the last call (its row changed) and opened a new
    one, but its head was lost: read back, the case is as the head at offset 5 says."""
    before = calls(catalogue, 7)  # the fourth call queued, not yet answered
    answered = T0 + timedelta(minutes=3, seconds=5)
    after = apply(before, Fact("call.answered", answered, "t/7"), answered, catalogue)
    rows = rows_of(before, offset=5)
    for clock in after.recorded:
        key = (clock.norm, clock.instance)
        rows[key] = clock_row(after.case, clock, before.published.get(key), offset=6)
    assert rows[("phone.answer", 4)]["kinds"] == ["opened", "met"]
    back = decode_case(head(before), map(encode_fact, after.case.facts), rows, offset=5)
    assert back == before
    assert back.published[("phone.answer", 4)] == ("opened",)
    # With the head at offset 6 too, it is the case after.
    again = decode_case(head(after.case), map(encode_fact, after.case.facts), rows, offset=6)
    assert again == after.case


def test_a_chunk_holds_a_bounded_number_of_facts() -> None:
    assert FACTS_PER_CHUNK * size(["call.answered", T0.isoformat(), "x" * 60, {}]) < 4_000


def rows_of(case: Case, offset: int) -> dict[tuple[str, int], dict[str, object]]:
    """Every clock row of the case as the record at `offset` wrote them."""
    starts = {(norm, n): start for norm, numbers in case.instances.items()
              for start, n in numbers.items()}  # fmt: skip
    rows = {}
    for norm, instance in clocks_of(head(case)):
        kinds = case.published[(norm, instance)]
        rows[(norm, instance)] = {"o": offset, "start": starts[(norm, instance)],
                                  "kinds": list(kinds), "before": None}  # fmt: skip
    return rows
