"""Background tasks a service cannot do without (reading the outcomes topic, resending alerts)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Coroutine
from typing import Any

import structlog
from fastapi import Response

log = structlog.get_logger("normwacht.tasks")

HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"description": "Outcomes not handled: not yet, or no longer (it then stops)"}
}
"""What a service's /healthz declares besides its 200 (`Vital.health`)."""


class Vital:
    """Starts a service's vital tasks, and stops the service when one of them dies.

    A service whose reading died must not go on looking alive (its /metrics keeping `up`
    at 1, the API answering from a read model that no longer moves): it shuts down as
    uvicorn does on SIGTERM, and `failed` tells its `main` to exit 1, so that `make run`
    or a process manager notices. Its next start resumes from the database and the
    committed offsets. `stop_service=False` (tests running the app in process) only logs
    and sets `failed`.
    """

    def __init__(self, service: str, *, stop_service: bool = True) -> None:
        self.service = service
        self.stop_service = stop_service
        self.failed = False
        self._tasks: list[asyncio.Task[None]] = []

    def health(self, running: bool, response: Response) -> str:
        """/healthz's status: `ok` while the vital work runs, else `starting` (not yet)
        or `failed` (no longer), answered with 503 (HEALTH_RESPONSES)."""
        if running:
            return "ok"
        response.status_code = 503
        return "failed" if self.failed else "starting"

    def start(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(self._stop_if_failed)
        self._tasks.append(task)
        return task

    async def cancel(self) -> None:
        """Cancel every task and wait for them (a failure was logged when it happened)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        self._tasks.clear()

    def _stop_if_failed(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()  # None: it returned, which a vital task never should
        log.critical("vital_task_failed", service=self.service, task=task.get_name(),
                     error=repr(error) if error else "it ended")  # fmt: skip
        self.failed = True
        if self.stop_service:
            os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's own graceful shutdown
