"""``log.hooks`` of type ``mail``: an e-mail for each log line of the chosen levels, as Go's.

distribution's ``logHook`` mails ``[<level>] <smtp host>: <message>`` with the message and the
line's fields as a plain-text body, through ``smtp.addr`` with ``username``/``password``
(after STARTTLS when the server offers it). As there, only lines the log level lets through
are mailed. Unlike Go, a request never waits for the mail server: lines are handed to a
thread per worker process, and when the server is slow or down at most
:data:`QUEUE_LIMIT` wait (later ones are dropped and counted). ``insecure: true`` accepts a
mail server certificate no CA vouches for (Go parses the key and never uses it).
"""

from __future__ import annotations

import logging
import os
import queue
import ssl
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from distribution import log
from distribution.config import ConfigError, LogHook

#: Lines waiting for the mail server in one process; newer ones are dropped beyond this.
QUEUE_LIMIT = 100
#: Seconds a connection to the mail server may take.
SMTP_TIMEOUT = 30.0

#: logrus's level names, as ``levels`` lists them, to Python's levels.
LEVELS = {
    "panic": logging.CRITICAL,
    "fatal": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": logging.DEBUG - 5,
}

#: Hosts Go's ``smtp.PlainAuth`` sends a password to over a connection without TLS.
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def handlers(hooks: Sequence[LogHook], fields: Mapping[str, Any] = ()) -> list[logging.Handler]:
    """A handler for each enabled ``mail`` hook; other types are ignored, as in Go, with a
    warning. ``fields`` (``log.fields``) go into every mail's body, as into every log line.
    Raises :class:`ConfigError` for a mail hook that could never send."""
    found: list[logging.Handler] = []
    for i, hook in enumerate(hooks):
        key = f"log.hooks[{i}]"
        if hook.disabled:
            continue
        if hook.type != "mail":
            logging.getLogger(__name__).warning(
                "%s.type: unknown hook type %r, ignored (Go ignores it too); only mail is known",
                key,
                hook.type,
            )
            continue
        found.append(MailHandler(hook, key, fields))
    return found


def check(hooks: Sequence[LogHook]) -> None:
    """Raise :class:`ConfigError` for an enabled mail hook that could never send."""
    for i, hook in enumerate(hooks):
        if not hook.disabled and hook.type == "mail":
            MailHandler(hook, f"log.hooks[{i}]")


class MailHandler(logging.Handler):
    """Mails each record whose level is one of the hook's ``levels``."""

    def __init__(self, hook: LogHook, key: str, fields: Mapping[str, Any] = ()) -> None:
        super().__init__()
        self.fields = dict(fields)
        options = hook.options
        self.host, sep, port = (options.smtp.addr or "").rpartition(":")
        if not sep or not self.host or not port.isdigit():
            raise ConfigError(
                f"{key}.options.smtp.addr", f"expected host:port, got {options.smtp.addr!r}"
            )
        if not options.to:
            raise ConfigError(f"{key}.options.to", "no recipient")
        if not options.from_:
            raise ConfigError(f"{key}.options.from", "no sender")
        unknown = [level for level in hook.levels if level.lower() not in LEVELS]
        if unknown:
            raise ConfigError(
                f"{key}.levels", f"unknown level {unknown[0]!r}; one of {', '.join(LEVELS)}"
            )
        self.port = int(port)
        self.levels = frozenset(LEVELS[level.lower()] for level in hook.levels)
        self.options = options
        self.dropped = 0
        self._queue: queue.Queue[tuple[str, str]] = queue.Queue(QUEUE_LIMIT)
        self._pid: int | None = None
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno not in self.levels or record.name == __name__:
            return
        self._start()
        try:
            self._queue.put_nowait(message(record, self.host, self.fields))
        except queue.Full:
            self.dropped += 1

    def _start(self) -> None:
        """One sending thread per process, started again in a forked worker."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._queue = queue.Queue(QUEUE_LIMIT)
                threading.Thread(target=self._send_all, name="log-mail", daemon=True).start()
                self._pid = os.getpid()

    def _send_all(self) -> None:
        mails = self._queue
        while True:
            subject, body = mails.get()
            try:
                self.send(subject, body)
            except OSError as err:  # smtplib's and ssl's errors are OSErrors
                # Not through logging: a failing mail hook must not mail about itself.
                print(
                    f"log.hooks: cannot send mail via {self.options.smtp.addr}: {err}",
                    file=sys.stderr,
                )

    def send(self, subject: str, body: str) -> None:
        """One mail, as Go's ``mailer.sendMail`` writes it."""
        import smtplib  # here: every registry imports this module, few send mail

        options = self.options
        text = (
            f"To:{';'.join(options.to)}\r\nFrom: {options.from_}\r\nSubject: {subject}\r\n"
            f"Content-Type: text/plain\r\n\r\n{body}"
        )
        with smtplib.SMTP(
            self.host, self.port, local_hostname="localhost", timeout=SMTP_TIMEOUT
        ) as smtp:
            smtp.ehlo()
            encrypted = False
            if smtp.has_extn("starttls"):
                context = ssl.create_default_context()
                if options.smtp.insecure:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                smtp.starttls(context=context)
                smtp.ehlo()
                encrypted = True
            if options.smtp.username:
                if not encrypted and self.host not in _LOCAL_HOSTS:
                    raise smtplib.SMTPException("unencrypted connection: the password is not sent")
                smtp.login(options.smtp.username, options.smtp.password or "")
            smtp.sendmail(options.from_, list(options.to), text.encode())


def message(
    record: logging.LogRecord, host: str, fields: Mapping[str, Any] = ()
) -> tuple[str, str]:
    """The subject and body Go's hook writes for a log line (its text template, keys sorted
    as Go's templates range over a map)."""
    text = record.getMessage()
    data = log.line_fields(record, fields)
    body = f"\n\t{text}\n\n\t" + "".join(f"\n\t{k}: {v}\n\t" for k, v in sorted(data.items()))
    return f"[{log.level_name(record)}] {host}: {text}", body + "\n\t"
