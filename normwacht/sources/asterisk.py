"""Asterisk `queue_log` lines to `call.*` events.

A line is `epoch|uniqueid|queuename|agent|EVENT|data1|data2|...` (Asterisk's
app_queue). The call (`uniqueid`) is the case. Only the event name, the time and the
queue name are used: ENTERQUEUE's data fields hold the caller id, the agent field a
member's name or device, and a transfer's data the number dialled, so none of them is
ever read into an event.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from normwacht.core.events import Event, Municipality
from normwacht.core.privacy import personal_data_reason
from normwacht.sources.common import Pseudonyms, Skipped, build_event

__all__ = ["EVENT_TYPES", "QueueLogMapping", "Skipped", "map_line"]

# Asterisk's queue_log event names, and the event each becomes; all others are ignored.
EVENT_TYPES: Mapping[str, str] = {
    "ENTERQUEUE": "call.queued",
    "CONNECT": "call.answered",
    "ABANDON": "call.abandoned",
    "EXITWITHTIMEOUT": "call.abandoned",
    "EXITEMPTY": "call.abandoned",
    "EXITWITHKEY": "call.abandoned",
    "TRANSFER": "call.transferred",
    "BLINDTRANSFER": "call.transferred",
    "ATTENDEDTRANSFER": "call.transferred",
    "COMPLETECALLER": "call.ended",
    "COMPLETEAGENT": "call.ended",
}
_CODE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")
_FIELDS = 5  # epoch, uniqueid, queuename, agent, event


@dataclass(frozen=True)
class QueueLogMapping:
    """How one exchange's queues map to municipalities and queue codes."""

    pseudonyms: Pseudonyms
    municipalities: Mapping[str, Municipality]
    queue_codes: Mapping[str, str] = field(default_factory=dict)

    def queue_code(self, queue: str) -> str | None:
        """The queue's code: as configured, else the name itself when it is a fit code."""
        if queue in self.queue_codes:
            return self.queue_codes[queue]
        if _CODE.match(queue) and personal_data_reason(queue) is None:
            return queue
        return None


def map_line(line: str, mapping: QueueLogMapping) -> Event | Skipped:
    """The event for one queue_log line, or why there is none.

    The event id is a pseudonym of the whole line, so reading the same line again
    (after a restart or a rotation) gives the same id, which ingest's consumers
    de-duplicate by (source, id).
    """
    line = line.rstrip("\r\n")
    parts = line.split("|")
    if len(parts) < _FIELDS:
        return Skipped("malformed")
    epoch, uniqueid, queue, _agent, name = parts[:_FIELDS]
    short_type = EVENT_TYPES.get(name)
    if short_type is None:
        return Skipped("ignored_event")
    if not uniqueid or uniqueid == "NONE":
        return Skipped("no_call")
    municipality = mapping.municipalities.get(queue)
    if municipality is None:
        return Skipped("unmapped_queue")
    try:
        time = datetime.fromtimestamp(float(epoch), UTC)
    except (ValueError, OverflowError):
        return Skipped("malformed")
    data: dict[str, str] = {}
    if short_type == "call.queued" and (code := mapping.queue_code(queue)):
        data["queue"] = code
    pseudonyms = mapping.pseudonyms
    return build_event(
        short_type,
        event_id=pseudonyms.event(line, prefix="ast-"),
        source=pseudonyms.source,
        subject=pseudonyms.case("call", uniqueid, prefix="call-"),
        time=time,
        municipality=municipality,
        data=data,
    )
