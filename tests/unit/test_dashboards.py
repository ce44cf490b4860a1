"""The generated Grafana dashboards: current, and every panel built the same way."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from normwacht import catalogue_file
from normwacht.ops import dashboards
from normwacht.ops.dashboards import DASHBOARD_DIR, build_all, panel_queries

GRAFANA = DASHBOARD_DIR.parent
RENDER_ALL = (
    "import json; from normwacht.ops import dashboards; "
    "print(json.dumps({n: dashboards.render(b) for n, b in dashboards.build_all().items()}))"
)
BOARDS = build_all()
UIDS = {
    "overview.json": "normwacht-overview",
    "channels.json": "normwacht-channels",
    "processor.json": "normwacht-processor",
}
MUNICIPALITY_FILTER = 'municipality=~"$municipality"'

# Panels about the system itself: their series have no municipality label.
SYSTEM_WIDE = {
    ("processor.json", "Services up"),
    ("processor.json", "Alerts firing (notifier)"),
    ("processor.json", "Events processed per second by type"),
    ("processor.json", "Consumer lag by partition"),
    ("processor.json", "Watermark lag by partition"),
    ("processor.json", "Breach publication delay p99 by norm"),
    ("processor.json", "Ingest accepted and rejected per second"),
    ("processor.json", "Time since last event by source and channel"),
    ("processor.json", "Notifier post failures"),
    ("processor.json", "Dead letters by reason"),
    ("processor.json", "Resident memory by job"),
}

# Metrics that carry a `municipality` label: every selector of one must filter by it.
MUNICIPAL_METRICS = {
    "normwacht_office_open",
    "normwacht_sla_objective_ratio",
    "normwacht_sla_open_timers",
    "normwacht_sla_at_risk_timers",
    *(
        f"normwacht_sla_{name}_total"
        for name in (
            "breaches",
            "met",
            "excluded",
            "at_risk",
            "cancelled",
            "stopped_late",
            "corrections",
        )
    ),
    "normwacht_sla_superseded_total",
}

_SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?")
_RANGE = re.compile(r"\[([^\]]+)\]")
_NORM = re.compile(r'norm=~?"([^"]+)"')


def _panels() -> list[tuple[str, dict[str, Any]]]:
    """Every panel that shows data (rows excluded), with its dashboard's file name."""
    found = []
    for name, board in BOARDS.items():
        for panel in board["panels"]:
            for inner in [panel, *panel.get("panels", [])]:
                if inner["type"] != "row":
                    found.append((name, inner))
    return found


PANELS = _panels()


def _id(item: tuple[str, dict[str, Any]]) -> str:
    return f"{item[0]}:{item[1].get('title')}"


def _exprs(panel: dict[str, Any]) -> list[str]:
    return [t["expr"] for t in panel.get("targets", [])]


def test_committed_dashboards_are_current() -> None:
    assert sorted(p.name for p in DASHBOARD_DIR.glob("*.json")) == sorted(BOARDS)
    assert dashboards.check() == [], "run: python -m normwacht.ops.dashboards"


def test_output_is_the_same_under_another_hash_seed() -> None:
    # Within one process the string hash seed is fixed, so only another process can show
    # an order that depends on it (a set's, say).
    here = {name: dashboards.render(board) for name, board in build_all().items()}
    for seed in ("1", "2"):
        rendered = subprocess.run(
            [sys.executable, "-c", RENDER_ALL],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True, check=True, text=True,
        )  # fmt: skip
        assert json.loads(rendered.stdout) == here


def test_check_reports_a_stale_or_missing_file(tmp_path: Path) -> None:
    assert dashboards.main(["--check", "--dir", str(tmp_path)]) == 1
    assert dashboards.main(["--dir", str(tmp_path)]) == 0
    assert dashboards.main(["--check", "--dir", str(tmp_path)]) == 0
    (tmp_path / "channels.json").write_text("{}\n")
    assert dashboards.main(["--check", "--dir", str(tmp_path)]) == 1


def test_fixed_uids_and_variables() -> None:
    assert {name: board["uid"] for name, board in BOARDS.items()} == UIDS
    for board in BOARDS.values():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        datasource = variables["datasource"]
        assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
        municipality = variables["municipality"]
        assert municipality["type"] == "query"
        assert municipality["query"] == "label_values(normwacht_office_open, municipality)"
        assert municipality["datasource"]["uid"] == "${datasource}"
        assert municipality["multi"] is True
        assert municipality["includeAll"] is True
        assert municipality["allValue"] == ".*"


