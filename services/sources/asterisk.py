"""Follow an Asterisk `queue_log` like `tail -F` and post its calls' events to ingest.

Where it stopped is kept in a state file (the file's inode and the byte offset after the
last line ingest accepted), so a restart resumes there: lines are posted at least once,
and a line read twice gives the same event id. A file rotated away (renamed, a new one
created) is read to its end before the new one is followed: Asterisk goes on writing to
the renamed file until it reopens its logs (logrotate's `postrotate` runs `logger
reload`), so the old file is left only once it has been quiet for a grace period. That
holds also when the rotation happened while the adapter was down (the old inode is looked
for beside the file, as `queue_log.1` and the like). A file truncated in place
(copytruncate) is read again from its start.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import structlog

from normwacht.sources.asterisk import QueueLogMapping, map_line
from normwacht.sources.common import mapped
from services.sources.poster import IngestPoster
from services.sources.state import read_state, write_state

log = structlog.get_logger("normwacht.sources.asterisk")

_CHUNK = 1 << 20


class QueueLogFollower:
    def __init__(
        self,
        path: Path,
        state_path: Path,
        mapping: QueueLogMapping,
        poster: IngestPoster,
        max_lines: int = 500,
        rotation_grace_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = path
        self._state_path = state_path
        self._mapping = mapping
        self._poster = poster
        self._max_lines = max_lines
        self._rotation_grace_s = rotation_grace_s
        self._monotonic = monotonic
        self._quiet_since: float | None = None
        """Since when a file rotated away has had no new line."""
        self._file: BinaryIO | None = None
        self._inode = 0
        self._offset = 0
        saved = read_state(state_path)
        self._saved_inode = int(saved.get("inode", 0))
        self._saved_offset = int(saved.get("offset", 0))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def run(self, stop: threading.Event, poll_s: float) -> None:
        """Follow the file until `stop` is set."""
        try:
            while not stop.is_set():
                if not self.poll():
                    stop.wait(poll_s)
        finally:
            self.close()

    def poll(self) -> int:
        """Post what was written since the last call; the number of lines consumed."""
        consumed = 0
        while True:
            if self._file is None and not self._open():
                return consumed
            assert self._file is not None
            lines, end = self._complete_lines(self._file)
            if lines:
                self._ship(lines, end)
                consumed += len(lines)
                continue
            try:
                current = os.stat(self._path)
            except FileNotFoundError:
                return consumed  # rotated and not yet re-created: keep the old one open
            if current.st_ino != self._inode:
                if not self._quiet_for_the_grace():
                    return consumed
                log.info("queue_log_rotated")
                self.close()
                self._saved_inode, self._saved_offset = 0, 0
                continue
            if current.st_size < self._offset:
                log.info("queue_log_truncated")
                self._offset = 0
                continue
            return consumed

    def _quiet_for_the_grace(self) -> bool:
        """Whether the file rotated away has had no new line for the grace period."""
        now = self._monotonic()
        if self._quiet_since is None:
            self._quiet_since = now
        return now - self._quiet_since >= self._rotation_grace_s

    def _open(self) -> bool:
        """Open the file to read: where the state says, else the file's start."""
        try:
            current = os.stat(self._path)
        except FileNotFoundError:
            return False
        path, offset = self._path, 0
        if self._saved_inode == current.st_ino and self._saved_offset <= current.st_size:
            offset = self._saved_offset
        elif self._saved_inode and (rotated := self._rotated_file()) is not None:
            log.info("queue_log_resuming_rotated_file")
            path, offset = rotated, self._saved_offset
        self._file = path.open("rb")
        self._quiet_since = None
        self._inode = os.fstat(self._file.fileno()).st_ino
        self._offset = offset
        return True

    def _rotated_file(self) -> Path | None:
        """The file we were reading before a restart, renamed beside the followed one."""
        for candidate in sorted(self._path.parent.glob(self._path.name + "?*")):
            try:
                found = candidate.stat()
            except FileNotFoundError:
                continue
            if found.st_ino == self._saved_inode and self._saved_offset <= found.st_size:
                return candidate
        return None

    def _complete_lines(self, file: BinaryIO) -> tuple[list[str], int]:
        """Up to `max_lines` whole lines from the offset, and the offset after them."""
        file.seek(self._offset)
        data = file.read(_CHUNK)
        last_newline = data.rfind(b"\n")
        if last_newline < 0 and len(data) == _CHUNK:
            # No line is that long (a block of NULs after a crash, say): skip to the next
            # line, or the file would never be read past it.
            return [""], self._end_of_line(file, self._offset + _CHUNK)
        if last_newline < 0:
            return [], self._offset
        raw = data[: last_newline + 1].split(b"\n")[:-1][: self._max_lines]
        end = self._offset + sum(len(line) + 1 for line in raw)
        return [line.decode("utf-8", errors="replace") for line in raw], end

    def _end_of_line(self, file: BinaryIO, offset: int) -> int:
        """The offset after the next newline from `offset`, or the file's end."""
        log.warning("queue_log_line_too_long", offset=self._offset)
        file.seek(offset)
        while chunk := file.read(_CHUNK):
            newline = chunk.find(b"\n")
            if newline >= 0:
                return offset + newline + 1
            offset += len(chunk)
        return offset

    def _ship(self, lines: list[str], end: int) -> None:
        events, skipped = mapped(lines, lambda line: map_line(line, self._mapping))
        if events:
            self._poster.post(events)
        self._offset = end
        self._quiet_since = None  # a rotated file written to is still in use
        write_state(self._state_path, {"inode": self._inode, "offset": end})
        log.info("queue_log_lines", lines=len(lines), events=len(events), skipped=dict(skipped))
