"""``cloudfront``: blob GETs redirected to CloudFront URLs signed with a canned policy.

As in Go, the URL is ``baseurl`` (``https://`` added when it has no scheme, ``/`` appended)
+ the object's S3 key, signed with the key pair's RSA key (``privatekey``, a PEM file; Go
reads PKCS #1 only, PKCS #8 works here too) for ``duration`` (default 20 minutes):
``?Expires=...&Signature=...&Key-Pair-Id=...``. With ``ipfilteredby: aws`` (or ``awsregion``
and its comma-separated ``awsregion`` list), clients whose address lies in AWS's published
ranges (``iprangesurl``, fetched at start and every ``updatefrequency``, default 12 hours) get
the bucket's own presigned URL instead, as they pay no egress from S3 in the same region.
Until the ranges were fetched once, everyone goes through CloudFront, as in Go.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import os
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from distribution import duration
from distribution.storage.driver import StorageDriver
from distribution.storage.middleware import MiddlewareError, Redirector, option_string

DEFAULT_DURATION = 20 * 60.0
DEFAULT_UPDATE_FREQUENCY = 12 * 3600.0
DEFAULT_IP_RANGES_URL = "https://ip-ranges.amazonaws.com/ip-ranges.json"
FETCH_TIMEOUT = 30

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Settings:
    baseurl: str
    key: rsa.RSAPrivateKey
    keypairid: str
    duration: float
    ipfilteredby: str
    awsregions: tuple[str, ...]
    updatefrequency: float
    iprangesurl: str


def parse(options: Mapping[str, Any]) -> Settings:
    """Go's checks, in Go's order; the private key is read and parsed here."""
    baseurl = option_string(options, "baseurl", required=True) or ""
    if "://" not in baseurl:
        baseurl = "https://" + baseurl
    if not baseurl.endswith("/"):
        baseurl += "/"
    keyfile = option_string(options, "privatekey", required=True) or ""
    keypairid = option_string(options, "keypairid", required=True) or ""
    try:
        with open(keyfile, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except OSError as err:
        raise MiddlewareError("privatekey", f"failed to read privatekey file: {err}") from None
    except (ValueError, TypeError) as err:
        raise MiddlewareError("privatekey", f"not an unencrypted PEM RSA key: {err}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise MiddlewareError("privatekey", "failed to decode private key as an rsa private key")
    if "updatefrenquency" in options and "updatefrequency" not in options:
        log.warning("cloudfront updatefrenquency is deprecated. Please use updatefrequency")
    frequency = options.get("updatefrequency", options.get("updatefrenquency"))
    filtered = options.get("ipfilteredby", "none")
    if not isinstance(filtered, str):
        raise MiddlewareError("ipfilteredby", "only allows a string: none|aws|awsregion")
    filtered = filtered.strip().lower() or "none"
    if filtered not in ("none", "aws", "awsregion"):
        raise MiddlewareError("ipfilteredby", "only allows one of: none|aws|awsregion")
    regions: tuple[str, ...] = ()
    if filtered == "awsregion":
        listed = options.get("awsregion")
        if listed is None:
            raise MiddlewareError("awsregion", "awsRegion is not defined")
        if not isinstance(listed, str):
            raise MiddlewareError("awsregion", "a comma separated string of aws regions")
        regions = tuple(r.strip().lower() for r in listed.split(","))
    return Settings(
        baseurl=baseurl,
        key=key,
        keypairid=keypairid,
        duration=_seconds(options.get("duration"), "duration", DEFAULT_DURATION),
        ipfilteredby=filtered,
        awsregions=regions,
        updatefrequency=_seconds(frequency, "updatefrequency", DEFAULT_UPDATE_FREQUENCY),
        iprangesurl=option_string(options, "iprangesurl") or DEFAULT_IP_RANGES_URL,
    )


def wrap(settings: Settings, inner: Redirector, driver: StorageDriver) -> Redirector:
    """Go's middleware works only over S3; over another driver it warns and passes through."""
    s3 = getattr(driver, "driver", driver)
    if not hasattr(s3, "bucket_key"):
        log.warning("the CloudFront middleware does not support the %s storage driver", s3.name)
        return inner
    ranges = None
    if settings.ipfilteredby != "none":
        ranges = AWSRanges(settings.iprangesurl, settings.awsregions, settings.updatefrequency)
        ranges.start()
    return _CloudFront(settings, inner, s3.bucket_key, ranges)


