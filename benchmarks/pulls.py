"""What recording pull times costs a manifest ``GET``, in process CPU time, without the noise
other processes put into a load test's rates.

    python benchmarks/pulls.py [--rounds 30] [--per-round 500]

Two apps on the in-memory driver, the same manifest in each: one records pulls (the default),
the other has ``storage.maintenance.usage.enabled: false`` (no journal: the hook finds none).
``GET /v2/bench/r1/manifests/latest`` through the whole Flask app, alternating rounds; then
the hook alone (``Journal.pulled``), per call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from distribution import config as config_module
from distribution import usage
from distribution.app import create_app
from distribution.storage.blobs import RepositoryBlobs

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
BASE = (
    "version: 0.1\nlog: {level: warn, accesslog: {disabled: true}}\n"
    "storage:\n  inmemory: {}\n  maintenance:\n    uploadpurging: {enabled: false}\n"
    "    usage: {enabled: %s}\nhttp: {secret: s}\n"
)


def app_with_manifest(recording: bool):
    app = create_app(config_module.parse(BASE % str(recording).lower(), {}))
    registry = app.extensions["registry"]
    blobs = RepositoryBlobs(registry.blobs, "bench/r1")
    config, layer = registry.blobs.put(b"{}"), registry.blobs.put(b"layer")
    blobs.link(config.digest)
    blobs.link(layer.digest)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": str(config.digest),
                "size": config.size,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": str(layer.digest),
                    "size": layer.size,
                }
            ],
        }
    ).encode()
    client = app.test_client()
    response = client.put(
        "/v2/bench/r1/manifests/latest", data=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 201, response.get_data()
    return app, client


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--per-round", type=int, default=500)
    args = parser.parse_args(argv)
    sides = {"recording": app_with_manifest(True), "not recording": app_with_manifest(False)}
    assert sides["recording"][0].extensions[usage.EXTENSION] is not None
    assert sides["not recording"][0].extensions[usage.EXTENSION] is None
    cost: dict[str, list[float]] = {label: [] for label in sides}
    headers = {"Accept": OCI_MANIFEST}
    for _ in range(args.rounds):
        for label, (_, client) in sides.items():
            start = time.process_time()
            for _ in range(args.per_round):
                client.get("/v2/bench/r1/manifests/latest", headers=headers)
            cost[label].append((time.process_time() - start) / args.per_round * 1e6)
    medians = {label: statistics.median(values) for label, values in cost.items()}
    for label, values in cost.items():
        print(
            f"GET manifest through the app, {label}: median {medians[label]:.1f}, "
            f"best {min(values):.1f} CPU-µs ({args.rounds} x {args.per_round}, alternating)"
        )
    ratio = medians["recording"] / medians["not recording"]
    print(f"recording / not recording: {ratio:.3f} (medians)")
    journal = sides["recording"][0].extensions[usage.EXTENSION]
    calls = 200_000
    start = time.perf_counter()
    for _ in range(calls):
        journal.pulled("bench/r1", "latest", "sha256:" + "0" * 64)
    hook = (time.perf_counter() - start) / calls * 1e6
    print(f"the hook alone (Journal.pulled): {hook:.2f} µs per call")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
