"""Run Debian's Prometheus and Alertmanager as real processes for a test.

Both binaries come from `deploy/system-deps.sh` (`make test` runs it). Each instance
gets its own port(s) and data folder, so tests can run beside `make run`.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

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
