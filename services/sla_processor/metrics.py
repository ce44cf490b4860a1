"""The processor's Prometheus metrics, defined once. No case ids in labels.

`normwacht_sla_open_timers` is read from the deadline index at scrape time (see app.py);
the catalogue's objectives and the offices' open hours at scrape time too (`CatalogueFacts`),
so that Prometheus rules compare against the catalogue instead of copies of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from normwacht.core.catalogue import Catalogue
from normwacht.core.engine import FINAL_KINDS, Kind, Outcome
from normwacht.core.events import Municipality
from services.shared.metrics import service_registry
from services.sla_processor.deadlines import DeadlineIndex

_OUTCOME_LABELS = ("norm", "channel", "municipality")


DEAD_LETTER_REASONS = (
    "invalid_event",
    "key_mismatch",
    "wrong_partition",
    "municipality_mismatch",
    "case_full",
    "unprocessable_event",
    "invalid_due_record",
    "unsigned_due_record",
    "due_record_from_the_future",
)
"""Why a record is dead-lettered (schemas/asyncapi.yaml lists them too)."""


class ProcessorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or service_registry()
        r = self.registry
        self.breaches = Counter(
            "normwacht_sla_breaches",
            "Clocks that ran past their deadline.",
            _OUTCOME_LABELS,
            registry=r,
        )
        self.met = Counter(
            "normwacht_sla_met", "Clocks stopped in time.", _OUTCOME_LABELS, registry=r
        )
        self.excluded = Counter(
            "normwacht_sla_excluded",
            "Clocks that ended neither met nor breached (e.g. a call abandoned within 20 s).",
            _OUTCOME_LABELS,
            registry=r,
        )
        self.at_risk = Counter(
            "normwacht_sla_at_risk",
            "Clocks that spent their at-risk share of the term while still open.",
            _OUTCOME_LABELS,
            registry=r,
        )
        self.cancelled = Counter(
            "normwacht_sla_cancelled",
            "Clocks cancelled by a withdrawn case.",
            _OUTCOME_LABELS,
            registry=r,
        )
        self.stopped_late = Counter(
            "normwacht_sla_stopped_late",
            "Breached clocks whose stop came after the deadline (action taken late).",
            _OUTCOME_LABELS,
            registry=r,
        )
        self.corrections = Counter(
            "normwacht_sla_corrections",
            "Published breaches turned into met or excluded by a late event dated in time. "
            "Standing breaches = breaches_total - corrections_total.",
            _OUTCOME_LABELS,
            registry=r,
        )
        self.superseded = Counter(
            "normwacht_sla_superseded",
            "Final outcomes that a later one for the same clock replaced (its `corrects`), "
            'by the kind replaced: standing met = met_total - superseded_total{kind="met"}.',
            (*_OUTCOME_LABELS, "kind"),
            registry=r,
        )
        self.breach_delay = Histogram(
            "normwacht_sla_breach_publication_delay_seconds",
            "Wall-clock time from a deadline to the publication of its breach.",
            ("norm",),
            buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0, 60.0),
            registry=r,
        )
        self.watermark = Gauge(
            "normwacht_processor_watermark_seconds",
            "Event time (Unix seconds) up to which the partition's outcomes are decided.",
            ("partition",),
            registry=r,
        )
        self.consumer_lag = Gauge(
            "normwacht_processor_consumer_lag",
            "Records of the events topic not yet processed, per partition.",
            ("partition",),
            registry=r,
        )
        self.tick = Histogram(
            "normwacht_processor_tick_seconds",
            "Time one timer tick takes to find the due cases and write their due-records.",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 1.0),
            registry=r,
        )
        self.event_lag = Histogram(
            "normwacht_processor_event_lag_seconds",
            "Wall-clock time from an event happening to its processing.",
            buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 600.0, 3600.0, 86400.0),
            registry=r,
        )
        self.events = Counter(
            "normwacht_processor_events", "Events applied to cases, by type.", ("type",), registry=r
        )
        self.dead_letters = Counter(
            "normwacht_processor_dead_letters",
            "Records sent to the dead-letter topic, by reason.",
            ("reason",),
            registry=r,
        )
        self._events: dict[str, Any] = {}
        self._watermarks: dict[int, Any] = {}
        self._lags: dict[int, Any] = {}
        self._outcomes: dict[tuple[Kind, tuple[str, str, str]], Any] = {}
        self._by_kind = {
            Kind.MET: self.met,
            Kind.BREACHED: self.breaches,
            Kind.EXCLUDED: self.excluded,
            Kind.CANCELLED: self.cancelled,
            Kind.AT_RISK: self.at_risk,
            Kind.STOPPED_LATE: self.stopped_late,
        }

    def declare(self, catalogue: Catalogue) -> None:
        """Expose every norm's counters at zero from the start: a missing series is not a zero."""
        for norm in catalogue.norms.values():
            for municipality in Municipality:
                labels = (norm.id, norm.channel, municipality.value)
                for counter in (*self._by_kind.values(), self.corrections):
                    counter.labels(*labels)
                for kind in sorted(FINAL_KINDS):
                    self.superseded.labels(*labels, kind.value)
        for reason in DEAD_LETTER_REASONS:
            self.dead_letters.labels(reason)

    def event(self, type_: str) -> None:
        """Count an applied event. The labelled child is kept: looking it up costs more
        than counting (measured: `labels()` was 5 % of the processor's own time)."""
        child = self._events.get(type_)
        if child is None:
            child = self._events[type_] = self.events.labels(type_)
        child.inc()

    def set_watermark(self, partition: int, timestamp: float) -> None:
        child = self._watermarks.get(partition)
        if child is None:
            child = self._watermarks[partition] = self.watermark.labels(str(partition))
        child.set(timestamp)

    def set_consumer_lag(self, partition: int, records: int) -> None:
        child = self._lags.get(partition)
        if child is None:
            child = self._lags[partition] = self.consumer_lag.labels(str(partition))
        child.set(records)

    def hold_partitions(self, held: Iterable[int]) -> None:
        """Drop the per-partition series of every partition but `held` (after a rebalance).

        The worker that holds a partition now reports it; a series left behind by one that
        lost it would stand still and look like a stalled partition (`WatermarkStalled`).
        """
        held = set(held)
        for gauge, children in (
            (self.watermark, self._watermarks),
            (self.consumer_lag, self._lags),
        ):
            for partition in [p for p in children if p not in held]:
                del children[partition]
                gauge.remove(str(partition))

    def count(self, outcome: Outcome, fired_at: float | None = None) -> None:
        """Count a published outcome; `fired_at` is set for breaches the deadline timer fired."""
        labels = (outcome.norm, outcome.channel, outcome.municipality)
        counter = self._by_kind.get(outcome.kind)
        if counter is not None:
            child = self._outcomes.get((outcome.kind, labels))
            if child is None:
                child = self._outcomes[(outcome.kind, labels)] = counter.labels(*labels)
            child.inc()
        if outcome.corrects is Kind.BREACHED:
            self.corrections.labels(*labels).inc()
        if outcome.corrects is not None and outcome.corrects in FINAL_KINDS:
            self.superseded.labels(*labels, outcome.corrects.value).inc()
        if outcome.kind is Kind.BREACHED and fired_at is not None and outcome.deadline:
            delay = max(0.0, fired_at - outcome.deadline.timestamp())
            self.breach_delay.labels(outcome.norm).observe(delay)


