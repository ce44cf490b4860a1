"""Grafana dashboards as code: built with grafana-foundation-sdk, committed as JSON.

`python -m normwacht.ops.dashboards` writes `deploy/grafana/dashboards/*.json`;
`--check` writes nothing and exits 1 if a committed file differs from what this module
builds (a stale dashboard, or one edited by hand in Grafana and exported).

Conventions every panel follows (tests/unit/test_dashboards.py checks them):
- the Prometheus datasource is the dashboard variable `${datasource}`;
- series with a `municipality` label are filtered by the `$municipality` variable
  (multi-value, "All" is the regex `.*`); system-wide panels are listed in the test;
- `rate()` and `increase()` use `$__rate_interval`, unless a fixed window is the point
  (a 15-minute service level, "this month" as `$__range`): the description then says so.
- "Standing" met and breached clocks subtract those a later outcome superseded (a late
  event can turn a published breach into met), as the recording rules do.

Norm ids and objectives come from the catalogue (`normwacht/data/catalogue.yaml`), so a
renamed norm or changed objective makes the committed dashboards stale, which `--check`
(and the unit test) report.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, Self, TypedDict, TypeVar, Unpack

from grafana_foundation_sdk.builders import bargauge, gauge, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from normwacht import catalogue_file
from normwacht.core.catalogue import Catalogue

__all__ = ["DASHBOARD_DIR", "build_all", "check", "main", "panel_queries", "render", "write"]

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"

DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
MUNICIPALITY = 'municipality=~"$municipality"'
JOBS = ("normwacht-processor", "normwacht-ingest", "normwacht-notifier")
ZONE = "Europe/Amsterdam"  # the municipalities' day: "today" and "this month" end at its midnight

# What `panel_queries` puts in place of Grafana's variables, so that Prometheus can run them.
SUBSTITUTIONS: tuple[tuple[str, str], ...] = (
    ("$__rate_interval", "1m"),
    ("$__range", "1h"),
    ("$__interval", "15s"),
    ("${municipality}", ".*"),
    ("$municipality", ".*"),
)


# ---------------------------------------------------------------------------------------------
# PromQL


def _labels(*matchers: str) -> str:
    return "{" + ", ".join(m for m in matchers if m) + "}"


def _norms(catalogue: Catalogue, norm_ids: Iterable[str]) -> str:
    """A matcher for these norms, each of which must be in the catalogue (ids are public)."""
    ids = sorted(norm_ids)
    if unknown := [n for n in ids if n not in catalogue.norms]:
        raise KeyError(f"not in the catalogue: {', '.join(unknown)}")
    return f'norm="{ids[0]}"' if len(ids) == 1 else f'norm=~"{"|".join(ids)}"'


def _standing(kind: Literal["met", "breached"], window: str, by: str, *matchers: str) -> str:
    """Clocks met (or breached) in `window` that still stand: counted minus superseded.

    The superseded series carry a `kind` label, so `or` keeps both sides and `sum` nets
    them, as in deploy/prometheus/rules/sla-recording.yml; clamped at 0 because a
    correction can land in a later window than the outcome it corrects.
    """
    counter = "normwacht_sla_met_total" if kind == "met" else "normwacht_sla_breaches_total"
    counted = f"increase({counter}{_labels(*matchers)}[{window}])"
    replaced = _labels(*matchers, f'kind="{kind}"')
    superseded = f"increase(normwacht_sla_superseded_total{replaced}[{window}])"
    return f"clamp_min(sum by ({by}) ({counted} or -{superseded}), 0)"


def _service_level(window: str, by: str, *matchers: str) -> str:
    """Standing met / (standing met + standing breached); no series where no clock ended."""
    met = _standing("met", window, by, *matchers)
    breached = _standing("breached", window, by, *matchers)
    return f"{met}\n/\n(({met} + {breached}) > 0)"


def _objective(by: str, *matchers: str) -> str:
    return f"max by ({by}) (normwacht_sla_objective_ratio{_labels(*matchers)})"


def _in_office_hours(expr: str) -> str:
    """Keep `expr`'s series (which must still carry `municipality`) while that office is open."""
    return f"({expr})\nand on (municipality)\n(normwacht_office_open{_labels(MUNICIPALITY)} == 1)"


