"""What the services export for alert rules: objectives, office hours and source silence.

Scraped from their collectors with a fixed clock; no I/O.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from normwacht.catalogue_file import default_paths
from normwacht.core.catalogue import Catalogue
from normwacht.core.events import parse_event
from services.ingest.activity import SourceActivity
from services.ingest.settings import SILENT_AFTER, IngestSettings
from services.sla_processor.deadlines import DeadlineIndex, IndexEntry
from services.sla_processor.metrics import CatalogueFacts, OpenClocks, ProcessorMetrics
from tests.support.events import call_event, cloud_event

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
FRIDAY_1630 = datetime(2026, 3, 6, 16, 30, tzinfo=AMSTERDAM)
MONDAY_0900 = datetime(2026, 3, 9, 9, 0, tzinfo=AMSTERDAM)
KINGS_DAY_1000 = datetime(2026, 4, 27, 10, 0, tzinfo=AMSTERDAM)


def samples(collector: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(collector)  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_objectives_and_notify_come_from_the_catalogue_with_overrides() -> None:
    places = {"municipalities": {"heiloo": {"objectives": {"phone.answer": 0.8},
                                            "notify": {"email.answer": "page"}}}}  # fmt: skip
    spec_path, _ = default_paths()
    catalogue = Catalogue(yaml.safe_load(spec_path.read_text()), places)
    found = samples(CatalogueFacts(catalogue, now=lambda: MONDAY_0900))
    objective = "normwacht_sla_objective_ratio"

    def key(norm: str, channel: str, municipality: str, notify: str) -> tuple[str, Any]:
        labels = {"norm": norm, "channel": channel, "municipality": municipality, "notify": notify}
        return (objective, tuple(sorted(labels.items())))

    assert found[key("phone.answer", "phone", "heiloo", "count")] == 0.8
    assert found[key("phone.answer", "phone", "bergen", "count")] == 0.9  # the default
    assert found[key("email.answer", "email", "heiloo", "page")] == 0.9
    assert found[key("email.answer", "email", "bergen", "notice")] == 0.9
    assert found[key("report.urgent", "public_space", "castricum", "page")] == 0.9
    per_norm = [k for k in found if k[0] == objective]
    assert len(per_norm) == len(catalogue.norms) * 4


def test_office_open_follows_each_calendar(catalogue: Catalogue) -> None:
    def open_at(at: datetime) -> dict[str, float]:
        found = samples(CatalogueFacts(catalogue, now=lambda: at))
        return {dict(k[1])["municipality"]: v for k, v in found.items()
                if k[0] == "normwacht_office_open"}  # fmt: skip

    assert set(open_at(MONDAY_0900).values()) == {1.0}
    assert set(open_at(FRIDAY_1630.replace(hour=17, minute=0)).values()) == {0.0}  # closed at 17
    assert set(open_at(KINGS_DAY_1000).values()) == {0.0}  # a public holiday


def test_silence_is_office_time_since_the_last_event_per_source_and_channel(
    catalogue: Catalogue,
) -> None:
    now = [FRIDAY_1630.timestamp()]
    activity = SourceActivity(catalogue, SILENT_AFTER, {"website"}, clock=lambda: now[0])
    activity.seen([parse_event(json.dumps(call_event("C-1", "queued", FRIDAY_1630)))])
    report = cloud_event("report.received", FRIDAY_1630, "R-1", source="urn:buch:meldingen",
                         data={"urgent": False})  # fmt: skip
    activity.seen([parse_event(json.dumps(report))])
    now[0] = MONDAY_0900.timestamp()
    found = samples(activity)
    phone = (("channel", "phone"), ("source", "urn:buch:kcc:telephony"))
    reports = (("channel", "public_space"), ("source", "urn:buch:meldingen"))
    assert (
        found[("normwacht_ingest_last_event_timestamp_seconds", phone)]
        == now[0] - (MONDAY_0900 - FRIDAY_1630).total_seconds()
    )
    # Friday 16:30-17:00 and Monday 08:30-09:00: the weekend is not silence.
    assert found[("normwacht_ingest_silence_seconds", phone)] == 3600
    assert found[("normwacht_ingest_silence_seconds", reports)] == 3600
    assert found[("normwacht_ingest_silence_threshold_seconds", (("channel", "phone"),))] == 900


def test_a_channel_that_never_sleeps_counts_silence_in_real_time(catalogue: Catalogue) -> None:
    now = [FRIDAY_1630.timestamp()]
    activity = SourceActivity(catalogue, SILENT_AFTER, {"website"}, clock=lambda: now[0])
    probe = cloud_event("website.probe", FRIDAY_1630, "www.bergen.nl", source="urn:buch:uptime",
                        data={"target": "www-bergen-nl", "up": True})  # fmt: skip
    activity.seen([parse_event(json.dumps(probe))])
    now[0] = MONDAY_0900.timestamp()
    website = (("channel", "website"), ("source", "urn:buch:uptime"))
    assert (
        samples(activity)[("normwacht_ingest_silence_seconds", website)]
        == (MONDAY_0900 - FRIDAY_1630).total_seconds()
    )


def test_silence_thresholds_are_merged_over_the_defaults() -> None:
    settings = IngestSettings(silent_after={"phone": 600}, always_on="website, email")
    assert settings.silent_after["phone"] == 600
    assert settings.silent_after["email"] == SILENT_AFTER["email"]
    assert settings.always_on == {"website", "email"}


def test_sources_are_kept_across_a_restart_and_forgotten_after_a_long_silence(
    catalogue: Catalogue,
) -> None:
    now = [FRIDAY_1630.timestamp()]
    before = SourceActivity(catalogue, SILENT_AFTER, forget_after=86400, clock=lambda: now[0])
    before.seen([parse_event(json.dumps(call_event("C-1", "queued", FRIDAY_1630)))])
    after = SourceActivity(catalogue, SILENT_AFTER, forget_after=86400, clock=lambda: now[0])
    after.restore(json.loads(json.dumps(before.snapshot())))
    phone = (("channel", "phone"), ("source", "urn:buch:kcc:telephony"))
    assert ("normwacht_ingest_silence_seconds", phone) in samples(after)
    now[0] += 86401  # a day and a second of silence: a retired source, not a silent one
    assert ("normwacht_ingest_silence_seconds", phone) not in samples(after)
    assert after.snapshot() == []


def test_sources_beyond_the_most_tracked_are_counted_not_kept(catalogue: Catalogue) -> None:
    """A partner varying `source` per event must not grow memory and series without end."""
    now = [FRIDAY_1630.timestamp()]
    activity = SourceActivity(catalogue, SILENT_AFTER, clock=lambda: now[0], max_sources=2)
    for n in range(5):
        call = {**call_event(f"C-{n}", "queued", FRIDAY_1630), "source": f"urn:buch:kcc:line-{n}"}
        activity.seen([parse_event(json.dumps(call))])
    again = {**call_event("C-9", "answered", FRIDAY_1630), "source": "urn:buch:kcc:line-1"}
    activity.seen([parse_event(json.dumps(again))])  # a tracked pair is still updated
    found = samples(activity)
    silences = [labels for name, labels in found if name == "normwacht_ingest_silence_seconds"]
    assert sorted(dict(labels)["source"] for labels in silences) == [
        "urn:buch:kcc:line-0",
        "urn:buch:kcc:line-1",
    ]
    assert found[("normwacht_ingest_untracked_source_events_total", ())] == 3
    restored = SourceActivity(catalogue, SILENT_AFTER, clock=lambda: now[0], max_sources=1)
    restored.restore(activity.snapshot())
    assert len(restored.snapshot()) == 1


def test_a_scrape_of_chosen_names_finds_the_collected_families(catalogue: Catalogue) -> None:
    """`/metrics?name[]=...` (restricted_registry) finds only collectors that describe
    their names; the benchmarks poll the open clocks that way."""
    metrics = ProcessorMetrics(CollectorRegistry())
    index = DeadlineIndex()
    index.track("CASE-1", 0, "bergen", IndexEntry((("phone.answer", False, 2),), None))
    metrics.registry.register(OpenClocks(index, catalogue.norms))
    metrics.registry.register(CatalogueFacts(catalogue))
    chosen = metrics.registry.restricted_registry(
        ["normwacht_sla_open_timers", "normwacht_office_open"]
    )
    families = {family.name: family for family in chosen.collect()}
    assert set(families) == {"normwacht_sla_open_timers", "normwacht_office_open"}
    assert sum(sample.value for sample in families["normwacht_sla_open_timers"].samples) == 2
