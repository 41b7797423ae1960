"""Reading config.yml and REGISTRY_* variables the way distribution does."""

import logging
from pathlib import Path

import pytest

from distribution import config
from distribution.config import ConfigError, load, parse

ETC_CONFIG = Path(__file__).resolve().parents[1] / "etc" / "config.yml"

MINIMAL = """\
version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
"""

# Every section, modelled on the option list in distribution's docs/configuration.md, with the
# mutually exclusive choices made (one driver, one auth) and placeholders filled in.
FULL = r"""
version: 0.1
log:
  accesslog:
    disabled: true
  level: debug
  formatter: json
  fields:
    service: registry
    environment: staging
  hooks:
    - type: mail
      disabled: true
      levels: [panic]
      options:
        smtp:
          addr: mail.example.com:25
          username: mailuser
          password: password
          insecure: true
        from: sender@example.com
        to: [errors@example.com]
  reportcaller: true
storage:
  s3:
    accesskey: awsaccesskey
    secretkey: awssecretkey
    region: us-west-1
    regionendpoint: http://myobjects.local
    forcepathstyle: true
    bucket: bucketname
    chunksize: 5242880
    rootdirectory: /s3/object/name/prefix
  tag:
    concurrencylimit: 8
  delete:
    enabled: true
  redirect:
    disable: true
  cache:
    blobdescriptor: redis
    blobdescriptorsize: 5000
  maintenance:
    uploadpurging:
      enabled: false
      age: 72h
      interval: 12h
      dryrun: true
    readonly:
      enabled: true
auth:
  token:
    autoredirect: true
    realm: token-realm
    service: token-service
    issuer: registry-token-issuer
    rootcertbundle: /root/certs/bundle
    signingalgorithms: [EdDSA, HS256]
middleware:
  registry:
    - name: ARegistryMiddleware
      options:
        foo: bar
  storage:
    - name: cloudfront
      disabled: true
      options:
        baseurl: https://my.cloudfronted.domain.com/
        duration: 3000s
http:
  addr: localhost:5000
  net: tcp
  prefix: /my/nested/registry/
  host: https://myregistryaddress.org:5000
  secret: asecretforlocaldevelopment
  relativeurls: true
  draintimeout: 60s
  tls:
    certificate: /path/to/x509/public
    key: /path/to/x509/private
    clientcas:
      - /path/to/ca.pem
      - /path/to/another/ca.pem
    clientauth: require-and-verify-client-cert
    minimumtls: tls1.3
    ciphersuites: [TLS_AES_128_GCM_SHA256]
    letsencrypt:
      cachefile: /path/to/cache-file
      email: emailused@letsencrypt.com
      hosts: [myregistryaddress.org]
      directoryurl: https://acme-v02.api.letsencrypt.org/directory
  debug:
    addr: localhost:5001
    prometheus:
      enabled: true
      path: /prom
  headers:
    X-Content-Type-Options: [nosniff]
  http2:
    disabled: true
  h2c:
    enabled: true
  workers: 4
  threads: 16
notifications:
  events:
    includereferences: true
  endpoints:
    - name: alistener
      disabled: false
      url: https://my.listener.com/event
      headers:
        Authorization: [Bearer token]
      timeout: 2s
      threshold: 5
      backoff: 3s
      ignoredmediatypes:
        - application/octet-stream
      ignore:
        mediatypes: [application/octet-stream]
        actions: [pull]
redis:
  addr: localhost:6379
  addrs: [localhost:6379, localhost:6380]
  username: user
  password: asecret
  db: 2
  mastername: mymaster
  dialtimeout: 10ms
  readtimeout: 10ms
  writetimeout: 10ms
  pool:
    maxidle: 16
    maxactive: 64
    idletimeout: 300s
  poolsize: 64
  maxidleconns: 16
  connmaxidletime: 300s
  tls:
    enabled: true
    certificate: /path/to/cert.crt
    key: /path/to/key.pem
    clientcas: [/path/to/ca.pem]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
  file:
    - file: /path/to/checked/file
      interval: 10s
  http:
    - uri: http://server.to.check/must/return/200
      headers:
        Authorization: [Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==]
      statuscode: 204
      timeout: 3s
      interval: 15s
      threshold: 3
  tcp:
    - addr: redis-server.domain.com:6379
      timeout: 3s
      interval: 10s
      threshold: 3
proxy:
  remoteurl: https://registry-1.docker.io
  username: username
  password: password
  ttl: 24h
validation:
  disabled: true
  manifests:
    urls:
      allow:
        - ^https?://([^/]+\.)*example\.com/
      deny:
        - ^https?://www\.example\.com/
    indexes:
      platforms: List
      platformlist:
        - architecture: amd64
          os: linux
catalog:
  maxentries: 100
tags:
  maxtags: 50
policy:
  repository:
    classes: [image]
"""


def with_env(env: dict[str, str], text: str = MINIMAL) -> config.Configuration:
    return parse(text, env)


def config_error(text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text, env or {})
    return info.value


# --- the public API ---------------------------------------------------------------------------


def test_config_error_names_key_and_message():
    err = ConfigError("http.addr", "expected a string, got a list")
    assert (err.key, err.message) == ("http.addr", "expected a string, got a list")
    assert str(err) == "http.addr: expected a string, got a list"


def test_configuration_is_immutable():
    loaded = with_env({})
    with pytest.raises(AttributeError):
        loaded.http.addr = ":1"  # type: ignore[misc]


def test_environ_defaults_to_os_environ(monkeypatch):
    monkeypatch.setenv("REGISTRY_HTTP_ADDR", ":7000")
    assert parse(MINIMAL).http.addr == ":7000"