# ---------------------------------------------------------------------------------------------
# Panels


class _PanelBuilder(Protocol):
    """What every panel builder of the SDK offers (each is its own generated class)."""

    def title(self, title: str) -> Self: ...
    def description(self, description: str) -> Self: ...
    def unit(self, unit: str) -> Self: ...
    def datasource(self, datasource: model.DataSourceRef) -> Self: ...
    def span(self, w: int) -> Self: ...
    def height(self, h: int) -> Self: ...
    def with_target(self, target: cogbuilder.Builder[Any]) -> Self: ...
    def build(self) -> model.Panel: ...


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = "__auto"
    instant: bool = False
    table: bool = False


def _target(query: Query, ref_id: str) -> prom.Dataquery:
    target = (
        prom.Dataquery()
        .expr(query.expr)
        .legend_format(query.legend)
        .ref_id(ref_id)
        .datasource(DATASOURCE)
    )
    target = target.instant() if query.instant else target.range()
    if query.table:
        target = target.format(PromQueryFormat.TABLE)
    return target


P = TypeVar("P", bound=_PanelBuilder)


class _About(TypedDict):
    """What every panel has: the wrappers below pass it on as it is."""

    title: str
    description: str
    unit: str
    queries: Sequence[Query]


def _panel(builder: P, *, width: int, height: int, **about: Unpack[_About]) -> P:
    panel = (
        builder.title(about["title"])
        .description(about["description"])
        .unit(about["unit"])
        .datasource(DATASOURCE)
        .span(width)
        .height(height)
    )
    for ref_id, query in zip("ABCDEFGHIJ", about["queries"], strict=False):
        panel = panel.with_target(_target(query, ref_id))
    return panel


def _thresholds(objective: float) -> dash.ThresholdsConfig:
    """Red below the objective, green at or above it."""
    return (
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(None, "red"), model.Threshold(objective, "green")])
    )


def _last_value() -> common_builders.ReduceDataOptions:
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def _mapping(texts: dict[str, tuple[str, str]]) -> list[model.ValueMapping]:
    options = {
        value: model.ValueMappingResult(text=text, color=color, index=i)
        for i, (value, (text, color)) in enumerate(texts.items())
    }
    return [model.ValueMap(options=options)]


def _stat(*, width: int = 6, height: int = 4, **about: Unpack[_About]) -> stat.Panel:
    return (
        _panel(stat.Panel(), width=width, height=height, **about)
        .reduce_options(_last_value())
        .graph_mode(common.BigValueGraphMode.AREA)
        .color_mode(common.BigValueColorMode.VALUE)
    )


def _timeseries(
    *, width: int, height: int = 8, bars: bool = False, **about: Unpack[_About]
) -> timeseries.Panel:
    panel = _panel(timeseries.Panel(), width=width, height=height, **about).legend(
        common_builders.VizLegendOptions()
        .show_legend(True)
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
    )
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(80)
    return panel


def _bars(*, width: int, height: int, **about: Unpack[_About]) -> bargauge.Panel:
    return (
        _panel(bargauge.Panel(), width=width, height=height, **about)
        .reduce_options(_last_value())
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
        .min(0)
    )


