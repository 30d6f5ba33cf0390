"""Optional OpenTelemetry tracing, configured once per process from the standard `OTEL_*` variables.

Off unless the environment asks for it (`OTEL_TRACES_EXPORTER` naming an exporter, or an OTLP
endpoint set); `OTEL_SDK_DISABLED=true` wins. When off, nothing of OpenTelemetry is imported, so
the API and the worker run without the `otel` extra installed.

One trace per job: the API's request span, Celery's publish span (the context travels in the
task message's headers) and run span, and the worker's LLM call spans. Spans carry no article
text and no keys: HTTP headers are only recorded when `OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*`
names them, and credentials among them are redacted anyway; Celery's spans record the task's id
and name, never its arguments.
"""

import os
import threading
from collections.abc import Mapping
from typing import Any

import structlog

log = structlog.get_logger(__name__)

EXPORTERS = ("otlp", "console")
# Recorded as "[REDACTED]" even when an operator asks to capture them.
SENSITIVE_HEADERS = ("authorization", "cookie", "set-cookie", "proxy-authorization")
# Probes and scrapes would be most of the traces and tell nothing.
DEFAULT_EXCLUDED_URLS = "healthz,readyz,metrics"

_lock = threading.Lock()
_enabled: bool | None = None  # None: not configured yet in this process


def requested_exporters(environ: Mapping[str, str]) -> list[str]:
    """The span exporters the standard variables ask for; empty when tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if named:
        return [name for name in (n.strip() for n in named.split(",")) if name and name != "none"]
    if environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    ):
        return ["otlp"]
    return []


def configure_tracing(default_service_name: str) -> bool:
    """Set up the tracer provider if the environment asks for tracing; True when tracing is on.

    Runs once per process (later calls answer the first one's outcome). `OTEL_SERVICE_NAME`
    overrides `default_service_name`.
    """
    global _enabled
    with _lock:
        if _enabled is None:
            _enabled = _configure(default_service_name)
        return _enabled


def _configure(default_service_name: str) -> bool:
    exporters = requested_exporters(os.environ)
    if not exporters:
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    except ImportError:
        log.warning(
            "tracing_unavailable",
            reason="the OTEL_* variables ask for traces but OpenTelemetry is not installed; "
            "install evenhand[otel]",
        )
        return False
    chosen: list[SpanExporter] = [e for e in map(_exporter, exporters) if e is not None]
    if not chosen:
        return False
    service_name = os.environ.get("OTEL_SERVICE_NAME") or default_service_name
    # Resource.create also reads OTEL_RESOURCE_ATTRIBUTES; the sampler comes from OTEL_TRACES_SAMPLER.
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    for exporter in chosen:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    log.info("tracing_enabled", service=service_name, exporters=exporters)
    return True


def _exporter(name: str) -> Any:
    """The exporter `name` stands for, configured by its own OTEL_EXPORTER_* variables."""
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name == "otlp":
        protocol = (
            os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        )
        if protocol == "http/protobuf":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter()
        log.warning(
            "tracing_exporter_unsupported",
            exporter=name,
            protocol=protocol,
            reason="only OTLP over http/protobuf is supported",
        )
        return None
    log.warning(
        "tracing_exporter_unsupported",
        exporter=name,
        reason=f"OTEL_TRACES_EXPORTER may name {', '.join(EXPORTERS)} or none",
    )
    return None


def trace_api(app: Any) -> None:
    """Trace the FastAPI `app`'s requests and the tasks it publishes, when tracing is on."""
    if not configure_tracing("evenhand-api"):
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.util.http import (
        OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS,
        get_custom_headers,
    )

    sanitized = get_custom_headers(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS)
    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls=os.environ.get("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS),
        http_capture_headers_sanitize_fields=[*sanitized, *SENSITIVE_HEADERS],
        # one span per request, not one more per body chunk read or written
        exclude_spans=["receive", "send"],
    )
    _trace_celery()


def trace_worker() -> bool:
    """Trace the tasks this worker runs and publishes, when tracing is on; True if it is."""
    if not configure_tracing("evenhand-worker"):
        return False
    _trace_celery()
    return True


def _trace_celery() -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    instrumentor = CeleryInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