# --- files ------------------------------------------------------------------------------------


def test_embedded_default_equals_etc_config():
    embedded = load(None, {})
    assert embedded == load(str(ETC_CONFIG), {})
    assert embedded.storage.driver == "filesystem"
    assert embedded.storage.parameters == {"rootdirectory": "/var/lib/registry"}
    assert embedded.storage.cache.blobdescriptor == "inmemory"
    assert embedded.http.addr == ":5000"
    assert embedded.http.headers == {"X-Content-Type-Options": ("nosniff",)}
    assert embedded.log.fields == {"service": "registry"}
    assert embedded.health.storagedriver == config.StorageDriverHealth(
        enabled=True, interval=10.0, threshold=3
    )


def test_load_reads_a_file_and_the_environment(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text(MINIMAL)
    loaded = load(str(path), {"REGISTRY_HTTP_ADDR": ":6000"})
    assert loaded.storage.driver == "filesystem"
    assert loaded.http.addr == ":6000"


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.yml")
    with pytest.raises(ConfigError) as info:
        load(path, {})
    assert str(info.value) == f"{path}: cannot read configuration file: No such file or directory"


def test_directory_as_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(str(tmp_path), {})
    assert str(info.value) == f"{tmp_path}: cannot read configuration file: Is a directory"


def test_path_under_a_file(tmp_path):
    (tmp_path / "file").write_text(MINIMAL)
    path = str(tmp_path / "file" / "config.yml")
    with pytest.raises(ConfigError) as info:
        load(path, {})
    assert str(info.value) == f"{path}: cannot read configuration file: Not a directory"


def test_invalid_yaml_names_file_and_place(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("version: 0.1\nstorage: inmemory: x\n")
    with pytest.raises(ConfigError) as info:
        load(str(path), {})
    assert info.value.key == str(path)
    assert (
        info.value.message
        == "invalid YAML: mapping values are not allowed here at line 2, column 18"
    )


def test_invalid_utf8(tmp_path):
    path = tmp_path / "config.yml"
    path.write_bytes(b"version: 0.1\nstorage: \xff\n")
    with pytest.raises(ConfigError) as info:
        load(str(path), {})
    assert info.value.key == str(path)
    assert info.value.message.startswith("invalid YAML: ")
    assert "\n" not in info.value.message


@pytest.mark.parametrize(
    ("text", "got"),
    [("- version: 0.1\n", "a list"), ("just text\n", "'just text'"), ("5\n", "'5'")],
)
def test_document_must_be_a_mapping(text, got):
    err = config_error(text)
    assert str(err) == f"<string>: expected a mapping at the top level, got {got}"


def test_empty_document_lacks_a_version():
    assert str(config_error("# nothing\n")) == "version: required (this registry reads version 0.1)"


# --- version ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["0.1", "'0.1'", '"0.1"'])
def test_version_as_float_or_string(version):
    assert parse(f"version: {version}\nstorage: inmemory\n", {}).version == "0.1"


def test_missing_version():
    err = config_error("storage: inmemory\n")
    assert str(err) == "version: required (this registry reads version 0.1)"


@pytest.mark.parametrize(("version", "shown"), [("0.2", "'0.2'"), ("0.10", "'0.10'"), ("1", "'1'")])
def test_unsupported_version(version, shown):
    err = config_error(f"version: {version}\nstorage: inmemory\n")
    assert str(err) == f"version: unsupported version {shown} (this registry reads version 0.1)"


def test_version_is_checked_before_the_rest():
    err = config_error("version: 2\nstorage: {a: {}, b: {}}\nhttp: 5\n")
    assert err.key == "version"


# --- defaults ---------------------------------------------------------------------------------


def test_defaults():
    loaded = parse("version: 0.1\nstorage: inmemory\n", {})
    assert loaded.log == config.Log(level="info", formatter="text")
    assert loaded.auth == config.Auth(type=None, parameters={})
    assert loaded.http.addr == ":5000"
    assert loaded.http.net == "tcp"
    assert loaded.http.secret is None
    assert loaded.http.host is None
    assert (loaded.http.workers, loaded.http.threads) == (None, None)
    assert loaded.http.debug.prometheus.path == "/metrics"
    assert loaded.http.tls.minimumtls == "tls1.2"
    assert loaded.catalog.maxentries == 1000
    assert loaded.tags.maxtags == 1000
    assert loaded.proxy.ttl == 7 * 24 * 3600
    assert loaded.validation.active
    assert loaded.validation.manifests.indexes.platforms == "all"
    storage = loaded.storage
    assert (storage.driver, storage.parameters) == ("inmemory", {})
    assert storage.delete.enabled is False
    assert storage.cache == config.StorageCache(blobdescriptor=None, blobdescriptorsize=None)
    assert storage.maintenance.uploadpurging == config.UploadPurging(
        enabled=True, age=168 * 3600.0, interval=24 * 3600.0, dryrun=False
    )
    assert storage.maintenance.readonly.enabled is False
    assert storage.redirect.disable is False
    assert storage.tag.concurrencylimit is None


@pytest.mark.parametrize(
    ("section", "attribute", "default"),
    [
        ("catalog: {maxentries: 0}", lambda c: c.catalog.maxentries, 1000),
        ("catalog: {maxentries: -5}", lambda c: c.catalog.maxentries, 1000),
        ('http: {addr: ""}', lambda c: c.http.addr, ":5000"),
        ("http: {addr: ~}", lambda c: c.http.addr, ":5000"),
        ('http: {secret: ""}', lambda c: c.http.secret, None),
        ('log: {formatter: ""}', lambda c: c.log.formatter, "text"),
        (
            'http: {debug: {prometheus: {path: ""}}}',
            lambda c: c.http.debug.prometheus.path,
            "/metrics",
        ),
        ("health: {storagedriver: {interval: 0}}", lambda c: c.health.storagedriver.interval, 10.0),
        ("tags: {maxtags: 0}", lambda c: c.tags.maxtags, 1000),
    ],
)
def test_zero_values_get_gos_defaults(section, attribute, default):
    assert attribute(parse(f"version: 0.1\nstorage: inmemory\n{section}\n", {})) == default


def test_notification_endpoint_defaults():
    text = "version: 0.1\nstorage: inmemory\nnotifications:\n  endpoints:\n    - url: http://x\n"
    (endpoint,) = parse(text, {}).notifications.endpoints
    assert (endpoint.timeout, endpoint.threshold, endpoint.backoff) == (1.0, 10, 1.0)
    assert endpoint.disabled is False


def test_health_check_defaults():
    text = """\
version: 0.1
storage: inmemory
health:
  file: [{file: /f}]
  http: [{uri: http://x}]
  tcp: [{addr: x:1}]
"""
    health = parse(text, {}).health
    assert health.file == (config.FileHealthCheck(file="/f", interval=10.0),)
    assert health.http[0].statuscode == 200
    assert health.http[0].interval == 10.0
    assert health.tcp == (config.TCPHealthCheck(addr="x:1", interval=10.0),)


def test_proxy_ttl_zero_means_never_expire():
    text = "version: 0.1\nstorage: inmemory\nproxy: {remoteurl: https://r, ttl: 0}\n"
    assert parse(text, {}).proxy.ttl == 0.0


@pytest.mark.parametrize(
    ("validation", "active"),
    [("{}", True), ("{disabled: true}", False), ("{enabled: true, disabled: true}", True)],
)
def test_validation_is_on_unless_disabled(validation, active):
    text = f"version: 0.1\nstorage: inmemory\nvalidation: {validation}\n"
    assert parse(text, {}).validation.active is active


def test_deprecated_loglevel():
    text = "version: 0.1\nstorage: inmemory\nloglevel: warn\n"
    assert parse(text, {}).log.level == "warn"
    assert parse(text + "log: {level: error}\n", {}).log.level == "error"


def test_log_level_is_case_insensitive():
    assert parse("version: 0.1\nstorage: inmemory\nlog: {level: DEBUG}\n", {}).log.level == "debug"


# --- every section ----------------------------------------------------------------------------


def test_full_example(caplog):
    with caplog.at_level(logging.WARNING, logger="distribution.config"):
        loaded = parse(FULL, {})
    assert caplog.records == []

    log = loaded.log
    assert (log.accesslog.disabled, log.level, log.formatter, log.reportcaller) == (
        True,
        "debug",
        "json",
        True,
    )
    assert log.fields == {"service": "registry", "environment": "staging"}
    (hook,) = log.hooks
    assert (hook.type, hook.disabled, hook.levels) == ("mail", True, ("panic",))
    assert hook.options.smtp == config.SMTP(
        addr="mail.example.com:25", username="mailuser", password="password", insecure=True
    )
    assert (hook.options.from_, hook.options.to) == ("sender@example.com", ("errors@example.com",))

    storage = loaded.storage
    assert storage.driver == "s3"
    assert storage.parameters["region"] == "us-west-1"
    assert storage.parameters["forcepathstyle"] is True
    assert storage.parameters["chunksize"] == 5242880
    assert storage.tag.concurrencylimit == 8
    assert storage.delete.enabled is True
    assert storage.redirect.disable is True
    assert storage.cache == config.StorageCache(blobdescriptor="redis", blobdescriptorsize=5000)
    assert storage.maintenance.uploadpurging == config.UploadPurging(
        enabled=False, age=72 * 3600.0, interval=12 * 3600.0, dryrun=True
    )
    assert storage.maintenance.readonly.enabled is True

    assert loaded.auth.type == "token"
    assert loaded.auth.parameters["signingalgorithms"] == ["EdDSA", "HS256"]
    assert loaded.auth.parameters["autoredirect"] is True

    assert loaded.middleware == {
        "registry": (config.Middleware(name="ARegistryMiddleware", options={"foo": "bar"}),),
        "storage": (
            config.Middleware(
                name="cloudfront",
                disabled=True,
                options={"baseurl": "https://my.cloudfronted.domain.com/", "duration": "3000s"},
            ),
        ),
    }

    http = loaded.http
    assert (http.addr, http.net, http.prefix, http.host, http.secret) == (
        "localhost:5000",
        "tcp",
        "/my/nested/registry/",
        "https://myregistryaddress.org:5000",
        "asecretforlocaldevelopment",
    )
    assert (http.relativeurls, http.draintimeout, http.workers, http.threads) == (True, 60.0, 4, 16)
    assert http.tls == config.TLS(
        certificate="/path/to/x509/public",
        key="/path/to/x509/private",
        clientcas=("/path/to/ca.pem", "/path/to/another/ca.pem"),
        clientauth="require-and-verify-client-cert",
        minimumtls="tls1.3",
        ciphersuites=("TLS_AES_128_GCM_SHA256",),
        letsencrypt=config.LetsEncrypt(
            cachefile="/path/to/cache-file",
            email="emailused@letsencrypt.com",
            hosts=("myregistryaddress.org",),
            directoryurl="https://acme-v02.api.letsencrypt.org/directory",
        ),
    )
    assert http.debug == config.Debug(
        addr="localhost:5001", prometheus=config.Prometheus(enabled=True, path="/prom")
    )
    assert http.headers == {"X-Content-Type-Options": ("nosniff",)}
    assert (http.http2.disabled, http.h2c.enabled) == (True, True)

    assert loaded.notifications.events.includereferences is True
    assert loaded.notifications.endpoints == (
        config.Endpoint(
            name="alistener",
            url="https://my.listener.com/event",
            headers={"Authorization": ("Bearer token",)},
            timeout=2.0,
            threshold=5,
            backoff=3.0,
            ignoredmediatypes=("application/octet-stream",),
            ignore=config.Ignore(mediatypes=("application/octet-stream",), actions=("pull",)),
        ),
    )

    redis = loaded.redis
    assert (redis.addr, redis.addrs, redis.username, redis.password, redis.db) == (
        "localhost:6379",
        ("localhost:6379", "localhost:6380"),
        "user",
        "asecret",
        2,
    )
    assert redis.mastername == "mymaster"
    assert (redis.dialtimeout, redis.readtimeout, redis.writetimeout) == (0.01, 0.01, 0.01)
    assert redis.pool == config.RedisPool(maxidle=16, maxactive=64, idletimeout=300.0)
    assert (redis.poolsize, redis.maxidleconns, redis.connmaxidletime) == (64, 16, 300.0)
    assert redis.tls == config.RedisTLS(
        enabled=True,
        certificate="/path/to/cert.crt",
        key="/path/to/key.pem",
        clientcas=("/path/to/ca.pem",),
    )

    health = loaded.health
    assert health.storagedriver == config.StorageDriverHealth(
        enabled=True, interval=10.0, threshold=3
    )
    assert health.file == (config.FileHealthCheck(file="/path/to/checked/file", interval=10.0),)
    assert health.http == (
        config.HTTPHealthCheck(
            uri="http://server.to.check/must/return/200",
            headers={"Authorization": ("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",)},
            statuscode=204,
            timeout=3.0,
            interval=15.0,
            threshold=3,
        ),
    )
    assert health.tcp == (
        config.TCPHealthCheck(
            addr="redis-server.domain.com:6379", timeout=3.0, interval=10.0, threshold=3
        ),
    )

    assert loaded.proxy == config.Proxy(
        remoteurl="https://registry-1.docker.io",
        username="username",
        password="password",
        ttl=24 * 3600.0,
    )

    validation = loaded.validation
    assert (validation.disabled, validation.active) == (True, False)
    assert validation.manifests.urls == config.URLs(
        allow=(r"^https?://([^/]+\.)*example\.com/",), deny=(r"^https?://www\.example\.com/",)
    )
    assert validation.manifests.indexes == config.Indexes(
        platforms="list", platformlist=(config.Platform(architecture="amd64", os="linux"),)
    )

    assert loaded.catalog.maxentries == 100
    assert loaded.tags.maxtags == 50
    assert loaded.policy.repository.classes == ("image",)


def test_unknown_keys_are_ignored_with_a_warning(caplog):
    text = """\
version: 0.1
storage:
  inmemory:
  delete: {enable: true}
http: {addr: ":1", Addr: ":2"}
reportage: {bugsnag: {apikey: x}}
"""
    with caplog.at_level(logging.WARNING, logger="distribution.config"):
        loaded = parse(text, {})
    assert loaded.http.addr == ":1"
    assert loaded.storage.delete.enabled is False
    assert [record.getMessage() for record in caplog.records] == [
        "Ignoring unknown configuration key storage.delete.enable",
        "Ignoring unknown configuration key http.Addr",
        "Ignoring unknown configuration key reportage",
    ]


def test_yaml_merge_keys():
    text = """\
version: 0.1
storage: inmemory
x-common: &common {timeout: 5s, threshold: 3}
notifications:
  endpoints:
    - <<: *common
      url: http://a
"""
    (endpoint,) = parse(text, {}).notifications.endpoints
    assert (endpoint.url, endpoint.timeout, endpoint.threshold) == ("http://a", 5.0, 3)


# --- storage and auth -------------------------------------------------------------------------


def test_storage_driver_parameters_are_free_form():
    text = """\
version: 0.1
storage:
  gcs:
    bucket: b
    chunksize: 5242880
    credentials: {type: service_account, private_key_id: k}
"""
    storage = parse(text, {}).storage
    assert storage.driver == "gcs"
    assert storage.parameters == {
        "bucket": "b",
        "chunksize": 5242880,
        "credentials": {"type": "service_account", "private_key_id": "k"},
    }


@pytest.mark.parametrize("storage", ["inmemory", "{inmemory: }", "{inmemory: ~}", "{inmemory: {}}"])
def test_storage_driver_without_parameters(storage):
    loaded = parse(f"version: 0.1\nstorage: {storage}\n", {})
    assert (loaded.storage.driver, loaded.storage.parameters) == ("inmemory", {})


def test_unknown_driver_name_is_left_to_the_factory():
    assert parse("version: 0.1\nstorage: {nosuch: {}}\n", {}).storage.driver == "nosuch"


@pytest.mark.parametrize(
    "storage", ["", "~", "{}", "{delete: {enabled: true}, cache: {blobdescriptor: inmemory}}"]
)
def test_no_storage_driver(storage):
    err = config_error(f"version: 0.1\nstorage: {storage}\n")
    assert str(err) == "storage: no storage configuration provided"


def test_missing_storage_section():
    assert str(config_error("version: 0.1\n")) == "storage: no storage configuration provided"


def test_two_storage_drivers():
    err = config_error("version: 0.1\nstorage:\n  inmemory:\n  filesystem: {}\n  delete: {}\n")
    assert str(err) == "storage: must provide exactly one storage type, got filesystem, inmemory"


def test_blobdescriptorsize_may_be_text():
    text = "version: 0.1\nstorage: {inmemory: , cache: {blobdescriptorsize: '500'}}\n"
    assert parse(text, {}).storage.cache.blobdescriptorsize == 500


def test_auth_with_parameters():
    text = "version: 0.1\nstorage: inmemory\nauth:\n  htpasswd: {realm: r, path: /p}\n"
    assert parse(text, {}).auth == config.Auth(
        type="htpasswd", parameters={"realm": "r", "path": "/p"}
    )


def test_auth_as_a_bare_name():
    auth = parse("version: 0.1\nstorage: inmemory\nauth: silly\n", {}).auth
    assert auth == config.Auth(type="silly", parameters={})


@pytest.mark.parametrize("auth", ["none", "{None: {}}", "~", "{}"])
def test_no_auth(auth):
    assert parse(f"version: 0.1\nstorage: inmemory\nauth: {auth}\n", {}).auth.type is None


def test_two_auth_types():
    err = config_error("version: 0.1\nstorage: inmemory\nauth: {token: {}, htpasswd: {}}\n")
    assert str(err) == "auth: must provide exactly one auth type, got htpasswd, token"


# --- types ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("http: 5", "http: expected a mapping, got '5'"),
        ("http: [a]", "http: expected a mapping, got a list"),
        ("http: {addr: [1]}", "http.addr: expected a string, got a list"),
        ("http: {secret: {a: b}}", "http.secret: expected a string, got a mapping"),
        ("catalog: {maxentries: many}", "catalog.maxentries: expected an integer, got 'many'"),
        ("catalog: {maxentries: '10'}", "catalog.maxentries: expected an integer, got '10'"),
        ("catalog: {maxentries: 1.5}", "catalog.maxentries: expected an integer, got '1.5'"),
        ("http: {relativeurls: 1}", "http.relativeurls: expected true or false, got '1'"),
        (
            "log: {level: verbose}",
            "log.level: expected one of error, warn, info, debug, got 'verbose'",
        ),
        (
            "http: {tls: {clientauth: sometimes}}",
            "http.tls.clientauth: expected one of request-client-cert, require-any-client-cert,"
            " verify-client-cert-if-given, require-and-verify-client-cert, got 'sometimes'",
        ),
        ("http: {tls: {clientcas: /ca.pem}}", "http.tls.clientcas: expected a list, got '/ca.pem'"),
        ("http: {tls: {clientcas: [[a]]}}", "http.tls.clientcas[0]: expected a string, got a list"),
        ("http: {tls: {clientcas: [~]}}", "http.tls.clientcas[0]: expected a value, got nothing"),
        ("http: {headers: {X-A: b}}", "http.headers.X-A: expected a list, got 'b'"),
        ("http: {workers: 0}", "http.workers: must be at least 1, got 0"),
        ("http: {threads: x}", "http.threads: expected an integer, got 'x'"),
        ("tags: {maxtags: -1}", "tags.maxtags: must be at least 0, got -1"),
        (
            "notifications: {endpoints: {url: x}}",
            "notifications.endpoints: expected a list, got a mapping",
        ),
        (
            "notifications: {endpoints: [{url: x, timeout: soon}]}",
            "notifications.endpoints[0].timeout:"
            " expected a duration such as 10s, 300ms or 1h30m, got 'soon'",
        ),
        ("auth: {htpasswd: x}", "auth.htpasswd: expected a mapping, got 'x'"),
        ("log: {fields: [a]}", "log.fields: expected a mapping, got a list"),
    ],
)
def test_wrong_types(section, expected):
    assert str(config_error(f"version: 0.1\nstorage: inmemory\n{section}\n")) == expected


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        ("delete: {enabled: maybe}", "storage.delete.enabled: expected true or false, got 'maybe'"),
        ("delete: true", "storage.delete: expected a mapping, got 'true'"),
        (
            "redirect: {disable: 'yes'}",
            "storage.redirect.disable: expected true or false, got 'yes'",
        ),
        ("tag: {concurrencylimit: -1}", "storage.tag.concurrencylimit: must be at least 0, got -1"),
        (
            "maintenance: {uploadpurging: {age: old}}",
            "storage.maintenance.uploadpurging.age:"
            " expected a duration such as 10s, 300ms or 1h30m, got 'old'",
        ),
    ],
)
def test_wrong_types_in_storage(storage, expected):
    text = f"version: 0.1\nstorage:\n  filesystem: {{}}\n  {storage}\n"
    assert str(config_error(text)) == expected


