"""Log lines: logrus's text and JSON formats, and the request's fields on every line."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask, g

from distribution import instrumentation
from distribution import log as log_module
from tests.conftest import make_app


@pytest.fixture
def captured() -> Iterator[dict[str, io.StringIO]]:
    """The ``distribution`` logger's lines in both formats, with a ``log.fields`` entry."""
    logger = logging.getLogger("distribution")
    streams = {"text": io.StringIO(), "json": io.StringIO()}
    handlers = []
    for name, stream in streams.items():
        handler = logging.StreamHandler(stream)
        handler.setFormatter(log_module.make_formatter(name, {"environment": "test"}))
        handlers.append(handler)
    saved = logger.handlers[:], logger.level, logger.propagate
    logger.handlers[:] = handlers
    logger.setLevel(logging.INFO)
    yield streams
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def _app_logging_from_a_handler() -> Flask:
    app = make_app()

    @app.route("/logs")
    def logs() -> str:
        logging.getLogger("distribution.storage.somewhere").warning("deep inside")
        return g.request_id

    return app


def test_every_line_of_a_request_carries_its_id_and_fields(captured) -> None:
    client = _app_logging_from_a_handler().test_client()
    response = client.get(
        "/logs?x=1",
        headers={"User-Agent": "tester/1.0", "X-Request-Id": "chosen-by-client"},
    )
    request_id = response.text
    assert uuid.UUID(request_id).version == 4  # generated, the client's is not trusted

    text_lines = captured["text"].getvalue().splitlines()
    assert len(text_lines) == 2  # the handler's line and "response completed"
    for line in text_lines:
        assert f"http.request.id={request_id}" in line
        assert "http.request.method=GET" in line
        assert 'http.request.uri="/logs?x=1"' in line
        assert "http.request.useragent=tester/1.0" in line
        assert "environment=test" in line
    assert text_lines[0].startswith('time="') or text_lines[0].startswith("time=")
    assert ' level=warning msg="deep inside" ' in text_lines[0]
    assert ' level=info msg="response completed" ' in text_lines[1]
    assert "http.response.status=200" in text_lines[1]

    json_lines = [json.loads(line) for line in captured["json"].getvalue().splitlines()]
    assert [line["msg"] for line in json_lines] == ["deep inside", "response completed"]
    for line in json_lines:
        assert line["http.request.id"] == request_id
        assert line["http.request.remoteaddr"] == "127.0.0.1"
        assert line["environment"] == "test"
    assert json_lines[1]["http.response.written"] == len(request_id)


def test_each_request_has_its_own_id_and_none_leaks_after_it(captured) -> None:
    client = _app_logging_from_a_handler().test_client()
    ids = {client.get("/logs").text for _ in range(3)}
    assert len(ids) == 3
    logging.getLogger("distribution.cli").info("outside any request")
    last = json.loads(captured["json"].getvalue().splitlines()[-1])
    assert last["msg"] == "outside any request"
    assert not any(key.startswith("http.") for key in last)


def test_errors_are_logged_with_gos_error_fields(captured) -> None:
    client = make_app().test_client()
    assert client.get("/v2/repo/manifests/latest").status_code == 404
    line = json.loads(captured["json"].getvalue().splitlines()[-1])
    assert line["level"] == "error"
    assert line["msg"] == "response completed with error"
    assert line["err.code"] == "manifest unknown"
    assert line["vars.name"] == "repo"
    assert line["vars.reference"] == "latest"
    assert line["http.response.status"] == 404


def test_an_invalid_name_is_logged_with_the_request_and_its_duration(captured) -> None:
    client = make_app().test_client()
    assert client.get("/v2/Bad/tags/list").status_code == 400
    line = json.loads(captured["json"].getvalue().splitlines()[-1])
    assert line["err.code"] == "name invalid"
    assert uuid.UUID(line["http.request.id"]).version == 4
    assert line["http.request.uri"] == "/v2/Bad/tags/list"
    assert re.fullmatch(r"[0-9.]+(ns|µs|ms)", line["http.response.duration"])


def test_text_values_are_quoted_only_when_logrus_would() -> None:
    record = logging.LogRecord("distribution", logging.INFO, "", 0, "hello world", (), None)
    record.fields = {"plain": "a.b/c-d", "spaced": "a b", "number": 3, "micro": "1.5µs"}
    line = log_module.make_formatter("text").format(record)
    assert re.fullmatch(
        r'time="?[0-9T:.Z-]+"? level=info msg="hello world" micro="1.5µs" number=3 '
        r'plain=a.b/c-d spaced="a b"',
        line,
    )


