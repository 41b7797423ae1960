"""The registry's configuration: the Go registry's ``config.yml`` and ``REGISTRY_*`` variables.

Users bring the configuration they ran ``registry:2`` with, so it is read the way distribution
reads it (``configuration/configuration.go`` and ``parser.go``):

* YAML as go-yaml v2 resolves it: ``y``/``n``/``yes``/``off`` are booleans, ``1e3`` is a float,
  timestamps stay strings, and a string field takes any scalar's text (``addr: 5000`` is
  ``"5000"``).
* ``REGISTRY_*`` variables override the file after it is read and before defaults are filled
  in, in sorted order, so ``REGISTRY_STORAGE`` applies before ``REGISTRY_STORAGE_S3_REGION``.
* Durations are Go ``time.Duration`` values (``10s``, ``1h30m``, or an integer of
  nanoseconds). Every ``float`` field below is such a duration, in seconds.

Unknown keys are ignored as Go ignores them, with a warning. Anything else that is wrong raises
:class:`ConfigError` naming the dotted key, so start-up can stop with one clear line.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import logging
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar, Literal

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from distribution import duration

logger = logging.getLogger(__name__)

#: The only configuration version distribution has defined.
SUPPORTED_VERSION = "0.1"

LogLevel = Literal["error", "warn", "info", "debug"]


class ConfigError(Exception):
    """A configuration problem, named by its dotted key (or by the file for file problems)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def _meta(
    *,
    key: str | None = None,
    go: str | None = None,
    positive: bool = False,
    minimum: int | None = None,
    numeric_text: bool = False,
    regex: bool = False,
) -> dict[str, Any]:
    """What a field's type does not say, as ``dataclasses.field`` metadata.

    ``key`` is the YAML key where it is not the attribute name; ``go`` is distribution's Go field
    name, which its environment variables use where it differs from the key; ``positive`` means
    Go fills in the default for zero or less; ``numeric_text`` accepts an integer written as a
    string, as Go's ``strconv.Atoi(fmt.Sprint(v))`` does; ``regex`` checks that each string is
    a regular expression.
    """
    return {
        "key": key,
        "go": go,
        "positive": positive,
        "minimum": minimum,
        "numeric_text": numeric_text,
        "regex": regex,
    }


@dataclass(frozen=True, kw_only=True)
class AccessLog:
    disabled: bool = False


@dataclass(frozen=True, kw_only=True)
class SMTP:
    addr: str | None = None
    username: str | None = None
    password: str | None = None
    insecure: bool = False


@dataclass(frozen=True, kw_only=True)
class MailOptions:
    smtp: SMTP = field(default_factory=SMTP)
    from_: str | None = field(default=None, metadata=_meta(key="from"))
    to: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class LogHook:
    disabled: bool = False
    type: str | None = None
    levels: tuple[str, ...] = ()
    options: MailOptions = field(default_factory=MailOptions, metadata=_meta(go="MailOptions"))


@dataclass(frozen=True, kw_only=True)
class Log:
    accesslog: AccessLog = field(default_factory=AccessLog)
    level: LogLevel = "info"
    formatter: Literal["text", "json", "logstash"] = "text"
    fields: dict[str, Any] = field(default_factory=dict)
    hooks: tuple[LogHook, ...] = ()
    reportcaller: bool = False


@dataclass(frozen=True, kw_only=True)
class StorageDelete:
    enabled: bool = False


@dataclass(frozen=True, kw_only=True)
class StorageCache:
    """``blobdescriptorsize`` None is unset (Go's 10000); 0 or less means no limit, as in Go.

    ``layerinfo`` is the old name Go still reads when ``blobdescriptor`` is unset.
    """

    blobdescriptor: str | None = None
    blobdescriptorsize: int | None = field(default=None, metadata=_meta(numeric_text=True))
    layerinfo: str | None = None

    @property
    def kind(self) -> str | None:
        return self.blobdescriptor or self.layerinfo


@dataclass(frozen=True, kw_only=True)
class UploadPurging:
    enabled: bool = True
    age: float = 168 * 3600.0
    interval: float = 24 * 3600.0
    dryrun: bool = False


@dataclass(frozen=True, kw_only=True)
class ReadOnly:
    enabled: bool = False


@dataclass(frozen=True, kw_only=True)
class GarbageCollection:
    """``storage.maintenance.gc``: our extension (the Go registry has no scheduled GC).

    Online garbage collection run by one worker of one replica every ``interval``, sparing
    anything younger than ``age`` (the grace period); see ``distribution/storage/gc.py``.
    """

    enabled: bool = False
    interval: float = field(default=24 * 3600.0, metadata=_meta(positive=True))
    age: float = field(default=3600.0, metadata=_meta(positive=True))
    dryrun: bool = False
    deleteuntagged: bool = False


