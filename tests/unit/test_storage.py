"""How the processor stores a case (services/sla_processor/codec.py), without a broker.

A case is a head, chunks of facts and a row per clock, so that what one event writes
does not grow with the case; and the head decides what a crash left half-written.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from normwacht.core.catalogue import Catalogue
from normwacht.core.engine import Case, Fact, Step, apply, clocks
from services.sla_processor.codec import (
    FACTS_PER_CHUNK,
    INLINE_CLOCKS,
    Row,
    decode_whole_case,
    encode_case,
    encode_fact,
    head,
    new_version,
    plan_writes,
    read_case,
    read_row,
)
from services.sla_processor.deadlines import IndexEntry
from services.sla_processor.handler import stored_case

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
    assert dict(case.probes) == {"2026-03": (5_000, 5_000)}
    assert sizes[0] == sizes[1]  # full ring: no longer growing
    assert sizes[1] < 9_000


@dataclass
class Tables:
    """The processor's three case tables as dicts, written as `RecordHandler` writes them."""

    heads: dict[str, dict[str, Any]] = field(default_factory=dict)
    chunks: dict[int, list[Any]] = field(default_factory=dict)
    rows: dict[str, Row] = field(default_factory=dict)

    def write(self, before: Case | None, step: Step, fact: Fact | None, offset: int) -> int:
        """Store what the step changed; the bytes written (as JSON)."""
        old = self.heads.get(step.case.subject)
        writes = plan_writes(step.case, (before, old) if before and old else None,
                             step.recorded, fact, offset, self.rows.get)  # fmt: skip
        value = stored_case(step.case, offset, 0, IndexEntry.of(step), "rules", writes)
        value = json.loads(json.dumps(value))  # as the table holds it
        self.chunks.update(writes.chunks)
        self.rows.update(writes.rows)
        self.heads[step.case.subject] = value
        return size(value) + sum(size(c) for c in writes.chunks) + size(writes.rows)

    def read(self, subject: str) -> Case:
        return read_case(self.heads[subject], self.chunks.get, self.rows.get)


def fed(catalogue: Catalogue, count: int, tables: Tables) -> tuple[Case, list[int]]:
    """`calls(catalogue, count)`, stored fact by fact: the case and the bytes each wrote."""
    case: Case | None = None
    written = []
    for n in range(count):
        call, answered = divmod(n, 2)
        at = T0 + timedelta(minutes=call, seconds=5 * answered)
        fact = Fact("call.answered" if answered else "call.queued", at, f"t/{n}")
        step = apply(case, fact, at, catalogue, subject="BIG", municipality="bergen")
        written.append(tables.write(case, step, fact, offset=n))
        case = step.case
    assert case is not None
    return case, written


def test_what_an_event_writes_does_not_grow_with_the_case(catalogue: Catalogue) -> None:
    tables = Tables()
    case, written = fed(catalogue, 1_000, tables)
    assert tables.read("BIG") == case
    assert len(tables.chunks) == 1_000 // FACTS_PER_CHUNK
    assert len(tables.rows) > 900  # 500 calls, 2 clocks each: spilled, 33 at a time
    # Most events write just the head, a few kilobytes at most, the 1,000th as the 100th;
    # a full chunk or a spill of rows adds a few kilobytes now and then.
    assert max(written[900:]) < 16_000
    assert statistics.median(written[900:]) < 1.5 * statistics.median(written[100:200])


def test_a_small_case_is_its_head_alone(catalogue: Catalogue) -> None:
    tables = Tables()
    case, _ = fed(catalogue, 2 * INLINE_CLOCKS // 3, tables)  # fewer clocks than spill
    assert not tables.chunks
    assert not tables.rows
    assert tables.read("BIG") == case


def test_a_chunk_or_row_ahead_of_its_head_is_not_read(catalogue: Catalogue) -> None:
    """The processor writes chunks and rows before heads; a crash between the two leaves
    them ahead of the head, which still reads as the case it was."""
    tables = Tables()
    fed(catalogue, 63, tables)
    before = tables.read("BIG")
    ahead = Tables(dict(tables.heads), dict(tables.chunks), dict(tables.rows))
    fed_more = apply(before, Fact("call.queued", T0 + timedelta(hours=5), "t/63"),
                     T0 + timedelta(hours=5), catalogue)  # fmt: skip
    ahead.write(before, fed_more, Fact("call.queued", T0 + timedelta(hours=5), "t/63"), 63)
    assert len(ahead.chunks) == len(tables.chunks) + 1  # the 64th fact filled chunk 1
    ahead.heads = tables.heads  # the head's write was lost
    assert ahead.read("BIG") == before


def test_a_spilled_row_is_read_as_of_the_head() -> None:
    """A spilled clock's row keeps versions by the record that wrote them: a version from
    a record after the head (whose own head a crash lost) is not read."""
    row = new_version(None, "t/6", ["opened"], offset=5)
    row = new_version(row, "t/6", ["opened", "met"], offset=6)
    assert read_row([row], offset=5) == ("t/6", ["opened"])
    assert read_row([row], offset=6) == ("t/6", ["opened", "met"])
    assert read_row([row], offset=4) is None  # spilled after the head: it is in the head
    # A record read again replaces what it and any later record wrote.
    again = new_version(row, "t/6", ["opened", "breached"], offset=6)
    assert again["versions"] == [[5, ["opened"]], [6, ["opened", "breached"]]]
    for offset in range(7, 20):
        again = new_version(again, "t/6", ["opened"], offset)
    assert len(again["versions"]) == 8


def test_a_chunk_holds_a_bounded_number_of_facts() -> None:
    fact = encode_fact(Fact("call.answered", T0, "x" * 60, {}))
    assert FACTS_PER_CHUNK * size(fact) < 4_000
