"""A case as the processor's tables hold it: a bounded head, full chunks of facts, spilled rows.

Why not one value per case: a table value is written whole on every change, so an
event's cost would grow with the case's facts and clocks (measured on a case of 1,000
facts: 92 KB and 4.4 ms of encoding per event, against 0.16 ms for the engine). Why not
a value per fact and per clock: each table write costs faust a changelog record, and
four of them per event took a third off the processor's throughput.

So a case's head (the `cases` table) holds everything of a small case, and at most a
few kilobytes of a large one:

- its facts up to the last full chunk of `FACTS_PER_CHUNK` live in `case_facts`, one
  value per chunk, written once when it fills; the rest (the *tail*) is in the head;
- its clocks' rows (start and kinds published) are in the head until more than
  `INLINE_CLOCKS` of them are; then they are all *spilled* to `case_clocks`, a value
  per clock, and a spilled clock's row is written there when it changes again.

A typical event therefore writes one value, the head, as before. The processor writes
a commit interval's changes in two steps (state.py): chunks and spilled rows first, the
heads after them, so a head is never ahead of what it points to; a chunk or row may be
ahead of its head (a crash between the steps). The head is the record of truth:

- it counts the facts: a chunk beyond its full chunks is not read;
- a clock in the head's rows is read from the head, whatever `case_clocks` holds;
- a spilled row keeps its last versions, each with the source offset of the record
  that wrote it, and is read as of the head's offset (the newest version not after it).

The engine's derivation cache is not stored: a case read back derives it once.

`encode_outcome` writes an outcome as the outcomes topic carries it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from immutables import Map
from pyrsistent import pvector

from normwacht.core.engine import Case, Clock, Fact, Outcome

FACTS_PER_CHUNK = 32
"""Facts per stored chunk, and the most the head holds (about 3 KB)."""
INLINE_CLOCKS = 32
"""Clock rows the head holds before they are all spilled to `case_clocks`."""

Row = dict[str, Any]
"""A spilled clock's row: {"start": key, "versions": [[source offset, kinds], ...]}."""
VERSIONS = 8
"""Versions a spilled row keeps: enough for the records of a commit interval that may
be read again after a crash to find the version their head was written with."""


def encode_outcome(outcome: Outcome) -> bytes:
    """The outcome as the outcomes topic carries it: the bytes of `model_dump_json()`.

    orjson over the model's field values (pydantic keeps them in `__dict__`, in their
    declared order) and its computed `id`: 0.7 us an outcome against 3.2 us, measured
    here; in the worker pydantic's dump was 6.7 % of its samples (py-spy, 2026-12-04).
    tests/unit/test_outcome_encoding.py checks that both give the same bytes.
    """
    return orjson.dumps({**outcome.__dict__, "id": outcome.id}, option=orjson.OPT_UTC_Z)


def fact_key(subject: str, chunk: int) -> str:
    return f"{subject}/{chunk}"


def clock_name(norm: str, instance: int) -> str:
    return f"{norm}/{instance}"


def clock_key(subject: str, name: str) -> str:
    return f"{subject}/{name}"


def encode_fact(fact: Fact) -> list[Any]:
    return [fact.type, fact.time.isoformat(), fact.key, dict(fact.data)]


def decode_fact(value: list[Any]) -> Fact:
    type_, time, key, data = value
    return Fact(type_, datetime.fromisoformat(time), key, data)


def head(case: Case) -> dict[str, Any]:
    """The case's own part of its head: its counts, which say which chunks and rows exist."""
    numbered = {norm: len(numbers) for norm, numbers in case.instances.items()}
    others: dict[str, list[int]] = {}  # clocks numbered otherwise (months of availability)
    if case.probes:  # only a website subject has those (and few clocks): not every event
        for norm, instance in case.published:
            if norm not in numbered:
                others.setdefault(norm, []).append(instance)
    return {
        "subject": case.subject,
        "municipality": case.municipality,
        "facts": len(case.facts),
        "numbered": numbered,
        "others": {norm: sorted(instances) for norm, instances in others.items()},
        "now": None if case.now is None else case.now.isoformat(),
        "probes": {month: list(tally) for month, tally in case.probes.items()},
        "recent_probes": base64.b64encode(case.recent_probes).decode(),
    }


def clocks_of(head: Mapping[str, Any]) -> Iterator[str]:
    """The name (`norm/instance`) of every clock of the case."""
    for norm, count in head["numbered"].items():
        for instance in range(1, count + 1):
            yield clock_name(norm, instance)
    for norm, instances in head["others"].items():
        for instance in instances:
            yield clock_name(norm, instance)