def test_driver_parameters_must_be_a_mapping():
    err = config_error("version: 0.1\nstorage: {inmemory: x}\n")
    assert str(err) == "storage.inmemory: expected a mapping, got 'x'"


@pytest.mark.parametrize(
    ("value", "text"),
    [("5000", "5000"), ("true", "true"), ("0.10", "0.10"), ("'quoted'", "quoted"), ("~", ":5000")],
)
def test_string_fields_take_any_scalars_text(value, text):
    assert (
        parse(f"version: 0.1\nstorage: inmemory\nhttp: {{addr: {value}}}\n", {}).http.addr == text
    )


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("y", True),
        ("off", False),
        ("1e3", 1000.0),
        ("0x1F", 31),
        ("017", 15),
        ("1_000", 1000),
        ("1:30", "1:30"),
        ("2001-12-14", "2001-12-14"),
        ("~", None),
    ],
)
def test_free_form_values_resolve_as_go_yaml_does(value, parsed):
    text = f"version: 0.1\nstorage:\n  inmemory:\n    x: {value}\n"
    assert parse(text, {}).storage.parameters == {"x": parsed}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("10s", 10.0),
        ("300ms", 0.3),
        ("1h30m", 5400.0),
        ("2.5s", 2.5),
        ("1us", 1e-6),
        ("1µs", 1e-6),
        ("500ns", 5e-7),
        (".5m", 30.0),
        ("1.s", 1.0),
        ("-1s", -1.0),
        ("+2m", 120.0),
        ("0", 0.0),
        ("1500000000", 1.5),
        ("'1h'", 3600.0),
    ],
)
def test_durations(value, seconds):
    text = f"version: 0.1\nstorage: inmemory\nhttp: {{draintimeout: {value}}}\n"
    assert parse(text, {}).http.draintimeout == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    [
        *["s", "1x", "'1.5.5s'", "'1 s'", "'.s'", "''", "true", "[1s]"],
        *["2562048h", "-9223372036854775809"],  # past Go's int64 nanoseconds
    ],
)
def test_bad_durations(value):
    err = config_error(f"version: 0.1\nstorage: inmemory\nhttp: {{draintimeout: {value}}}\n")
    assert err.key == "http.draintimeout"
    assert err.message.startswith("expected a duration")


