"""Every log line is JSON: ours (structlog) and the libraries' (the standard library's)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from services.shared.logging import configure_logging


@pytest.fixture
def configured() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()


def test_ours_and_the_libraries_lines_are_json(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO")
    structlog.get_logger("normwacht.test").info("case_applied", offset=7)
    logging.getLogger("aiokafka.consumer").warning("Heartbeat failed for group %s", "g")
    logging.getLogger("aiokafka.consumer").debug("below the level: not written")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("faust.worker").exception("crashed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["event"], line["level"]) for line in lines] == [
        ("case_applied", "info"),
        ("Heartbeat failed for group g", "warning"),
        ("crashed", "error"),
    ]
    assert lines[0]["offset"] == 7
    assert lines[1]["logger"] == "aiokafka.consumer"
    assert "ValueError: boom" in lines[2]["exception"]
    assert all(line["timestamp"].endswith("Z") for line in lines)


def test_httpx_requests_are_not_logged_at_info(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO")
    logging.getLogger("httpx").info("HTTP Request: POST http://alertmanager/api/v2/alerts")
    assert capsys.readouterr().err == ""
