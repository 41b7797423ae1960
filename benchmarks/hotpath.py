"""Python per request on the hot reads, in one thread: gunicorn's parser, the WSGI app and the
worker's response, on a socket pair (no event loop, no other thread, no client).

    .venv/bin/python benchmarks/hotpath.py [v2 manifest head] [--profile]

Prints microseconds of CPU per request (best of 5 x 2,000). Run it against two trees with
``PYTHONPATH=<tree>`` in turn, interleaved, to see what a change saves; a server's CPU per
request under ``wrk`` adds the kernel, the loop and thread switches to this.
"""

from __future__ import annotations

import cProfile
import hashlib
import json
import os
import pstats
import socket
import sys
import tempfile
import time
from collections.abc import Callable

from gunicorn.config import Config
from gunicorn.http import wsgi

from distribution import config as config_module
from distribution import server as registry_server
from distribution import worker
from distribution.app import create_app

REQUESTS = int(os.environ.get("REQUESTS", "2000"))
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def build_app() -> tuple[Callable, str, Config]:
    """A registry on a temporary directory holding one image ``a/b:latest``; its layer; the
    gunicorn settings ``registry serve`` would run it with."""
    root = tempfile.mkdtemp()
    config = config_module.parse(
        f"""
version: 0.1
log: {{level: warn, accesslog: {{disabled: true}}}}
storage:
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
http: {{addr: 127.0.0.1:5000, secret: x}}
""",
        {},
    )
    app = create_app(config)
    client = app.test_client()
    layer, image_config = b"x" * 1000, b"{}"
    digests = []
    for data in (layer, image_config):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        client.post(f"/v2/a/b/blobs/uploads/?digest={digest}", data=data)
        digests.append(digest)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digests[1],
            "size": 2,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": digests[0],
                "size": 1000,
            }
        ],
    }
    answer = client.put(
        "/v2/a/b/manifests/latest",
        data=json.dumps(manifest).encode(),
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert answer.status_code == 201, answer.data
    time.sleep(2.2)  # past the file cache's settling time: its entries are kept from now
    cfg = Config()
    for key, value in registry_server.gunicorn_options(config).items():
        cfg.set(key, value)
    if hasattr(worker, "settle"):  # absent from trees older than the change that added it
        worker.settle(cfg)
    return app, digests[0], cfg


def heads(layer: str) -> dict[str, bytes]:
    common = "Host: 127.0.0.1:5000\r\nUser-Agent: bench\r\n"
    accept = f"Accept: {OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json\r\n"
    return {
        "v2": f"GET /v2/ HTTP/1.1\r\n{common}\r\n".encode(),
        "manifest": f"GET /v2/a/b/manifests/latest HTTP/1.1\r\n{common}{accept}\r\n".encode(),
        "head": f"HEAD /v2/a/b/blobs/{layer} HTTP/1.1\r\n{common}\r\n".encode(),
        # as hey sends it (Go's client, with hey's default Content-Type)
        "head-hey": (
            f"HEAD /v2/a/b/blobs/{layer} HTTP/1.1\r\nHost: 127.0.0.1:5000\r\n"
            "User-Agent: hey/0.0.1\r\nContent-Type: text/html\r\nAccept-Encoding: gzip\r\n\r\n"
        ).encode(),
    }


def _create() -> Callable:
    """What builds the environ: gunicorn's, in trees older than ``requesthead``."""
    try:
        from distribution import requesthead
    except ImportError:
        return wsgi.create
    return requesthead.create


create = _create()


def serve(app: Callable, cfg: Config, head: bytes, server: socket.socket, client: socket.socket):
    parser = worker.HTTPParser(cfg, server, ("127.0.0.1", 1))
    for _ in range(REQUESTS):
        parser.unreader.unread(head)
        request = next(parser)
        response, environ = create(
            request, server, ("127.0.0.1", 1), ("127.0.0.1", 5000), cfg, worker.CoalescingResponse
        )
        body = app(environ, response.start_response)
        for piece in body:
            response.write(piece)
        response.close()
        body.close()
        client.recv(1 << 16)


def main(argv: list[str]) -> None:
    profile = "--profile" in argv
    cases = [arg for arg in argv if not arg.startswith("--")] or ["v2", "manifest", "head"]
    app, layer, cfg = build_app()
    server, client = socket.socketpair()
    with server, client:
        for name in cases:
            head = heads(layer)[name]
            serve(app, cfg, head, server, client)  # warm up
            times = []
            for _ in range(5):
                started = time.process_time()
                serve(app, cfg, head, server, client)
                times.append(time.process_time() - started)
            print(f"{name}: {min(times) / REQUESTS * 1e6:.0f} us per request")
            if profile:
                profiler = cProfile.Profile()
                profiler.runcall(serve, app, cfg, head, server, client)
                pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime")).print_stats(
                    int(os.environ.get("TOP", "30"))
                )


if __name__ == "__main__":
    main(sys.argv[1:])
