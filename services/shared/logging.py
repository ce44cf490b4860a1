"""Structured JSON logs: one line per unit of work, and the libraries' lines as JSON too."""

from __future__ import annotations

import logging
import logging.config
import sys
from typing import Any

import structlog

_STAMPED: list[Any] = [
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """The standard library's logging as a `dictConfig`: every record (faust, aiokafka,
    uvicorn, alembic) a JSON line on stderr with `event`, `level`, `timestamp` and
    `logger`, as our own lines, so one log shipper reads them all."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": [*_STAMPED, structlog.stdlib.add_logger_name],
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(),
                ],
            }
        },
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": sys.stderr}
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        # httpx logs every request at INFO: the notifier's resends would fill the log.
        "loggers": {"httpx": {"level": max(logging.WARNING, _number(level))}},
    }


def _number(level: str) -> int:
    number: int = logging.getLevelNamesMapping()[level.upper()]
    return number


def configure_logging(level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(level))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *_STAMPED,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_number(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
