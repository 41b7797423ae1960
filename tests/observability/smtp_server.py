"""A small SMTP server on a free loopback port that keeps what it is sent, for the mail hook.

It speaks what Go's ``smtp.SendMail`` and Python's ``smtplib`` need: EHLO, AUTH PLAIN and
LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT, and STARTTLS when given a certificate.
"""

from __future__ import annotations

import base64
import socketserver
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes
    login: str | None = None


@dataclass
class SMTPServer:
    """``tls``: a ``(certificate, key)`` offered through STARTTLS."""

    tls: tuple[Path, Path] | None = None
    mails: list[Mail] = field(default_factory=list)

    def __post_init__(self) -> None:
        received = self.mails
        context = None
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.reply("220 test ESMTP")
                sender, recipients, login = "", [], None
                while line := self.rfile.readline():
                    verb, _, rest = line.decode().strip().partition(" ")
                    verb = verb.upper()
                    if verb in ("EHLO", "HELO"):
                        starttls = "250-STARTTLS\r\n" if context is not None else ""
                        self.reply(f"250-test\r\n{starttls}250-AUTH PLAIN LOGIN\r\n250 8BITMIME")
                    elif verb == "STARTTLS" and context is not None:
                        self.reply("220 ready")
                        try:
                            self.request = context.wrap_socket(self.request, server_side=True)
                        except (ssl.SSLError, OSError):
                            return  # the client refused our certificate
                        self.rfile = self.request.makefile("rb")
                        self.wfile = self.request.makefile("wb", buffering=0)
                    elif verb == "AUTH":
                        login = self.auth(rest)
                        self.reply("235 2.7.0 accepted")
                    elif verb == "MAIL":
                        sender = rest.partition(":")[2].strip("<> ")
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        recipients.append(rest.partition(":")[2].strip("<> "))
                        self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 go on")
                        data = b""
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            data += chunk
                        received.append(Mail(sender, recipients, data, login))
                        sender, recipients = "", []
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 ok")

            def auth(self, rest: str) -> str:
                mechanism, _, initial = rest.partition(" ")
                if mechanism.upper() == "PLAIN":
                    if not initial:
                        self.reply("334 ")
                        initial = self.rfile.readline().decode().strip()
                    return base64.b64decode(initial).split(b"\0")[1].decode()
                self.reply("334 VXNlcm5hbWU6")
                user = base64.b64decode(self.rfile.readline().strip()).decode()
                self.reply("334 UGFzc3dvcmQ6")
                self.rfile.readline()
                return user

            def reply(self, text: str) -> None:
                self.wfile.write(text.encode() + b"\r\n")

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.addr = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Mail]:
        deadline = time.monotonic() + timeout
        while len(self.mails) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.mails)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
