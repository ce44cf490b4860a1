"""A case as it sits in the faust table: compact JSON.

Only the case's value is stored: its facts, what it published, the instance numbers
its starts were given, the instant it was last decided at and its probe tallies. The
engine's derivation cache is not: a case read back derives it once.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from pyrsistent import pmap, pset, pvector

from normwacht.core.engine import Case, Fact


def encode_case(case: Case) -> dict[str, Any]:
    return {
        "subject": case.subject,
        "municipality": case.municipality,
        "facts": [[f.type, f.time.isoformat(), f.key, dict(f.data)] for f in case.facts],
        "published": [
            [norm, instance, list(kinds)] for (norm, instance), kinds in case.published.items()
        ],
        "instances": {norm: dict(numbers) for norm, numbers in case.instances.items()},
        "now": None if case.now is None else case.now.isoformat(),
        "probes": {month: list(tally) for month, tally in case.probes.items()},
        "recent_probes": base64.b64encode(case.recent_probes).decode(),
    }


def decode_case(value: dict[str, Any]) -> Case:
    facts = pvector(
        Fact(type_, datetime.fromisoformat(time), key, data)
        for type_, time, key, data in value["facts"]
    )
    now = value.get("now")
    return Case(
        subject=value["subject"],
        municipality=value["municipality"],
        facts=facts,
        keys=pset(fact.key for fact in facts),
        published=pmap(
            {(norm, instance): tuple(kinds) for norm, instance, kinds in value["published"]}
        ),
        instances=pmap({norm: pmap(numbers) for norm, numbers in value["instances"].items()}),
        now=None if now is None else datetime.fromisoformat(now),
        probes=pmap({month: (up, total) for month, (up, total) in value["probes"].items()}),
        recent_probes=base64.b64decode(value["recent_probes"]),
    )
