"""A case as it sits in the faust table: compact JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from normwacht.core.engine import Case, Fact


def encode_case(case: Case) -> dict[str, Any]:
    return {
        "subject": case.subject,
        "municipality": case.municipality,
        "facts": [[f.type, f.time.isoformat(), f.key, dict(f.data)] for f in case.facts],
        "published": [list(p) for p in case.published],
    }


def decode_case(value: dict[str, Any]) -> Case:
    return Case(
        subject=value["subject"],
        municipality=value["municipality"],
        facts=tuple(
            Fact(type_, datetime.fromisoformat(time), key, data)
            for type_, time, key, data in value["facts"]
        ),
        published=tuple((norm, instance, kind) for norm, instance, kind in value["published"]),
    )