def test_a_bare_integer_duration_is_nanoseconds():
    """go-yaml reads an integer into a time.Duration as nanoseconds, so ``10`` is 10ns."""
    text = "version: 0.1\nstorage: inmemory\nhttp: {draintimeout: 10}\n"
    assert parse(text, {}).http.draintimeout == pytest.approx(1e-8)


# --- environment: distribution's parser.go rules ----------------------------------------------


def test_seed_http_addr():
    assert with_env({"REGISTRY_HTTP_ADDR": "0.0.0.0:5001"}).http.addr == "0.0.0.0:5001"


def test_seed_filesystem_rootdirectory():
    storage = with_env({"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/data"}).storage
    assert (storage.driver, storage.parameters) == ("filesystem", {"rootdirectory": "/data"})


def test_seed_htpasswd_auth():
    loaded = parse(
        "version: 0.1\nstorage: inmemory\n",
        {
            "REGISTRY_AUTH": "htpasswd",
            "REGISTRY_AUTH_HTPASSWD_PATH": "/auth/htpasswd",
            "REGISTRY_AUTH_HTPASSWD_REALM": "Registry Realm",
        },
    )
    assert loaded.auth == config.Auth(
        type="htpasswd", parameters={"path": "/auth/htpasswd", "realm": "Registry Realm"}
    )