@dataclass(frozen=True, kw_only=True)
class StorageMaintenance:
    uploadpurging: UploadPurging = field(default_factory=UploadPurging)
    readonly: ReadOnly = field(default_factory=ReadOnly)
    gc: GarbageCollection = field(default_factory=GarbageCollection)
    #: Our extensions (Go ignores them here), each checked by its package at start-up:
    #: :mod:`distribution.usage`, :mod:`distribution.retention`, :mod:`distribution.quotas`.
    usage: dict[str, Any] = field(default_factory=dict)
    retention: dict[str, Any] = field(default_factory=dict)
    quotas: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, kw_only=True)
class StorageRedirect:
    disable: bool = False


@dataclass(frozen=True, kw_only=True)
class StorageTag:
    concurrencylimit: int | None = field(default=None, metadata=_meta(minimum=0))


@dataclass(frozen=True, kw_only=True)
class Storage:
    """The one storage driver, its free-form parameters, and the reserved sections beside it.

    Whether ``driver`` names a known driver is the storage factory's check, not this module's.
    """

    driver: str
    parameters: dict[str, Any]
    delete: StorageDelete = field(default_factory=StorageDelete)
    cache: StorageCache = field(default_factory=StorageCache)
    maintenance: StorageMaintenance = field(default_factory=StorageMaintenance)
    redirect: StorageRedirect = field(default_factory=StorageRedirect)
    tag: StorageTag = field(default_factory=StorageTag)


@dataclass(frozen=True, kw_only=True)
class Auth:
    """The access controller; ``type`` is None without one (Go also treats ``none`` so)."""

    type: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Middleware:
    name: str | None = None
    disabled: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class LetsEncrypt:
    cachefile: str | None = None
    email: str | None = None
    hosts: tuple[str, ...] = ()
    directoryurl: str | None = None


@dataclass(frozen=True, kw_only=True)
class TLS:
    certificate: str | None = None
    key: str | None = None
    clientcas: tuple[str, ...] = ()
    clientauth: (
        Literal[
            "request-client-cert",
            "require-any-client-cert",
            "verify-client-cert-if-given",
            "require-and-verify-client-cert",
        ]
        | None
    ) = None
    minimumtls: Literal["tls1.0", "tls1.1", "tls1.2", "tls1.3"] = "tls1.2"
    ciphersuites: tuple[str, ...] = ()
    letsencrypt: LetsEncrypt = field(default_factory=LetsEncrypt)


@dataclass(frozen=True, kw_only=True)
class Prometheus:
    enabled: bool = False
    path: str = "/metrics"


@dataclass(frozen=True, kw_only=True)
class Debug:
    addr: str | None = None
    prometheus: Prometheus = field(default_factory=Prometheus)


@dataclass(frozen=True, kw_only=True)
class HTTP2:
    disabled: bool = False


@dataclass(frozen=True, kw_only=True)
class H2C:
    enabled: bool = False


@dataclass(frozen=True, kw_only=True)
class HTTPTimeouts:
    """Our extension: how long a client may take, as nginx's ``client_header_timeout``,
    ``client_body_timeout``/``send_timeout`` and ``keepalive_timeout`` bound it. The Go registry
    has none (a goroutine per connection costs little); here each stalled connection would
    otherwise hold a descriptor, and a stalled body a thread, for ever."""

    #: The whole request line and headers.
    header: float = field(default=60.0, metadata=_meta(positive=True))
    #: Between two reads of a request body, and for each write of an answer.
    body: float = field(default=60.0, metadata=_meta(positive=True))
    #: A kept-alive connection waiting for its next request.
    idle: float = field(default=60.0, metadata=_meta(positive=True))


@dataclass(frozen=True, kw_only=True)
class HTTP:
    """The HTTP server. ``secret`` is None when unset: the server then makes one up and warns.

    ``workers`` and ``threads`` are our extension (gunicorn's concurrency); None lets the server
    choose from the CPU count.
    """

    addr: str = ":5000"
    net: Literal["tcp", "unix"] = "tcp"
    prefix: str | None = None
    host: str | None = None
    secret: str | None = None
    relativeurls: bool = False
    draintimeout: float = 0.0
    tls: TLS = field(default_factory=TLS)
    headers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    debug: Debug = field(default_factory=Debug)
    http2: HTTP2 = field(default_factory=HTTP2)
    h2c: H2C = field(default_factory=H2C)
    workers: int | None = field(default=None, metadata=_meta(minimum=1))
    threads: int | None = field(default=None, metadata=_meta(minimum=1))
    timeouts: HTTPTimeouts = field(default_factory=HTTPTimeouts)
    trustedproxies: tuple[str, ...] | None = None
    """Our extension: the peers (IP addresses or CIDR networks) whose ``X-Forwarded-*``,
    ``X-Real-Ip`` and ``Forwarded`` headers are believed. None (unset) believes every peer, as
    the Go registry does behind a proxy; ``[]`` believes none, for a registry exposed directly."""


@dataclass(frozen=True, kw_only=True)
class Events:
    includereferences: bool = False


