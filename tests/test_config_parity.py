# ruff: noqa: E501, SIM905 - a table: one key and its test per line
"""Every key of the Go registry's configuration: honoured as Go does, or refused or warned about.

The table below holds every key of distribution's configuration documentation (2.8.3's
``docs/configuration.md`` and 3.1.1's ``docs/content/about/configuration.md``, its examples
and tables, storage drivers included), every key its ``configuration.go`` reads that the
documentation leaves out, and every key our parser reads (our extensions among them). Each is:

* :class:`Honoured`, naming the test that shows the behaviour;
* :class:`Warned`: set, it gets the exact start-up warning given here, and nothing else happens;
* :class:`Refused`: set, ``registry serve`` stops with the exact message given here;
* :class:`Covered`: a section, or a key with no effect of its own (in Go either), whose
  behaviour is that of the entry it names.

A key added to the parser without an entry here fails :func:`test_every_parser_key_has_an_entry`.
"""

from __future__ import annotations

import ast
import logging
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from distribution import cli, mailhook, parity, redisconn, server
from distribution import config as config_module
from distribution.config import ConfigError, Redis
from distribution.storage.driver import azure, factory
from tests.cache.test_connection import _second_caller_waits
from tests.conftest import TEST_CONFIG, make_app, make_certificate
from tests.observability.smtp_server import SMTPServer
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Honoured:
    """Acted on as Go acts on it (or as our extension says); ``test`` shows it."""

    test: str


@dataclass(frozen=True)
class Warned:
    """Read, not acted on: one start-up warning, exactly ``message``, when set to ``value``."""

    value: Any
    message: str


@dataclass(frozen=True)
class Refused:
    """Set to ``value``, start-up stops with ``registry: configuration error: <message>``."""

    value: Any
    message: str


@dataclass(frozen=True)
class Covered:
    """Decided by the entry for ``by`` (a section by one of its keys, a key that does nothing
    in Go without ``by``)."""

    by: str


Status = Honoured | Warned | Refused | Covered

# Keys of Go's documentation, 2.8.3 and 3.1.1 (list items written ``[]``; the entries of
# free-form maps such as ``log.fields`` or ``http.headers`` are not keys).
GO_DOC_KEYS = """
auth auth.htpasswd auth.htpasswd.path auth.htpasswd.realm auth.silly auth.silly.realm
auth.silly.service auth.token auth.token.autoredirect auth.token.issuer auth.token.jwks
auth.token.realm auth.token.rootcertbundle auth.token.service auth.token.signingalgorithms
compatibility compatibility.schema1 compatibility.schema1.enabled
compatibility.schema1.signingkeyfile
health health.file health.file[].file health.file[].interval health.http
health.http[].headers health.http[].interval health.http[].statuscode health.http[].threshold
health.http[].timeout health.http[].uri health.storagedriver health.storagedriver.enabled
health.storagedriver.interval health.storagedriver.threshold health.tcp health.tcp[].addr
health.tcp[].interval health.tcp[].threshold health.tcp[].timeout
http http.addr http.debug http.debug.addr http.debug.prometheus http.debug.prometheus.enabled
http.debug.prometheus.path http.draintimeout http.h2c http.h2c.enabled http.headers http.host
http.http2 http.http2.disabled http.net http.prefix http.relativeurls http.secret http.tls
http.tls.certificate http.tls.ciphersuites http.tls.clientauth http.tls.clientcas http.tls.key
http.tls.letsencrypt http.tls.letsencrypt.cachefile http.tls.letsencrypt.directoryurl
http.tls.letsencrypt.email http.tls.letsencrypt.hosts http.tls.minimumtls
log log.accesslog log.accesslog.disabled log.fields log.formatter log.hooks
log.hooks[].disabled log.hooks[].levels log.hooks[].options log.hooks[].options.from
log.hooks[].options.smtp log.hooks[].options.smtp.addr log.hooks[].options.smtp.insecure
log.hooks[].options.smtp.password log.hooks[].options.smtp.username log.hooks[].options.to
log.hooks[].type log.level loglevel
middleware middleware.registry middleware.registry[].name middleware.registry[].options
middleware.repository middleware.repository[].name middleware.repository[].options
middleware.storage middleware.storage[].disabled middleware.storage[].name
middleware.storage[].options
notifications notifications.endpoints notifications.endpoints[].backoff
notifications.endpoints[].disabled notifications.endpoints[].headers
notifications.endpoints[].ignore notifications.endpoints[].ignore.actions
notifications.endpoints[].ignore.mediatypes notifications.endpoints[].ignoredmediatypes
notifications.endpoints[].name notifications.endpoints[].threshold
notifications.endpoints[].timeout notifications.endpoints[].url notifications.events
notifications.events.includereferences
proxy proxy.exec proxy.exec.command proxy.exec.lifetime proxy.password proxy.remoteurl
proxy.ttl proxy.username
redis redis.addr redis.addrs redis.connmaxidletime redis.db redis.dialtimeout
redis.maxidleconns redis.password redis.pool redis.pool.idletimeout redis.pool.maxactive
redis.pool.maxidle redis.poolsize redis.readtimeout redis.tls redis.tls.certificate
redis.tls.enabled redis.tls.key redis.tls.rootcas redis.writetimeout
reporting reporting.bugsnag reporting.bugsnag.apikey reporting.bugsnag.endpoint
reporting.bugsnag.releasestage reporting.newrelic reporting.newrelic.licensekey
reporting.newrelic.name reporting.newrelic.verbose
storage storage.azure storage.azure.accountkey storage.azure.accountname
storage.azure.container storage.azure.credentials storage.azure.credentials.clientid
storage.azure.credentials.secret storage.azure.credentials.tenantid
storage.azure.credentials.type storage.azure.max_retries storage.azure.realm
storage.azure.retry_delay storage.azure.rootdirectory storage.cache
storage.cache.blobdescriptor storage.cache.blobdescriptorsize storage.delete
storage.delete.enabled storage.filesystem storage.filesystem.maxthreads
storage.filesystem.rootdirectory storage.gcs storage.gcs.bucket storage.gcs.chunksize
storage.gcs.credentials storage.gcs.keyfile storage.gcs.rootdirectory storage.inmemory
storage.maintenance storage.maintenance.readonly storage.maintenance.readonly.enabled
storage.maintenance.uploadpurging storage.maintenance.uploadpurging.age
storage.maintenance.uploadpurging.dryrun storage.maintenance.uploadpurging.enabled
storage.maintenance.uploadpurging.interval
storage.oss storage.oss.accesskeyid storage.oss.accesskeysecret storage.oss.bucket
storage.oss.chunksize storage.oss.encrypt storage.oss.endpoint storage.oss.internal
storage.oss.region storage.oss.rootdirectory storage.oss.secure
storage.redirect storage.redirect.disable
storage.s3 storage.s3.accelerate storage.s3.accesskey storage.s3.bucket storage.s3.chunksize
storage.s3.encrypt storage.s3.forcepathstyle storage.s3.keyid storage.s3.loglevel
storage.s3.multipartcopychunksize storage.s3.multipartcopymaxconcurrency
storage.s3.multipartcopythresholdsize storage.s3.region storage.s3.regionendpoint
storage.s3.rootdirectory storage.s3.secretkey storage.s3.secure storage.s3.usedualstack
storage.s3.usefipsendpoint storage.s3.v4auth
storage.swift storage.swift.authurl storage.swift.container storage.swift.domain
storage.swift.domainid storage.swift.insecureskipverify storage.swift.password
storage.swift.region storage.swift.rootdirectory storage.swift.tenant storage.swift.tenantid
storage.swift.username
storage.tag storage.tag.concurrencylimit tags tags.maxtags
validation validation.disabled validation.manifests validation.manifests.indexes
validation.manifests.indexes.platformlist
validation.manifests.indexes.platformlist[].architecture
validation.manifests.indexes.platformlist[].os validation.manifests.indexes.platforms
validation.manifests.urls validation.manifests.urls.allow validation.manifests.urls.deny
version
""".split()

