"""Which peers may tell the registry about the client: ``http.trustedproxies``.

Behind a TLS-terminating proxy the registry learns the client's scheme, host and address from
``X-Forwarded-Proto``, ``X-Forwarded-Host``, ``X-Forwarded-Port``, ``X-Forwarded-For``,
``X-Real-Ip`` and ``Forwarded``; Location URLs and logs use them. The Go registry believes any
peer, and so do we by default. Exposed without a proxy, a client could forge them, so
``http.trustedproxies`` lists the peers that may set them: from any other peer they are removed
from the WSGI environ before the application, the request logs or the access log read it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from distribution.config import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The environ keys of the headers a proxy sets about the client.
FORWARDED_KEYS = (
    "HTTP_FORWARDED",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_PROTOCOL",
    "HTTP_X_FORWARDED_SSL",
    "HTTP_X_REAL_IP",
)


def networks(trusted: Sequence[str] | None) -> list[Network] | None:
    """``http.trustedproxies`` parsed; None trusts every peer. A bad entry is a ConfigError."""
    if trusted is None:
        return None
    parsed = []
    for i, entry in enumerate(trusted):
        try:
            parsed.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                f"http.trustedproxies[{i}]",
                f"expected an IP address or CIDR network, got {entry!r}",
            ) from None
    return parsed


def is_trusted(peer: str, trusted: Iterable[Network] | None) -> bool:
    """Whether ``peer`` (the socket's address) may set forwarding headers.

    A peer without an IP address (on a unix socket) is a local proxy and is trusted, as
    gunicorn trusts it.
    """
    if trusted is None:
        return True
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in trusted)


def strip_untrusted(environ: dict[str, Any], trusted: Iterable[Network] | None) -> None:
    """Remove the forwarding headers from ``environ`` unless its peer is trusted."""
    if not is_trusted(environ.get("REMOTE_ADDR", ""), trusted):
        for key in FORWARDED_KEYS:
            environ.pop(key, None)


def guard(app: Callable, trusted: Sequence[str] | None) -> Callable:
    """``app`` behind :func:`strip_untrusted`, with the peer's address as Go reports it.

    A dual-stack listener sees an IPv4 client as ``::ffff:a.b.c.d``; Go (and so the logs and
    ``remoteaddr`` users expect) shows ``a.b.c.d``.
    """
    parsed = networks(trusted)

    def guarded(environ: dict[str, Any], start_response: Callable) -> Any:
        peer = environ.get("REMOTE_ADDR", "")
        if peer.startswith("::ffff:"):
            environ["REMOTE_ADDR"] = _unmapped(peer)
        if parsed is not None:
            strip_untrusted(environ, parsed)
        return app(environ, start_response)

    return guarded


def gunicorn_allow_list(trusted: Sequence[str] | None) -> str:
    """gunicorn's ``forwarded_allow_ips``, so that its ``wsgi.url_scheme`` agrees with us.

    Each IPv4 network is listed again as IPv4-mapped IPv6, the form gunicorn sees an IPv4
    peer in on a dual-stack listener.
    """
    if trusted is None:
        return "*"
    entries = []
    for network in networks(trusted) or []:
        entries.append(str(network))
        if network.version == 4:
            entries.append(f"::ffff:{network.network_address}/{96 + network.prefixlen}")
    return ",".join(entries)


def _unmapped(peer: str) -> str:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    mapped = isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped
    return str(mapped) if mapped else peer


def forwarded_client(environ: dict[str, Any]) -> str | None:
    """The client's IP address as the proxy reports it (first ``X-Forwarded-For`` entry, else
    ``X-Real-Ip``), for the access log; None without a usable header."""
    first = environ.get("HTTP_X_FORWARDED_FOR", "").partition(",")[0].strip()
    for candidate in (first, environ.get("HTTP_X_REAL_IP", "").strip()):
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None