def test_seed_tls():
    tls = with_env(
        {
            "REGISTRY_HTTP_TLS_CERTIFICATE": "/certs/domain.crt",
            "REGISTRY_HTTP_TLS_KEY": "/certs/domain.key",
        }
    ).http.tls
    assert (tls.certificate, tls.key) == ("/certs/domain.crt", "/certs/domain.key")


def test_only_the_registry_prefix_counts(caplog):
    env = {"REGISTRYHTTP_ADDR": ":1", "XREGISTRY_HTTP_ADDR": ":2", "registry_http_addr": ":3"}
    with caplog.at_level(logging.WARNING, logger="distribution.config"):
        assert with_env(env).http.addr == ":5000"
    assert caplog.records == []


def test_name_splits_on_underscores_into_nested_keys():
    loaded = with_env({"REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED": "true"})
    assert loaded.http.debug.prometheus.enabled is True


def test_segments_match_keys_in_upper_case():
    assert with_env({"REGISTRY_HTTP_RELATIVEURLS": "true"}).http.relativeurls is True


def test_lower_case_segments_match_nothing(caplog):
    """Go compares the segment with the key's upper case, so a lower-case name is unknown."""
    with caplog.at_level(logging.WARNING, logger="distribution.config"):
        assert with_env({"REGISTRY_http_addr": ":1"}).http.addr == ":5000"
    assert caplog.messages == ["Ignoring unrecognized environment variable REGISTRY_http_addr"]