# Keys Go's configuration.go (2.8.3, 3.0.0, 3.1.1) or its drivers read that the docs leave out:
# go-redis's options (3.0 reads every field of UniversalOptions by name), 3.0's redis.tls
# clientcas, 3.1's proxy.cachewritetimeout, and the like.
GO_CODE_KEYS = """
auth.token.autoredirectpath catalog catalog.maxentries health.file[].threshold
log.reportcaller policy policy.repository policy.repository.classes proxy.cachewritetimeout
redis.clientname redis.connmaxlifetime redis.contexttimeoutenabled redis.disableidentity
redis.identitysuffix redis.mastername redis.maxactiveconns redis.maxredirects
redis.maxretries redis.maxretrybackoff redis.minidleconns redis.minretrybackoff
redis.poolfifo redis.pooltimeout redis.protocol redis.readonly redis.routebylatency
redis.routerandomly redis.sentinelpassword redis.sentinelusername redis.tls.clientcas
redis.unstableresp3 redis.username storage.azure.skipverify storage.cache.layerinfo
storage.gcs.maxconcurrency storage.gcs.useragent validation.enabled
""".split()

IDLE = "idle connections stay open until they fail (redis-py does not prune them)"
RESP2 = "the registry speaks RESP2 to Redis"
PRIMARIES = "commands go to the cluster's primaries"
BOUNDED = "concurrent calls are bounded by http.workers and http.threads instead"


def ignored(key: str, reason: str) -> str:
    return f"{key} is not supported and is ignored: {reason}"


def _redis_table(prefix: str, keyed_test: str) -> dict[str, Status]:
    """The ``redis`` section, and the same keys under ``notifications.redis``."""
    honoured = {
        "": keyed_test,
        "addr": "tests/cache/test_connection.py::test_a_full_pool_waits_for_a_free_connection",
        "addrs": "tests/replicas/test_redis_topologies.py::test_cluster_spreads_the_keys_over_its_nodes",
        "clientname": "tests/cache/test_connection.py::test_clientname_names_every_connection",
        "db": "tests/notifications/test_queue_redis.py::test_queues_in_a_redis_of_their_own",
        "username": "tests/test_config_parity.py::test_redis_password_and_username",
        "password": "tests/test_config_parity.py::test_redis_password_and_username",
        "mastername": "tests/replicas/test_redis_topologies.py::test_sentinel_leads_to_the_master",
        "sentinelusername": "tests/replicas/test_redis_topologies.py::test_sentinel_leads_to_the_master",
        "sentinelpassword": "tests/replicas/test_redis_topologies.py::test_sentinel_leads_to_the_master",
        "maxretries": "tests/cache/test_connection.py::test_retries_and_backoff_are_go_redis",
        "minretrybackoff": "tests/cache/test_connection.py::test_retries_and_backoff_are_go_redis",
        "maxretrybackoff": "tests/cache/test_connection.py::test_retries_and_backoff_are_go_redis",
        "dialtimeout": "tests/cache/test_guard.py::test_a_dead_redis_is_not_dialled_again_within_the_backoff",
        "readtimeout": "tests/notifications/test_registry.py::test_a_short_redis_read_timeout_does_not_cut_off_waiting_for_events",
        "writetimeout": "tests/notifications/test_registry.py::test_a_short_redis_read_timeout_does_not_cut_off_waiting_for_events",
        "pool": "tests/cache/test_connection.py::test_a_full_pool_waits_for_a_free_connection",
        "pool.maxactive": "tests/cache/test_connection.py::test_a_full_pool_waits_for_a_free_connection",
        "poolsize": "tests/test_config_parity.py::test_pool_sizes_bound_the_connections",
        "maxactiveconns": "tests/test_config_parity.py::test_pool_sizes_bound_the_connections",
        "pooltimeout": "tests/cache/test_connection.py::test_pooltimeout_bounds_the_wait_for_a_free_connection",
        "disableidentity": "tests/cache/test_connection.py::test_disableidentity_sends_no_client_setinfo",
        "tls": "tests/cache/test_connection.py::test_gos_tls_keys_turn_tls_on_and_every_ca_counts",
        "tls.certificate": "tests/cache/test_connection.py::test_gos_tls_keys_turn_tls_on_and_every_ca_counts",
        "tls.key": "tests/cache/test_connection.py::test_gos_tls_keys_turn_tls_on_and_every_ca_counts",
        "tls.rootcas": "tests/cache/test_connection.py::test_gos_tls_keys_turn_tls_on_and_every_ca_counts",
        "tls.clientcas": "tests/cache/test_connection.py::test_gos_tls_keys_turn_tls_on_and_every_ca_counts",
        "tls.enabled": "tests/cache/test_connection.py::test_tls_verifies_the_server_with_ca_files",
        "keyprefix": "tests/notifications/test_queue_redis.py::test_keyprefix_separates_deployments_sharing_a_database",
    }
    warned: dict[str, tuple[Any, str]] = {
        "pool.maxidle": (16, IDLE),
        "pool.idletimeout": ("300s", IDLE),
        "minidleconns": (2, IDLE),
        "maxidleconns": (16, IDLE),
        "connmaxidletime": ("300s", IDLE),
        "connmaxlifetime": (
            "1h",
            "connections are kept until they fail (redis-py does not recycle them)",
        ),
        "contexttimeoutenabled": (
            True,
            "every command is bounded by readtimeout and writetimeout already",
        ),
        "poolfifo": (True, "the last connection returned to the pool is used first"),
        "protocol": (3, RESP2),
        "unstableresp3": (True, RESP2),
        "maxredirects": (5, "redis-py's cluster client follows MOVED and ASK redirects itself"),
        "readonly": (True, PRIMARIES),
        "routebylatency": (True, PRIMARIES),
        "routerandomly": (True, PRIMARIES),
        "identitysuffix": ("-eu", "redis-py names itself in CLIENT SETINFO"),
    }
    table: dict[str, Status] = {}
    for key, test in honoured.items():
        table[f"{prefix}.{key}" if key else prefix] = Honoured(test)
    for key, (value, reason) in warned.items():
        table[f"{prefix}.{key}"] = Warned(value, ignored(f"{prefix}.{key}", reason))
    return table


