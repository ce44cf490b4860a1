"""Run Debian's Prometheus and Alertmanager as real processes for a test.

Both binaries come from `deploy/system-deps.sh` (`make test` runs it). Each instance
gets its own port(s) and data folder, so tests can run beside `make run`.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from tests.support.broker import free_port


class MonitoringFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Running:
    url: str
    log_path: Path


@contextmanager
def _process(
    command: list[str], url: str, ready_path: str, log_path: Path, timeout_s: float
) -> Iterator[Running]:
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if process.poll() is not None:
                    raise MonitoringFailed(
                        f"{command[0]} exited {process.returncode}\n{log_path.read_text()[-4000:]}"
                    )
                try:
                    if httpx.get(url + ready_path, timeout=1.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise MonitoringFailed(f"{url} not ready after {timeout_s} s")
                time.sleep(0.2)
            yield Running(url, log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def running_prometheus(
    config: Path, workdir: Path, *, port: int | None = None, timeout_s: float = 60.0
) -> Iterator[Running]:
    """Prometheus on 127.0.0.1 reading `config` (rule files relative to it), data in `workdir`."""
    port = port or free_port()
    data = workdir / f"prometheus-{port}"
    data.mkdir(parents=True, exist_ok=True)
    command = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
    ]
    url = f"http://127.0.0.1:{port}"
    with _process(command, url, "/-/ready", workdir / f"prometheus-{port}.log", timeout_s) as run:
        yield run


@contextmanager
def running_alertmanager(
    config: Path, workdir: Path, *, port: int | None = None, timeout_s: float = 60.0
) -> Iterator[Running]:
    """Alertmanager on 127.0.0.1 reading `config`, alone in its cluster, data in `workdir`."""
    port = port or free_port()
    data = workdir / f"alertmanager-{port}"
    data.mkdir(parents=True, exist_ok=True)
    command = [
        "prometheus-alertmanager",
        f"--config.file={config}",
        f"--storage.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip: one instance, no port to clash
    ]
    url = f"http://127.0.0.1:{port}"
    with _process(command, url, "/-/ready", workdir / f"alertmanager-{port}.log", timeout_s) as run:
        yield run


REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_CONFIG = REPO / "deploy/prometheus/prometheus.yml"
ALERTMANAGER_CONFIG = REPO / "deploy/alertmanager/alertmanager.yml"


def alertmanager_config(workdir: Path, webhook_url: str, smtp_port: int) -> Path:
    """The project's Alertmanager configuration, its receivers pointed at a test's webhook
    and SMTP server. Routes, intervals and inhibitions stay exactly as committed."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    config["global"]["smtp_smarthost"] = f"127.0.0.1:{smtp_port}"
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = webhook_url
    path = workdir / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def prometheus_config(
    workdir: Path, targets: Mapping[str, str], alertmanager: str, interval: str = "1s"
) -> Path:
    """The project's Prometheus configuration and rules, scraping a test's services
    (`targets`: job -> host:port) every `interval` and alerting to its Alertmanager."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"]["scrape_interval"] = interval
    config["global"]["evaluation_interval"] = interval
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [alertmanager]}]}]
    config["rule_files"] = [str(PROMETHEUS_CONFIG.parent / f) for f in config["rule_files"]]
    config["scrape_configs"] = [
        job for job in config["scrape_configs"] if job["job_name"] in targets
    ]
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
