"""When each source last sent each channel's events: a dead integration hides breaches.

Exported at scrape time, for the source-silent alert (deploy/prometheus/rules):
  normwacht_ingest_last_event_timestamp_seconds{source,channel}  when the last event was accepted
  normwacht_ingest_silence_seconds{source,channel}               silence since then
  normwacht_ingest_silence_threshold_seconds{channel}            silence that counts as silent
Silence is office time on the calendar of the municipality the source last sent for, so a
weekend or a holiday is never silence and the calendar is the one the norms use; for a
channel that never sleeps (website probes) it is real time.

What ingest last heard of each source is kept across restarts (`snapshot` and `restore`;
the app writes it to a file), so a source that went silent before a restart is still
reported; a source silent for `forget_after` seconds (a retired one) is dropped.

A source should name a system (`urn:buch:kcc:telephony`), but any partner may vary it
per event within its scope: at most `max_sources` pairs of source and channel are kept,
so that memory, `sources.json` and the series stay bounded. Events of a pair beyond
that are counted in `normwacht_ingest_untracked_source_events_total` (an alert asks
operations to look at the partner).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
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
        always_on: Iterable[str] = (),
        forget_after: float = 7 * 86400,
        clock: Callable[[], float] = time.time,
        max_sources: int = 1_000,
    ) -> None:
        self._catalogue = catalogue
        self._silent_after = silent_after
        self._always_on = frozenset(always_on)
        self._forget_after = forget_after
        self._clock = clock
        short_types = (t.removeprefix(TYPE_PREFIX) for t in EVENT_TYPES)
        self._channels = {t: catalogue.channel_of(t) or CASE_CHANNEL for t in short_types}
        self._last: dict[tuple[str, str], tuple[float, str]] = {}
        self._max_sources = max_sources
        self.untracked = 0

    def seen(self, events: Iterable[Event]) -> None:
        """Events accepted now (Kafka acknowledged them)."""
        now = self._clock()
        for event in events:
            short = event.type.removeprefix(TYPE_PREFIX)
            key = (event.source, self._channels.get(short, CASE_CHANNEL))
            if key not in self._last and len(self._last) >= self._max_sources:
                self.untracked += 1
                continue
            self._last[key] = (now, event.municipality)

    def snapshot(self) -> list[dict[str, Any]]:
        """What is known, as JSON-ready rows (no case data: sources, channels, times)."""
        return [
            {"source": source, "channel": channel, "at": at, "municipality": municipality}
            for (source, channel), (at, municipality) in sorted(self._last.items())
        ]

    def restore(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Take back a snapshot; what was heard since stays (it is newer)."""
        for row in rows:
            key = (str(row["source"]), str(row["channel"]))
            if key not in self._last and len(self._last) < self._max_sources:
                self._last[key] = (float(row["at"]), str(row["municipality"]))

    def collect(self) -> Iterable[Metric]:
        now = self._clock()
        for key in [k for k, (at, _) in self._last.items() if now - at > self._forget_after]:
            del self._last[key]
        last = GaugeMetricFamily(
            "normwacht_ingest_last_event_timestamp_seconds",
            "When the last event of this source and channel was accepted (Unix time).",
            labels=("source", "channel"),
        )
        silence = GaugeMetricFamily(
            "normwacht_ingest_silence_seconds",
            "Time since the last event of this source and channel was accepted: office time, "
            "or real time for a channel that never sleeps.",
            labels=("source", "channel"),
        )
        for (source, channel), (at, municipality) in sorted(self._last.items()):
            last.add_metric((source, channel), at)
            if channel in self._always_on:
                since = now - at
            else:
                since = (
                    self._catalogue.calendar(municipality)
                    .office_time_between(
                        datetime.fromtimestamp(at, UTC), datetime.fromtimestamp(now, UTC)
                    )
                    .total_seconds()
                )
            silence.add_metric((source, channel), since)
        threshold = GaugeMetricFamily(
            "normwacht_ingest_silence_threshold_seconds",
            "Silence after which a source of this channel counts as silent (seconds).",
            labels=("channel",),
        )
        for channel in (*self._catalogue.channels, CASE_CHANNEL):
            if channel in self._silent_after:
                threshold.add_metric((channel,), self._silent_after[channel])
        untracked = CounterMetricFamily(
            "normwacht_ingest_untracked_source_events",
            "Events accepted from a source and channel beyond the most that are tracked for "
            "silence (NORMWACHT_INGEST_MAX_SOURCES): a partner varying its source per event.",
            value=self.untracked,
        )
        yield from (last, silence, threshold, untracked)
