"""OpenTelemetry traces through the SDK's real OTLP/HTTP exporter to a small receiver here."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from distribution import cli, tracing
from distribution.config import ConfigError

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class Receiver:
    """An OTLP/HTTP collector's ``/v1/traces``: keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[dict] = []
        spans = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    resource = {
                        a.key: a.value.string_value for a in resource_spans.resource.attributes
                    }
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            spans.append(
                                {
                                    "name": span.name,
                                    "trace_id": span.trace_id.hex(),
                                    "span_id": span.span_id.hex(),
                                    "parent": span.parent_span_id.hex(),
                                    "kind": span.kind,
                                    "attributes": {
                                        a.key: a.value.string_value or a.value.int_value
                                        for a in span.attributes
                                    },
                                    "resource": resource,
                                }
                            )
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def wait_for(self, check, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while not check(self.spans):
            assert time.monotonic() < deadline, self.spans
            time.sleep(0.1)
        return list(self.spans)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    yield started
    started.stop()


def test_requests_and_storage_calls_are_traced_as_v3(start_registry, receiver: Receiver) -> None:
    registry = start_registry(
        env={
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
    )
    parent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    response = requests.get(
        f"{registry.url}/v2/app/manifests/latest", headers={"traceparent": parent}, timeout=10
    )
    assert response.status_code == 404

    link = "/docker/registry/v2/repositories/app/_manifests/tags/latest/current/link"

    def arrived(spans: list[dict]) -> bool:
        names = {span["name"] for span in spans}
        return "GET /v2/app/manifests/latest" in names and "Stat" in names

    spans = receiver.wait_for(arrived)
    (server,) = [span for span in spans if span["name"] == "GET /v2/app/manifests/latest"]
    assert server["trace_id"] == TRACE_ID  # the caller's trace goes on
    assert server["parent"] == "00f067aa0ba902b7"
    assert server["attributes"]["http.request.method"] == "GET"
    assert server["attributes"]["http.response.status_code"] == 404
    assert server["resource"]["service.name"] == "distribution"
    # A link is read only when its version changed (storage/contents.py): for a missing tag,
    # the look at it is a Stat where Go's is a GetContent.
    (looking,) = [span for span in spans if span["name"] == "Stat"]
    assert looking["parent"] == server["span_id"]
    assert looking["attributes"] == {
        "io.cncf.distribution.storage.driver.name": "filesystem",
        "io.cncf.distribution.storage.path": link,
    }


def test_traces_are_off_without_the_variable(monkeypatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    app = object()
    assert tracing.wrap(app) is app  # type: ignore[arg-type]
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert tracing.wrap(app) is app  # type: ignore[arg-type]


def test_the_console_exporter(monkeypatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    tracing.check()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "unsupported exporter 'zipkin'"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            "unsupported 'http/json'",
        ),
    ],
)
def test_an_exporter_that_cannot_work_stops_start_up(
    monkeypatch, tmp_path: Path, environ: dict, message: str
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "config.yml"
    path.write_text("version: 0.1\nstorage: inmemory\nhttp: {secret: s}\n")
    with pytest.raises(ConfigError) as info:
        cli.prepare(str(path))
    assert message in info.value.message