def _municipality_variable() -> dash.QueryVariable:
    return (
        dash.QueryVariable("municipality")
        .label("Municipality")
        .description("Municipalities shown: those the processor reports office hours for.")
        .datasource(DATASOURCE)
        .query("label_values(normwacht_office_open, municipality)")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def _dashboard(uid: str, title: str, description: str, time: tuple[str, str]) -> dash.Dashboard:
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["normwacht"])
        .timezone(ZONE)
        .week_start("monday")
        .time(*time)
        .refresh("1m")
        .readonly()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .with_variable(
            dash.DatasourceVariable("datasource")
            .label("Prometheus")
            .type("prometheus")
            .current(model.VariableOption(selected=True, text="Prometheus", value="prometheus"))
        )
        .with_variable(_municipality_variable())
        .link(
            dash.DashboardLink("Normwacht")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags(["normwacht"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )


def _objective_of(catalogue: Catalogue, norm_ids: Iterable[str]) -> float:
    """The lowest objective of these norms anywhere: below it, a gauge is red for someone."""
    return min(
        catalogue.objective(norm, place) for norm in norm_ids for place in catalogue.municipalities
    )


# ---------------------------------------------------------------------------------------------
# The dashboards


def overview(catalogue: Catalogue) -> dash.Dashboard:
    """1. Municipality overview: this month's compliance per norm, today's breaches, now."""
    del catalogue  # objectives come per series from normwacht_sla_objective_ratio here
    m = MUNICIPALITY
    open_office = _stat(
        title="Office open now",
        description="Whether each selected municipality's office is open now, by its calendar "
        "(office hours, closing days and public holidays in municipalities.yaml).",
        unit="bool_yes_no",
        queries=[
            Query(
                f"max by (municipality) (normwacht_office_open{_labels(m)})",
                "{{municipality}}",
                instant=True,
            )
        ],
    ).mappings(_mapping({"0": ("closed", "text"), "1": ("open", "green")}))
    breaches_today = _stat(
        title="Breaches today",
        description="Standing breaches since midnight (Europe/Amsterdam): breaches less those a "
        "late event corrected. The panel's time range is fixed to today so far (relative time "
        "now/d); the increase runs over that whole time range, which is the point.",
        unit="short",
        queries=[
            Query(_standing("breached", "$__range", "municipality", m), "{{municipality}}", True)
        ],
    ).time_from("now/d")
    at_risk = _stat(
        title="Clocks at risk now",
        description="Open clocks past their at-risk share of the term, not yet breached.",
        unit="short",
        queries=[
            Query(
                f"sum by (municipality) (normwacht_sla_at_risk_timers{_labels(m)})",
                "{{municipality}}",
            )
        ],
    )
    open_clocks = _stat(
        title="Clocks open now",
        description="Clocks started and not yet stopped, breached or cancelled.",
        unit="short",
        queries=[
            Query(
                f"sum by (municipality) (normwacht_sla_open_timers{_labels(m)})",
                "{{municipality}}",
            )
        ],
    )
    compliance = (
        _panel(
            table.Panel(),
            title="Compliance per norm against its objective",
            description="Share of clocks met among those met or breached, per norm and "
            "municipality, over the dashboard's time range (this month so far by default), "
            "beside the norm's objective from the catalogue. Standing outcomes: a breach a late "
            "event corrected counts as met. Norms with no ended clock are left out.",
            unit="percentunit",
            queries=[
                Query(
                    _service_level("$__range", "norm, municipality", m), instant=True, table=True
                ),
                Query(_objective("norm, municipality", m), instant=True, table=True),
            ],
            width=18,
            height=12,
        )
        .with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            model.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True},
                    "indexByName": {"norm": 0, "municipality": 1, "Value #A": 2, "Value #B": 3},
                    "renameByName": {
                        "norm": "Norm",
                        "municipality": "Municipality",
                        "Value #A": "Compliance",
                        "Value #B": "Objective",
                    },
                },
            )
        )
        .sort_by([common_builders.TableSortByFieldState().display_name("Compliance")])
    )
    below = _stat(
        title="Norms below their objective",
        description="Norm and municipality pairs whose compliance over the dashboard's time "
        "range (this month so far by default) is below the objective.",
        unit="short",
        queries=[
            Query(
                f"count(\n({_service_level('$__range', 'norm, municipality', m)})\n"
                f"< on (norm, municipality)\n{_objective('norm, municipality', m)}\n) or vector(0)",
                "below objective",
                instant=True,
            )
        ],
        height=12,
    ).thresholds(
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(None, "green"), model.Threshold(1, "red")])
    )
    breaches_by_norm = _bars(
        title="Breaches today by norm",
        description="Standing breaches since midnight (Europe/Amsterdam) per norm. The panel's "
        "time range is fixed to today so far (now/d); the increase runs over that whole time "
        "range, which is the point.",
        unit="short",
        queries=[Query(_standing("breached", "$__range", "norm", m), "{{norm}}", instant=True)],
        width=8,
        height=10,
    ).time_from("now/d")
    at_risk_by_norm = _bars(
        title="At risk now by norm",
        description="Open clocks past their at-risk share of the term, per norm.",
        unit="short",
        queries=[
            Query(f"sum by (norm) (normwacht_sla_at_risk_timers{_labels(m)})", "{{norm}}", True)
        ],
        width=8,
        height=10,
    )
    open_by_norm = _bars(
        title="Open clocks by norm",
        description="Clocks running now, per norm.",
        unit="short",
        queries=[Query(f"sum by (norm) (normwacht_sla_open_timers{_labels(m)})", "{{norm}}", True)],
        width=8,
        height=10,
    )
    return (
        _dashboard(
            "normwacht-overview",
            "Normwacht · Municipality overview",
            "Each municipality's service norms: compliance this month against the objective, "
            "today's breaches and the clocks running now.",
            ("now/M", "now"),
        )
        .with_row(dash.Row("Now"))
        .with_panel(open_office)
        .with_panel(open_clocks)
        .with_panel(at_risk)
        .with_panel(breaches_today)
        .with_row(dash.Row("This month"))
        .with_panel(compliance)
        .with_panel(below)
        .with_row(dash.Row("By norm"))
        .with_panel(breaches_by_norm)
        .with_panel(at_risk_by_norm)
        .with_panel(open_by_norm)
    )


