"""The metrics' names, labels and exposition, and what a request records."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import Client

from distribution import debug, health, instrumentation, metrics
from distribution.storage import driver as drivers
from tests.conftest import make_app

METRICS_CONFIG = """
version: 0.1
storage: {inmemory: {}}
http:
  secret: s
  debug: {addr: "127.0.0.1:5001", prometheus: {enabled: true}}
"""


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape() -> dict[tuple[str, tuple], float]:
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain; version=")
    return samples(body.decode())


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.parametrize(
    ("endpoint", "route"),
    [
        ("base.version_check", "base"),
        ("manifests.get_manifest", "manifest"),
        ("tags.list_tags", "tags"),
        ("catalog.catalog", "catalog"),
        ("blobs.get_blob", "blob"),
        ("uploads.start_upload", "blob_upload"),
        ("uploads.patch_upload", "blob_upload_chunk"),
        ("referrers.list_referrers", "referrers"),
        ("auth.token", "auth"),
        ("base.root", None),
        (None, None),
    ],
)
def test_routes_are_labelled_with_gos_route_names(endpoint: str | None, route: str | None) -> None:
    assert metrics.route_name(endpoint) == route


def test_a_request_is_counted_timed_and_sized_by_route_method_and_status() -> None:
    app = make_app(METRICS_CONFIG)
    client = app.test_client()
    before = scrape()

    # buffered: the test client closes the body, which is when a request is recorded
    assert client.get("/v2/", buffered=True).status_code == 200
    assert client.get("/v2/no/manifests/latest", buffered=True).status_code == 404
    assert client.put("/v2/no/manifests/latest", data=b"x" * 2000, buffered=True).status_code == 400
    assert client.get("/v2/no/such/route/", buffered=True).status_code == 404  # not counted
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "registry_http_requests_total"
    assert delta(requests, handler="base", code="200", method="get") == 1
    assert delta(requests, handler="manifest", code="404", method="get") == 1
    assert delta(requests, handler="manifest", code="400", method="put") == 1
    assert (
        sum(v for (name, _), v in after.items() if name == requests)
        - sum(v for (name, _), v in before.items() if name == requests)
        == 3
    )
    duration = "registry_http_request_duration_seconds_count"
    assert delta(duration, handler="manifest", method="get") == 1
    assert (
        delta(
            "registry_http_request_duration_seconds_bucket", handler="base", method="get", le="60.0"
        )
        == 1
    )
    assert delta("registry_http_request_size_bytes_sum", handler="manifest") > 2000
    assert delta("registry_http_response_size_bytes_sum", handler="base") == 3  # b"{}\n"
    assert value(after, "registry_http_in_flight_requests", handler="base") == 0


def test_storage_actions_are_timed_with_gos_action_names(tmp_path: Path) -> None:
    driver = drivers.create("filesystem", {"rootdirectory": str(tmp_path)})
    before = scrape()
    driver.put_content("/a/b", b"data")
    driver.get_content("/a/b")
    driver.stat("/a/b")
    with pytest.raises(drivers.PathNotFoundError):
        driver.stat("/missing")
    driver.list("/a")
    driver.move("/a/b", "/a/c")
    driver.delete("/a")
    after = scrape()
    count = "registry_storage_action_seconds_count"
    for action, times in [
        ("PutContent", 1),
        ("GetContent", 1),
        ("Stat", 2),
        ("List", 1),
        ("Move", 1),
        ("Delete", 1),
    ]:
        labels = {"driver": "filesystem", "action": action}
        assert value(after, count, **labels) - value(before, count, **labels) == times, action


def test_cache_lookups_count_in_gos_counters_and_ours() -> None:
    before = scrape()
    metrics.cache_lookups.labels(result="hit").inc()
    metrics.cache_lookups.labels(result="hit").inc()
    metrics.cache_lookups.labels(result="miss").inc()
    metrics.cache_lookups.labels(result="error").inc()
    after = scrape()
    for name, expected in [("requests", 4), ("hits", 2), ("misses", 1), ("errors", 1)]:
        full = f"registry_storage_cache_{name}_total"
        assert value(after, full) - value(before, full) == expected, name
    with pytest.raises(ValueError, match="hit"):
        metrics.cache_lookups.labels(result="maybe")


def test_uploads_in_progress_counts_bodies_being_received() -> None:
    with metrics.uploads_in_progress.track_inprogress():
        assert value(scrape(), "registry_http_uploads_in_progress") == 1
    assert value(scrape(), "registry_http_uploads_in_progress") == 0


def test_without_a_debug_address_requests_are_not_instrumented() -> None:
    config = METRICS_CONFIG.replace('addr: "127.0.0.1:5001", ', "")
    app = make_app(config)
    assert app.test_client().get("/v2/").status_code == 200
    assert not instrumentation.metrics_served(app.extensions["registry"].config)


def test_approximate_request_size_is_prometheus_golang_s() -> None:
    environ = {
        "REQUEST_METHOD": "PUT",
        "RAW_URI": "/v2/a/blobs/uploads/x?digest=y",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "h:5000",
        "HTTP_USER_AGENT": "ua",
        "CONTENT_LENGTH": "100",
    }
    expected = len("/v2/a/blobs/uploads/x?digest=y") + 3 + 8 + len("HOSTh:5000USER_AGENTua") + 100
    assert instrumentation.approximate_request_size(environ) == expected


def test_the_debug_app_serves_metrics_health_and_vars_only() -> None:
    app = make_app(METRICS_CONFIG)
    client = Client(
        debug.create_debug_app(app.extensions["registry"].config, health.HealthChecks())
    )

    scraped = client.get("/metrics")
    assert scraped.status_code == 200
    assert "# TYPE registry_http_requests_total counter" in scraped.text
    healthy = client.get("/debug/health")
    assert (healthy.status_code, healthy.text) == (200, "{}")
    assert healthy.headers["Content-Type"] == "application/json; charset=utf-8"
    assert client.get("/debug/vars").json["cmdline"]
    missing = client.get("/v2/")
    assert (missing.status_code, missing.text) == (404, "404 page not found\n")
    assert client.post("/debug/health").status_code == 404


def test_metrics_from_forked_processes_add_up(tmp_path: Path) -> None:
    """Multiprocess mode in a fresh interpreter: the parent sets it up, two children count."""
    script = textwrap.dedent(
        """
        import os
        from distribution import metrics

        metrics.record(True)  # as an app whose debug server exposes metrics sets it
        metrics.http_requests.labels("base", "200", "get").inc()  # before: not shared
        directory = metrics.start_multiprocess(None)
        children = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                metrics.http_requests.labels("base", "200", "get").inc()
                metrics.uploads_in_progress.inc()
                os._exit(0)
            children.append(pid)
        for pid in children:
            os.waitpid(pid, 0)
        print(metrics.exposition()[0].decode())
        metrics.process_dead(children[0])
        print("---")
        print(metrics.exposition()[0].decode())
        metrics.stop_multiprocess(directory, private=True)
        print("---", os.path.exists(directory))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    first, second, gone = result.stdout.split("---")
    requests = (
        "registry_http_requests_total",
        (("code", "200"), ("handler", "base"), ("method", "get")),
    )
    assert samples(first)[requests] == 2
    assert samples(first)[("registry_http_uploads_in_progress", ())] == 2
    assert samples(second)[requests] == 2  # counters outlive their process
    assert samples(second)[("registry_http_uploads_in_progress", ())] == 1
    assert gone.strip() == "False"


