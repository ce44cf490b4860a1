"""A real single-node Kafka broker for tests, started by ``deploy/kafka/kafka.sh``.

Tests run the very broker that ``make run`` uses, so they exercise its
configuration rather than a fake. Each broker gets its own data dir and free
ports: parallel test runs and a developer's broker on 9092 never meet. The
jars are resolved once per machine into ``.run/kafka-libs`` (or ``$KAFKA_LIBS``),
so only the first start on a fresh machine waits for Maven.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import socket
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pydantic import SecretStr

from services.shared.kafka import KafkaSettings
from services.shared.kafka_access import Grant, add_scram_user, grant

__all__ = [
    "KAFKA_SH",
    "KafkaStartError",
    "SecureBroker",
    "free_port",
    "free_ports",
    "running_broker",
    "running_secure_broker",
]

KAFKA_SH = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "kafka.sh"

_START_ATTEMPTS = 3
_START_TIMEOUT_S = 600.0  # generous: the first start on a fresh machine resolves the jars
_STOP_TIMEOUT_S = 120.0  # kafka.sh itself sends SIGKILL after 30 s


class KafkaStartError(RuntimeError):
    """``kafka.sh start`` failed; the message carries its output and the log tail."""


def free_ports(count: int) -> list[int]:
    """Ports the OS calls free, all held open together so that they differ."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it)."""
    return free_ports(1)[0]


def _run(command: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(KAFKA_SH), command],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def _stop(env: dict[str, str]) -> None:
    result = _run("stop", env, _STOP_TIMEOUT_S)
    if result.returncode != 0:
        raise RuntimeError(f"kafka.sh stop failed ({result.returncode}):\n{result.stderr}")


def _start(
    workdir: pathlib.Path, heap: str, extra_env: dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """Start on free ports; try new ones if another process took them first."""
    last_output = ""
    for _ in range(_START_ATTEMPTS):
        port, controller_port = free_ports(2)
        env = {
            **os.environ,
            "KAFKA_DATA": str(workdir),
            "KAFKA_PORT": str(port),
            "KAFKA_CONTROLLER_PORT": str(controller_port),
            "KAFKA_HEAP": heap,
            **(extra_env or {}),
        }
        result = _run("start", env, _START_TIMEOUT_S)
        if result.returncode == 0:
            return f"127.0.0.1:{port}", env
        last_output = (
            f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
        # kafka.sh's own port check, or the JVM's BindException in the log tail.
        if "already in use" not in result.stderr:
            break
    raise KafkaStartError(f"could not start Kafka in {workdir}: {last_output}")


@contextlib.contextmanager
def running_broker(
    workdir: pathlib.Path, *, heap: str = "512M", secure: bool = False
) -> Iterator[str]:
    """Run a broker with its data under ``workdir``; yield ``"127.0.0.1:PORT"``.

    The ports are new on every call, so a second ``running_broker`` on the same
    ``workdir`` restarts on the existing data. 512 MiB of heap is plenty for
    tests (the broker's RSS is about 350 MB at 256 MiB to 1 GiB of heap). The
    broker is stopped on exit, also when the body raises; the data is left for
    ``workdir``'s owner (e.g. pytest's tmp_path) to remove.

    With ``secure``, the broker of ``KAFKA_SECURE=1`` (SASL_SSL, ACLs): see
    ``running_secure_broker`` for what its clients need.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    extra_env = {"KAFKA_SECURE": "1" if secure else "0"}
    try:
        bootstrap, env = _start(workdir, heap, extra_env)
    except BaseException:
        # kafka.sh stops a broker that failed to become ready; this covers an
        # interrupt or timeout of kafka.sh itself. Keep the original error.
        with contextlib.suppress(RuntimeError, OSError, subprocess.TimeoutExpired):
            _stop({**os.environ, "KAFKA_DATA": str(workdir), **extra_env})
        raise
    try:
        yield bootstrap
    finally:
        _stop(env)


@dataclass(frozen=True)
class SecureBroker:
    """A broker with SASL_SSL and ACLs, and what its clients need: the CA that signed its
    certificate and the admin's (a super user's) password."""

    bootstrap: str
    ca_file: pathlib.Path
    admin_password: str

    def settings(self, user: str, password: str, base: KafkaSettings) -> KafkaSettings:
        """`base` (its topics), as `user` on this broker."""
        return base.model_copy(
            update={
                "bootstrap": self.bootstrap,
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_username": user,
                "sasl_password": SecretStr(password),
                "ssl_cafile": self.ca_file,
            }
        )

    def admin(self, base: KafkaSettings) -> KafkaSettings:
        return self.settings("admin", self.admin_password, base)

    def add_user(self, user: str, password: str, grants: Iterable[Grant]) -> None:
        """A SCRAM user allowed exactly `grants`."""
        admin = self.admin(KafkaSettings())
        add_scram_user(admin, user, password)
        grant(admin, user, grants)


@contextlib.contextmanager
def running_secure_broker(workdir: pathlib.Path, *, heap: str = "512M") -> Iterator[SecureBroker]:
    """``running_broker`` with ``KAFKA_SECURE=1``: clients must log in (SCRAM-SHA-512 over
    TLS, trusting ``ca_file``) and may do only what ACLs allow; ``admin`` may do all."""
    with running_broker(workdir, heap=heap, secure=True) as bootstrap:
        yield SecureBroker(
            bootstrap=bootstrap,
            ca_file=workdir / "certs" / "ca.pem",
            admin_password=(workdir / "admin.password").read_text(),
        )
