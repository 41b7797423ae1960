"""Pebble, Let's Encrypt's ACME test server, with pebble-challtestsrv as its DNS server.

Both are Debian's ``pebble`` package, started on free ports of 127.0.0.1. challtestsrv answers
every A query with 127.0.0.1, so any test name leads Pebble's validation to the registry;
Pebble validates TLS-ALPN-01 on one fixed port (``tlsPort``), which the test gives the
registry. Pebble's own HTTPS listener has a certificate made here (``listener_ca`` trusts it);
the certificates it issues chain to a root made at its start (:meth:`Pebble.root`).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from pathlib import Path

import requests

from tests.conftest import free_port
from tests.tls.pki import Authority

START_TIMEOUT = 30.0


class Pebble:
    def __init__(
        self,
        workdir: Path,
        tls_port: int,
        validity: int | None = None,
        blocked: tuple[str, ...] = (),
        nonce_reject: int = 25,
    ) -> None:
        """Pebble validating on ``tls_port``; ``validity`` seconds for the certificates it
        issues (default: Pebble's 5 years); ``blocked`` names it refuses to issue for;
        ``nonce_reject`` the percentage of good nonces it rejects as bad (default 25, five
        times Pebble's own, so that clients prove they retry)."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        authority = Authority.root("Pebble listener CA")
        cert, key = authority.issue("pebble-listener", workdir)
        self.listener_ca = authority.write_ca(workdir / "listener-ca.crt")
        self.port, self.management_port = free_port(), free_port()
        dns_port = _free_udp_and_tcp_port()
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.port}",
                "managementListenAddress": f"127.0.0.1:{self.management_port}",
                "certificate": str(cert),
                "privateKey": str(key),
                "httpPort": free_port(),
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
                "domainBlocklist": list(blocked),
                "certificateValidityPeriod": validity or 0,
            }
        }
        (workdir / "pebble.json").write_text(json.dumps(config))
        self.dns_log = workdir / "challtestsrv.log"
        self.log_path = workdir / "pebble.log"
        with open(self.dns_log, "wb") as out:
            self.dns = subprocess.Popen(
                [
                    *("pebble-challtestsrv", "-dns01", f"127.0.0.1:{dns_port}"),
                    *("-http01", "", "-https01", "", "-tlsalpn01", ""),
                    *("-management", f"127.0.0.1:{free_port()}"),
                    *("-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        env = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": str(nonce_reject)}
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    *("pebble", "-config", str(workdir / "pebble.json")),
                    *("-dnsserver", f"127.0.0.1:{dns_port}"),
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def orders(self) -> int:
        """How many orders Pebble has taken."""
        return len(re.findall(r"Added order ", self.log))

    def root(self, path: Path) -> Path:
        """The root of the certificates Pebble issues, written to ``path``."""
        response = requests.get(
            f"https://127.0.0.1:{self.management_port}/roots/0",
            verify=str(self.listener_ca),
            timeout=10,
        )
        response.raise_for_status()
        path.write_text(response.text)
        return path

    def stop(self) -> None:
        for proc in (self.proc, self.dns):
            proc.terminate()
        for proc in (self.proc, self.dns):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for proc, log in ((self.proc, self.log_path), (self.dns, self.dns_log)):
                if proc.poll() is not None:
                    self.stop()
                    raise AssertionError(f"{proc.args[0]} exited:\n{log.read_text()}")
            try:
                requests.get(self.directory_url, verify=str(self.listener_ca), timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"Pebble not ready after {START_TIMEOUT}s:\n{self.log}")


def _free_udp_and_tcp_port() -> int:
    """A port free for both UDP and TCP (challtestsrv's DNS listens on both)."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise AssertionError("no free port for both UDP and TCP")
