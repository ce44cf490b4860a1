"""Due-records: the processor's own notes, in the events topic, that a case is due.

A due-record moves its partition's watermark and decides the case's clocks, so it is
as powerful as the wall clock. Anyone who may write the events topic can set the
marker header, so the processor trusts only what it can check:

- the value is signed with the processor's key (HMAC-SHA256 over subject and `now`):
  a record not written by a processor of this deployment is refused;
- its key is its subject, and it is read in its case's partition (the handler checks
  that: a signed record copied into another partition is refused);
- its `now` lies no further than `FUTURE_TOLERANCE` past the wall clock at reading: a
  due-record never moves a watermark beyond the present, whoever wrote it.

A refused record is dead-lettered with its reason; nothing here raises.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

HEADER = "normwacht-due"
"""Marks a due-record among the events."""

FUTURE_TOLERANCE = timedelta(seconds=5)
"""How far past the reader's wall clock a due-record's `now` may lie: the writer's and
the reader's clocks may differ a little (two workers, a rebalance in between)."""


@dataclass(frozen=True)
class DueRecord:
    subject: str
    now: datetime


@dataclass(frozen=True)
class Refused:
    reason: str
    detail: str


def write(key: bytes, subject: str, now: datetime) -> bytes:
    """The value of a due-record for `subject` at `now`, signed with `key`."""
    stamp = now.isoformat()
    return orjson.dumps({"subject": subject, "now": stamp, "sig": _signature(key, subject, stamp)})


def read(
    key: bytes, record_key: bytes | None, value: bytes | None, wall: datetime
) -> DueRecord | Refused:
    """The due-record in a record carrying the marker header, or why it is refused."""
    try:
        parsed = orjson.loads(value or b"")
        subject, stamp, signature = parsed["subject"], parsed["now"], parsed["sig"]
        if not (isinstance(subject, str) and isinstance(stamp, str) and isinstance(signature, str)):
            raise TypeError("subject, now and sig must be strings")
        now = datetime.fromisoformat(stamp)
        if now.tzinfo is None:
            raise ValueError("now has no UTC offset")
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        return Refused("invalid_due_record", f"not a due-record: {type(error).__name__}: {error}")
    # As bytes: compare_digest refuses a str with non-ASCII characters (TypeError).
    if not hmac.compare_digest(signature.encode(), _signature(key, subject, stamp).encode()):
        return Refused("unsigned_due_record", "its signature is not the processor's")
    if record_key != subject.encode():
        return Refused("key_mismatch", "record key must equal the due-record's subject")
    if now > wall + FUTURE_TOLERANCE:
        return Refused(
            "due_record_from_the_future",
            f"now {stamp} lies beyond the wall clock ({wall.isoformat()}) plus "
            f"{FUTURE_TOLERANCE.total_seconds():g} s",
        )
    return DueRecord(subject, now)


def _signature(key: bytes, subject: str, stamp: str) -> str:
    message = f"{subject}\n{stamp}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()
