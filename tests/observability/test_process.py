"""Health, metrics and request logging of a real ``registry serve``: gunicorn, two workers."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shlex
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector

from tests.conftest import free_port
from tests.observability.test_metrics import samples

UNAVAILABLE = {
    "code": "UNAVAILABLE",
    "message": "service unavailable",
    "detail": "health check failed: please see /debug/health",
}


def registry_config(root: Path, debug_port: int, health: str = "", formatter: str = "text") -> str:
    return f"""
version: 0.1
log: {{level: info, formatter: {formatter}}}
storage:
  filesystem: {{rootdirectory: {root}}}
http:
  secret: test-secret
  debug:
    addr: 127.0.0.1:{debug_port}
    prometheus: {{enabled: true}}
{health}
"""


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def all_answers(url: str, times: int = 12) -> set[tuple[int, str]]:
    """Status and body of ``times`` requests, each on a new connection, so both workers answer."""
    answers = set()
    for _ in range(times):
        response = requests.get(url, timeout=10)
        answers.add((response.status_code, response.text))
    return answers


def test_health_turns_503_while_the_drain_file_exists(start_registry, tmp_path: Path) -> None:
    drain, debug_port = tmp_path / "drain", free_port()
    checks = f"health:\n  file:\n    - file: {drain}\n      interval: 100ms\n"
    registry = start_registry(registry_config(tmp_path / "data", debug_port, checks))
    health = f"http://127.0.0.1:{debug_port}/debug/health"

    assert all_answers(health) == {(200, "{}")}
    drain.touch()
    failing = (503, json.dumps({str(drain): "file exists"}, separators=(",", ":")))
    wait_until(lambda: all_answers(health) == {failing})
    api = requests.get(f"{registry.url}/v2/", timeout=10)
    assert api.status_code == 503
    assert api.json() == {"errors": [UNAVAILABLE]}
    assert requests.get(f"{registry.url}/", timeout=10).status_code == 503  # LB probes see it

    drain.unlink()
    wait_until(lambda: all_answers(health) == {(200, "{}")})
    assert requests.get(f"{registry.url}/v2/", timeout=10).status_code == 200


def test_health_turns_503_when_storage_is_unreadable(start_registry, tmp_path: Path) -> None:
    """Root bypasses permissions, so the root directory becomes a symlink loop instead."""
    root, debug_port = tmp_path / "data", free_port()
    root.mkdir()
    checks = "health:\n  storagedriver: {enabled: true, interval: 100ms, threshold: 2}\n"
    registry = start_registry(registry_config(root, debug_port, checks))
    health = f"http://127.0.0.1:{debug_port}/debug/health"
    assert all_answers(health) == {(200, "{}")}

    root.rename(tmp_path / "data.away")
    root.symlink_to(root)
    wait_until(lambda: {status for status, _ in all_answers(health)} == {503})
    report = requests.get(health, timeout=10).json()
    assert list(report) == ["storagedriver_filesystem"]
    assert "Too many levels of symbolic links" in report["storagedriver_filesystem"]
    assert requests.get(f"{registry.url}/v2/", timeout=10).json() == {"errors": [UNAVAILABLE]}
    assert "storage driver health check: " in registry.stderr

    root.unlink()
    (tmp_path / "data.away").rename(root)
    wait_until(lambda: all_answers(health) == {(200, "{}")})


def push_image(url: str, name: str) -> str:
    """Push a config, a layer in two chunks and a manifest with plain HTTP; the manifest digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}})
    layer = os.urandom(5000)
    descriptors = []
    for blob, media_type in (
        (config.encode(), "application/vnd.oci.image.config.v1+json"),
        (layer, "application/vnd.oci.image.layer.v1.tar"),
    ):
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        started = requests.post(f"{url}/v2/{name}/blobs/uploads/", timeout=10)
        assert started.status_code == 202, started.text
        location = urljoin(url, started.headers["Location"])
        patched = requests.patch(location, data=blob[:1000], timeout=10)
        assert patched.status_code == 202, patched.text
        location = urljoin(url, patched.headers["Location"])
        done = requests.put(location, params={"digest": digest}, data=blob[1000:], timeout=10)
        assert done.status_code == 201, done.text
        descriptors.append({"mediaType": media_type, "digest": digest, "size": len(blob)})
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptors[0],
            "layers": descriptors[1:],
        }
    ).encode()
    put = requests.put(
        f"{url}/v2/{name}/manifests/latest",
        data=manifest,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    )
    assert put.status_code == 201, put.text
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


BASE_GETS = (
    "registry_http_requests_total",
    (("code", "200"), ("handler", "base"), ("method", "get")),
)


def base_gets_by_process(directory: Path) -> dict[int, float]:
    """Each process's own count of ``GET /v2/``, read from its multiprocess file."""
    counts = {}
    for path in glob.glob(str(directory / "counter_*.db")):
        pid = int(Path(path).stem.removeprefix("counter_"))
        merged = MultiProcessCollector.merge([path], accumulate=False)
        for metric in merged:
            for sample in metric.samples:
                if (sample.name, tuple(sorted(sample.labels.items()))) == BASE_GETS:
                    counts[pid] = sample.value
    return counts


