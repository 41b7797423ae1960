"""OpenTelemetry traces, as distribution v3 sends them, when ``OTEL_TRACES_EXPORTER`` is set.

Each request is a server span named ``<METHOD> <path>`` (v3's ``otelhttp`` name), continuing
the caller's trace from ``traceparent``/``baggage``; each storage call a child span named as
Go's storage wrapper names it (``GetContent``, ``PutContent``, ``Stat``...), with
``io.cncf.distribution.storage.driver.name`` and ``...storage.path``. The service is
``distribution`` (``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` override it), the
exporters those ``OTEL_TRACES_EXPORTER`` names (``otlp``, over ``http/protobuf`` as v3's
default, or ``grpc``; ``console``), configured by the SDK's other ``OTEL_*`` variables.

Unlike v3, which exports to ``localhost:4318`` unless told ``none``, traces are off while the
variable is unset. The SDK is an optional dependency (``pip install distribution-py[otel]``),
imported only when traces are on; with them off, a span costs one function call.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

from distribution import __version__
from distribution.config import ConfigError

#: The prefix of v3's own span attributes (``tracing.AttributePrefix``).
ATTRIBUTE_PREFIX = "io.cncf.distribution."
SERVICE_NAME = "distribution"
EXPORTERS = ("otlp", "console", "none")

_VARIABLE = "OTEL_TRACES_EXPORTER"
_state: dict[str, Any] = {"pid": None, "tracer": None}

WSGIApp = Callable[[dict[str, Any], Callable], Iterable[bytes]]


def exporter_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """The exporters ``OTEL_TRACES_EXPORTER`` names, ``none`` left out."""
    value = (os.environ if environ is None else environ).get(_VARIABLE, "")
    return [name.strip() for name in value.split(",") if name.strip() not in ("", "none")]


def check(environ: Mapping[str, str] | None = None) -> None:
    """Refuse at start-up what could never export: an exporter we do not know, or the SDK
    missing."""
    names = exporter_names(environ)
    for name in names:
        if name not in EXPORTERS:
            raise ConfigError(
                _VARIABLE, f"unsupported exporter {name!r}; use one of {', '.join(EXPORTERS)}"
            )
    if names:
        try:
            _exporters(names, environ)
        except ImportError as err:
            raise ConfigError(
                _VARIABLE,
                f"the OpenTelemetry SDK is not installed ({err.name}): "
                "pip install 'distribution-py[otel]'",
            ) from None


def enabled() -> bool:
    return bool(exporter_names())


def wrap(app: WSGIApp) -> WSGIApp:
    """``app`` with a server span around every request, when traces are on."""
    if not enabled():
        return app

    def traced(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        tracer = _tracer()
        from opentelemetry import context, propagate, trace

        carrier = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        span = tracer.start_span(
            f"{method} {environ.get('SCRIPT_NAME', '')}{path}",
            context=propagate.extract(carrier),
            kind=trace.SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": environ.get("SCRIPT_NAME", "") + path,
                "url.scheme": environ.get("wsgi.url_scheme", "http"),
                "user_agent.original": environ.get("HTTP_USER_AGENT", ""),
                "client.address": environ.get("REMOTE_ADDR", ""),
            },
        )

        def recording_start_response(status: str, headers: list, *args: Any) -> Any:
            code = int(status.split(" ", 1)[0])
            span.set_attribute("http.response.status_code", code)
            if code >= 500:
                span.set_status(trace.Status(trace.StatusCode.ERROR))
            return start_response(status, headers, *args)

        token = context.attach(trace.set_span_in_context(span))
        try:
            body = app(environ, recording_start_response)
        except BaseException as err:
            span.record_exception(err)
            span.end()
            raise
        finally:
            context.detach(token)
        return _Ending(body, span)

    return traced


def storage_span(action: str, driver: str, path: str) -> AbstractContextManager[Any] | None:
    """A span for one storage call, as Go's ``base.Base`` wrapper records them; None (at the
    cost of a lookup) while traces are off."""
    if not _on():
        return None
    return _tracer().start_as_current_span(
        action,
        attributes={
            f"{ATTRIBUTE_PREFIX}storage.driver.name": driver,
            f"{ATTRIBUTE_PREFIX}storage.path": path,
        },
    )


def _on() -> bool:
    """:func:`enabled`, read once (the environment a worker inherits does not change): storage
    calls ask it many times a request."""
    known = _state.get("on")
    if known is None:
        known = _state["on"] = enabled()
    return known


class _Ending:
    """The response body, ending the request's span when the server closes it."""

    def __init__(self, body: Iterable[bytes], span: Any) -> None:
        self._body = body
        self._span = span

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._span.end()


def _tracer() -> Any:
    """This process's tracer, made on first use (after gunicorn forked the worker)."""
    if _state["pid"] != os.getpid():
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create({"service.name": SERVICE_NAME, "service.version": __version__})
        provider = TracerProvider(resource=resource)
        for exporter in _exporters(exporter_names()):
            provider.add_span_processor(BatchSpanProcessor(exporter))
        _state["tracer"] = provider.get_tracer("distribution")
        _state["pid"] = os.getpid()
    return _state["tracer"]


def _exporters(names: list[str], environ: Mapping[str, str] | None = None) -> list[Any]:
    environ = os.environ if environ is None else environ
    exporters = []
    for name in names:
        if name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter())
            continue
        protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        elif protocol == "http/protobuf":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        else:
            raise ConfigError(
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                f"unsupported {protocol!r}; use http/protobuf or grpc",
            )
        exporters.append(OTLPSpanExporter())
    return exporters
