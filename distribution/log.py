"""Logging set-up from the ``log`` config section: level, text or JSON lines, fixed fields.

Lines look like logrus's, as the Go registry writes them. Fields that belong to the request
being handled (``http.request.id``, method, URI...) are bound once per request with
:func:`bind` and land on every line the request's thread logs, so no log call has to pass
them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from contextvars import ContextVar, Token
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

#: The mappings :func:`bind` attached, oldest first: merged only when a line is logged.
_context_fields: ContextVar[tuple[Mapping[str, Any], ...]] = ContextVar("log_fields", default=())


def configure(
    level: str = "info",
    formatter: str = "text",
    fields: Mapping[str, Any] = (),
    reportcaller: bool = False,
    hooks: Sequence[logging.Handler] = (),
) -> None:
    """Send the ``distribution`` loggers to stderr, as the Go registry does, and to ``hooks``
    (``log.hooks``, see :mod:`distribution.mailhook`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(formatter, fields, reportcaller))
    logger = logging.getLogger("distribution")
    logger.handlers[:] = [handler, *hooks]
    logger.setLevel(LEVELS.get(level.lower(), logging.INFO))
    logger.propagate = False


def make_formatter(
    formatter: str = "text", fields: Mapping[str, Any] = (), reportcaller: bool = False
) -> logging.Formatter:
    """The ``log.formatter`` named, with ``log.fields`` on every line and, with
    ``log.reportcaller``, the calling function and file as logrus adds them."""
    kind = {"json": JSONFormatter, "logstash": LogstashFormatter}.get(formatter, TextFormatter)
    return kind(dict(fields), reportcaller)


def bind(fields: Mapping[str, Any]) -> Token:
    """Add ``fields`` to every line logged from this context until :func:`unbind`.

    ``fields`` is read only when a line is logged, so a mapping that works its values out when
    first read costs a request that logs nothing (most, below ``info``) nothing more.
    """
    return _context_fields.set((*_context_fields.get(), fields))


def unbind(token: Token) -> None:
    _context_fields.reset(token)


class TextFormatter(logging.Formatter):
    """``time="..." level=info msg="..." key=value``: logrus's text format, keys sorted."""

    def __init__(self, fields: dict[str, Any], reportcaller: bool = False) -> None:
        super().__init__()
        self.fields = fields
        self.reportcaller = reportcaller

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"time={_quote(_timestamp(record))}",
            f"level={level_name(record)}",
            f"msg={_quote(record.getMessage())}",
        ]
        if self.reportcaller:
            func, file = caller(record)
            parts += [f"func={_quote(func)}", f"file={_quote(file)}"]
        fields = self.line_fields(record)
        parts += [f"{key}={_quote(value)}" for key, value in sorted(fields.items())]
        return " ".join(parts)

    def line_fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """``log.fields``, the request's bound fields, the call's own, and the error."""
        fields = line_fields(record, self.fields)
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        return fields


class JSONFormatter(TextFormatter):
    """One JSON object per line, as logrus's JSON formatter writes them."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _timestamp(record),
            "level": level_name(record),
            "msg": record.getMessage(),
        }
        if self.reportcaller:
            entry["func"], entry["file"] = caller(record)
        entry.update(self.line_fields(record))
        return json.dumps(entry, default=str, sort_keys=True)


class LogstashFormatter(TextFormatter):
    """The Go registry 2.x's ``logstash`` lines (logrus-logstash-hook's formatter), exactly:
    the fields with ``@timestamp``, ``@version: "1"``, ``message`` and ``level``, a field of
    those names kept as ``fields.message``/``fields.level``, keys sorted, compact, ``<>&``
    escaped as Go's ``encoding/json`` escapes them.

    (Registry 3.x names its ``logstash`` output so but writes its JSON lines; an ELK pipeline
    built for ``registry:2`` reads these.)
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = dict(self.line_fields(record))
        entry["@version"] = "1"
        entry["@timestamp"] = _timestamp(record)
        if "message" in entry:
            entry["fields.message"] = entry["message"]
        entry["message"] = record.getMessage()
        if "level" in entry:
            entry["fields.level"] = entry["level"]
        entry["level"] = level_name(record)
        text = json.dumps(
            entry, default=str, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def line_fields(record: logging.LogRecord, static: Mapping[str, Any] = ()) -> dict[str, Any]:
    """A line's fields: ``log.fields``, the request's bound fields, then the call's own."""
    fields = dict(static)
    for bound in _context_fields.get():
        fields.update(bound)
    fields.update(getattr(record, FIELDS, {}))
    return fields


def level_name(record: logging.LogRecord) -> str:
    """logrus's name of the record's level: an unexpected error (Go's panic) is ``panic``."""
    if record.levelno >= logging.CRITICAL:
        return "panic"
    return "warning" if record.levelno == logging.WARNING else record.levelname.lower()


def caller(record: logging.LogRecord) -> tuple[str, str]:
    """logrus's ``func`` and ``file`` fields: the dotted function, and ``path:line``."""
    module = record.module
    path = record.pathname.replace(os.sep, "/")
    if "/distribution/" in path:
        module = path.rsplit("/distribution/", 1)[1].removesuffix(".py").replace("/", ".")
        module = "distribution." + module.removesuffix(".__init__")
    return f"{module}.{record.funcName}", f"{record.pathname}:{record.lineno}"


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