def parent_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("PPid:")).split()[1])


def test_metrics_add_up_the_requests_of_every_worker(start_registry, tmp_path: Path) -> None:
    directory, debug_port = tmp_path / "metrics", free_port()
    registry = start_registry(
        registry_config(tmp_path / "data", debug_port),
        env={"PROMETHEUS_MULTIPROC_DIR": str(directory)},
    )
    debug_url = f"http://127.0.0.1:{debug_port}"
    push_image(registry.url, "library/observed")

    sent = 1  # wait_ready's probe
    with ThreadPoolExecutor(8) as pool:
        # batches of new connections until both workers have served some (bounded)
        for _ in range(20):
            statuses = list(
                pool.map(lambda _: requests.get(f"{registry.url}/v2/").status_code, range(16))
            )
            assert statuses == [200] * 16
            sent += 16
            if len(base_gets_by_process(directory)) >= 2:
                break
    # a request counts when the server closes its body, which may be after the client has it;
    # bounded: the assertions below say what is missing if it never comes
    deadline = time.monotonic() + 5
    while sum(base_gets_by_process(directory).values()) < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    by_process = base_gets_by_process(directory)
    assert len(by_process) == 2, by_process
    assert all(count > 0 for count in by_process.values())
    assert {parent_of(pid) for pid in by_process} == {registry.proc.pid}  # both are workers

    scraped = samples(requests.get(f"{debug_url}/metrics", timeout=10).text)
    assert scraped[BASE_GETS] == sent == sum(by_process.values())

    def count(handler: str, code: str, method: str) -> float:
        labels = (("code", code), ("handler", handler), ("method", method))
        return scraped.get(("registry_http_requests_total", labels), 0)

    assert count("blob_upload", "202", "post") == 2
    assert count("blob_upload_chunk", "202", "patch") == 2
    assert count("blob_upload_chunk", "201", "put") == 2
    assert count("manifest", "201", "put") == 1
    assert scraped[("registry_http_uploads_in_progress", ())] == 0
    assert scraped[("registry_http_in_flight_requests", (("handler", "base"),))] == 0
    put_content = (("action", "PutContent"), ("driver", "filesystem"))
    assert scraped[("registry_storage_action_seconds_count", put_content)] > 0
    assert (
        scraped[("registry_http_request_size_bytes_sum", (("handler", "blob_upload_chunk"),))]
        > 5000
    )

    # each port serves only its own routes
    api_metrics = requests.get(f"{registry.url}/metrics", timeout=10)
    assert api_metrics.status_code == 404
    assert api_metrics.json()["errors"][0]["code"] == "UNSUPPORTED"
    assert requests.get(f"{registry.url}/debug/health", timeout=10).status_code == 404
    debug_api = requests.get(f"{debug_url}/v2/", timeout=10)
    assert (debug_api.status_code, debug_api.text) == (404, "404 page not found\n")

    assert registry.stop() == 0
    assert glob.glob(str(directory / "*.db")) == []  # cleaned at exit
    # the access log has the API port's requests only, as Go's debug server logs none
    assert registry.stdout.count('"GET /v2/ HTTP/1.1" 200') == sent
    assert registry.stdout.count('"GET /metrics HTTP/1.1"') == 1


@pytest.mark.parametrize("formatter", ["text", "json"])
def test_request_lines_carry_the_request_id(start_registry, tmp_path: Path, formatter: str) -> None:
    config = registry_config(tmp_path / "data", free_port(), formatter=formatter)
    registry = start_registry(config)
    agent = f"observer/{uuid.uuid4()}"
    assert requests.get(f"{registry.url}/v2/", headers={"User-Agent": agent}, timeout=10).ok
    missing = requests.get(f"{registry.url}/v2/nothing/manifests/x", headers={"User-Agent": agent})
    assert missing.status_code == 404

    wait_until(lambda: registry.stderr.count(agent) >= 2)
    lines = [line for line in registry.stderr.splitlines() if agent in line]
    if formatter == "json":
        entries = [json.loads(line) for line in lines]
    else:
        entries = [_logfmt(line) for line in lines]
    assert [entry["msg"] for entry in entries] == [
        "response completed",
        "response completed with error",
    ]
    ids = [entry["http.request.id"] for entry in entries]
    assert all(uuid.UUID(request_id).version == 4 for request_id in ids)
    assert len(set(ids)) == 2
    assert entries[0]["http.request.uri"] == "/v2/"
    assert entries[1]["err.code"] == "manifest unknown"
    assert entries[1]["vars.name"] == "nothing"
    for entry in entries:
        assert entry["http.request.method"] == "GET"
        assert entry["http.request.remoteaddr"].startswith("127.0.0.1:")


def _logfmt(line: str) -> dict[str, str]:
    """A logrus text line's fields (values may be bare or JSON-quoted)."""
    fields = {}
    for token in shlex.split(line):
        key, _, value = token.partition("=")
        fields[key] = value
    return fields