def full_chunks(head: Mapping[str, Any]) -> range:
    """The chunks in `case_facts` that belong to the case (the rest is its tail)."""
    return range(head["facts"] // FACTS_PER_CHUNK)


def read_row(rows: Iterable[Row], offset: int) -> tuple[str, list[str]] | None:
    """A spilled clock as the head written at `offset` knew it, from copies of its row:
    the newest version not written after `offset`."""
    found: tuple[int, str, list[str]] | None = None
    for row in rows:
        for written, kinds in row["versions"]:
            if written <= offset and (found is None or written >= found[0]):
                found = (written, row["start"], kinds)
    return None if found is None else (found[1], found[2])


def new_version(row: Row | None, start: str, kinds: list[str], offset: int) -> Row:
    """The row with the version the record at `offset` writes (any versions from records
    after it came from a record read again: it replaces them)."""
    versions = [v for v in (row["versions"] if row else ()) if v[0] < offset]
    return {"start": start, "versions": [*versions[-(VERSIONS - 1) :], [offset, kinds]]}


@dataclass
class Writes:
    """What one record writes for a case besides its outcomes."""

    tail: list[Any] = field(default_factory=list)
    """The head's facts after the last full chunk."""
    inline: dict[str, Any] = field(default_factory=dict)
    """The head's clock rows: {name: [start, kinds]}."""
    chunks: list[Any] = field(default_factory=list)
    """Full chunks for `case_facts`: [[chunk, facts], ...]."""
    rows: dict[str, Row] = field(default_factory=dict)
    """Spilled rows for `case_clocks`: {name: row}."""


def plan_writes(
    case: Case,
    before: tuple[Case, Mapping[str, Any]] | None,
    recorded: Iterable[Clock],
    fact: Fact | None,
    offset: int,
    spilled: Callable[[str], Row | None],
) -> Writes:
    """What the record at `offset` writes: `case` as it made it from `before` (the case and
    its head as read), adding `fact` (if any) and changing the `recorded` clocks' kinds.
    `spilled` reads a clock's row from `case_clocks`."""
    old, old_head = before if before else (None, None)
    writes = Writes(
        list(old_head["tail"]) if old_head else [], dict(old_head["rows"]) if old_head else {}
    )
    if fact is not None:
        writes.tail.append(encode_fact(fact))
        if len(writes.tail) == FACTS_PER_CHUNK:  # full: it leaves the head
            writes.chunks.append([(len(case.facts) - 1) // FACTS_PER_CHUNK, writes.tail])
            writes.tail = []
    for clock in recorded:
        name = clock_name(clock.norm, clock.instance)
        kinds = list(case.published[(clock.norm, clock.instance)])
        known = old is not None and (clock.norm, clock.instance) in old.published
        if name in writes.inline or not known:
            writes.inline[name] = [clock.start, kinds]
        else:  # spilled earlier: a new version of its row
            writes.rows[name] = new_version(spilled(name), clock.start, kinds, offset)
    if len(writes.inline) > INLINE_CLOCKS:
        for name, (start, kinds) in writes.inline.items():
            writes.rows[name] = new_version(None, start, kinds, offset)
        writes.inline = {}
    return writes


def decode_case(
    head: Mapping[str, Any], facts: Iterable[list[Any]], rows: Mapping[str, tuple[str, list[str]]]
) -> Case:
    """The case from its head, its facts (full chunks, then the tail) and its clocks'
    (start, kinds) by name."""
    decoded = pvector(decode_fact(value) for value in facts)
    instances: dict[str, Map[str, int]] = {}
    published: dict[tuple[str, int], tuple[str, ...]] = {}
    for name, (start, kinds) in rows.items():
        norm, number = name.rsplit("/", 1)
        instance = int(number)
        published[(norm, instance)] = tuple(kinds)
        if norm in head["numbered"]:
            instances[norm] = instances.get(norm, Map()).set(start, instance)
    now = head["now"]
    return Case(
        subject=head["subject"],
        municipality=head["municipality"],
        facts=decoded,
        keys=Map((fact.key, True) for fact in decoded),
        published=Map(published),
        instances=instances,
        now=None if now is None else datetime.fromisoformat(now),
        probes=Map({month: (up, total) for month, (up, total) in head["probes"].items()}),
        recent_probes=base64.b64decode(head["recent_probes"]),
    )


def read_case(
    stored: Mapping[str, Any],
    chunk_of: Callable[[int], list[Any] | None],
    row_of: Callable[[str], Row | None],
) -> Case:
    """The case whose head (the `cases` table's value) is `stored`; `chunk_of` and `row_of`
    read `case_facts` and `case_clocks`."""
    own = stored["case"]
    facts: list[Any] = []
    for chunk in full_chunks(own):
        part = chunk_of(chunk)
        if part is None:
            raise LookupError(f"case {own['subject']!r}: chunk {chunk} of its facts is missing")
        facts.extend(part)
    facts.extend(stored["tail"])
    rows = {}
    for name in clocks_of(own):
        row = stored["rows"].get(name)
        if row is None and (table := row_of(name)) is not None:
            row = read_row([table], stored["offset"])
        if row is not None:
            rows[name] = row
    return decode_case(own, facts, rows)


def encode_case(case: Case) -> dict[str, Any]:
    """The whole case at once, its clocks all in the head (for tests and tools)."""
    facts = [encode_fact(fact) for fact in case.facts]
    full = len(facts) - len(facts) % FACTS_PER_CHUNK
    starts = {
        (norm, instance): start
        for norm, numbers in case.instances.items()
        for start, instance in numbers.items()
    }
    return {
        "head": head(case),
        "chunks": [facts[at : at + FACTS_PER_CHUNK] for at in range(0, full, FACTS_PER_CHUNK)],
        "tail": facts[full:],
        "rows": {
            clock_name(norm, instance): [starts.get((norm, instance), ""), list(kinds)]
            for (norm, instance), kinds in case.published.items()
        },
    }


def decode_whole_case(value: Mapping[str, Any]) -> Case:
    """The inverse of `encode_case`."""
    facts = [fact for chunk in value["chunks"] for fact in chunk] + value["tail"]
    rows = {name: (start, kinds) for name, (start, kinds) in value["rows"].items()}
    return decode_case(value["head"], facts, rows)
