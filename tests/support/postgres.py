"""A throwaway PostgreSQL server for tests, started by ``deploy/postgres/pg.sh``.

The script installs the server package if it is missing (via
``deploy/system-deps.sh``), initialises a cluster in ``workdir / "pgdata"``,
starts it on a free 127.0.0.1 port and creates database ``normwacht``.
It runs with ``PG_FAST=1`` (fsync off) unless the caller's environment says
otherwise: the data is thrown away anyway.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import socket
import subprocess
from collections.abc import Iterator

from sqlalchemy import MetaData, create_engine

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
PG_SCRIPT = REPO_ROOT / "deploy" / "postgres" / "pg.sh"

_START_ATTEMPTS = 3
_START_TIMEOUT_S = 600.0  # generous: the first run on a fresh machine may apt-get install
_STOP_TIMEOUT_S = 120.0


class PostgresStartError(RuntimeError):
    """``pg.sh start`` failed; the message carries its output."""


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_pg(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.setdefault("PG_FAST", "1")
    return subprocess.run(
        ["bash", str(PG_SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def _stop(data_dir: pathlib.Path) -> None:
    result = _run_pg("stop", str(data_dir), timeout=_STOP_TIMEOUT_S)
    if result.returncode != 0:
        raise RuntimeError(f"pg.sh stop failed ({result.returncode}):\n{result.stderr}")


def _start(data_dir: pathlib.Path) -> str:
    """Start the server on a free port, retrying if another process grabbed the port."""
    last_output = ""
    for _ in range(_START_ATTEMPTS):
        port = _free_port()
        result = _run_pg("start", str(data_dir), str(port), timeout=_START_TIMEOUT_S)
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        if result.returncode == 0 and lines:
            return lines[-1].strip()
        last_output = (
            f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
        if "Address already in use" not in result.stderr:
            break
    raise PostgresStartError(f"could not start PostgreSQL in {data_dir}: {last_output}")


@contextlib.contextmanager
def running_postgres(workdir: pathlib.Path) -> Iterator[str]:
    """Run PostgreSQL with its data under ``workdir``; yield its SQLAlchemy URL.

    The URL has the form ``postgresql+psycopg://normwacht@127.0.0.1:PORT/normwacht``.
    The server is stopped on exit; the data directory is left for ``workdir``'s owner
    (e.g. pytest's tmp_path) to remove.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / "pgdata"
    try:
        url = _start(data_dir)
    except BaseException:
        # A half-started server must not outlive the test run; keep the original error.
        with contextlib.suppress(RuntimeError, OSError, subprocess.TimeoutExpired):
            _stop(data_dir)
        raise
    try:
        yield url
    finally:
        _stop(data_dir)


def emptied(url: str) -> str:
    """`url` after dropping every table in it (the migrations' version tables too), so
    the next service to connect finds a new database."""
    engine = create_engine(url)
    try:
        tables = MetaData()
        tables.reflect(engine)
        tables.drop_all(engine)
    finally:
        engine.dispose()
    return url
