"""`make run` as a new user meets it: the README's examples, Ctrl-C, and a second run
on what the first kept.

`deploy/run.sh` (what `make run` runs once `make install` is done, which `make test`
did) runs in a copy of the project's files, so that its `.run/` is the test's own,
with this checkout's environment and broker jars, on the fixed ports the README names.
The README's own commands are run as written, by bash. The ports must be free: beside
a `make run` of your own the test is skipped and says why.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.readme import ROOT, bash, bash_blocks
from tests.support.services import eventually

# Two starts, the README's waits and two stops: longer than the suite's 300 s at worst.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

PORTS = {
    "kafka": 9092, "kafka controller": 9094, "ingest": 8000, "api": 8001, "notifier": 8002,
    "processor": 6066, "prometheus": 9090, "alertmanager": 9093,
}  # fmt: skip
READY = [
    "http://127.0.0.1:8000/healthz",
    "http://127.0.0.1:8001/healthz",
    "http://127.0.0.1:8002/healthz",
    "http://127.0.0.1:6066/healthz",
    "http://127.0.0.1:9090/-/ready",
    "http://127.0.0.1:9093/-/ready",
]
BREACH_METRIC = (
    'normwacht_sla_breaches_total{channel="phone",municipality="heiloo",norm="phone.answer"} 1.0'
)
BREACH_ID = "CALL-0001/phone.answer/1/breached"


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def running_in(folder: Path) -> list[str]:
    """The command lines of processes whose working directory is in `folder` (run.sh
    starts everything from the project's folder, with relative paths)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if Path(os.readlink(proc / "cwd")).is_relative_to(folder):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, ValueError):  # not a process, or gone meanwhile
            continue
    return found


# What a checkout holds besides the project's files: state, caches, the environment.
NOT_THE_PROJECT = shutil.ignore_patterns(
    ".git", ".run", ".venv", ".hypothesis", "node_modules", "__pycache__", "*_cache", "results"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The project's files, without `.run/`, with this checkout's .venv."""
    copy = tmp_path / "normwacht"
    shutil.copytree(ROOT, copy, ignore=NOT_THE_PROJECT, symlinks=True)
    (copy / ".venv").symlink_to(ROOT / ".venv")
    return copy


class MakeRun:
    """`deploy/run.sh` in `project`, started and stopped as a user does."""

    def __init__(self, project: Path, log: Path) -> None:
        self.project = project
        self.log = log
        # Not the test session's NORMWACHT_* settings: run.sh's own, as a user has them.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("NORMWACHT_")}
        self.env["KAFKA_LIBS"] = str(ROOT / ".run" / "kafka-libs")
        self.run: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            # A session of its own: Ctrl-C in a terminal goes to the whole foreground group.
            # SIGINT as a terminal leaves it: a test run started in the background of a
            # shell without job control inherits it ignored, and bash cannot trap a
            # signal ignored when it starts (make run then ends 0 on Ctrl-C, not 130).
            self.run = subprocess.Popen(
                ["env", "--default-signal=INT", "bash", "deploy/run.sh"], cwd=self.project,
                env=self.env, stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        eventually(self.ready, timeout_s=180, interval_s=1)

    def ready(self) -> bool:
        assert self.run is not None
        assert self.run.poll() is None, (
            f"make run ended ({self.run.returncode}):\n{self.log.read_text()[-4000:]}"
        )
        try:
            return all(httpx.get(url, timeout=2).status_code == 200 for url in READY)
        except httpx.HTTPError:
            return False

    def ctrl_c(self) -> int:
        assert self.run is not None
        os.killpg(self.run.pid, signal.SIGINT)
        return self.run.wait(timeout=120)

    def clean_up(self) -> None:
        if self.run is not None and self.run.poll() is None:
            os.killpg(self.run.pid, signal.SIGTERM)
            self.run.wait(timeout=90)
        subprocess.run(["bash", "deploy/kafka/kafka.sh", "stop"], cwd=self.project,
                       env=self.env, capture_output=True, timeout=90, check=False)  # fmt: skip


@pytest.fixture
def make_run(project: Path, tmp_path: Path) -> Iterator[MakeRun]:
    taken = [f"{name} ({port})" for name, port in PORTS.items() if listening(port)]
    if taken:
        pytest.skip(f"`make run` needs these ports, which are in use: {', '.join(taken)}")
    run = MakeRun(project, tmp_path / "run.log")
    try:
        yield run
    finally:
        run.clean_up()


def shows_the_breach(text: str) -> bool:
    return BREACH_METRIC in text and BREACH_ID in text


def pages(subject: str) -> list[dict[str, Any]]:
    """Alertmanager's active alerts for `subject`."""
    alerts = httpx.get(
        "http://127.0.0.1:9093/api/v2/alerts", params={"filter": f'subject="{subject}"'}, timeout=5
    )
    alerts.raise_for_status()
    found: list[dict[str, Any]] = alerts.json()
    return found


def breaches(project: Path) -> list[str]:
    out = bash(
        "curl -sf http://127.0.0.1:8001/v1/breaches -H 'Authorization: Bearer normwacht-dev-token'",
        project,
    )
    return [item["id"] for item in json.loads(out)["items"]]


def stopped(run: MakeRun, project: Path) -> None:
    """Ctrl-C, and afterwards nothing of it is left."""
    assert run.ctrl_c() == 130
    still = [f"{name} ({port})" for name, port in PORTS.items() if listening(port)]
    assert still == [], "still listening after Ctrl-C"
    assert running_in(project) == [], "processes left running"


def test_the_readme_first_event_ctrl_c_and_a_second_run(make_run: MakeRun, project: Path) -> None:
    make_run.start()
    assert "Normwacht is starting" in make_run.log.read_text()

    post, check = bash_blocks("## Your first event")
    assert json.loads(bash(post, project)) == {"accepted": 1, "ids": ["call-0001-queued"]}
    # The README's check as written (its `sleep 21` included); on a busy machine the
    # breach may take a moment more to reach the API, so then it is read again a while.
    out = bash(check, project, codes=(0, 1))  # 1: grep found no breach (yet)
    if not shows_the_breach(out):
        again = check.replace("sleep 21\n", "")
        out = eventually(
            lambda: text if shows_the_breach(text := bash(again, project, codes=(0, 1))) else None,
            timeout_s=40,
            interval_s=2,
        )
    metric, answers = out.split("\n", 1)
    assert metric == BREACH_METRIC
    listed, end = json.JSONDecoder().raw_decode(answers)  # curl -s adds no newline
    assert [item["id"] for item in listed["items"]] == [BREACH_ID]
    case, _ = json.JSONDecoder().raw_decode(answers, end)
    assert case["subject"] == "CALL-0001"

    # The year's report counts the call, as the README shows (written in 2026).
    (year,) = bash_blocks("### The year's report")
    this_year = f"{datetime.now(ZoneInfo('Europe/Amsterdam')).year},"
    shown = [line.removeprefix("# ").replace("2026,", this_year, 1)
             for line in year.splitlines() if line.startswith("# ")]  # fmt: skip
    assert bash(year, project).splitlines() == shown

    # A page at night: the urgent report breached on arrival pages on-call.
    report, query = bash_blocks("### A page at night")
    assert json.loads(bash(report, project)) == {"accepted": 1, "ids": ["report-0001"]}
    (alert,) = eventually(lambda: pages("MELDING-0001"), timeout_s=60, interval_s=1)
    assert alert["labels"]["alertname"] == "NormBreached"
    assert alert["labels"]["norm"] == "report.urgent"
    assert alert["labels"]["severity"] == "page"
    assert [receiver["name"] for receiver in alert["receivers"]] == ["on-call"]
    # The README's way to see it (Debian's Alertmanager has no web pages).
    queried = bash(query, project)
    assert "NormBreached" in queried
    assert "report.urgent breached: case MELDING-0001" in queried
    # ... and action on it resolves the alert (the README names the event, not the command).
    acted = (
        report.replace("report.received", "report.action_started")
        .replace('"id": "report-0001"', '"id": "report-0001-action"')
        .replace(" -d '-2 hours'", "")
        .replace(', "data": {"urgent": true}', "")
    )
    assert json.loads(bash(acted, project)) == {"accepted": 1, "ids": ["report-0001-action"]}
    eventually(lambda: pages("MELDING-0001") == [], timeout_s=60, interval_s=1)

    stopped(make_run, project)
    assert "stopping normwacht" in make_run.log.read_text()

    # A second `make run` takes up what the first kept (.run/): the breaches are still
    # listed, and a new call is decided as before.
    make_run.start()
    assert BREACH_ID in breaches(project)
    second = (
        post.replace("call-0001-queued", "call-0002-queued")
        .replace("CALL-0001", "CALL-0002")
        .replace("$(date --iso-8601=seconds)", "$(date --iso-8601=seconds -d '-25 seconds')")
    )
    assert json.loads(bash(second, project)) == {"accepted": 1, "ids": ["call-0002-queued"]}
    eventually(lambda: "CALL-0002/phone.answer/1/breached" in breaches(project), timeout_s=60)
    stopped(make_run, project)