def test_go_field_names_are_accepted_beside_yaml_keys():
    loaded = with_env(
        {
            "REGISTRY_NOTIFICATIONS_EVENTCONFIG_INCLUDEREFERENCES": "true",
            "REGISTRY_HEALTH_FILECHECKERS_0_FILE": "/a",
            "REGISTRY_HEALTH_HTTP_0_URI": "http://b",
        }
    )
    assert loaded.notifications.events.includereferences is True
    assert loaded.health.file[0].file == "/a"
    assert loaded.health.http[0].uri == "http://b"
    assert with_env(
        {"REGISTRY_NOTIFICATIONS_EVENTS_INCLUDEREFERENCES": "true"}
    ).notifications.events


def test_existing_map_keys_match_case_insensitively():
    text = "version: 0.1\nstorage:\n  S3: {Region: a, bucket: b}\n"
    storage = parse(text, {"REGISTRY_STORAGE_S3_BUCKET": "c"}).storage
    assert (storage.driver, storage.parameters) == ("S3", {"Region": "a", "bucket": "c"})


def test_map_keys_are_set_in_lower_case():
    loaded = with_env(
        {
            "REGISTRY_LOG_FIELDS_ENVIRONMENT": "staging",
            "REGISTRY_HTTP_HEADERS_X-FRAME-OPTIONS": "[DENY]",
        }
    )
    assert loaded.log.fields == {"environment": "staging"}
    assert loaded.http.headers == {"x-frame-options": ("DENY",)}


