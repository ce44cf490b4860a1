"""A case as it sits in the faust table: compact JSON, one list per clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from normwacht.core.engine import Case, Clock, Kind


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def encode_case(case: Case) -> dict[str, Any]:
    return {
        "subject": case.subject,
        "municipality": case.municipality,
        "clocks": [
            [
                c.norm,
                c.instance,
                c.started_at.isoformat(),
                c.deadline.isoformat(),
                c.status.value,
                None if c.decided_at is None else c.decided_at.isoformat(),
            ]
            for c in case.clocks
        ],
        "seen": list(case.seen),
    }


def decode_case(value: dict[str, Any]) -> Case:
    return Case(
        subject=value["subject"],
        municipality=value["municipality"],
        clocks=tuple(
            Clock(
                norm=norm,
                instance=instance,
                started_at=datetime.fromisoformat(started_at),
                deadline=datetime.fromisoformat(deadline),
                status=Kind(status),
                decided_at=_time(decided_at),
            )
            for norm, instance, started_at, deadline, status, decided_at in value["clocks"]
        ),
        seen=tuple(value["seen"]),
    )
