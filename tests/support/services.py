"""Run Normwacht's services as real processes, the way `make run` does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

T = TypeVar("T")


class ServiceFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Service:
    pid: int
    log_path: Path

    def rss_bytes(self) -> int:
        """Resident memory of the process now, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise ServiceFailed(f"no VmRSS for pid {self.pid}")

    def cpu_seconds(self) -> float:
        """CPU time the process has used so far (user and system), from /proc."""
        # Fields 14 and 15 of /proc/PID/stat, after the command name in parentheses.
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def running_service(
    name: str, env: Mapping[str, str], health_url: str, log_dir: Path, timeout_s: float = 90.0
) -> Iterator[Service]:
    """Start `normwacht NAME` with `env`, wait until `health_url` answers 200, stop it on exit.

    The service's output goes to `log_dir/NAME.log`, whose tail is shown when it fails to start.
    """
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "normwacht", name],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_healthy(process, health_url, log_path, timeout_s)
            yield Service(process.pid, log_path)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_healthy(
    process: subprocess.Popen[bytes], url: str, log_path: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceFailed(f"{url}: exited {process.returncode}\n{_tail(log_path)}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise ServiceFailed(f"{url}: not healthy after {timeout_s} s\n{_tail(log_path)}")


def metric_sum(metrics_url: str, *names: str) -> float:
    """Every sample of these metrics added up, from one scrape of just them (a full page
    costs the worker ~25 ms: polled twice a second it took 12 % of its time)."""
    text = httpx.get(metrics_url, params={"name[]": list(names)}, timeout=5).text
    prefixes = tuple(prefix for name in names for prefix in (name + "{", name + " "))
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefixes)
    )


def _tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def eventually(
    check: Callable[[], T | None], timeout_s: float = 30.0, interval_s: float = 0.25
) -> T:
    """Call `check` until it returns something truthy; return that, or fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout_s} s: {check}")
        time.sleep(interval_s)