def test_last_segment_sets_a_new_lower_case_key_beside_a_differently_cased_one():
    text = "version: 0.1\nstorage:\n  filesystem: {rootDirectory: /a}\n"
    storage = parse(text, {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/b"}).storage
    assert storage.parameters == {"rootDirectory": "/a", "rootdirectory": "/b"}


def test_new_driver_parameters_are_created():
    storage = with_env({"REGISTRY_STORAGE_FILESYSTEM_MAXTHREADS": "100"}).storage
    assert storage.parameters == {"rootdirectory": "/var/lib/registry", "maxthreads": 100}


def test_a_driver_section_is_created():
    loaded = parse(
        "version: 0.1\n",
        {"REGISTRY_STORAGE_S3_REGION": "us-east-1", "REGISTRY_STORAGE_S3_BUCKET": "b"},
    )
    assert loaded.storage.driver == "s3"
    assert loaded.storage.parameters == {"region": "us-east-1", "bucket": "b"}


def test_creating_a_second_driver_is_an_error():
    with pytest.raises(ConfigError) as info:
        with_env({"REGISTRY_STORAGE_S3_REGION": "x"})
    assert str(info.value) == "storage: must provide exactly one storage type, got filesystem, s3"


def test_nested_free_form_maps_are_entered_and_created():
    text = "version: 0.1\nstorage:\n  gcs: {credentials: {type: a}}\n"
    loaded = parse(
        text,
        {
            "REGISTRY_STORAGE_GCS_CREDENTIALS_TYPE": "service_account",
            "REGISTRY_STORAGE_GCS_OPTIONS_RETRY_MAX": "3",
        },
    )
    assert loaded.storage.parameters == {
        "credentials": {"type": "service_account"},
        "options": {"retry": {"max": 3}},
    }


def test_going_below_a_free_form_scalar_is_ignored(caplog):
    with caplog.at_level(logging.WARNING, logger="distribution.config"):
        storage = with_env({"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY_X": "1"}).storage
    assert storage.parameters == {"rootdirectory": "/var/lib/registry"}
    assert caplog.messages == [
        "Ignoring unrecognized environment variable REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY_X"
    ]


def test_list_items_by_index():
    text = "version: 0.1\nstorage: inmemory\nhttp:\n  tls:\n    clientcas: [/a, /b]\n"
    loaded = parse(text, {"REGISTRY_HTTP_TLS_CLIENTCAS_1": "/c"})
    assert loaded.http.tls.clientcas == ("/a", "/c")


def test_list_item_fields_by_index():
    text = """\
version: 0.1
storage: inmemory
notifications:
  endpoints:
    - {name: a, url: http://a, timeout: 5s}
"""
    loaded = parse(text, {"REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL": "http://changed"})
    (endpoint,) = loaded.notifications.endpoints
    assert (endpoint.name, endpoint.url, endpoint.timeout) == ("a", "http://changed", 5.0)


def test_index_equal_to_the_length_appends():
    loaded = with_env(
        {
            "REGISTRY_NOTIFICATIONS_ENDPOINTS_0_NAME": "first",
            "REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL": "http://a",
            "REGISTRY_NOTIFICATIONS_ENDPOINTS_1_URL": "http://b",
            "REGISTRY_MIDDLEWARE_STORAGE_0_NAME": "redirect",
            "REGISTRY_MIDDLEWARE_STORAGE_0_OPTIONS_BASEURL": "https://example.com/",
        }
    )
    assert [(e.name, e.url) for e in loaded.notifications.endpoints] == [
        ("first", "http://a"),
        (None, "http://b"),
    ]
    assert loaded.middleware == {
        "storage": (
            config.Middleware(name="redirect", options={"baseurl": "https://example.com/"}),
        )
    }


def test_index_past_the_length_is_an_error():
    with pytest.raises(ConfigError) as info:
        with_env({"REGISTRY_NOTIFICATIONS_ENDPOINTS_1_URL": "http://b"})
    assert info.value.key == "notifications.endpoints"
    assert info.value.message == (
        "undefined index 1: the list has 0 (index 0 adds one)"
        " (from environment variable REGISTRY_NOTIFICATIONS_ENDPOINTS_1_URL)"
    )


def test_non_numeric_index_is_an_error():
    with pytest.raises(ConfigError) as info:
        with_env({"REGISTRY_HTTP_TLS_CLIENTCAS_FIRST": "/a"})
    assert str(info.value) == (
        "http.tls.clientcas: non-numeric index 'FIRST'"
        " (from environment variable REGISTRY_HTTP_TLS_CLIENTCAS_FIRST)"
    )


def test_values_are_parsed_as_yaml():
    loaded = with_env(
        {
            "REGISTRY_STORAGE_DELETE_ENABLED": "false",
            "REGISTRY_STORAGE_FILESYSTEM_MAXTHREADS": "0x10",
            "REGISTRY_HTTP_TLS_CLIENTCAS": "[/a, /b]",
            "REGISTRY_HTTP_DRAINTIMEOUT": "1m",
            "REGISTRY_LOG_FIELDS_TAGS": "{a: 1}",
        }
    )
    assert loaded.storage.delete.enabled is False
    assert loaded.storage.parameters["maxthreads"] == 16
    assert loaded.http.tls.clientcas == ("/a", "/b")
    assert loaded.http.draintimeout == 60.0
    assert loaded.log.fields == {"tags": {"a": 1}}


@pytest.mark.parametrize(
    ("value", "secret"),
    [
        ("123", "123"),
        ("0.10", "0.10"),
        ("true", "true"),
        ("'quoted'", "quoted"),
        ("a: b", "a: b"),
        ("[x", "[x"),
        ("%x", "%x"),
    ],
)
def test_string_fields_take_the_text(value, secret):
    """Go takes a YAML scalar's text (without quotes); what is not one is taken as it stands."""
    assert with_env({"REGISTRY_HTTP_SECRET": value}).http.secret == secret


def test_empty_value_unsets_the_field():
    text = (
        "version: 0.1\nstorage: inmemory\nhttp: {addr: ':1', secret: s}\ncatalog: {maxentries: 5}\n"
    )
    loaded = parse(
        text,
        {"REGISTRY_HTTP_ADDR": "", "REGISTRY_HTTP_SECRET": "", "REGISTRY_CATALOG_MAXENTRIES": ""},
    )
    assert (loaded.http.addr, loaded.http.secret, loaded.catalog.maxentries) == (
        ":5000",
        None,
        1000,
    )


def test_overrides_apply_before_defaults():
    loaded = with_env({"REGISTRY_CATALOG_MAXENTRIES": "0", "REGISTRY_LOG_LEVEL": "DEBUG"})
    assert (loaded.catalog.maxentries, loaded.log.level) == (1000, "debug")


def test_whole_storage_section_from_a_name_drops_the_rest():
    storage = with_env({"REGISTRY_STORAGE": "inmemory"}).storage
    assert (storage.driver, storage.parameters, storage.delete.enabled) == ("inmemory", {}, False)


def test_variables_apply_in_sorted_order():
    env = {
        "REGISTRY_STORAGE_INMEMORY_X": "1",
        "REGISTRY_STORAGE_DELETE_ENABLED": "true",
        "REGISTRY_STORAGE": "inmemory",
    }
    storage = with_env(env).storage
    assert (storage.driver, storage.parameters, storage.delete.enabled) == (
        "inmemory",
        {"x": 1},
        True,
    )


def test_whole_auth_section_from_a_name():
    text = "version: 0.1\nstorage: inmemory\nauth: {token: {realm: r}}\n"
    assert parse(text, {"REGISTRY_AUTH": "silly"}).auth == config.Auth(type="silly")


def test_whole_section_from_yaml():
    text = "version: 0.1\nstorage: inmemory\nhttp: {tls: {clientcas: [/ca]}}\n"
    tls = parse(text, {"REGISTRY_HTTP_TLS": "{certificate: /c, key: /k}"}).http.tls
    assert (tls.certificate, tls.key, tls.clientcas) == ("/c", "/k", ())


def test_a_second_auth_type_is_an_error():
    text = "version: 0.1\nstorage: inmemory\nauth: {htpasswd: {realm: r}}\n"
    with pytest.raises(ConfigError) as info:
        parse(text, {"REGISTRY_AUTH_TOKEN_REALM": "t"})
    assert str(info.value) == "auth: must provide exactly one auth type, got htpasswd, token"


def test_unknown_variables_are_warned_about(caplog):
    env = {"REGISTRY_FOO": "1", "REGISTRY_HTTP_NOSUCH": "2", "REGISTRY_HTTP__ADDR": ":1"}
    with caplog.at_level(logging.WARNING, logger="distribution.config"):
        assert with_env(env).http.addr == ":5000"
    assert caplog.messages == [
        "Ignoring unrecognized environment variable REGISTRY_FOO",
        "Ignoring unrecognized environment variable REGISTRY_HTTP_NOSUCH",
        "Ignoring unrecognized environment variable REGISTRY_HTTP__ADDR",
    ]


def test_configuration_path_variable_is_ignored(caplog):
    with caplog.at_level(logging.WARNING, logger="distribution.config"):
        assert with_env({"REGISTRY_CONFIGURATION_PATH": "/etc/other.yml"}) == with_env({})
    assert caplog.records == []


def test_deprecated_loglevel_variable():
    assert with_env({"REGISTRY_LOGLEVEL": "error"}).log.level == "error"


def test_workers_and_threads_variables():
    http = with_env({"REGISTRY_HTTP_WORKERS": "3", "REGISTRY_HTTP_THREADS": "8"}).http
    assert (http.workers, http.threads) == (3, 8)


def test_bad_value_names_variable_and_key():
    with pytest.raises(ConfigError) as info:
        with_env({"REGISTRY_CATALOG_MAXENTRIES": "abc"})
    assert info.value.key == "catalog.maxentries"
    assert info.value.message == (
        "expected an integer, got 'abc' (from environment variable REGISTRY_CATALOG_MAXENTRIES)"
    )


def test_bad_yaml_names_variable_and_key():
    with pytest.raises(ConfigError) as info:
        with_env({"REGISTRY_STORAGE_DELETE_ENABLED": "[true"})
    assert info.value.key == "storage.delete.enabled"
    assert info.value.message.startswith("invalid YAML: ")
    assert info.value.message.endswith(
        "(from environment variable REGISTRY_STORAGE_DELETE_ENABLED)"
    )


def test_the_file_is_checked_before_the_environment():
    text = "version: 0.1\nstorage: inmemory\ncatalog: {maxentries: many}\n"
    err = config_error(text, {"REGISTRY_CATALOG_MAXENTRIES": "5"})
    assert str(err) == "catalog.maxentries: expected an integer, got 'many'"


def test_url_policy_regexes_are_checked_at_load():
    text = MINIMAL + "validation:\n  manifests:\n    urls:\n      deny: ['^https://ok/', '(bad']\n"
    err = config_error(text)
    assert err.key == "validation.manifests.urls.deny[1]"
    assert err.message.startswith("invalid regular expression '(bad': ")
    good = parse(MINIMAL + "validation: {manifests: {urls: {allow: ['^https?://ok/']}}}\n", {})
    assert good.validation.manifests.urls.allow == ("^https?://ok/",)
