"""A case as the processor's tables hold it: a small head, its facts in chunks, a row per clock.

Why not one value per case: a table value is written whole on every change, so an
event's cost would grow with the case's facts and clocks (measured on a case of 1,000
facts: 92 KB and 4.4 ms of encoding per event, against 0.16 ms for the engine). Here an
event writes the case's head (its counts, probe tallies and outbox), the chunk its fact
went into, and the row of each clock whose published kinds it changed.

The tables reach Kafka separately, so a worker killed between writes may leave some of
them newer than the head. The head is the record of truth, and each write can be
undone or redone from it:

- the head counts the facts: a chunk may hold facts beyond that count, from a record
  whose head was lost, and those are not read;
- each clock row names the record (source offset) that wrote it and what the row held
  before: a row newer than the head is read as it was before;
- the head keeps what its own record wrote to the other tables (`last`), so a record
  read again after a crash writes all of it again (see `app.resend_if_replayed`).

The engine's derivation cache is not stored: a case read back derives it once.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from itertools import islice
from typing import Any

from pyrsistent import PMap, pmap, pset, pvector

from normwacht.core.engine import Case, Clock, Fact

FACTS_PER_CHUNK = 32
"""Facts per stored chunk: an event rewrites at most this many (about 3 KB)."""

Row = dict[str, Any]
"""A clock's stored row: {"o": source offset, "start": key, "kinds": [...], "before": [...]}."""


def fact_key(subject: str, chunk: int) -> str:
    return f"{subject}/{chunk}"


def clock_key(subject: str, norm: str, instance: int) -> str:
    return f"{subject}/{norm}/{instance}"


def encode_fact(fact: Fact) -> list[Any]:
    return [fact.type, fact.time.isoformat(), fact.key, dict(fact.data)]


def decode_fact(value: list[Any]) -> Fact:
    type_, time, key, data = value
    return Fact(type_, datetime.fromisoformat(time), key, data)


def head(case: Case) -> dict[str, Any]:
    """The case's own part of its head: what says which chunks and rows belong to it."""
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


def clocks_of(head: Mapping[str, Any]) -> Iterator[tuple[str, int]]:
    """(norm, instance) of every clock row that belongs to the case."""
    for norm, count in head["numbered"].items():
        for instance in range(1, count + 1):
            yield norm, instance
    for norm, instances in head["others"].items():
        for instance in instances:
            yield norm, instance


def chunks_of(head: Mapping[str, Any]) -> range:
    return range(-(-head["facts"] // FACTS_PER_CHUNK))


def clock_row(case: Case, clock: Clock, before: tuple[str, ...] | None, offset: int) -> Row:
    """A clock's row as written by the record at `offset`, with what it held before."""
    return {
        "o": offset,
        "start": clock.start,
        "kinds": list(case.published[(clock.norm, clock.instance)]),
        "before": None if before is None else list(before),
    }


def decode_case(
    head: Mapping[str, Any],
    facts: Iterable[list[Any]],
    rows: Mapping[tuple[str, int], Row],
    offset: int,
) -> Case:
    """The case whose head was written by the record at `offset`.

    `facts` are its chunks' facts in order (any beyond the head's count are dropped);
    `rows` its clock rows (a row written by a later record is read as it was before).
    """
    decoded = pvector(decode_fact(value) for value in islice(facts, head["facts"]))
    instances: dict[str, PMap[str, int]] = {}
    published: dict[tuple[str, int], tuple[str, ...]] = {}
    for (norm, instance), row in rows.items():
        kinds = row["kinds"] if row["o"] <= offset else row["before"]
        if kinds is None:
            continue  # made by a record whose head was lost
        published[(norm, instance)] = tuple(kinds)
        if norm in head["numbered"]:
            instances[norm] = instances.get(norm, pmap()).set(row["start"], instance)
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
    """The whole case at once, as its head, chunks and rows would hold it (for tests and tools)."""
    facts = [encode_fact(fact) for fact in case.facts]
    starts = {
        (norm, instance): start
        for norm, numbers in case.instances.items()
        for start, instance in numbers.items()
    }
    rows = {
        f"{norm}/{instance}": {
            "o": -1,
            "start": starts.get((norm, instance), ""),
            "kinds": list(kinds),
            "before": None,
        }
        for (norm, instance), kinds in case.published.items()
    }
    return {"head": head(case), "facts": facts, "rows": rows}


def decode_whole_case(value: Mapping[str, Any]) -> Case:
    """The inverse of `encode_case`."""
    rows = {}
    for key, row in value["rows"].items():
        norm, instance = key.rsplit("/", 1)
        rows[(norm, int(instance))] = row
    return decode_case(value["head"], value["facts"], rows, -1)