def channels(catalogue: Catalogue) -> dash.Dashboard:
    """2. Live channel board: phone, counter, social media and WhatsApp, breaches."""
    m = MUNICIPALITY
    phone = _norms(catalogue, ["phone.answer"])
    counter_ids = ["counter.wait.appointment", "counter.wait.walkin"]
    counter = _norms(catalogue, counter_ids)
    social = _norms(catalogue, ["social.answer", "whatsapp.answer"])
    social_open = _in_office_hours(f"normwacht_sla_open_timers{_labels(social, m)}")
    social_at_risk_now = _in_office_hours(f"normwacht_sla_at_risk_timers{_labels(social, m)}")

    phone_gauge = (
        _panel(
            gauge.Panel(),
            title="Phone service level, last 15 minutes",
            description="Calls answered within 20 s among calls answered or breached, over a "
            "fixed 15-minute window (the call-centre service level, so not $__rate_interval). "
            "Red below the lowest objective for phone.answer in the catalogue.",
            unit="percentunit",
            queries=[
                Query(_service_level("15m", "municipality", phone, m), "{{municipality}}", True)
            ],
            width=8,
            height=8,
        )
        .reduce_options(_last_value())
        .min(0)
        .max(1)
        .thresholds(_thresholds(_objective_of(catalogue, ["phone.answer"])))
    )
    phone_series = (
        _timeseries(
            title="Phone service level against objective",
            description="The 15-minute phone service level over time (a fixed 15-minute window at "
            "each point: the call-centre measure), beside phone.answer's objective.",
            unit="percentunit",
            queries=[
                Query(_service_level("15m", "municipality", phone, m), "{{municipality}}"),
                Query(_objective("municipality", phone, m), "objective {{municipality}}"),
            ],
            width=16,
        )
        .min(0)
        .max(1)
    )
    counter_level = (
        _panel(
            gauge.Panel(),
            title="Counter service level, last hour",
            description="Visitors called to the desk in time (5 minutes with an appointment, "
            "15 without) among those called or breached, over a fixed 1-hour window (1h: long "
            "enough to hold a few visitors). Red below the lowest counter objective.",
            unit="percentunit",
            queries=[Query(_service_level("1h", "norm", counter, m), "{{norm}}", True)],
            width=8,
            height=8,
        )
        .reduce_options(_last_value())
        .min(0)
        .max(1)
        .thresholds(_thresholds(_objective_of(catalogue, counter_ids)))
    )
    counter_waiting = _stat(
        title="Visitors waiting at the counter",
        description="Checked-in visitors not yet called, with and without an appointment.",
        unit="short",
        queries=[
            Query(f"sum by (norm) (normwacht_sla_open_timers{_labels(counter, m)})", "{{norm}}")
        ],
        width=8,
        height=8,
    )
    counter_series = _timeseries(
        title="Counter waits over time",
        description="Visitors waiting (open clocks) and those at risk of waiting too long.",
        unit="short",
        queries=[
            Query(
                f"sum by (norm) (normwacht_sla_open_timers{_labels(counter, m)})",
                "waiting {{norm}}",
            ),
            Query(
                f"sum by (norm) (normwacht_sla_at_risk_timers{_labels(counter, m)})",
                "at risk {{norm}}",
            ),
        ],
        width=8,
    )
    social_waiting = _stat(
        title="Social media and WhatsApp questions waiting",
        description="Questions (Facebook, Twitter, WhatsApp) not yet answered, shown while the "
        "municipality's office is open: the 2-hour term runs in office hours only. Empty "
        "while every selected office is closed.",
        unit="short",
        queries=[
            Query(
                f"sum by (norm) ({social_open})",
                "{{norm}}",
            )
        ],
        width=8,
        height=8,
    )
    social_at_risk = _stat(
        title="Social media and WhatsApp questions at risk",
        description="Unanswered questions past their at-risk share of the 2 office hours, "
        "shown while the office is open.",
        unit="short",
        queries=[
            Query(
                f"sum by (norm) ({social_at_risk_now})",
                "{{norm}}",
            )
        ],
        width=8,
        height=8,
    ).thresholds(
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(None, "green"), model.Threshold(1, "orange")])
    )
    social_series = _timeseries(
        title="Social media and WhatsApp questions waiting over time",
        description="Unanswered questions per municipality, in office hours only (gaps while "
        "the office is closed).",
        unit="short",
        queries=[
            Query(
                f"sum by (norm, municipality) ({social_open})",
                "{{norm}} {{municipality}}",
            )
        ],
        width=8,
    )
    timeline = _timeseries(
        title="Breach timeline by norm",
        description="Breaches published per norm in each interval, as they happened (a later "
        "correction does not remove a bar).",
        unit="short",
        queries=[
            Query(
                f"sum by (norm) (increase(normwacht_sla_breaches_total{_labels(m)}"
                "[$__rate_interval]))",
                "{{norm}}",
            )
        ],
        width=24,
        height=9,
        bars=True,
    )
    return (
        _dashboard(
            "normwacht-channels",
            "Normwacht · Live channel board",
            "The channels staffed live: phone, counter, social media and WhatsApp.",
            ("now-3h", "now"),
        )
        .refresh("30s")
        .with_row(dash.Row("Phone"))
        .with_panel(phone_gauge)
        .with_panel(phone_series)
        .with_row(dash.Row("Counter"))
        .with_panel(counter_level)
        .with_panel(counter_waiting)
        .with_panel(counter_series)
        .with_row(dash.Row("Social media and WhatsApp (office hours)"))
        .with_panel(social_waiting)
        .with_panel(social_at_risk)
        .with_panel(social_series)
        .with_row(dash.Row("Breaches"))
        .with_panel(timeline)
    )