def _unknown_driver(name: str) -> str:
    return f"storage: unknown storage driver {name!r} (available: {', '.join(factory.names())})"


TABLE: dict[str, Status] = {
    "version": Honoured("tests/test_config.py::test_unsupported_version"),
    "loglevel": Honoured("tests/test_config.py::test_deprecated_loglevel"),
    # log
    "log": Honoured(
        "tests/observability/test_logging.py::test_every_line_of_a_request_carries_its_id_and_fields"
    ),
    "log.level": Honoured("tests/test_config.py::test_log_level_is_case_insensitive"),
    "log.formatter": Honoured(
        "tests/observability/test_logging.py::test_logstash_is_go_2s_format_exactly"
    ),
    "log.fields": Honoured(
        "tests/observability/test_logging.py::test_every_line_of_a_request_carries_its_id_and_fields"
    ),
    "log.accesslog": Honoured("tests/test_serve.py::test_access_log_follows_config"),
    "log.accesslog.disabled": Honoured("tests/test_serve.py::test_access_log_follows_config"),
    "log.reportcaller": Honoured(
        "tests/observability/test_logging.py::test_reportcaller_adds_logrus_func_and_file"
    ),
    "log.hooks": Honoured(
        "tests/observability/test_mailhook.py::test_registry_serve_mails_its_errors"
    ),
    "log.hooks[].disabled": Honoured(
        "tests/observability/test_mailhook.py::test_a_disabled_hook_sends_nothing"
    ),
    "log.hooks[].type": Honoured(
        "tests/observability/test_mailhook.py::test_an_unknown_hook_type_is_ignored_with_a_warning"
    ),
    "log.hooks[].levels": Honoured(
        "tests/observability/test_mailhook.py::test_a_line_of_a_chosen_level_is_mailed_as_go_mails_it"
    ),
    "log.hooks[].options": Honoured(
        "tests/observability/test_mailhook.py::test_a_line_of_a_chosen_level_is_mailed_as_go_mails_it"
    ),
    "log.hooks[].options.from": Honoured(
        "tests/observability/test_mailhook.py::test_a_line_of_a_chosen_level_is_mailed_as_go_mails_it"
    ),
    "log.hooks[].options.to": Honoured(
        "tests/observability/test_mailhook.py::test_a_line_of_a_chosen_level_is_mailed_as_go_mails_it"
    ),
    "log.hooks[].options.smtp": Honoured(
        "tests/observability/test_mailhook.py::test_a_line_of_a_chosen_level_is_mailed_as_go_mails_it"
    ),
    "log.hooks[].options.smtp.addr": Honoured(
        "tests/observability/test_mailhook.py::test_a_line_of_a_chosen_level_is_mailed_as_go_mails_it"
    ),
    "log.hooks[].options.smtp.username": Honoured(
        "tests/observability/test_mailhook.py::test_a_line_of_a_chosen_level_is_mailed_as_go_mails_it"
    ),
    "log.hooks[].options.smtp.password": Honoured(
        "tests/observability/test_mailhook.py::test_a_line_of_a_chosen_level_is_mailed_as_go_mails_it"
    ),
    "log.hooks[].options.smtp.insecure": Honoured(
        "tests/test_config_parity.py::test_insecure_smtp_skips_certificate_checks"
    ),
    # storage
    "storage": Honoured("tests/test_config.py::test_storage_driver_parameters_are_free_form"),
    "storage.inmemory": Honoured(
        "tests/test_serve.py::test_inmemory_storage_runs_one_worker_so_every_request_sees_the_push"
    ),
    "storage.filesystem": Honoured(
        "tests/storage/test_filesystem.py::test_layout_is_the_go_registrys"
    ),
    "storage.filesystem.rootdirectory": Honoured(
        "tests/storage/test_filesystem.py::test_layout_is_the_go_registrys"
    ),
    "storage.filesystem.maxthreads": Warned(50, ignored("storage.filesystem.maxthreads", BOUNDED)),
    "storage.gcs": Honoured("tests/storage/test_gcs.py::test_objects_live_below_rootdirectory"),
    "storage.gcs.bucket": Honoured(
        "tests/cloud/test_drivers.py::test_gcs_missing_bucket_fails_at_start"
    ),
    "storage.gcs.rootdirectory": Honoured(
        "tests/storage/test_gcs.py::test_objects_live_below_rootdirectory"
    ),
    "storage.gcs.chunksize": Honoured(
        "tests/storage/test_gcs.py::test_chunksize_accepts_a_numeric_string"
    ),
    "storage.gcs.keyfile": Honoured(
        "tests/storage/test_gcs.py::test_service_account_credentials_give_a_signed_url"
    ),
    "storage.gcs.credentials": Honoured(
        "tests/storage/test_gcs.py::test_service_account_credentials_give_a_signed_url"
    ),
    "storage.gcs.useragent": Honoured(
        "tests/cloud/test_drivers.py::test_gcs_useragent_is_sent_on_every_request"
    ),
    "storage.gcs.maxconcurrency": Warned(50, ignored("storage.gcs.maxconcurrency", BOUNDED)),
    "storage.azure": Honoured("tests/storage/test_azure.py::test_blobs_live_below_rootdirectory"),
    "storage.azure.accountname": Honoured(
        "tests/storage/test_azure.py::test_bad_key_fails_at_start"
    ),
    "storage.azure.accountkey": Honoured(
        "tests/storage/test_azure.py::test_bad_key_fails_at_start"
    ),
    "storage.azure.container": Honoured(
        "tests/storage/test_azure.py::test_missing_container_fails_at_start"
    ),
    "storage.azure.rootdirectory": Honoured(
        "tests/storage/test_azure.py::test_blobs_live_below_rootdirectory"
    ),
    "storage.azure.realm": Honoured(
        "tests/test_config_parity.py::test_azure_realm_names_the_service"
    ),
    "storage.azure.credentials": Honoured(
        "tests/cloud/test_drivers.py::test_azure_bad_credentials_parameters"
    ),
    "storage.azure.credentials.type": Honoured(
        "tests/cloud/test_drivers.py::test_azure_default_credentials_with_none_available_stop_serve_in_one_line"
    ),
    "storage.azure.credentials.clientid": Honoured(
        "tests/cloud/test_drivers.py::test_azure_bad_credentials_parameters"
    ),
    "storage.azure.credentials.tenantid": Honoured(
        "tests/cloud/test_drivers.py::test_azure_bad_credentials_parameters"
    ),
    "storage.azure.credentials.secret": Honoured(
        "tests/cloud/test_drivers.py::test_azure_bad_credentials_parameters"
    ),
    "storage.azure.max_retries": Honoured(
        "tests/cloud/test_drivers.py::test_azure_max_retries_zero_is_gos_default_and_negative_is_none"
    ),
    "storage.azure.retry_delay": Honoured(
        "tests/cloud/test_drivers.py::test_azure_calls_are_retried_and_bounded"
    ),
    "storage.azure.skipverify": Honoured("tests/cloud/test_drivers.py::test_azure_skipverify"),
    "storage.tag": Honoured(
        "tests/storage/test_tag_lookup.py::test_lookup_reads_at_most_limit_tags_at_once"
    ),
    "storage.tag.concurrencylimit": Honoured(
        "tests/storage/test_tag_lookup.py::test_lookup_reads_at_most_limit_tags_at_once"
    ),
    "storage.delete": Honoured(
        "tests/api/test_blobs.py::test_delete_is_unsupported_unless_enabled"
    ),
    "storage.delete.enabled": Honoured(
        "tests/api/test_blobs.py::test_delete_is_unsupported_unless_enabled"
    ),
    "storage.redirect": Honoured("tests/api/test_blobs.py::test_redirect_to_the_drivers_url"),
    "storage.redirect.disable": Honoured(
        "tests/api/test_blobs.py::test_redirect_to_the_drivers_url"
    ),
    "storage.cache": Honoured("tests/cache/test_factory.py::test_inmemory_has_the_configured_size"),
    "storage.cache.blobdescriptor": Honoured(
        "tests/cache/test_storage.py::test_blob_head_on_a_hit_reads_no_storage"
    ),
    "storage.cache.blobdescriptorsize": Honoured(
        "tests/cache/test_factory.py::test_inmemory_size_zero_or_less_is_unlimited_as_in_go"
    ),
    "storage.cache.layerinfo": Honoured(
        "tests/cache/test_factory.py::test_layerinfo_is_gos_old_name_for_blobdescriptor"
    ),
    "storage.maintenance": Honoured(
        "tests/gc/test_schedule.py::test_one_worker_of_one_replica_runs_maintenance"
    ),
    "storage.maintenance.uploadpurging": Honoured(
        "tests/gc/test_purge.py::test_purge_removes_old_uploads_only"
    ),
    "storage.maintenance.uploadpurging.enabled": Honoured(
        "tests/gc/test_schedule.py::test_one_worker_of_one_replica_runs_maintenance"
    ),
    "storage.maintenance.uploadpurging.age": Honoured(
        "tests/gc/test_purge.py::test_purge_removes_old_uploads_only"
    ),
    "storage.maintenance.uploadpurging.interval": Honoured(
        "tests/gc/test_schedule.py::test_one_worker_of_one_replica_runs_maintenance"
    ),
    "storage.maintenance.uploadpurging.dryrun": Honoured(
        "tests/gc/test_purge.py::test_purge_removes_old_uploads_only"
    ),
    "storage.maintenance.readonly": Honoured("tests/api/test_manifests.py::test_read_only_mode"),
    "storage.maintenance.readonly.enabled": Honoured(
        "tests/api/test_manifests.py::test_read_only_mode"
    ),
    "storage.maintenance.gc": Honoured("tests/gc/test_gc_config.py::test_gc_section_is_read"),
    "storage.maintenance.gc.enabled": Honoured(
        "tests/gc/test_schedule.py::test_one_worker_of_one_replica_runs_maintenance"
    ),
    "storage.maintenance.gc.interval": Honoured(
        "tests/gc/test_schedule.py::test_one_worker_of_one_replica_runs_maintenance"
    ),
    "storage.maintenance.gc.age": Honoured(
        "tests/gc/test_collect.py::test_online_spares_young_blobs"
    ),
    "storage.maintenance.gc.dryrun": Honoured(
        "tests/gc/test_collect.py::test_dry_run_deletes_nothing_and_lists_what_would_go"
    ),
    "storage.maintenance.gc.deleteuntagged": Honoured(
        "tests/gc/test_collect.py::test_delete_untagged_keeps_index_children_and_referrers"
    ),
    # auth
    "auth": Honoured("tests/auth/test_startup.py::test_unknown_controller_lists_the_known_ones"),
    "auth.htpasswd": Honoured(
        "tests/auth/test_http.py::test_valid_credentials_pass_and_set_the_user"
    ),
    "auth.htpasswd.realm": Honoured(
        "tests/auth/test_http.py::test_base_without_credentials_is_challenged"
    ),
    "auth.htpasswd.path": Honoured(
        "tests/auth/test_htpasswd.py::test_check_creates_a_missing_file_with_a_logged_password"
    ),
    "auth.silly": Honoured(
        "tests/auth/test_http.py::test_silly_lets_any_authorization_header_through"
    ),
    "auth.silly.realm": Honoured(
        "tests/auth/test_http.py::test_silly_lets_any_authorization_header_through"
    ),
    "auth.silly.service": Honoured(
        "tests/auth/test_http.py::test_silly_lets_any_authorization_header_through"
    ),
    "auth.token": Honoured("tests/auth/test_http.py::test_token_with_rights_passes"),
    "auth.token.realm": Honoured(
        "tests/auth/test_http.py::test_token_challenge_names_realm_service_and_scope"
    ),
    "auth.token.service": Honoured(
        "tests/auth/test_http.py::test_token_challenge_names_realm_service_and_scope"
    ),
    "auth.token.issuer": Honoured(
        "tests/auth/test_token.py::test_x5c_chain_through_an_intermediate"
    ),
    "auth.token.rootcertbundle": Honoured(
        "tests/auth/test_token.py::test_x5c_chain_through_an_intermediate"
    ),
    "auth.token.jwks": Honoured("tests/auth/test_token.py::test_jwks_key_by_kid"),
    "auth.token.signingalgorithms": Honoured(
        "tests/auth/test_token.py::test_hmac_needs_its_algorithm_in_signingalgorithms"
    ),
    "auth.token.autoredirect": Honoured(
        "tests/auth/test_token.py::test_autoredirect_realm_uses_the_request_host"
    ),
    "auth.token.autoredirectpath": Honoured(
        "tests/auth/test_token.py::test_autoredirect_realm_uses_the_request_host"
    ),
    # middleware (the S3 issue's): storage middleware applied to redirects; Go has no
    # registry or repository middleware built in, so a name there is refused as in Go
    "middleware": Honoured("tests/storage/test_middleware.py::test_redirect"),
    "middleware.storage": Honoured(
        "tests/storage/test_middleware.py::test_cloudfront_signs_a_canned_policy"
    ),
    "middleware.storage[].name": Honoured(
        "tests/storage/test_middleware.py::test_rewrite_keeps_the_signature"
    ),
    "middleware.storage[].options": Honoured(
        "tests/storage/test_middleware.py::test_cloudfront_lets_aws_addresses_go_to_s3"
    ),
    "middleware.storage[].disabled": Honoured(
        "tests/storage/test_middleware.py::test_refused_at_start"
    ),
    **{
        key: Honoured("tests/storage/test_middleware.py::test_refused_at_start")
        for key in (
            "middleware.registry",
            "middleware.registry[].name",
            "middleware.registry[].options",
            "middleware.repository",
            "middleware.repository[].name",
            "middleware.repository[].options",
        )
    },
    # http
    "http": Honoured("tests/test_serve.py::test_http_addr_from_env_overrides_the_file"),
    "http.addr": Honoured(
        "tests/test_serve.py::test_an_unspecified_host_listens_on_ipv4_and_ipv6_as_go"
    ),
    "http.net": Honoured(
        "tests/test_serve.py::test_tcp4_and_tcp6_are_refused_as_gos_listener_refuses_them"
    ),
    "http.host": Honoured("tests/test_config_parity.py::test_http_host_makes_the_location_urls"),
    "http.prefix": Honoured("tests/api/test_tags.py::test_link_keeps_the_http_prefix"),
    "http.secret": Honoured(
        "tests/replicas/test_uploads.py::test_different_secrets_break_uploads_across_replicas"
    ),
    "http.relativeurls": Honoured(
        "tests/api/test_uploads.py::test_relative_and_forwarded_locations"
    ),
    "http.draintimeout": Honoured(
        "tests/test_config_parity.py::test_draintimeout_is_gunicorns_graceful_timeout"
    ),
    "http.headers": Honoured(
        "tests/test_serve.py::test_embedded_default_answers_the_version_check"
    ),
    "http.debug": Honoured(
        "tests/observability/test_debug.py::test_routes_by_the_connections_local_address"
    ),
    "http.debug.addr": Honoured(
        "tests/tls/test_tls.py::test_debug_server_speaks_plain_http_beside_a_tls_api"
    ),
    "http.debug.prometheus": Honoured(
        "tests/observability/test_metrics.py::test_the_debug_app_serves_metrics_health_and_vars_only"
    ),
    "http.debug.prometheus.enabled": Honoured(
        "tests/observability/test_metrics.py::test_without_a_debug_address_requests_are_not_instrumented"
    ),
    "http.debug.prometheus.path": Honoured(
        "tests/observability/test_metrics.py::test_the_debug_app_serves_metrics_health_and_vars_only"
    ),
    "http.http2": Honoured("tests/test_config_parity.py::test_http2_is_never_offered"),
    "http.http2.disabled": Honoured("tests/test_config_parity.py::test_http2_is_never_offered"),
    "http.h2c": Honoured("tests/test_config_parity.py::test_http2_is_never_offered"),
    "http.h2c.enabled": Warned(
        True,
        ignored(
            "http.h2c.enabled",
            "this registry serves HTTP/1.1 only (no HTTP/2, in cleartext or over TLS)",
        ),
    ),
    "http.tls": Honoured("tests/test_serve.py::test_tls_from_config"),
    "http.tls.certificate": Honoured(
        "tests/tls/test_tls.py::test_intermediate_chain_push_and_pull_trusting_only_the_root"
    ),
    "http.tls.key": Honoured("tests/tls/test_tls.py::test_bad_tls_files_name_their_key"),
    "http.tls.clientcas": Honoured(
        "tests/tls/test_tls.py::test_mutual_tls_refuses_a_client_without_a_certificate"
    ),
    "http.tls.clientauth": Honoured(
        "tests/tls/test_tls.py::test_request_client_cert_lets_every_client_in_as_go"
    ),
    "http.tls.minimumtls": Honoured("tests/tls/test_tls.py::test_minimum_tls_version"),
    "http.tls.ciphersuites": Honoured(
        "tests/tls/test_tls.py::test_ciphersuites_with_gos_names_and_gos_default"
    ),
    "http.tls.letsencrypt": Honoured(
        "tests/tls/test_letsencrypt.py::test_obtains_a_certificate_skopeo_pushes_and_pulls_and_a_restart_orders_nothing"
    ),
    "http.tls.letsencrypt.cachefile": Honoured(
        "tests/tls/test_letsencrypt.py::test_two_workers_and_two_replicas_on_one_folder_order_once"
    ),
    "http.tls.letsencrypt.email": Honoured(
        "tests/tls/test_letsencrypt.py::test_the_guides_variables_set_every_key"
    ),
    "http.tls.letsencrypt.hosts": Honoured(
        "tests/tls/test_letsencrypt.py::test_a_host_outside_hosts_is_refused_with_one_line"
    ),
    "http.tls.letsencrypt.directoryurl": Honoured(
        "tests/tls/test_letsencrypt.py::test_an_unreachable_directory_is_one_line_and_a_backoff"
    ),
    "http.timeouts": Honoured(
        "tests/test_worker.py::test_stalled_heads_hold_no_thread_and_are_closed"
    ),
    "http.timeouts.header": Honoured(
        "tests/test_worker.py::test_a_trickling_head_is_closed_at_its_deadline"
    ),
    "http.timeouts.body": Honoured(
        "tests/test_worker.py::test_stalled_bodies_do_not_starve_other_requests"
    ),
    "http.timeouts.idle": Honoured(
        "tests/test_worker.py::test_keepalive_pipelining_and_idle_close"
    ),
    "access": Honoured(
        "tests/access/test_e2e.py::test_each_user_end_to_end_with_skopeo_and_podman"
    ),
    "storage.maintenance.usage": Honoured("tests/usage/test_usage.py::test_the_summary_and_gauges"),
    "storage.maintenance.retention": Honoured(
        "tests/retention/test_schedule.py::test_the_scheduler_applies_retention"
    ),
    "storage.maintenance.quotas": Honoured(
        "tests/quotas/test_e2e.py::test_a_push_over_the_quota_is_refused_until_a_delete"
    ),
    "ui": Covered("ui.enabled"),
    "ui.enabled": Honoured("tests/ui/test_views.py::test_the_ui_can_be_turned_off"),
    "ui.sessiontimeout": Honoured(
        "tests/ui/test_views.py::test_a_forged_or_expired_session_counts_as_no_session"
    ),
    "http.workers": Honoured(
        "tests/test_serve.py::test_inmemory_storage_runs_one_worker_so_every_request_sees_the_push"
    ),
    "http.threads": Honoured("tests/test_config.py::test_workers_and_threads_variables"),
    "http.trustedproxies": Honoured(
        "tests/proxying/test_trusted_proxies.py::test_forwarded_headers_of_an_untrusted_peer_are_ignored"
    ),
    # notifications
    "notifications": Honoured(
        "tests/notifications/test_app.py::test_push_pull_delete_give_gos_events"
    ),
    "notifications.events": Honoured(
        "tests/notifications/test_app.py::test_references_with_includereferences"
    ),
    "notifications.events.includereferences": Honoured(
        "tests/notifications/test_app.py::test_references_with_includereferences"
    ),
    "notifications.endpoints": Honoured(
        "tests/notifications/test_registry.py::test_go_registry_sends_the_same_events"
    ),
    "notifications.endpoints[].name": Honoured(
        "tests/notifications/test_app.py::test_gos_notification_metrics"
    ),
    "notifications.endpoints[].disabled": Honoured(
        "tests/notifications/test_app.py::test_disabled_endpoints_get_no_dispatcher"
    ),
    "notifications.endpoints[].url": Honoured(
        "tests/notifications/test_delivery.py::test_sender_posts_the_envelope_with_headers"
    ),
    "notifications.endpoints[].headers": Honoured(
        "tests/notifications/test_delivery.py::test_sender_posts_the_envelope_with_headers"
    ),
    "notifications.endpoints[].timeout": Honoured(
        "tests/notifications/test_registry.py::test_with_redis_killed_workers_lose_nothing"
    ),
    "notifications.endpoints[].threshold": Honoured(
        "tests/notifications/test_delivery.py::test_breaker_waits_only_after_threshold_failures"
    ),
    "notifications.endpoints[].backoff": Honoured(
        "tests/notifications/test_delivery.py::test_breaker_waits_only_after_threshold_failures"
    ),
    "notifications.endpoints[].ignoredmediatypes": Honoured(
        "tests/notifications/test_app.py::test_ignored_media_types_and_actions_are_not_sent"
    ),
    "notifications.endpoints[].ignore": Honoured(
        "tests/notifications/test_app.py::test_ignored_media_types_and_actions_are_not_sent"
    ),
    "notifications.endpoints[].ignore.mediatypes": Honoured(
        "tests/notifications/test_app.py::test_ignored_media_types_and_actions_are_not_sent"
    ),
    "notifications.endpoints[].ignore.actions": Honoured(
        "tests/notifications/test_app.py::test_ignored_media_types_and_actions_are_not_sent"
    ),
    **_redis_table(
        "redis", "tests/cache/test_storage.py::test_redis_stopped_mid_run_never_fails_a_request"
    ),
    **_redis_table(
        "notifications.redis",
        "tests/notifications/test_queue_redis.py::test_queues_in_a_redis_of_their_own",
    ),
    # health
    "health": Honoured(
        "tests/observability/test_health.py::test_the_api_answers_503_unavailable_while_a_check_fails"
    ),
    "health.storagedriver": Honoured(
        "tests/observability/test_process.py::test_health_turns_503_when_storage_is_unreadable"
    ),
    "health.storagedriver.enabled": Honoured(
        "tests/observability/test_process.py::test_health_turns_503_when_storage_is_unreadable"
    ),
    "health.storagedriver.interval": Honoured(
        "tests/observability/test_health.py::test_checks_poll_on_their_interval_and_stop"
    ),
    "health.storagedriver.threshold": Honoured(
        "tests/observability/test_health.py::test_threshold_updater_fails_after_threshold_consecutive_failures"
    ),
    "health.file": Honoured(
        "tests/observability/test_process.py::test_health_turns_503_while_the_drain_file_exists"
    ),
    "health.file[].file": Honoured(
        "tests/observability/test_health.py::test_file_check_fails_while_the_file_exists"
    ),
    "health.file[].interval": Honoured(
        "tests/observability/test_health.py::test_checks_poll_on_their_interval_and_stop"
    ),
    "health.file[].threshold": Honoured(
        "tests/observability/test_health.py::test_file_check_fails_while_the_file_exists"
    ),
    "health.http": Honoured(
        "tests/observability/test_health.py::test_http_check_sends_head_with_headers_and_compares_the_status"
    ),
    "health.http[].uri": Honoured(
        "tests/observability/test_health.py::test_http_check_sends_head_with_headers_and_compares_the_status"
    ),
    "health.http[].headers": Honoured(
        "tests/observability/test_health.py::test_http_check_sends_head_with_headers_and_compares_the_status"
    ),
    "health.http[].statuscode": Honoured(
        "tests/observability/test_health.py::test_http_check_sends_head_with_headers_and_compares_the_status"
    ),
    "health.http[].timeout": Honoured(
        "tests/observability/test_health.py::test_http_check_sends_head_with_headers_and_compares_the_status"
    ),
    "health.http[].interval": Honoured(
        "tests/observability/test_health.py::test_configured_checks_are_named_as_in_go"
    ),
    "health.http[].threshold": Honoured(
        "tests/observability/test_health.py::test_threshold_updater_fails_after_threshold_consecutive_failures"
    ),
    "health.tcp": Honoured("tests/observability/test_health.py::test_tcp_check_connects"),
    "health.tcp[].addr": Honoured("tests/observability/test_health.py::test_tcp_check_connects"),
    "health.tcp[].timeout": Honoured("tests/observability/test_health.py::test_tcp_check_connects"),
    "health.tcp[].interval": Honoured(
        "tests/observability/test_health.py::test_configured_checks_are_named_as_in_go"
    ),
    "health.tcp[].threshold": Honoured(
        "tests/observability/test_health.py::test_threshold_updater_fails_after_threshold_consecutive_failures"
    ),
    # proxy
    "proxy": Honoured(
        "tests/proxy/test_pull_through.py::test_pulls_through_and_serves_from_storage_after"
    ),
    "proxy.remoteurl": Honoured(
        "tests/proxy/test_pull_through.py::test_pulls_through_and_serves_from_storage_after"
    ),
    "proxy.username": Honoured(
        "tests/proxy/test_upstream_auth.py::test_pulls_through_a_token_authenticated_upstream"
    ),
    "proxy.password": Honoured(
        "tests/proxy/test_upstream_auth.py::test_wrong_credentials_get_no_content"
    ),
    "proxy.ttl": Honoured(
        "tests/proxy/test_pull_through.py::test_ttl_expiry_removes_what_was_fetched"
    ),
    "proxy.exec": Refused(
        {"command": "docker-credential-ecr-login"},
        "proxy.exec: not supported: credential helpers are not run here; give proxy.username "
        "and proxy.password",
    ),
    "proxy.exec.command": Refused(
        "docker-credential-ecr-login",
        "proxy.exec: not supported: credential helpers are not run here; give proxy.username "
        "and proxy.password",
    ),
    "proxy.exec.lifetime": Refused(
        "1h",
        "proxy.exec: not supported: credential helpers are not run here; give proxy.username "
        "and proxy.password",
    ),
    "proxy.cachewritetimeout": Warned(
        "5m",
        ignored(
            "proxy.cachewritetimeout",
            "a blob pulled through is stored as it streams to the client, never after",
        ),
    ),
    # validation, catalog, tags, policy
    "validation": Honoured("tests/test_config.py::test_validation_is_on_unless_disabled"),
    "validation.enabled": Honoured("tests/test_config.py::test_validation_is_on_unless_disabled"),
    "validation.disabled": Honoured(
        "tests/api/test_manifests.py::test_validation_disabled_ignores_allow_and_deny"
    ),
    "validation.manifests": Honoured(
        "tests/api/test_manifests.py::test_default_config_refuses_every_url"
    ),
    "validation.manifests.urls": Honoured(
        "tests/api/test_manifests.py::test_default_config_refuses_every_url"
    ),
    "validation.manifests.urls.allow": Honoured("tests/api/test_manifests.py::test_policy"),
    "validation.manifests.urls.deny": Honoured(
        "tests/api/test_manifests.py::test_deny_alone_allows_the_rest"
    ),
    "validation.manifests.indexes": Honoured(
        "tests/api/test_manifests.py::test_index_validation_none_and_list"
    ),
    "validation.manifests.indexes.platforms": Honoured(
        "tests/api/test_manifests.py::test_index_validation_none_and_list"
    ),
    "validation.manifests.indexes.platformlist": Honoured(
        "tests/api/test_manifests.py::test_index_validation_none_and_list"
    ),
    "validation.manifests.indexes.platformlist[].architecture": Honoured(
        "tests/api/test_manifests.py::test_index_validation_none_and_list"
    ),
    "validation.manifests.indexes.platformlist[].os": Honoured(
        "tests/api/test_manifests.py::test_index_validation_none_and_list"
    ),
    "catalog": Honoured("tests/api/test_catalog.py::test_maxentries_caps_the_default_page"),
    "catalog.maxentries": Honoured("tests/api/test_catalog.py::test_n_above_maxentries"),
    "tags": Honoured("tests/api/test_tags.py::test_n_above_maxtags_is_lowered_to_it_with_a_link"),
    "tags.maxtags": Honoured(
        "tests/api/test_tags.py::test_n_above_maxtags_is_lowered_to_it_with_a_link"
    ),
    "policy": Honoured("tests/api/test_manifests.py::test_other_classes_are_denied"),
    "policy.repository": Honoured("tests/api/test_manifests.py::test_other_classes_are_denied"),
    "policy.repository.classes": Honoured(
        "tests/api/test_manifests.py::test_other_classes_are_denied"
    ),
    # registry 2.x only
    "reporting": Covered("reporting.bugsnag"),
    "reporting.bugsnag": Warned(
        {"apikey": "k"}, ignored("reporting.bugsnag", "errors are not reported to Bugsnag")
    ),
    "reporting.bugsnag.apikey": Warned(
        "k", ignored("reporting.bugsnag", "errors are not reported to Bugsnag")
    ),
    "reporting.bugsnag.releasestage": Covered("reporting.bugsnag.apikey"),
    "reporting.bugsnag.endpoint": Covered("reporting.bugsnag.apikey"),
    "reporting.newrelic": Warned(
        {"licensekey": "k"}, ignored("reporting.newrelic", "requests are not reported to New Relic")
    ),
    "reporting.newrelic.licensekey": Warned(
        "k", ignored("reporting.newrelic", "requests are not reported to New Relic")
    ),
    "reporting.newrelic.name": Covered("reporting.newrelic.licensekey"),
    "reporting.newrelic.verbose": Covered("reporting.newrelic.licensekey"),
    "compatibility": Covered("compatibility.schema1.enabled"),
    "compatibility.schema1": Covered("compatibility.schema1.enabled"),
    "compatibility.schema1.enabled": Warned(
        True,
        ignored(
            "compatibility.schema1.enabled",
            "schema 1 manifests cannot be pushed here (stored ones are served as stored)",
        ),
    ),
    "compatibility.schema1.signingkeyfile": Warned(
        "/etc/docker/registry/key.json",
        ignored("compatibility.schema1.signingkeyfile", "schema 1 manifests are never signed here"),
    ),
    # drivers registry 2.x had and this registry has not (s3 is the S3 issue's)
    **{
        key: Refused(
            {"bucket": "b"} if key.count(".") == 1 else "x", _unknown_driver(key.split(".")[1])
        )
        for key in GO_DOC_KEYS
        if key.startswith(("storage.oss", "storage.swift"))
    },
    # the s3 driver (the S3 issue's): every parameter as Go reads it, the driver on Ceph
    "storage.s3": Honoured("tests/cloud/test_drivers.py::test_s3_calls_are_retried_and_bounded"),
    **{
        key: Honoured("tests/storage/test_s3.py::test_every_parameter_as_a_registry_variable")
        for key in GO_DOC_KEYS
        if key.startswith("storage.s3.")
    },
}