@dataclass(frozen=True, kw_only=True)
class Ignore:
    mediatypes: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """A webhook; the defaults are those Go's notifications package fills in for zero values."""

    name: str | None = None
    disabled: bool = False
    url: str | None = None
    headers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    timeout: float = field(default=1.0, metadata=_meta(positive=True))
    threshold: int = field(default=10, metadata=_meta(positive=True))
    backoff: float = field(default=1.0, metadata=_meta(positive=True))
    ignoredmediatypes: tuple[str, ...] = ()
    ignore: Ignore = field(default_factory=Ignore)


@dataclass(frozen=True, kw_only=True)
class Notifications:
    """``redis`` (our extension) holds the notification queues in a Redis of their own (a
    database or server without eviction); unset, they live in the top-level ``redis``."""

    events: Events = field(default_factory=Events, metadata=_meta(go="EventConfig"))
    endpoints: tuple[Endpoint, ...] = ()
    redis: Redis | None = None


@dataclass(frozen=True, kw_only=True)
class RedisPool:
    maxidle: int = 0
    maxactive: int = 0
    idletimeout: float = 0.0


@dataclass(frozen=True, kw_only=True)
class RedisTLS:
    """TLS to Redis with Go's keys: a client ``certificate`` and ``key``, and the CAs that
    verify the server, ``rootcas`` (3.1) or ``clientcas`` (3.0's name for them).

    Any of them turns TLS on, as in Go 3.1; ``enabled`` (our extension) turns it on with the
    system's CAs and no file.
    """

    enabled: bool = False
    certificate: str | None = None
    key: str | None = None
    rootcas: tuple[str, ...] = ()
    clientcas: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.enabled or self.certificate or self.key or self.rootcas or self.clientcas)


@dataclass(frozen=True, kw_only=True)
class Redis:
    """Redis, with the keys of registry 2.x (``addr``, ``pool``) and 3.x (go-redis's
    ``UniversalOptions``: ``addrs``, sentinel, pool and retry settings).

    Zero means the client library's default. ``keyprefix`` (our extension) goes before the
    keys only this registry uses (notification queues, the maintenance lease), so that two
    deployments can share a database; the blob descriptor cache keeps Go's keys.
    """

    addr: str | None = None
    addrs: tuple[str, ...] = ()
    clientname: str | None = None
    username: str | None = None
    password: str | None = None
    db: int = 0
    protocol: int = 0
    mastername: str | None = None
    sentinelusername: str | None = None
    sentinelpassword: str | None = None
    maxretries: int = 0
    minretrybackoff: float = 0.0
    maxretrybackoff: float = 0.0
    dialtimeout: float = 0.0
    readtimeout: float = 0.0
    writetimeout: float = 0.0
    contexttimeoutenabled: bool = False
    pool: RedisPool = field(default_factory=RedisPool)
    poolfifo: bool = False
    poolsize: int = 0
    pooltimeout: float = 0.0
    minidleconns: int = 0
    maxidleconns: int = 0
    maxactiveconns: int = 0
    connmaxidletime: float = 0.0
    connmaxlifetime: float = 0.0
    maxredirects: int = 0
    readonly: bool = False
    routebylatency: bool = False
    routerandomly: bool = False
    disableidentity: bool = False
    identitysuffix: str | None = None
    unstableresp3: bool = False
    tls: RedisTLS = field(default_factory=RedisTLS)
    keyprefix: str = ""


@dataclass(frozen=True, kw_only=True)
class StorageDriverHealth:
    enabled: bool = False
    interval: float = field(default=10.0, metadata=_meta(positive=True))
    threshold: int = 0


@dataclass(frozen=True, kw_only=True)
class FileHealthCheck:
    file: str | None = None
    interval: float = field(default=10.0, metadata=_meta(positive=True))
    threshold: int = 0


@dataclass(frozen=True, kw_only=True)
class HTTPHealthCheck:
    uri: str | None = None
    headers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    statuscode: int = field(default=200, metadata=_meta(positive=True))
    timeout: float = 0.0
    interval: float = field(default=10.0, metadata=_meta(positive=True))
    threshold: int = 0


@dataclass(frozen=True, kw_only=True)
class TCPHealthCheck:
    addr: str | None = None
    timeout: float = 0.0
    interval: float = field(default=10.0, metadata=_meta(positive=True))
    threshold: int = 0


@dataclass(frozen=True, kw_only=True)
class Health:
    storagedriver: StorageDriverHealth = field(default_factory=StorageDriverHealth)
    file: tuple[FileHealthCheck, ...] = field(default=(), metadata=_meta(go="FileCheckers"))
    http: tuple[HTTPHealthCheck, ...] = field(default=(), metadata=_meta(go="HTTPCheckers"))
    tcp: tuple[TCPHealthCheck, ...] = field(default=(), metadata=_meta(go="TCPCheckers"))


@dataclass(frozen=True, kw_only=True)
class ProxyExec:
    """Go 3.1's credential helper for the upstream (refused at start-up, see ``parity``)."""

    command: str | None = None
    lifetime: float | None = None


@dataclass(frozen=True, kw_only=True)
class Proxy:
    """Pull-through cache; ``ttl`` 0 keeps cached content for ever, as in Go."""

    remoteurl: str | None = None
    username: str | None = None
    password: str | None = None
    exec: ProxyExec | None = None
    ttl: float = 7 * 24 * 3600.0
    cachewritetimeout: float | None = None