_OUTCOME_COUNTERS = (
    ("met", "normwacht_sla_met_total"),
    ("breached", "normwacht_sla_breaches_total"),
    ("stopped late", "normwacht_sla_stopped_late_total"),
    ("excluded", "normwacht_sla_excluded_total"),
    ("at risk", "normwacht_sla_at_risk_total"),
    ("cancelled", "normwacht_sla_cancelled_total"),
    ("corrected", "normwacht_sla_corrections_total"),
)


def processor(catalogue: Catalogue) -> dash.Dashboard:
    """3. Processor health: throughput, lag, delays, failures, memory and liveness."""
    del catalogue
    m = MUNICIPALITY
    jobs = f'job=~"{"|".join(JOBS)}"'
    up = _stat(
        title="Services up",
        description="Whether Prometheus reached each Normwacht service at its last scrape.",
        unit="bool_yes_no",
        queries=[Query(f"max by (job) (up{_labels(jobs)})", "{{job}}", instant=True)],
        width=12,
    ).mappings(_mapping({"0": ("down", "red"), "1": ("up", "green")}))
    firing = _stat(
        title="Alerts firing (notifier)",
        description="Alerts the notifier keeps firing at Alertmanager.",
        unit="short",
        queries=[Query("sum(normwacht_notifier_firing_alerts)", "firing")],
    )
    state = _stat(
        title="Open clocks (processor state)",
        description="Clocks the processor holds open: the size of its deadline index.",
        unit="short",
        queries=[Query(f"sum(normwacht_sla_open_timers{_labels(m)})", "open clocks")],
    )
    events = _timeseries(
        title="Events processed per second by type",
        description="Events applied to cases by the processor.",
        unit="cps",
        queries=[
            Query(
                "sum by (type) (rate(normwacht_processor_events_total[$__rate_interval]))",
                "{{type}}",
            )
        ],
        width=12,
    )
    outcomes = _timeseries(
        title="Outcomes published per second",
        description="Outcomes the processor published, by kind.",
        unit="cps",
        queries=[
            Query(f"sum(rate({metric}{_labels(m)}[$__rate_interval]))", kind)
            for kind, metric in _OUTCOME_COUNTERS
        ],
        width=12,
    )
    lag = _timeseries(
        title="Consumer lag by partition",
        description="Records of the events topic not yet processed.",
        unit="short",
        queries=[
            Query(
                "max by (partition) (normwacht_processor_consumer_lag)", "partition {{partition}}"
            )
        ],
        width=8,
    )
    watermark = _timeseries(
        title="Watermark lag by partition",
        description="Wall-clock time minus the partition's watermark (the event time up to "
        "which outcomes are decided). Partitions that saw no event yet are left out.",
        unit="s",
        queries=[
            Query(
                "time() - max by (partition) (normwacht_processor_watermark_seconds > 0)",
                "partition {{partition}}",
            )
        ],
        width=8,
    )
    delay = _timeseries(
        title="Breach publication delay p99 by norm",
        description="99th percentile of the time from a deadline to the publication of its "
        "breach, per norm.",
        unit="s",
        queries=[
            Query(
                "histogram_quantile(0.99, sum by (le, norm) "
                "(rate(normwacht_sla_breach_publication_delay_seconds_bucket[$__rate_interval])))",
                "{{norm}}",
            )
        ],
        width=8,
    )
    ingest = _timeseries(
        title="Ingest accepted and rejected per second",
        description="Events the ingest service wrote to Kafka, by type, and requests it "
        "refused, by HTTP status.",
        unit="cps",
        queries=[
            Query(
                "sum by (type) (rate(normwacht_ingest_events_accepted_total[$__rate_interval]))",
                "accepted {{type}}",
            ),
            Query(
                "sum by (status) "
                "(rate(normwacht_ingest_requests_rejected_total[$__rate_interval]))",
                "rejected {{status}}",
            ),
        ],
        width=8,
    )
    freshness = _timeseries(
        title="Time since last event by source and channel",
        description="How long ago the ingest service last accepted an event from each source "
        "and channel: a feed that went quiet shows as a rising line.",
        unit="s",
        queries=[
            Query(
                "time() - max by (source, channel) (normwacht_ingest_last_event_timestamp_seconds)",
                "{{source}} {{channel}}",
            )
        ],
        width=8,
    )
    failures = _timeseries(
        title="Notifier post failures",
        description="Posts to Alertmanager that failed in each interval (each is retried).",
        unit="short",
        queries=[
            Query(
                "sum(increase(normwacht_notifier_post_failures_total[$__rate_interval]))",
                "failed posts",
            )
        ],
        width=8,
        bars=True,
    )
    dead = _timeseries(
        title="Dead letters by reason",
        description="Records sent to the dead-letter topic in each interval, by reason.",
        unit="short",
        queries=[
            Query(
                "sum by (reason) (increase(normwacht_processor_dead_letters_total"
                "[$__rate_interval]))",
                "{{reason}}",
            )
        ],
        width=12,
        bars=True,
    )
    memory = _timeseries(
        title="Resident memory by job",
        description="Resident set size of each Normwacht service's process.",
        unit="bytes",
        queries=[Query(f"sum by (job) (process_resident_memory_bytes{_labels(jobs)})", "{{job}}")],
        width=12,
    )
    return (
        _dashboard(
            "normwacht-processor",
            "Normwacht · Processor health",
            "The processor, ingest and notifier at work: throughput, lag, delays, failures.",
            ("now-6h", "now"),
        )
        .refresh("30s")
        .with_row(dash.Row("Services"))
        .with_panel(up)
        .with_panel(firing)
        .with_panel(state)
        .with_row(dash.Row("Stream processing"))
        .with_panel(events)
        .with_panel(outcomes)
        .with_panel(lag)
        .with_panel(watermark)
        .with_panel(delay)
        .with_row(dash.Row("Ingest and notifier"))
        .with_panel(ingest)
        .with_panel(freshness)
        .with_panel(failures)
        .with_row(dash.Row("Failures and resources"))
        .with_panel(dead)
        .with_panel(memory)
    )