@pytest.mark.parametrize("item", PANELS, ids=_id)
def test_panel_has_title_description_unit_and_the_datasource_variable(
    item: tuple[str, dict[str, Any]],
) -> None:
    _, panel = item
    assert panel["title"].strip()
    assert panel.get("description", "").strip()
    assert panel["fieldConfig"]["defaults"].get("unit")
    assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert panel["targets"]
    for target in panel["targets"]:
        assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert target["expr"].strip()


@pytest.mark.parametrize("item", PANELS, ids=_id)
def test_every_municipal_series_is_filtered(item: tuple[str, dict[str, Any]]) -> None:
    _, panel = item
    for expr in _exprs(panel):
        for metric, matchers in _SELECTOR.findall(expr):
            if metric in MUNICIPAL_METRICS:
                assert MUNICIPALITY_FILTER in matchers, f"{metric}{matchers} in {expr}"


def test_system_wide_panels_are_exactly_the_listed_ones() -> None:
    unfiltered = {
        (name, panel["title"])
        for name, panel in PANELS
        if not any(MUNICIPALITY_FILTER in expr for expr in _exprs(panel))
    }
    assert unfiltered == SYSTEM_WIDE


def _window_named(window: str, description: str) -> bool:
    """`$__range` as "time range"; a fixed duration as itself ("15m") or in words ("15-minute")."""
    if window == "$__range":
        return "time range" in description
    found = re.fullmatch(r"(\d+)([smhd])", window)
    assert found, f"unexpected window [{window}]"
    number, unit = found.groups()
    word = {"s": "second", "m": "minute", "h": "hour", "d": "day"}[unit]
    return any(form in description for form in (window, f"{number}-{word}", f"{number} {word}"))


@pytest.mark.parametrize("item", PANELS, ids=_id)
def test_rate_windows_are_rate_interval_or_named_in_the_description(
    item: tuple[str, dict[str, Any]],
) -> None:
    _, panel = item
    for expr in _exprs(panel):
        for window in _RANGE.findall(expr):
            if window != "$__rate_interval":
                assert _window_named(window, panel["description"]), (
                    f"fixed window [{window}] not named in: {panel['description']}"
                )


def test_every_rate_and_increase_has_a_range() -> None:
    for _, panel in PANELS:
        for expr in _exprs(panel):
            calls = len(re.findall(r"\b(?:rate|increase)\(", expr))
            assert calls == len(_RANGE.findall(expr)), expr


def test_norms_shown_are_in_the_catalogue() -> None:
    known = set(catalogue_file.load().norms)
    for _, panel in PANELS:
        for expr in _exprs(panel):
            for matched in _NORM.findall(expr):
                assert set(matched.split("|")) <= known, matched


def test_panel_queries_substitutes_every_variable() -> None:
    for board in BOARDS.values():
        queries = panel_queries(board)
        assert len(queries) == sum(len(p.get("targets", [])) for p in board["panels"])
        for title, expr in queries:
            assert "$" not in expr, (title, expr)
    overview = panel_queries(BOARDS["overview.json"])
    assert (
        "Office open now",
        'max by (municipality) (normwacht_office_open{municipality=~".*"})',
    ) in (overview)


def test_datasources_provisioned_with_fixed_uids() -> None:
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "normwacht.yaml").read_text()
    )
    by_uid = {d["uid"]: d for d in provisioned["datasources"]}
    assert by_uid["prometheus"]["type"] == "prometheus"
    assert by_uid["prometheus"]["url"] == "http://127.0.0.1:9090"
    assert by_uid["alertmanager"]["type"] == "alertmanager"
    assert by_uid["alertmanager"]["url"] == "http://127.0.0.1:9093"
    assert by_uid["alertmanager"]["jsonData"]["implementation"] == "prometheus"
    for board in BOARDS.values():
        (datasource,) = (v for v in board["templating"]["list"] if v["name"] == "datasource")
        assert datasource["current"]["value"] in by_uid


def test_dashboard_provider_reads_the_mounted_folder() -> None:
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "normwacht.yaml").read_text()
    )
    (provider,) = provisioned["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/normwacht"