@dataclass(frozen=True, kw_only=True)
class URLs:
    allow: tuple[str, ...] = field(default=(), metadata=_meta(regex=True))
    deny: tuple[str, ...] = field(default=(), metadata=_meta(regex=True))


@dataclass(frozen=True, kw_only=True)
class Platform:
    architecture: str | None = None
    os: str | None = None


@dataclass(frozen=True, kw_only=True)
class Indexes:
    platforms: Literal["all", "none", "list"] = "all"
    platformlist: tuple[Platform, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ManifestValidation:
    urls: URLs = field(default_factory=URLs)
    indexes: Indexes = field(default_factory=Indexes)


@dataclass(frozen=True, kw_only=True)
class Validation:
    enabled: bool = False
    disabled: bool = False
    manifests: ManifestValidation = field(default_factory=ManifestValidation)

    @property
    def active(self) -> bool:
        """Go validates unless ``disabled``; the deprecated ``enabled: true`` forces it on."""
        return self.enabled or not self.disabled


@dataclass(frozen=True, kw_only=True)
class Catalog:
    maxentries: int = field(default=1000, metadata=_meta(positive=True))


@dataclass(frozen=True, kw_only=True)
class Tags:
    """distribution v3.1's ``tags`` section: ``maxtags`` caps the ``n`` of a tag list page.

    0 (or unset) means Go's default of 1000; a negative number stops start-up, as in Go.
    """

    maxtags: int = field(default=1000, metadata=_meta(minimum=0, positive=True))


@dataclass(frozen=True, kw_only=True)
class UI:
    """Our extension: the web UI under ``/ui/`` (:mod:`distribution.ui`).

    ``sessiontimeout`` is how long a sign-in lasts (a duration, default 12 hours).
    """

    enabled: bool = True
    sessiontimeout: float = field(default=12 * 3600.0, metadata=_meta(positive=True))


@dataclass(frozen=True, kw_only=True)
class PolicyRepository:
    classes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Policy:
    repository: PolicyRepository = field(default_factory=PolicyRepository)


@dataclass(frozen=True, kw_only=True)
class Bugsnag:
    apikey: str | None = None
    releasestage: str | None = None
    endpoint: str | None = None


@dataclass(frozen=True, kw_only=True)
class NewRelic:
    licensekey: str | None = None
    name: str | None = None
    verbose: bool = False


@dataclass(frozen=True, kw_only=True)
class Reporting:
    """Registry 2.x's error reporting services (not supported, see ``parity``)."""

    bugsnag: Bugsnag = field(default_factory=Bugsnag)
    newrelic: NewRelic = field(default_factory=NewRelic)


@dataclass(frozen=True, kw_only=True)
class Schema1:
    signingkeyfile: str | None = field(default=None, metadata=_meta(go="TrustKey"))
    enabled: bool = False


@dataclass(frozen=True, kw_only=True)
class Compatibility:
    """Registry 2.x's schema 1 settings (not supported, see ``parity``)."""

    schema1: Schema1 = field(default_factory=Schema1)


@dataclass(frozen=True, kw_only=True)
class Configuration:
    """Everything ``config.yml`` says, as distribution's ``Configuration`` struct has it."""

    version: str = SUPPORTED_VERSION
    log: Log = field(default_factory=Log)
    storage: Storage
    auth: Auth = field(default_factory=Auth)
    middleware: dict[str, tuple[Middleware, ...]] = field(default_factory=dict)
    http: HTTP = field(default_factory=HTTP)
    notifications: Notifications = field(default_factory=Notifications)
    redis: Redis = field(default_factory=Redis)
    health: Health = field(default_factory=Health)
    proxy: Proxy = field(default_factory=Proxy)
    validation: Validation = field(default_factory=Validation)
    catalog: Catalog = field(default_factory=Catalog)
    tags: Tags = field(default_factory=Tags)
    policy: Policy = field(default_factory=Policy)
    #: Our extension, checked by :mod:`distribution.access`: per-repository access rules.
    access: dict[str, Any] = field(default_factory=dict)
    #: Our extension: the web UI.
    ui: UI = field(default_factory=UI)
    reporting: Reporting = field(default_factory=Reporting)
    compatibility: Compatibility = field(default_factory=Compatibility)


def load(path: str | None = None, environ: Mapping[str, str] | None = None) -> Configuration:
    """Read the configuration file at ``path`` (None: the embedded default, the Go image's).

    ``environ`` (default ``os.environ``) supplies the ``REGISTRY_*`` overrides.
    """
    if path is None:
        resource = importlib.resources.files(__package__) / "default-config.yml"
        return parse(resource.read_bytes(), environ, source=str(resource))
    try:
        with open(path, "rb") as file:
            text = file.read()
    except OSError as err:
        raise ConfigError(path, f"cannot read configuration file: {err.strerror or err}") from None
    return parse(text, environ, source=path)


def parse(
    text: str | bytes,
    environ: Mapping[str, str] | None = None,
    *,
    source: str = "<string>",
) -> Configuration:
    """Parse configuration YAML, apply ``REGISTRY_*`` overrides and fill in defaults.

    ``source`` names the text in errors about the document as a whole.
    """
    try:
        node = _compose(text)
    except yaml.YAMLError as err:
        raise ConfigError(source, f"invalid YAML: {_reason(err)}") from None
    if node is None or _is_null(node):
        node = MappingNode("tag:yaml.org,2002:map", [])
    if not isinstance(node, MappingNode):
        raise ConfigError(source, f"expected a mapping at the top level, got {_describe(node)}")
    _check_version(node)
    tree = _ROOT.decode(node, "")
    tree = _apply_environment(tree, os.environ if environ is None else environ)
    log = tree.get("log", {})
    if "level" not in log and "loglevel" in tree:
        tree["log"] = {**log, "level": tree["loglevel"]}
    return _ROOT.build(tree)


def load_yaml(text: str | bytes, source: str) -> Any:
    """A YAML document read as the configuration is (go-yaml's scalars), for files that a
    section points to; None for an empty one. ``source`` names it in errors."""
    try:
        node = _compose(text)
    except yaml.YAMLError as err:
        raise ConfigError(source, f"invalid YAML: {_reason(err)}") from None
    if node is None or _is_null(node):
        return None
    return _construct(node, source)


def _check_version(node: MappingNode) -> None:
    """Go reads the version before anything else, so its error comes first."""
    found = [value for key, value in _pairs(node, "version") if key == "version"]
    version = _STR.decode(found[-1], "version") if found else None
    if version is None:
        raise ConfigError("version", f"required (this registry reads version {SUPPORTED_VERSION})")
    if version != SUPPORTED_VERSION:
        raise ConfigError(
            "version",
            f"unsupported version {version!r} (this registry reads version {SUPPORTED_VERSION})",
        )


def _apply_environment(tree: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Apply ``REGISTRY_*`` variables as Go's ``Parser.overwriteFields`` does.

    The name after the prefix is split on every ``_``, so ``__`` gives an empty segment (which
    names no section key; in a free-form map it is an empty key, as in Go). Variables apply in
    sorted order, so a whole section such as ``REGISTRY_STORAGE`` is set before the variables
    that change its parts.
    """
    for name in sorted(environ):
        # The CLI reads REGISTRY_CONFIGURATION_PATH as the file to load: it overrides no key.
        if not name.startswith("REGISTRY_") or name == "REGISTRY_CONFIGURATION_PATH":
            continue
        try:
            tree = _ROOT.apply(tree, name.split("_")[1:], environ[name], "")
        except _Unrecognized:
            logger.warning("Ignoring unrecognized environment variable %s", name)
        except ConfigError as err:
            message = f"{err.message} (from environment variable {name})"
            raise ConfigError(err.key, message) from None
    return tree


class _Unrecognized(Exception):
    """An environment variable names no configuration key; Go warns and goes on."""


class _Resolver(BaseResolver):
    """Resolves plain scalars as go-yaml v2 does rather than as PyYAML's YAML 1.1 rules do.

    The differences: ``y``/``n`` are booleans, ``1e3`` is a float, ``1:30`` and timestamps stay
    strings, and there is no ``=`` value tag.
    """


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(
        r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE"
        r"|on|On|ON|off|Off|OFF)$"
    ),
    list("yYnNtTfFoO"),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(
        r"^[-+]?(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+"
        r"|0(?:_?[0-7])*|[1-9](?:_?[0-9])*)$"
    ),
    list("-+0123456789"),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_Resolver.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^<<$"), ["<"])


class _Loader(Reader, Scanner, Parser, Composer, _Resolver):
    """Composes YAML into nodes; values are decoded against the schema below, not by PyYAML."""

    def __init__(self, stream: str | bytes) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Resolver.__init__(self)


class _Constructor(SafeConstructor):
    """Builds free-form values from nodes, with go-yaml's booleans and integers."""

    bool_values: ClassVar[dict[str, bool]] = {**SafeConstructor.bool_values, "y": True, "n": False}

    def construct_go_int(self, node: ScalarNode) -> int:
        text = self.construct_scalar(node).replace("_", "")
        if re.fullmatch(r"[-+]?0[0-7]+", text):
            return int(text, 8)
        return int(text, 0)


_Constructor.add_constructor("tag:yaml.org,2002:int", _Constructor.construct_go_int)


def _compose(text: str | bytes) -> Node | None:
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _construct(node: Node, key: str) -> Any:
    try:
        return _Constructor().construct_document(node)
    except (yaml.YAMLError, ValueError) as err:
        raise ConfigError(key, f"invalid value: {_reason(err)}") from None


def _reason(err: Exception) -> str:
    """A YAML error on one line: what went wrong, and where."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        what = ": ".join(part for part in (err.context, err.problem) if part)
        mark = err.problem_mark
        return f"{what} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(err).split())


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return "nothing" if _is_null(node) else repr(node.value)


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _pairs(node: Node, key: str) -> list[tuple[str, Node]]:
    """A mapping's entries, ``<<`` merges resolved, keys as go-yaml reads them into strings."""
    if not isinstance(node, MappingNode):
        raise ConfigError(key, f"expected a mapping, got {_describe(node)}")
    try:
        _Constructor().flatten_mapping(node)
    except yaml.YAMLError as err:
        raise ConfigError(key, _reason(err)) from None
    pairs = []
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            raise ConfigError(key, f"expected a mapping with plain keys, got {_describe(key_node)}")
        pairs.append((key_node.value, value_node))
    return pairs


def _node(payload: str, key: str) -> Node | None:
    """An environment variable's value as YAML, as Go unmarshals it."""
    try:
        return _compose(payload)
    except yaml.YAMLError as err:
        raise ConfigError(key, f"invalid YAML: {_reason(err)}") from None


class _Kind:
    """How one kind of value is decoded from YAML, overridden from the environment, and built.

    Decoding gives a plain tree (dicts, lists, scalars; durations as seconds) that the
    environment overrides change; building turns the tree into the dataclasses above.
    """

    def decode(self, node: Node, key: str) -> Any:
        """The value of ``node`` at ``key``, or None for a YAML null (which means unset)."""
        raise NotImplementedError

    def apply(self, current: Any, segments: list[str], payload: str, key: str) -> Any:
        """``current`` with a variable's ``payload`` set at the path ``segments`` below it."""
        if not segments:
            return self.from_env(payload, key)
        return self.descend(current, segments, payload, key)

    def from_env(self, payload: str, key: str) -> Any:
        node = _node(payload, key)
        return None if node is None else self.decode(node, key)

    def descend(self, current: Any, segments: list[str], payload: str, key: str) -> Any:
        raise _Unrecognized

    def build(self, value: Any) -> Any:
        return value


class _Scalar(_Kind):
    expected = "a value"

    def decode(self, node: Node, key: str) -> Any:
        if _is_null(node):
            return None
        if not isinstance(node, ScalarNode):
            raise ConfigError(key, f"expected {self.expected}, got {_describe(node)}")
        return self.convert(node, key)

    def convert(self, node: ScalarNode, key: str) -> Any:
        raise NotImplementedError


class _Str(_Scalar):
    """Text. go-yaml gives a string field the text of any scalar, whatever it resolves to."""

    expected = "a string"

    def convert(self, node: ScalarNode, key: str) -> Any:
        return self.check(node.value, key)

    def check(self, text: str, key: str) -> Any:
        return text

    def from_env(self, payload: str, key: str) -> Any:
        """The YAML scalar's text, as in Go (so quotes are stripped), else the raw value.

        Go rejects a value that is not a YAML scalar (``a: b``, ``[x]``, ``%x``); text is what a
        string field wants, so it is taken as it stands.
        """
        try:
            node = _compose(payload)
        except yaml.YAMLError:
            return self.check(payload, key)
        if node is None or _is_null(node):
            return None
        return self.check(node.value if isinstance(node, ScalarNode) else payload, key)


class _Regex(_Str):
    """A regular expression, compiled once here so a bad one stops start-up, not a request."""

    expected = "a regular expression"

    def check(self, text: str, key: str) -> Any:
        try:
            re.compile(text)
        except re.error as err:
            raise ConfigError(key, f"invalid regular expression {text!r}: {err}") from None
        return text


class _Choice(_Str):
    """One of a few words, compared in lower case as Go compares log levels."""

    def __init__(self, choices: tuple[str, ...]) -> None:
        self.choices = choices

    def check(self, text: str, key: str) -> Any:
        if not text:
            return None
        if text.lower() not in self.choices:
            raise ConfigError(key, f"expected one of {', '.join(self.choices)}, got {text!r}")
        return text.lower()


class _Bool(_Scalar):
    expected = "true or false"

    def convert(self, node: ScalarNode, key: str) -> Any:
        value = _construct(node, key)
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {node.value!r}")
        return value


class _Int(_Scalar):
    expected = "an integer"

    def __init__(self, minimum: int | None = None, numeric_text: bool = False) -> None:
        self.minimum = minimum
        self.numeric_text = numeric_text

    def convert(self, node: ScalarNode, key: str) -> Any:
        value = _construct(node, key)
        if self.numeric_text and isinstance(value, str) and re.fullmatch(r"[-+]?\d+", value):
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"expected an integer, got {node.value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(key, f"must be at least {self.minimum}, got {value}")
        return value


class _Duration(_Scalar):
    """A Go duration: a string such as ``1h30m``, or a number of nanoseconds as go-yaml has it."""

    expected = "a duration"

    def convert(self, node: ScalarNode, key: str) -> Any:
        value = _construct(node, key)
        nanoseconds = None
        if isinstance(value, str):
            nanoseconds = duration.parse(value)
        elif (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ):
            nanoseconds = int(value)
        if nanoseconds is None or not duration.fits(nanoseconds):
            raise ConfigError(
                key, f"expected a duration such as 10s, 300ms or 1h30m, got {node.value!r}"
            )
        return nanoseconds / 1e9


class _List(_Kind):
    """A list; variables address its items by index, and the index one past the end appends."""

    def __init__(self, item: _Kind) -> None:
        self.item = item

    def decode(self, node: Node, key: str) -> Any:
        if _is_null(node):
            return None
        if not isinstance(node, SequenceNode):
            raise ConfigError(key, f"expected a list, got {_describe(node)}")
        return [
            _present(self.item.decode(item, f"{key}[{index}]"), f"{key}[{index}]")
            for index, item in enumerate(node.value)
        ]

    def descend(self, current: Any, segments: list[str], payload: str, key: str) -> Any:
        head, rest = segments[0], segments[1:]
        if not re.fullmatch(r"[-+]?\d+", head):
            raise ConfigError(key, f"non-numeric index {head!r}")
        index, items = int(head), list(current or [])
        if not 0 <= index <= len(items):
            raise ConfigError(
                key,
                f"undefined index {index}: the list has {len(items)} (index {len(items)} adds one)",
            )
        if index == len(items):
            items.append(None)
        item_key = f"{key}[{index}]"
        items[index] = _present(self.item.apply(items[index], rest, payload, item_key), item_key)
        return items

    def build(self, value: Any) -> Any:
        return tuple(self.item.build(item) for item in value or ())


def _present(value: Any, key: str) -> Any:
    if value is None:
        raise ConfigError(key, "expected a value, got nothing")
    return value


class _Any(_Kind):
    """A free-form value (Go's ``interface{}``): drivers and middleware check their own."""

    def decode(self, node: Node, key: str) -> Any:
        return _construct(node, key)

    def descend(self, current: Any, segments: list[str], payload: str, key: str) -> Any:
        if current is not None and not isinstance(current, dict):
            raise _Unrecognized
        return _PARAMETERS.descend(current, segments, payload, key)


class _Map(_Kind):
    """A map with free keys (a Go map, such as driver parameters or ``http.headers``).

    As in Go's ``overwriteMap``, a variable descends into an existing key whose upper case
    equals its segment; the last segment, or one matching no key, sets the key in lower case.
    """

    def __init__(self, item: _Kind) -> None:
        self.item = item

    def item_kind(self, name: str) -> _Kind:
        return self.item

    def decode(self, node: Node, key: str) -> Any:
        if _is_null(node):
            return None
        return {
            name: self.item_kind(name).decode(value, _join(key, name))
            for name, value in _pairs(node, key)
        }

    def descend(self, current: Any, segments: list[str], payload: str, key: str) -> Any:
        entries = dict(current or {})
        head, rest = segments[0], segments[1:]
        if rest:
            for name, value in entries.items():
                if str(name).upper() == head and value is not None:
                    kind = self.item_kind(name)
                    entries[name] = kind.apply(value, rest, payload, _join(key, str(name)))
                    return entries
        name = head.lower()
        entries[name] = self.item_kind(name).apply(None, rest, payload, _join(key, name))
        return entries

    def build(self, value: Any) -> Any:
        return {name: self.item_kind(name).build(item) for name, item in (value or {}).items()}


class _StorageKind(_Map):
    """Go's ``Storage``: a map of one driver's parameters and the reserved sections.

    A bare string names a driver with no parameters, so ``REGISTRY_STORAGE=inmemory`` replaces
    the whole section, reserved sections included, as it does in Go.
    """

    def item_kind(self, name: str) -> _Kind:
        return _STORAGE_SECTIONS.get(name, _PARAMETERS)

    def decode(self, node: Node, key: str) -> Any:
        if isinstance(node, ScalarNode) and not _is_null(node):
            return {node.value: {}}
        if isinstance(node, MappingNode):
            for name, _ in _pairs(node, key):
                _check_placement(name)
        sections = super().decode(node, key)
        _storage_drivers(sections or {})
        return sections

    def build(self, value: Any) -> Any:
        sections = value or {}
        drivers = _storage_drivers(sections)
        if not drivers:
            raise ConfigError("storage", "no storage configuration provided")
        reserved = {
            name: kind.build(sections.get(name)) for name, kind in _STORAGE_SECTIONS.items()
        }
        parameters = _PARAMETERS.build(sections[drivers[0]])
        return Storage(driver=drivers[0], parameters=parameters, **reserved)


def _check_placement(name: str) -> None:
    if name in _MAINTENANCE_EXTENSIONS:
        raise ConfigError(
            f"storage.{name}",
            "the Go registry would take this for a second storage driver and refuse the "
            f"file; write it as storage.maintenance.{name}",
        )


def _storage_drivers(sections: dict[str, Any]) -> list[str]:
    drivers = sorted(name for name in sections if name not in _STORAGE_SECTIONS)
    for name in drivers:
        _check_placement(name)
    if len(drivers) > 1:
        raise ConfigError(
            "storage", f"must provide exactly one storage type, got {', '.join(drivers)}"
        )
    return drivers


class _AuthKind(_Map):
    """Go's ``Auth``: a map of one access controller's parameters, or just its name."""

    def decode(self, node: Node, key: str) -> Any:
        if isinstance(node, ScalarNode) and not _is_null(node):
            return {node.value: {}}
        entries = super().decode(node, key)
        _auth_type(entries or {})
        return entries

    def build(self, value: Any) -> Any:
        name = _auth_type(value or {})
        if name is None or name.lower() == "none":
            return Auth()
        return Auth(type=name, parameters=_PARAMETERS.build(value[name]))


def _auth_type(entries: dict[str, Any]) -> str | None:
    if len(entries) > 1:
        raise ConfigError(
            "auth", f"must provide exactly one auth type, got {', '.join(sorted(entries))}"
        )
    return next(iter(entries), None)


@dataclass(frozen=True)
class _Field:
    attribute: str | None
    kind: _Kind
    required: bool = False
    positive: bool = False


class _Struct(_Kind):
    """A section, read into one of the dataclasses above, its keys taken from the fields.

    Variables match a key or distribution's Go field name by its upper case, as Go does (so
    ``REGISTRY_http_addr`` matches nothing). ``extra`` keys are read but not kept.
    """

    def __init__(self, cls: type, extra: Mapping[str, _Kind] | None = None) -> None:
        self.cls = cls
        self.fields: dict[str, _Field] = {}
        self.env_names: dict[str, str] = {}
        hints = typing.get_type_hints(cls)
        for spec in dataclasses.fields(cls):
            key = spec.metadata.get("key") or spec.name
            required = spec.default is spec.default_factory is dataclasses.MISSING
            kind = _kind_for(hints[spec.name], spec.metadata)
            positive = spec.metadata.get("positive", False)
            self.fields[key] = _Field(spec.name, kind, required, positive)
            self.env_names[key.upper()] = key
            if spec.metadata.get("go"):
                self.env_names[spec.metadata["go"].upper()] = key
        for key, kind in (extra or {}).items():
            self.fields[key] = _Field(None, kind)
            self.env_names[key.upper()] = key

    def decode(self, node: Node, key: str) -> Any:
        if _is_null(node):
            return None
        values = {}
        for name, value in _pairs(node, key):
            if name in self.fields:
                values[name] = self.fields[name].kind.decode(value, _join(key, name))
            else:
                logger.warning("Ignoring unknown configuration key %s", _join(key, name))
        return {name: value for name, value in values.items() if value is not None}

    def descend(self, current: Any, segments: list[str], payload: str, key: str) -> Any:
        name = self.env_names.get(segments[0])
        if name is None:
            raise _Unrecognized
        values = dict(current or {})
        kind = self.fields[name].kind
        value = kind.apply(values.get(name), segments[1:], payload, _join(key, name))
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
        return values

    def build(self, value: Any) -> Any:
        values, arguments = value or {}, {}
        for name, spec in self.fields.items():
            raw = values.get(name)
            if spec.attribute is None or (raw is None and not spec.required):
                continue
            built = spec.kind.build(raw)
            if built == "" or (spec.positive and built <= 0):
                continue
            arguments[spec.attribute] = built
        return self.cls(**arguments)


@cache
def _struct(cls: type) -> _Struct:
    return _Struct(cls)


def _kind_for(hint: Any, metadata: Mapping[str, Any]) -> _Kind:
    """The kind of value a field's type hint describes."""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if hint is Storage:
        return _STORAGE
    if hint is Auth:
        return _AUTH
    if origin in (typing.Union, types.UnionType):
        (inner,) = (argument for argument in arguments if argument is not type(None))
        return _kind_for(inner, metadata)
    if origin is Literal:
        return _Choice(arguments)
    if origin is tuple:
        return _List(_kind_for(arguments[0], metadata))
    if origin is dict:
        return _PARAMETERS if arguments[1] is Any else _Map(_kind_for(arguments[1], {}))
    if dataclasses.is_dataclass(hint):
        return _struct(hint)
    if hint is int:
        return _Int(metadata.get("minimum"), metadata.get("numeric_text", False))
    if hint is str and metadata.get("regex"):
        return _Regex()
    return {str: _STR, bool: _Bool(), float: _Duration()}[hint]


_STR = _Str()
_PARAMETERS = _Map(_Any())
_STORAGE = _StorageKind(_PARAMETERS)
_AUTH = _AuthKind(_PARAMETERS)
_STORAGE_SECTIONS: dict[str, _Kind] = {
    "delete": _struct(StorageDelete),
    "cache": _struct(StorageCache),
    "maintenance": _struct(StorageMaintenance),
    "redirect": _struct(StorageRedirect),
    "tag": _struct(StorageTag),
}
#: Our sections that belong under ``storage.maintenance``, named in the error when misplaced.
_MAINTENANCE_EXTENSIONS = ("quotas", "retention", "usage")
# The top-level ``loglevel`` is deprecated in Go but still read into ``log.level``.
_ROOT = _Struct(Configuration, extra={"loglevel": _Choice(typing.get_args(LogLevel))})