# ---------------------------------------------------------------------------------------------
# Output


def build_all(catalogue: Catalogue | None = None) -> dict[str, dict[str, Any]]:
    """Every dashboard as Grafana JSON (a plain dict), by file name."""
    catalogue = catalogue or catalogue_file.load()
    built: dict[str, dict[str, Any]] = {}
    for name, make in (
        ("overview", overview),
        ("channels", channels),
        ("processor", processor),
    ):
        board = json.loads(json.dumps(make(catalogue).build(), cls=JSONEncoder))
        for number, panel in enumerate(_panels(board), start=1):
            panel["id"] = number  # in reading order: rows and panels as laid out
        built[f"{name}.json"] = board
    return built


def render(board: dict[str, Any]) -> str:
    """The committed form: sorted keys, two-space indent, one final newline."""
    return json.dumps(board, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write(directory: Path = DASHBOARD_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, board in build_all().items():
        path = directory / name
        path.write_text(render(board), encoding="utf-8")
        written.append(path)
    return written


def check(directory: Path = DASHBOARD_DIR) -> list[Path]:
    """Committed files that differ from what this module builds (missing ones included)."""
    stale = []
    for name, board in build_all().items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != render(board):
            stale.append(path)
    return stale


def _panels(board: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Every panel, rows' own panels included (a collapsed row holds them inside)."""
    for panel in board.get("panels") or []:
        yield panel
        yield from panel.get("panels") or []


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for each query of each panel, with Grafana's variables replaced.

    `$__rate_interval` becomes 1m, `$__range` 1h, `$__interval` 15s and `$municipality`
    the regex `.*` (what "All" sends), so Prometheus itself can run every query.
    """
    found = []
    for panel in _panels(dashboard):
        for target in panel.get("targets") or []:
            expr = target.get("expr")
            if not expr or target.get("hide"):
                continue
            for variable, value in SUBSTITUTIONS:
                expr = expr.replace(variable, value)
            found.append((str(panel.get("title", "")), expr))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m normwacht.ops.dashboards", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a committed file differs"
    )
    parser.add_argument("--dir", type=Path, default=DASHBOARD_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.check:
        stale = check(args.dir)
        for path in stale:
            print(f"stale: {path} (run python -m normwacht.ops.dashboards)", file=sys.stderr)
        return 1 if stale else 0
    for path in write(args.dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