class CatalogueFacts(Collector):
    """What alert rules compare against, read from the catalogue and calendars at scrape time.

    `normwacht_sla_objective_ratio{norm,channel,municipality,notify}`: each norm's objective
    there (its `notify` as a label, so a rule can page for some norms and not others);
    `normwacht_office_open{municipality}`: 1 while the office is open by its calendar
    (office hours, closing days, public holidays), for rules that hold in office hours.
    """

    def __init__(
        self, catalogue: Catalogue, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._catalogue = catalogue
        self._now = now

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Names without samples, so that a scrape of `?name[]=...` finds this collector.
        yield GaugeMetricFamily("normwacht_sla_objective_ratio", "", labels=("norm",))
        yield GaugeMetricFamily("normwacht_office_open", "", labels=("municipality",))

    def collect(self) -> Iterable[GaugeMetricFamily]:
        catalogue = self._catalogue
        objectives = GaugeMetricFamily(
            "normwacht_sla_objective_ratio",
            "The share of a norm's clocks to be met (its objective), from the catalogue.",
            labels=("norm", "channel", "municipality", "notify"),
        )
        for norm in catalogue.norms.values():
            for municipality in catalogue.municipalities:
                objectives.add_metric(
                    (norm.id, norm.channel, municipality, catalogue.notify(norm.id, municipality)),
                    catalogue.objective(norm.id, municipality),
                )
        yield objectives
        now = self._now()
        office = GaugeMetricFamily(
            "normwacht_office_open",
            "1 while the municipality's office is open by its calendar, else 0.",
            labels=("municipality",),
        )
        for municipality in catalogue.municipalities:
            office.add_metric((municipality,), float(catalogue.calendar(municipality).is_open(now)))
        yield office


class OpenClocks(Collector):
    """Open and at-risk clocks, read from the deadline index at scrape time."""

    def __init__(self, index: DeadlineIndex, norms: Iterable[str]) -> None:
        self._index = index
        # Every norm and municipality, zeros included, so a dashboard sees them all.
        self._labels = [(n, m.value) for n in sorted(norms) for m in Municipality]

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Names without samples, so that a scrape of `?name[]=...` finds this collector.
        for name in ("normwacht_sla_open_timers", "normwacht_sla_at_risk_timers"):
            yield GaugeMetricFamily(name, "", labels=("norm", "municipality"))

    def collect(self) -> Iterable[GaugeMetricFamily]:
        for name, help_text, counts in (
            ("normwacht_sla_open_timers", "Clocks running now on this worker's partitions.",
             self._index.open_counts),
            ("normwacht_sla_at_risk_timers", "Running clocks past their at-risk share.",
             self._index.at_risk_counts),
        ):  # fmt: skip
            family = GaugeMetricFamily(name, help_text, labels=("norm", "municipality"))
            for labels in self._labels:
                family.add_metric(labels, counts.get(labels, 0))
            yield family