def test_a_private_directory_whose_master_was_killed_goes_at_the_next_start(
    tmp_path: Path,
) -> None:
    """A master killed outright never removes its directory: the next master to start
    removes it, and never one whose master still runs, nor one of an older version."""
    script = textwrap.dedent(
        """
        import sys, time
        from distribution import metrics

        print(metrics.start_multiprocess(None), flush=True)
        if sys.argv[1] == "stay":
            time.sleep(60)
        """
    )
    environment = {**os.environ, "TMPDIR": str(tmp_path)}
    environment.pop(metrics.MULTIPROC_ENV, None)

    def start(mode: str) -> tuple[subprocess.Popen[str], Path]:
        process = subprocess.Popen(
            [sys.executable, "-c", script, mode],
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
        )
        assert process.stdout is not None
        return process, Path(process.stdout.readline().strip())

    older = tmp_path / f"{metrics.PRIVATE_PREFIX}older"  # made before directories were held
    older.mkdir()
    killed, killed_dir = start("stay")
    running, running_dir = start("stay")
    try:
        killed.kill()
        killed.wait(timeout=10)
        assert killed_dir.is_dir()  # what a master killed outright leaves
        last, last_dir = start("exit")
        last.wait(timeout=30)
        assert not killed_dir.exists()
        assert running_dir.is_dir() and last_dir.is_dir() and older.is_dir()
    finally:
        running.kill()
        running.wait(timeout=10)


def test_unrecorded_notification_and_proxy_metrics_are_no_ops() -> None:
    """With nothing exposing metrics, Go's notification and proxy calls record nothing, and
    never fail the delivery thread or the request that makes them."""
    was = metrics.recording()
    metrics.record(False)
    try:
        metrics.notifications.queued("hook")
        metrics.notifications.answered("hook", 200, accepted=True)
        metrics.notifications.failed("hook")
        metrics.proxy.served("blob", 10, None)
    finally:
        metrics.record(was)
