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
    clock_name,
    clocks_of,
    decode_case,
    decode_whole_case,
    encode_case,
    encode_fact,
    head,
    read_row,
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


def test_a_spilled_row_newer_than_the_head_is_read_as_it_was() -> None:
    """A record at offset 6 changed a spilled clock's row, but its head was lost."""
    row = {"o": 6, "start": "t/6", "kinds": ["opened", "met"], "before": ["opened"]}
    assert read_row(row, offset=5) == ("t/6", ["opened"])
    assert read_row(row, offset=6) == ("t/6", ["opened", "met"])
    spilled_then_lost = {"o": 6, "start": "t/7", "kinds": ["opened"], "before": None}
    assert read_row(spilled_then_lost, offset=5) is None


def test_a_case_is_read_from_full_chunks_its_tail_and_its_rows(catalogue: Catalogue) -> None:
    """What the processor reads: the head's count of facts says how many chunks are full;
    a chunk beyond them (written by a record whose head was lost) is not read."""
    case = calls(catalogue, 2 * FACTS_PER_CHUNK + 5)
    whole = encode_case(case)
    own = whole["head"]
    assert len(whole["chunks"]) == 2
    assert len(whole["tail"]) == 5
    facts = [fact for chunk in whole["chunks"] for fact in chunk] + whole["tail"]
    rows = {name: tuple(value) for name, value in whole["rows"].items()}
    assert set(rows) == set(clocks_of(own))
    assert decode_case(own, facts, rows) == case
    assert clock_name("phone.answer", 3) in rows


def test_a_chunk_holds_a_bounded_number_of_facts() -> None:
    fact = encode_fact(Fact("call.answered", T0, "x" * 60, {}))
    assert FACTS_PER_CHUNK * size(fact) < 4_000