def _parser_keys() -> set[str]:
    """Every key our parser reads, list items written ``[]``; free-form maps are not entered."""
    found: set[str] = set()

    def walk(kind: Any, prefix: str) -> None:
        if isinstance(kind, config_module._StorageKind):
            for name, section in config_module._STORAGE_SECTIONS.items():
                found.add(f"{prefix}.{name}")
                walk(section, f"{prefix}.{name}")
        elif isinstance(kind, config_module._Struct):
            for key, field in kind.fields.items():
                path = f"{prefix}.{key}" if prefix else key
                found.add(path)
                walk(field.kind, path)
        elif isinstance(kind, config_module._List):
            walk(kind.item, prefix + "[]")

    walk(config_module._ROOT, "")
    return found


def _sample(key: str, value: Any) -> str:
    """A config that sets ``key`` to ``value`` (a driver key replaces the storage section)."""
    document: dict[str, Any] = {
        "version": "0.1",
        "storage": {"inmemory": {}},
        "http": {"secret": "s"},
    }
    path = key.split(".")
    if path[0] == "storage" and len(path) > 1 and path[1] not in config_module._STORAGE_SECTIONS:
        document["storage"] = {}
    node = document
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    return yaml.safe_dump(document)


def _test_exists(reference: str) -> bool:
    file, _, name = reference.partition("::")
    path = ROOT / file
    if not path.is_file():
        return False
    tree = ast.parse(path.read_text())
    return any(isinstance(node, ast.FunctionDef) and node.name == name for node in ast.walk(tree))


