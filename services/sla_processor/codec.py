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

A typical event therefore writes one value, the head, as before. The tables reach
Kafka separately, so a worker killed between writes may leave `case_facts` or
`case_clocks` newer than the head. The head is the record of truth:

- it counts the facts: a chunk beyond its full chunks is not read;
- a clock in the head's rows is read from the head, whatever `case_clocks` holds;
- a spilled row names the record (source offset) that wrote it and what it held
  before: a row newer than the head is read as it was before;
- the head keeps what its own record wrote to the other tables (`last`), so a record
  read again after a crash writes it again (see `app.resend_if_replayed`).

The engine's derivation cache is not stored: a case read back derives it once.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from pyrsistent import PMap, pmap, pset, pvector

from normwacht.core.engine import Case, Fact

FACTS_PER_CHUNK = 32
"""Facts per stored chunk, and the most the head holds (about 3 KB)."""
INLINE_CLOCKS = 32
"""Clock rows the head holds before they are all spilled to `case_clocks`."""

Row = dict[str, Any]
"""A spilled clock's row: {"o": source offset, "start": key, "kinds": [...], "before": [...]}."""


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


def read_row(row: Row, offset: int) -> tuple[str, list[str]] | None:
    """A spilled row as the head written at `offset` knew it (None: it did not exist)."""
    kinds = row["kinds"] if row["o"] <= offset else row["before"]
    return None if kinds is None else (row["start"], kinds)


def decode_case(
    head: Mapping[str, Any], facts: Iterable[list[Any]], rows: Mapping[str, tuple[str, list[str]]]
) -> Case:
    """The case from its head, its facts (full chunks, then the tail) and its clocks'
    (start, kinds) by name."""
    decoded = pvector(decode_fact(value) for value in facts)
    instances: dict[str, PMap[str, int]] = {}
    published: dict[tuple[str, int], tuple[str, ...]] = {}
    for name, (start, kinds) in rows.items():
        norm, number = name.rsplit("/", 1)
        instance = int(number)
        published[(norm, instance)] = tuple(kinds)
        if norm in head["numbered"]:
            instances[norm] = instances.get(norm, pmap()).set(start, instance)
    now = head["now"]
    return Case(
        subject=head["subject"],
        municipality=head["municipality"],
        facts=decoded,
        keys=pset(fact.key for fact in decoded),
        published=pmap(published),
        instances=instances,
        now=None if now is None else datetime.fromisoformat(now),
        probes=pmap({month: (up, total) for month, (up, total) in head["probes"].items()}),
        recent_probes=base64.b64decode(head["recent_probes"]),
    )


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
