"""The checks ``health:`` configures, as distribution's ``health/checks`` package has them.

Each check is a function that returns None when all is well and the failure's text otherwise;
the text is what ``/debug/health`` reports under the check's name.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence

from distribution.storage.driver import PathNotFoundError, StorageDriver

Check = Callable[[], "str | None"]

log = logging.getLogger(__name__)


def file_check(path: str) -> Check:
    """Fails while ``path`` exists: the operator's drain switch."""

    def check() -> str | None:
        try:
            os.stat(os.path.abspath(path))
        except FileNotFoundError:
            return None
        except OSError as err:
            return str(err)
        return "file exists"

    return check


def http_check(
    uri: str, status: int, timeout: float, headers: Mapping[str, Sequence[str]]
) -> Check:
    """A HEAD request to ``uri`` must answer ``status``; ``timeout`` 0 waits as long as it takes."""
    # Here, not at the top: it costs each process 0.3 MiB, and most registries check no URL.
    import urllib.error
    import urllib.request

    def check() -> str | None:
        request = urllib.request.Request(uri, method="HEAD")
        for name, values in headers.items():
            for value in values:
                request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout or None) as response:
                code = response.status
        except urllib.error.HTTPError as err:
            code = err.code
        except (OSError, ValueError) as err:
            return f"{uri}: error while checking: {getattr(err, 'reason', err)}"
        if code != status:
            return f"{uri}: downstream service returned unexpected status: {code}"
        return None

    return check


def tcp_check(addr: str, timeout: float) -> Check:
    """A TCP connection to ``addr`` (``host:port``) must open."""

    def check() -> str | None:
        try:
            host, port = split_host_port(addr)
            socket.create_connection((host, port), timeout=timeout or None).close()
        except (OSError, ValueError) as err:
            return f"{addr}: connection failed: {err}"
        return None

    return check


def storage_driver_check(driver: StorageDriver) -> Check:
    """``stat /`` on the storage back-end; a missing root is fine (the back-end answered)."""

    def check() -> str | None:
        try:
            driver.stat("/")
        except PathNotFoundError:
            return None
        except Exception as err:  # a back-end failing in any way is the news
            log.error("storage driver health check: %s", err)
            return str(err)
        return None

    return check


def split_host_port(addr: str) -> tuple[str, int]:
    """Go's ``net.SplitHostPort``: ``host:port`` or ``[v6]:port``; an empty host is local."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address {addr}: missing port in address")
    return host.strip("[]") or "localhost", int(port)