def test_timestamps_are_rfc3339_with_fractional_seconds() -> None:
    record = logging.LogRecord("distribution", logging.INFO, "", 0, "m", (), None)
    record.created = 1700000000.25
    line = json.loads(log_module.make_formatter("json").format(record))
    assert line["time"] == "2023-11-14T22:13:20.25Z"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0000005, "500ns"),
        (0.0000015, "1.5µs"),
        (0.001234567, "1.234567ms"),
        (1.5, "1.5s"),
        (62.25, "1m2.25s"),
        (3723, "1h2m3s"),
    ],
)
def test_durations_read_as_gos(seconds: float, text: str) -> None:
    assert instrumentation.go_duration(seconds) == text


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "10.0.0.1:5555"),
        ({"HTTP_X_FORWARDED_FOR": "192.0.2.7, 10.0.0.9"}, "192.0.2.7"),
        ({"HTTP_X_FORWARDED_FOR": "not-an-ip", "HTTP_X_REAL_IP": "192.0.2.8"}, "192.0.2.8"),
        ({"HTTP_X_REAL_IP": "garbage"}, "10.0.0.1:5555"),
    ],
)
def test_remote_address_is_found_as_go_finds_it(headers: dict, expected: str) -> None:
    environ = {"REMOTE_ADDR": "10.0.0.1", "REMOTE_PORT": "5555", **headers}
    assert instrumentation.remote_addr(environ) == expected


def _record(text: str, fields: dict | None = None, level: int = logging.INFO) -> logging.LogRecord:
    record = logging.LogRecord("distribution.test", level, __file__, 42, text, (), None)
    record.created = 1700000000.25
    record.funcName = "handler"
    record.fields = fields or {}
    return record


def test_logstash_is_go_2s_format_exactly() -> None:
    """logrus-logstash-hook's formatter as registry:2 runs it: keys sorted, compact JSON,
    ``@version`` and ``@timestamp``, colliding fields kept as ``fields.*``, HTML escaped."""
    formatter = log_module.make_formatter("logstash", {"service": "registry"})
    line = formatter.format(_record("a <b> & c", {"message": "clash", "level": "also", "n": 3}))
    assert line == (
        '{"@timestamp":"2023-11-14T22:13:20.25Z","@version":"1","fields.level":"also",'
        '"fields.message":"clash","level":"info","message":"a \\u003cb\\u003e \\u0026 c",'
        '"n":3,"service":"registry"}'
    )


@pytest.mark.parametrize(
    ("formatter", "expected"),
    [
        ("text", 'level=info msg=hello func=tests.test_logging.handler file="{file}:42" k=v'),
        ("json", '"file": "{file}:42", "func": "tests.test_logging.handler", "k": "v"'),
    ],
)
def test_reportcaller_adds_logrus_func_and_file(formatter: str, expected: str) -> None:
    record = _record("hello", {"k": "v"})
    record.module = "tests.test_logging"
    line = log_module.make_formatter(formatter, reportcaller=True).format(record)
    assert expected.format(file=__file__) in line
    assert "func" not in log_module.make_formatter(formatter).format(record)


def test_the_callers_module_is_dotted_for_the_registrys_code() -> None:
    record = _record("x")
    record.pathname = "/srv/app/distribution/storage/blobs.py"
    assert log_module.caller(record) == (
        "distribution.storage.blobs.handler",
        "/srv/app/distribution/storage/blobs.py:42",
    )


def test_an_unexpected_error_is_logged_at_gos_panic_level(captured) -> None:
    app = make_app()

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("kaput")

    assert app.test_client().get("/boom").status_code == 500
    line = captured["text"].getvalue().splitlines()[0]
    assert ' level=panic msg="unexpected error handling GET /boom" ' in line
    assert "RuntimeError: kaput" in line


def test_the_fields_are_worked_out_only_for_a_request_that_logs(captured, monkeypatch) -> None:
    """Below ``info`` most requests log nothing, and pay nothing for their fields."""
    worked_out = []
    original = instrumentation.request_fields
    monkeypatch.setattr(
        instrumentation,
        "request_fields",
        lambda environ, request_id: worked_out.append(request_id) or original(environ, request_id),
    )
    logging.getLogger("distribution").setLevel(logging.WARNING)
    client = _app_logging_from_a_handler().test_client()
    assert client.get("/v2/").status_code == 200
    assert worked_out == []
    request_id = client.get("/logs").text
    assert worked_out == [request_id]  # once, however many lines
    (line,) = captured["text"].getvalue().splitlines()
    assert f"http.request.id={request_id}" in line and 'msg="deep inside"' in line
