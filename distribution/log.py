"""Logging set-up from the ``log`` config section: level, text or JSON lines, fixed fields.

Lines look like logrus's, as the Go registry writes them. Fields that belong to the request
being handled (``http.request.id``, method, URI...) are bound once per request with
:func:`bind` and land on every line the request's thread logs, so no log call has to pass
them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType
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

#: The ``extra`` key whose mapping a log call adds to its own line: ``extra={FIELDS: {...}}``.
FIELDS = "fields"

_context_fields: ContextVar[Mapping[str, Any]] = ContextVar(
    "log_fields", default=MappingProxyType({})
)


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


def bind(fields: Mapping[str, Any]) -> Token:
    """Add ``fields`` to every line logged from this context until :func:`unbind`."""
    return _context_fields.set({**_context_fields.get(), **fields})


def unbind(token: Token) -> None:
    _context_fields.reset(token)


def bound() -> Mapping[str, Any]:
    """The fields :func:`bind` attached to the current context."""
    return _context_fields.get()


class TextFormatter(logging.Formatter):
    """``time="..." level=info msg="..." key=value``: logrus's text format, keys sorted."""

    def __init__(self, fields: dict[str, Any]) -> None:
        super().__init__()
        self.fields = fields

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"time={_quote(_timestamp(record))}",
            f"level={_level(record)}",
            f"msg={_quote(record.getMessage())}",
        ]
        fields = self.line_fields(record)
        parts += [f"{key}={_quote(value)}" for key, value in sorted(fields.items())]
        return " ".join(parts)

    def line_fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """``log.fields``, the request's bound fields, the call's own, and the error."""
        fields = {**self.fields, **_context_fields.get(), **getattr(record, FIELDS, {})}
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        return fields


class JSONFormatter(TextFormatter):
    """One JSON object per line, as logrus's JSON formatter writes them."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": _timestamp(record), "level": _level(record), "msg": record.getMessage()}
        entry.update(self.line_fields(record))
        return json.dumps(entry, default=str, sort_keys=True)


#: Characters logrus leaves unquoted in text lines.
_BARE = re.compile(r"[A-Za-z0-9\-._/@^+]+")


def _quote(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if isinstance(value, (int, float, bool)) or _BARE.fullmatch(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def _timestamp(record: logging.LogRecord) -> str:
    """RFC 3339 with fractional seconds, trailing zeros trimmed, as Go's ``RFC3339Nano``."""
    fraction = f"{int(record.created % 1 * 1e6):06d}".rstrip("0")
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{fraction}Z" if fraction else f"{seconds}Z"


def _level(record: logging.LogRecord) -> str:
    return "warning" if record.levelno == logging.WARNING else record.levelname.lower()
