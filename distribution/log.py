"""Logging set-up from the ``log`` config section: level, text or JSON lines, fixed fields."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "panic": logging.CRITICAL,
}


def configure(level: str = "info", formatter: str = "text", fields: Mapping[str, Any] = ()) -> None:
    """Send the ``distribution`` loggers to stderr, as the Go registry does."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(formatter, fields))
    logger = logging.getLogger("distribution")
    logger.handlers[:] = [handler]
    logger.setLevel(LEVELS.get(level.lower(), logging.INFO))
    logger.propagate = False


def make_formatter(formatter: str = "text", fields: Mapping[str, Any] = ()) -> logging.Formatter:
    """The ``log.formatter`` named, with ``log.fields`` on every line."""
    if formatter in ("json", "logstash"):
        return JSONFormatter(dict(fields))
    return TextFormatter(dict(fields))


class TextFormatter(logging.Formatter):
    """``time="..." level=info msg="..." key=value``: logrus's text format."""

    def __init__(self, fields: dict[str, Any]) -> None:
        super().__init__()
        self.fields = fields

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f'time="{_timestamp(record)}"',
            f"level={_level(record)}",
            f"msg={json.dumps(record.getMessage())}",
        ]
        parts += [f"{key}={json.dumps(value, default=str)}" for key, value in self.fields.items()]
        if record.exc_info:
            parts.append(f"error={json.dumps(self.formatException(record.exc_info))}")
        return " ".join(parts)


class JSONFormatter(TextFormatter):
    """One JSON object per line, as logrus's JSON formatter writes them."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": _timestamp(record), "level": _level(record), "msg": record.getMessage()}
        entry.update(self.fields)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))


def _level(record: logging.LogRecord) -> str:
    return "warning" if record.levelno == logging.WARNING else record.levelname.lower()