def test_every_go_key_has_an_entry() -> None:
    missing = sorted((set(GO_DOC_KEYS) | set(GO_CODE_KEYS)) - TABLE.keys())
    assert missing == []


def test_every_parser_key_has_an_entry() -> None:
    """A key added to the parser must say here how it is honoured, or that it is not."""
    missing = sorted(_parser_keys() - TABLE.keys())
    assert missing == []


@pytest.mark.parametrize(
    "key", sorted(key for key, status in TABLE.items() if isinstance(status, Honoured))
)
def test_honoured_keys_name_a_test_that_exists(key: str) -> None:
    status = TABLE[key]
    assert isinstance(status, Honoured)
    assert _test_exists(status.test), f"{key}: no test {status.test}"


@pytest.mark.parametrize(
    "key", sorted(key for key, status in TABLE.items() if isinstance(status, Covered))
)
def test_covered_keys_name_a_decided_entry(key: str) -> None:
    status = TABLE[key]
    assert isinstance(status, Covered)
    assert isinstance(TABLE.get(status.by), (Honoured, Warned, Refused)), status.by


WARNED = sorted(key for key, status in TABLE.items() if isinstance(status, Warned))
REFUSED = sorted(key for key, status in TABLE.items() if isinstance(status, Refused))


@pytest.mark.parametrize("key", WARNED)
def test_warned_keys_say_so_once(
    key: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    status = TABLE[key]
    assert isinstance(status, Warned)
    path = tmp_path / "config.yml"
    path.write_text(_sample(key, status.value))
    with caplog.at_level(logging.WARNING, logger="distribution.parity"):
        try:
            cli.prepare(str(path))
        except ConfigError as err:  # a driver's parameter without its credentials, etc.
            assert not err.key.startswith(key), err
            with caplog.at_level(logging.WARNING, logger="distribution.parity"):
                parity.check(config_module.load(str(path), {}))
    assert [r.getMessage() for r in caplog.records if r.name == "distribution.parity"] == [
        status.message
    ]


@pytest.mark.parametrize("key", REFUSED)
def test_refused_keys_stop_start_up(key: str, tmp_path: Path) -> None:
    status = TABLE[key]
    assert isinstance(status, Refused)
    path = tmp_path / "config.yml"
    path.write_text(_sample(key, status.value))
    with pytest.raises(ConfigError) as info:
        cli.prepare(str(path))
    assert str(info.value) == status.message


def test_unset_keys_say_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """Go's own defaults, spelt out, are not warned about."""
    with caplog.at_level(logging.WARNING, logger="distribution.parity"):
        parity.check(config_module.load(None, {}))
        parity.check(
            config_module.parse(
                "version: 0.1\nstorage: inmemory\nhttp: {h2c: {enabled: false}}\n"
                "redis: {addr: 'localhost:6379', protocol: 2, pool: {maxidle: 0}}\n",
                {},
            )
        )
    assert caplog.messages == []


# --- behaviour of keys no other test covers -------------------------------------------------


def test_redis_password_and_username(tmp_path: Path) -> None:
    """``password`` (2.x and 3.x) and ``username`` (3.x, Redis ACLs) reach Redis."""
    server = RedisServer(
        tmp_path / "redis",
        ["--user", "alice", "on", ">s3cret", "~*", "&*", "+@all"],
    ).start()
    try:
        good = redisconn.connect(
            Redis(addr=server.addr, username="alice", password="s3cret", maxretries=-1)
        )
        assert good.acl_whoami() == "alice"
        wrong = redisconn.connect(
            Redis(addr=server.addr, username="alice", password="nope", maxretries=-1)
        )
        with pytest.raises(redis.AuthenticationError):
            wrong.ping()
    finally:
        server.stop()


@pytest.mark.parametrize("setting", [{"poolsize": 1}, {"maxactiveconns": 1}])
def test_pool_sizes_bound_the_connections(tmp_path: Path, setting: dict[str, int]) -> None:
    server = RedisServer(tmp_path / "redis").start()
    try:
        _second_caller_waits(redisconn.connect(Redis(addr=server.addr, **setting)))
    finally:
        server.stop()


@pytest.mark.parametrize("insecure", [True, False])
def test_insecure_smtp_skips_certificate_checks(tmp_path: Path, insecure: bool) -> None:
    """``smtp.insecure``: a mail server whose STARTTLS certificate no CA vouches for."""
    cert, key = make_certificate(tmp_path)
    smtp = SMTPServer(tls=(cert, key))
    try:
        text = (
            "version: 0.1\nstorage: inmemory\nlog:\n  hooks:\n    - type: mail\n"
            "      levels: [error]\n      options:\n"
            f"        smtp: {{addr: '{smtp.addr}', insecure: {str(insecure).lower()}}}\n"
            "        from: registry@example.com\n        to: [ops@example.com]\n"
        )
        (handler,) = mailhook.handlers(config_module.parse(text, {}).log.hooks)
        record = logging.LogRecord("distribution.t", logging.ERROR, __file__, 1, "x", (), None)
        if insecure:
            handler.send(*mailhook.message(record, "127.0.0.1"))
            assert smtp.wait_for(1)[0].recipients == ["ops@example.com"]
        else:
            with pytest.raises(ssl.SSLCertVerificationError):
                handler.send(*mailhook.message(record, "127.0.0.1"))
            assert smtp.mails == []
    finally:
        smtp.stop()


def test_azure_realm_names_the_service() -> None:
    assert azure.service_url({"accountname": "acct"}) == "https://acct.blob.core.windows.net"
    parameters = {"accountname": "acct", "realm": "core.chinacloudapi.cn"}
    assert azure.service_url(parameters) == "https://acct.blob.core.chinacloudapi.cn"


def test_http_host_makes_the_location_urls() -> None:
    app = make_app(TEST_CONFIG + "  host: https://registry.example.com:5443\n")
    response = app.test_client().post("/v2/app/blobs/uploads/")
    assert response.headers["Location"].startswith(
        "https://registry.example.com:5443/v2/app/blobs/uploads/"
    )


@pytest.mark.parametrize(("setting", "seconds"), [("", 30), ("draintimeout: 90s", 90)])
def test_draintimeout_is_gunicorns_graceful_timeout(setting: str, seconds: int) -> None:
    """Requests in flight get ``draintimeout`` to finish after SIGTERM (30 s when unset;
    test_serve.py's test_sigterm_lets_a_slow_request_finish shows the drain)."""
    config = config_module.parse(f"version: 0.1\nstorage: inmemory\nhttp: {{{setting}}}\n", {})
    assert server.gunicorn_options(config)["graceful_timeout"] == seconds


def test_http2_is_never_offered(start_registry, tmp_path: Path) -> None:
    """HTTP/1.1 only: ALPN never picks h2 under TLS (``http2.disabled`` is what we always do),
    and an h2c preface in cleartext is not answered in HTTP/2 (``h2c.enabled`` is warned)."""
    cert, key = make_certificate(tmp_path)
    env = {"REGISTRY_HTTP_TLS_CERTIFICATE": str(cert), "REGISTRY_HTTP_TLS_KEY": str(key)}
    registry = start_registry(env=env, scheme="https", verify=str(cert))
    port = int(registry.url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(cert))
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
    ):
        assert conn.selected_alpn_protocol() in (None, "http/1.1")

    plain = start_registry("version: 0.1\nstorage: inmemory\nhttp: {h2c: {enabled: true}}\n")
    port = int(plain.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        answer = conn.recv(64)
    assert not answer.startswith(b"\x00")  # no HTTP/2 SETTINGS frame
    assert answer == b"" or answer.startswith(b"HTTP/1.")
