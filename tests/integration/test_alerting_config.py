"""The Prometheus and Alertmanager configuration, checked by their own tools and run for real.

promtool and amtool validate the files and run the rule unit tests
(deploy/prometheus/tests); amtool walks the routing tree; a real Prometheus loads the
rules and evaluates them; a real Alertmanager holds a notice outside office hours while
a page goes out at once.
"""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from normwacht.catalogue_file import load
from normwacht.cli import app
from normwacht.core.engine import Kind, Outcome
from normwacht.ops.alertmanager import intervals_by_name, is_current
from services.notifier.rules import Open, alerts_for
from tests.support.monitoring import running_alertmanager, running_prometheus
from tests.support.receivers import Webhook, running_webhook

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTMANAGER_YML = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
MUNICIPALITIES = load().municipalities  # a municipality added there must get its route


def tool(*command: str | Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done


# --- static checks -------------------------------------------------------------------


def test_promtool_checks_the_config_and_its_rule_files() -> None:
    out = tool("promtool", "check", "config", PROMETHEUS / "prometheus.yml").stdout
    for rules in RULE_FILES:
        assert rules.name in out


def test_promtool_checks_the_rules() -> None:
    assert RULE_FILES
    tool("promtool", "check", "rules", *RULE_FILES)


def test_promtool_rule_unit_tests_pass() -> None:
    assert len(RULE_TESTS) >= 2
    tool("promtool", "test", "rules", *RULE_TESTS)


def test_every_alert_has_a_rule_test_and_the_required_labels() -> None:
    tested = "\n".join(path.read_text() for path in RULE_TESTS)
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                name = rule["alert"]
                assert f"alertname: {name}\n" in tested, f"{name} has no promtool test"
                assert rule["labels"]["team"] in ("operations", "municipality"), name
                assert rule["labels"]["severity"] in ("page", "notice") or (
                    "notify" in rule["labels"]["severity"]
                ), name
                assert {"summary", "description", "runbook"} <= set(rule["annotations"]), name


def test_amtool_checks_the_config() -> None:
    tool("amtool", "check-config", ALERTMANAGER_YML)


def test_the_generated_time_intervals_are_current() -> None:
    assert is_current(ALERTMANAGER_YML.read_text(encoding="utf-8"), load())
    result = CliRunner().invoke(
        app, ["alertmanager-intervals", "--check", "--config", str(ALERTMANAGER_YML)]
    )
    assert result.exit_code == 0, result.output


def test_the_cli_rewrites_a_stale_block(tmp_path: Path) -> None:
    text = ALERTMANAGER_YML.read_text(encoding="utf-8")
    stale = tmp_path / "alertmanager.yml"
    stale.write_text(text.replace("'08:30'", "'08:00'", 1), encoding="utf-8")
    check = CliRunner().invoke(app, ["alertmanager-intervals", "--check", "--config", str(stale)])
    assert check.exit_code == 1
    fix = CliRunner().invoke(app, ["alertmanager-intervals", "--config", str(stale)])
    assert fix.exit_code == 0, fix.output
    assert stale.read_text(encoding="utf-8") == text


# --- routing -------------------------------------------------------------------------


def per_case(norm: str, municipality: str) -> str:
    """The labels the notifier itself gives a breach of this norm here."""
    outcome = Outcome(subject="CASE-1", norm=norm, instance=1, kind=Kind.BREACHED,
                      channel=load().norms[norm].channel, municipality=municipality,
                      started_at=datetime(2026, 12, 3, 1, tzinfo=UTC),
                      deadline=datetime(2026, 12, 3, 3, tzinfo=UTC))  # fmt: skip
    [opened] = [c for c in alerts_for(outcome, load(), api_url="") if isinstance(c, Open)]
    return " ".join(f"{k}={v}" for k, v in sorted(opened.alert.labels.items()))


ROUTES = [
    # A per-case page (notify: page), whenever it comes: only on-call.
    ("on-call", per_case("report.urgent", "bergen")),
    ("on-call", "alertname=NormErrorBudgetBurnFast severity=page team=municipality"
                " municipality=heiloo norm=report.urgent"),
    # A system page wakes on-call and is also kept by operations.
    ("on-call,operations", "alertname=ProcessorDown severity=page team=operations"),
    ("operations", "alertname=SourceSilent severity=notice team=operations"),
    ("operations", "alertname=DeadLetters severity=notice team=operations reason=decode"),
    # Something no route expects still reaches a person.
    ("operations", "alertname=Unexpected"),
    *[(f"team-{m}", per_case("email.answer", m)) for m in MUNICIPALITIES],
    ("team-castricum", "alertname=PhoneServiceLevelLow severity=notice team=municipality"
                       " municipality=castricum norm=phone.answer"),
]  # fmt: skip


@pytest.mark.parametrize(("receivers", "labels"), ROUTES)
def test_amtool_routes(receivers: str, labels: str) -> None:
    tool(
        "amtool", "config", "routes", "test", f"--config.file={ALERTMANAGER_YML}",
        f"--verify.receivers={receivers}", *labels.split(),
    )  # fmt: skip


def test_notice_routes_carry_the_office_hours_and_closed_days() -> None:
    config = yaml.safe_load(ALERTMANAGER_YML.read_text(encoding="utf-8"))
    intervals = intervals_by_name(ALERTMANAGER_YML.read_text(encoding="utf-8"))
    routes = {r["receiver"]: r for r in config["route"]["routes"]}
    for m in MUNICIPALITIES:
        route = routes[f"team-{m}"]
        assert route["active_time_intervals"] == [f"office-hours-{m}"]
        assert route["mute_time_intervals"] == [f"closed-{m}"]
        assert intervals[f"office-hours-{m}"]
        assert intervals[f"closed-{m}"]
    assert "active_time_intervals" not in routes["on-call"]
    assert "mute_time_intervals" not in routes["on-call"]


# --- a real Prometheus ---------------------------------------------------------------


def test_prometheus_loads_the_config_and_evaluates_every_rule_group(tmp_path: Path) -> None:
    """The shipped files, with evaluation intervals shortened so every group runs at once."""
    copy = tmp_path / "prometheus"
    (copy / "rules").mkdir(parents=True)
    config = (PROMETHEUS / "prometheus.yml").read_text()
    (copy / "prometheus.yml").write_text(
        config.replace("evaluation_interval: 15s", "evaluation_interval: 1s")
    )
    expected = set()
    for path in RULE_FILES:
        rules = yaml.safe_load(path.read_text())
        expected |= {group["name"] for group in rules["groups"]}
        (copy / "rules" / path.name).write_text(
            path.read_text().replace("interval: 1m", "interval: 1s")
        )
    jobs = {"normwacht-processor", "normwacht-ingest", "normwacht-notifier", "prometheus",
            "alertmanager"}  # fmt: skip
    with running_prometheus(copy / "prometheus.yml", tmp_path) as prometheus:
        deadline = time.monotonic() + 30
        while True:
            api = f"{prometheus.url}/api/v1"
            groups = httpx.get(f"{api}/rules", timeout=5).json()["data"]["groups"]
            health = {g["name"]: {r["health"] for r in g["rules"]} for g in groups}
            targets = httpx.get(f"{api}/targets", timeout=5).json()["data"]["activeTargets"]
            scraped = {t["labels"]["job"] for t in targets}
            if (
                set(health) == expected
                and all(h == {"ok"} for h in health.values())
                and scraped == jobs
            ):
                break
            assert time.monotonic() < deadline, f"rule health: {health}, jobs: {scraped}"
            time.sleep(0.5)


# --- a real Alertmanager -------------------------------------------------------------


def _test_config(webhook_url: str) -> str:
    """The shipped routes and receivers, pointed at a local webhook, without e-mail, with
    short group waits, and with time intervals that put "now" outside bergen's office
    hours and inside uitgeest's (real time cannot be moved, so the intervals are)."""
    config = yaml.safe_load(ALERTMANAGER_YML.read_text(encoding="utf-8"))
    for receiver in config["receivers"]:
        receiver.pop("email_configs", None)
        for hook in receiver["webhook_configs"]:
            hook["url"] = webhook_url
    for route in [config["route"], *config["route"]["routes"]]:
        route["group_wait"] = "1s"
        route["group_interval"] = "1s"
    # bergen: open only on the weekday of the day after tomorrow, never today.
    later = (datetime.now(UTC) + timedelta(days=2)).strftime("%A").lower()
    never = [{"years": ["2001"], "location": "UTC"}]
    config["time_intervals"] = [
        {"name": "office-hours-bergen",
         "time_intervals": [{"weekdays": [later], "location": "UTC"}]},
        *[{"name": f"office-hours-{m}", "time_intervals": [{"weekdays": ["sunday:saturday"]}]}
          for m in MUNICIPALITIES[1:]],
        *[{"name": f"closed-{m}", "time_intervals": never} for m in MUNICIPALITIES],
    ]  # fmt: skip
    return yaml.safe_dump(config, sort_keys=False)


def _alert(**labels: str) -> dict[str, Any]:
    return {"labels": labels, "annotations": {"summary": "test"}}


def test_alertmanager_holds_a_notice_outside_office_hours_but_not_a_page(tmp_path: Path) -> None:
    with running_webhook() as webhook:
        _holds_a_notice_but_not_a_page(tmp_path, webhook)


def _holds_a_notice_but_not_a_page(tmp_path: Path, webhook: Webhook) -> None:
    config = tmp_path / "alertmanager.yml"
    config.write_text(_test_config(webhook.url), encoding="utf-8")
    tool("amtool", "check-config", config)
    case = {"team": "municipality", "norm": "email.answer", "clock": "0"}
    alerts = [
        _alert(alertname="NormBreached", severity="page", municipality="bergen", subject="P-1",
               **{**case, "norm": "report.urgent"}),
        _alert(alertname="NormBreached", severity="notice", municipality="bergen", subject="N-1",
               **case),
        _alert(alertname="NormBreached", severity="notice", municipality="uitgeest",
               subject="N-2", **case),
    ]  # fmt: skip
    with running_alertmanager(config, tmp_path) as alertmanager:
        status = httpx.get(f"{alertmanager.url}/api/v2/status", timeout=5).json()
        assert "active_time_intervals:\n    - office-hours-bergen" in status["config"]["original"]
        posted = httpx.post(f"{alertmanager.url}/api/v2/alerts", json=alerts, timeout=5)
        assert posted.status_code == 200, posted.text
        deadline = time.monotonic() + 20
        while {n.body["receiver"] for n in webhook.items} != {"on-call", "team-uitgeest"}:
            assert time.monotonic() < deadline, f"received: {webhook.items}"
            time.sleep(0.2)
        time.sleep(3)  # three more group intervals: the held notice must stay held
    received = [n.body for n in webhook.items]
    subjects = {(n["receiver"], a["labels"]["subject"]) for n in received for a in n["alerts"]}
    assert subjects == {("on-call", "P-1"), ("team-uitgeest", "N-2")}
