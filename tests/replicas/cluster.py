"""Registry replicas as users run them: same storage root, same secret, one Redis, nginx.

``replica_config`` is one config file both the Go registry and ours accept. Python replicas
run through ``tests/conftest.py``'s ``start_registry`` (gunicorn, 2 workers); Go replicas are
``/usr/bin/docker-registry`` processes started here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import requests

from tests.conftest import free_port
from tests.process import ServerProcess

GO_REGISTRY = "/usr/bin/docker-registry"
SECRET = "replicas-shared-secret"
REQUEST_TIMEOUT = 30


class Replica(Protocol):
    url: str

    def stop(self) -> int: ...


def netloc(replica: Replica) -> str:
    return urlsplit(replica.url).netloc


def replica_config(
    root: Path,
    redis_addr: str | list[str] | None,
    secret: str | None = SECRET,
    port: int | None = None,
    delete: bool = True,
    mastername: str | None = None,
) -> str:
    """Filesystem at ``root``, the Redis descriptor cache at ``redis_addr``, deletes on.

    A list of addresses is distribution v3's ``redis.addrs``: a cluster, or the Sentinels of
    ``mastername``.
    """
    lines = [
        "version: 0.1",
        "log:",
        "  level: info",
        "  accesslog: {disabled: true}",
        "storage:",
        f"  filesystem: {{rootdirectory: '{root}'}}",
        f"  delete: {{enabled: {str(delete).lower()}}}",
        "  maintenance: {uploadpurging: {enabled: false}}",
        "http:",
        f"  addr: 127.0.0.1:{port or free_port()}",
    ]
    if secret is not None:
        lines.append(f"  secret: {secret}")
    if redis_addr is not None:
        lines[6:6] = ["  cache: {blobdescriptor: redis}"]
        lines += [
            "redis:",
            f"  addrs: [{', '.join(redis_addr)}]"
            if isinstance(redis_addr, list)
            else f"  addr: {redis_addr}",
            *([f"  mastername: {mastername}"] if mastername else []),
            "  dialtimeout: 1s",
            "  readtimeout: 1s",
            "  writetimeout: 1s",
            "  pool: {maxidle: 4, maxactive: 16, idletimeout: 60s}",
        ]
    return "\n".join(lines) + "\n"


class GoReplica(ServerProcess):
    """The Go registry in a child process, with ``config_text`` (its ``http.addr`` is replaced)."""

    def __init__(self, workdir: Path, config_text: str) -> None:
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "config.yml"
        config.write_text(config_text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        env["REGISTRY_HTTP_ADDR"] = f"127.0.0.1:{self.port}"
        url = f"http://127.0.0.1:{self.port}"
        super().__init__([GO_REGISTRY, "serve", str(config)], workdir, env, url, merge_output=True)
        self.wait_ready()


def round_robin(replicas: list[Replica], port: int) -> str:
    """nginx's ``http`` block: plain round robin over ``replicas``, as contrib/compose has it."""
    servers = "\n".join(f"    server {netloc(r)};" for r in replicas)
    return f"""
  upstream registry {{
{servers}
    keepalive 16;
  }}
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 0;
    chunked_transfer_encoding on;
    location / {{
      proxy_pass http://registry;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_read_timeout 900;
    }}
  }}
"""


def redis_hits(client: object) -> int:
    """``keyspace_hits`` from ``INFO stats``: lookups that found their key."""
    return int(client.info("stats")["keyspace_hits"])  # type: ignore[attr-defined]


def get(url: str, **kwargs: object) -> requests.Response:
    return requests.get(url, timeout=REQUEST_TIMEOUT, **kwargs)  # type: ignore[arg-type]