def sign(url: str, key: rsa.RSAPrivateKey, keypairid: str, expires: int) -> str:
    """``url`` signed with a canned policy, as AWS's ``sign.URLSigner`` signs it."""
    condition = {"DateLessThan": {"AWS:EpochTime": expires}}
    policy = json.dumps(
        {"Statement": [{"Resource": url, "Condition": condition}]}, separators=(",", ":")
    )
    signature = key.sign(policy.encode(), padding.PKCS1v15(), hashes.SHA1())
    encoded = base64.b64encode(signature).decode().translate(str.maketrans("+=/", "-_~"))
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}Expires={expires}&Signature={encoded}&Key-Pair-Id={keypairid}"


class AWSRanges:
    """AWS's published address ranges (optionally of some regions), refreshed in a thread of
    the process that reads them.

    ``registry serve`` builds its storage in gunicorn's master, where no thread may run (a
    fork copies a lock a thread holds, held forever), so the refreshing thread starts in each
    worker at its first redirect.
    """

    def __init__(self, url: str, regions: tuple[str, ...], every: float) -> None:
        self.url = url
        self.regions = regions
        self.every = every
        self.networks: list[Network] = []
        self.initialized = False
        self._lock = threading.Lock()
        self._refreshing: int | None = None
        self._attempted = float("-inf")

    def start(self) -> None:
        """Fetch the ranges now; a process refreshes them from its first :meth:`keep_fresh`."""
        self.update()

    def update(self) -> None:
        self._attempted = time.monotonic()
        try:
            with urllib.request.urlopen(self.url, timeout=FETCH_TIMEOUT) as response:
                document = json.load(response)
        except (OSError, ValueError) as err:
            log.warning("cloudfront: failed to update AWS IP ranges from %s: %s", self.url, err)
            return
        networks: list[Network] = []
        entries = [(e, "ip_prefix") for e in document.get("prefixes") or []]
        entries += [(e, "ipv6_prefix") for e in document.get("ipv6_prefixes") or []]
        for entry, field in entries:
            if self.regions and str(entry.get("region", "")).lower() not in self.regions:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.get(field, ""), strict=False))
            except ValueError:
                log.error("cloudfront: unparseable cidr %r", entry.get(field))
        with self._lock:
            self.networks, self.initialized = networks, True

    def contains(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        with self._lock:
            return any(ip.version == net.version and ip in net for net in self.networks)

    def keep_fresh(self) -> None:
        """Have a thread of this process refresh the ranges, started once per process."""
        if self._refreshing == os.getpid():
            return
        with self._lock:
            if self._refreshing == os.getpid():
                return
            self._refreshing = os.getpid()
        name = f"aws-ip-ranges {self.url}"
        threading.Thread(target=self._refresh, name=name, daemon=True).start()

    def _refresh(self) -> None:
        """Fetch ``every`` seconds after the last try, which a worker forked long after it
        (one respawned) finds overdue."""
        while True:
            time.sleep(max(0.0, self._attempted + self.every - time.monotonic()))
            self.update()


class _CloudFront:
    def __init__(
        self, settings: Settings, inner: Redirector, bucket_key: Any, ranges: AWSRanges | None
    ) -> None:
        self.settings = settings
        self.inner = inner
        self.bucket_key = bucket_key
        self.ranges = ranges

    def redirect_url(
        self, path: str, method: str = "GET", remote_addr: str | None = None
    ) -> str | None:
        if self.ranges is not None:
            self.ranges.keep_fresh()
        if self.ranges is not None and self.ranges.initialized:
            address = _ip(remote_addr or "")
            if self.ranges.contains(address):
                log.info("request from an allowed AWS range, skipping CloudFront (ip %s)", address)
                return self.inner.redirect_url(path, method, remote_addr)
        expires = int(time.time() + self.settings.duration)
        url = self.settings.baseurl + self.bucket_key(path)
        return sign(url, self.settings.key, self.settings.keypairid, expires)


def _ip(remote_addr: str) -> str:
    """The address of ``ip``, ``ip:port`` or ``[ipv6]:port``."""
    try:
        ipaddress.ip_address(remote_addr)
        return remote_addr
    except ValueError:
        return remote_addr.rsplit(":", 1)[0].strip("[]")


def _seconds(value: Any, option: str, default: float) -> float:
    """A Go duration string (or integer nanoseconds, as our config reads durations)."""
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value / 1e9
    nanoseconds = duration.parse(str(value).strip())
    if nanoseconds is None:
        raise MiddlewareError(option, f"invalid {option}: {value!r}")
    return nanoseconds / 1e9
