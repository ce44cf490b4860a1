"""When each source last sent each channel's events: a dead integration hides breaches.

Exported at scrape time, for the source-silent alert (deploy/prometheus/rules):
  normwacht_ingest_last_event_timestamp_seconds{source,channel}  when the last event was accepted
  normwacht_ingest_office_silence_seconds{source,channel}        office time since then
  normwacht_ingest_silence_threshold_seconds{channel}            office time that counts as silent
Silence is counted in office time on the calendar of the municipality the source last sent
for, so a weekend or a holiday is never silence, and the calendar stays the one the norms use.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from normwacht.core.catalogue import Catalogue
from normwacht.core.events import EVENT_TYPES, TYPE_PREFIX, Event

CASE_CHANNEL = "case"
"""The channel label of events no norm names by type (`case.paused` and the like)."""


class SourceActivity(Collector):
    def __init__(
        self,
        catalogue: Catalogue,
        silent_after: Mapping[str, float],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._catalogue = catalogue
        self._silent_after = silent_after
        self._clock = clock
        short_types = (t.removeprefix(TYPE_PREFIX) for t in EVENT_TYPES)
        self._channels = {t: catalogue.channel_of(t) or CASE_CHANNEL for t in short_types}
        self._last: dict[tuple[str, str], tuple[float, str]] = {}

    def seen(self, events: Iterable[Event]) -> None:
        """Events accepted now (Kafka acknowledged them)."""
        now = self._clock()
        for event in events:
            short = event.type.removeprefix(TYPE_PREFIX)
            channel = self._channels.get(short, CASE_CHANNEL)
            self._last[(event.source, channel)] = (now, event.municipality)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        now = self._clock()
        last = GaugeMetricFamily(
            "normwacht_ingest_last_event_timestamp_seconds",
            "When the last event of this source and channel was accepted (Unix time).",
            labels=("source", "channel"),
        )
        silence = GaugeMetricFamily(
            "normwacht_ingest_office_silence_seconds",
            "Office time since the last event of this source and channel was accepted.",
            labels=("source", "channel"),
        )
        for (source, channel), (at, municipality) in sorted(self._last.items()):
            last.add_metric((source, channel), at)
            calendar = self._catalogue.calendar(municipality)
            since = calendar.office_time_between(
                datetime.fromtimestamp(at, UTC), datetime.fromtimestamp(now, UTC)
            )
            silence.add_metric((source, channel), since.total_seconds())
        threshold = GaugeMetricFamily(
            "normwacht_ingest_silence_threshold_seconds",
            "Office time without events after which a source of this channel counts as silent.",
            labels=("channel",),
        )
        for channel in (*self._catalogue.channels, CASE_CHANNEL):
            if channel in self._silent_after:
                threshold.add_metric((channel,), self._silent_after[channel])
        yield from (last, silence, threshold)
