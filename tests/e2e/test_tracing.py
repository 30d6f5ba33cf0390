"""OpenTelemetry tracing on a real stack: the API and the worker export over OTLP/HTTP to a
receiver on loopback, and one trace follows a job from its POST to every LLM call."""

import gzip
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from kernel.tracing import requested_exporters
from testkit.fixtures import fresh_text
from testkit.stack import ROOT, FakeLLM, Stack, running_stack, wait_until

pytestmark = pytest.mark.e2e

MODEL = "stand-in-model"  # what running_stack sets EVENHAND_MODEL to
LLM_KEY = "sk-test-not-a-real-key"  # and OPENAI_API_KEY


@dataclass
class Span:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    status_message: str

    def strings(self) -> list[str]:
        """Every text the span carries: name, attribute and event values, status."""
        values = [self.name, self.status_message]
        for attributes in (self.attributes, *(attrs for _, attrs in self.events)):
            values += [str(value) for value in attributes.values()]
        values += [name for name, _ in self.events]
        return values


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None


def _attributes(pairs: "list[KeyValue] | Any") -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


@dataclass
class Receiver:
    """An OTLP/HTTP trace receiver: keeps every span it is sent."""

    url: str
    spans: list[Span] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        received = []
        for resource_spans in request.resource_spans:
            service = _attributes(resource_spans.resource.attributes).get("service.name", "")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        Span(
                            service=service,
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes=_attributes(span.attributes),
                            events=[(e.name, _attributes(e.attributes)) for e in span.events],
                            status_message=span.status.message,
                        )
                    )
        with self.lock:
            self.spans += received

    def trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [span for span in self.spans if span.trace_id == trace_id]

    def all(self) -> list[Span]:
        with self.lock:
            return list(self.spans)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    spans = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            spans.add(body)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    spans.url = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield spans
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def traced_stack(
    services_dir: Path, redis_url: str, fake_llm: FakeLLM, receiver: Receiver
) -> Iterator[Stack]:
    # Tracing never touches the database: one stack, on SQLite, is enough.
    database_url = f"sqlite:///{services_dir / 'evenhand-tracing.db'}"
    with running_stack(
        "tracing",
        database_url,
        redis_url,
        fake_llm,
        services_dir,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.url,
        OTEL_BSP_SCHEDULE_DELAY="100",  # milliseconds: spans reach the receiver at once
        # asking for prompts and answers in spans does not get them: they quote the article
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="span_and_event",
    ) as stack:
        yield stack


def job_trace(receiver: Receiver, job_id: str, llm_calls: int) -> dict[str, Any]:
    """The job's trace once every span of it has arrived: the POST, the publish, the run and
    `llm_calls` LLM spans."""

    def complete() -> dict[str, Any] | None:
        runs = [
            s
            for s in receiver.all()
            if s.kind == ProtoSpan.SPAN_KIND_CONSUMER and s.attributes.get("celery.task_name")
        ]
        run = next((s for s in runs if job_id in s.attributes.values()), None)
        if run is None:
            return None
        spans = receiver.trace(run.trace_id)
        llm = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]
        if len(llm) < llm_calls:
            return None
        return {"run": run, "llm": llm, "spans": spans}

    found = wait_until(complete, 20, what=f"the trace of job {job_id}")
    assert found is not None
    return found


def test_one_trace_follows_a_job_from_the_post_to_every_llm_call(
    traced_stack: Stack, receiver: Receiver
) -> None:
    article = fresh_text("news_multiple_sides.txt")
    job_id = traced_stack.submit(text=article, title="Tracing")["job_id"]
    job = traced_stack.wait_job(job_id)
    assert job["status"] == "succeeded", job
    usage = job["result"]["usage"]

    found = job_trace(receiver, job_id, usage["llm_calls"])
    spans: list[Span] = found["spans"]
    run: Span = found["run"]
    post = [s for s in spans if s.kind == ProtoSpan.SPAN_KIND_SERVER]
    assert [(s.service, s.name) for s in post] == [("evenhand-api", "POST /v1/articles")]
    # the instrumentation's HTTP attribute names until OTEL_SEMCONV_STABILITY_OPT_IN=http
    http = post[0].attributes
    assert http.get("http.response.status_code", http.get("http.status_code")) == 202
    publish = [s for s in spans if s.kind == ProtoSpan.SPAN_KIND_PRODUCER]
    assert [(s.service, s.name) for s in publish] == [
        ("evenhand-api", "apply_async/evenhand.summarize_job")
    ]
    assert (run.service, run.name) == ("evenhand-worker", "run/evenhand.summarize_job")
    # the message's headers carried the context: the run is the publish's child
    assert run.parent_id == publish[0].span_id
    assert publish[0].trace_id == post[0].trace_id

    llm: list[Span] = found["llm"]
    assert len(llm) == usage["llm_calls"]
    for span in llm:
        assert span.service == "evenhand-worker"
        assert span.name == f"chat {MODEL}"
        assert span.kind == ProtoSpan.SPAN_KIND_CLIENT
        assert span.parent_id == run.span_id
        attributes = span.attributes
        assert attributes["gen_ai.provider.name"] == "openai"
        assert attributes["gen_ai.request.model"] == MODEL
        assert attributes["gen_ai.response.model"]
        assert attributes["gen_ai.request.max_tokens"] == 4096  # EVENHAND_LLM_MAX_OUTPUT_TOKENS
        assert "error.type" not in attributes
    assert sum(s.attributes["gen_ai.usage.input_tokens"] for s in llm) == usage["prompt_tokens"]
    assert (
        sum(s.attributes["gen_ai.usage.output_tokens"] for s in llm) == usage["completion_tokens"]
    )

    assert_nothing_secret(receiver.all(), article, traced_stack.key)


def test_a_failed_llm_call_has_an_error_type(traced_stack: Stack, receiver: Receiver) -> None:
    traced_stack.llm.control(faults=[{"kind": "auth", "count": 1}])
    article = fresh_text("single_sentence.txt")
    job_id = traced_stack.submit(text=article)["job_id"]
    job = traced_stack.wait_job(job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "llm_auth_failed", job

    found = job_trace(receiver, job_id, 1)
    [llm] = found["llm"]
    assert llm.name == f"chat {MODEL}"
    assert llm.attributes["error.type"] == "openai.AuthenticationError"
    assert "gen_ai.usage.input_tokens" not in llm.attributes
    assert_nothing_secret(receiver.all(), article, traced_stack.key)


def assert_nothing_secret(spans: list[Span], article: str, api_key: str) -> None:
    """No span carries either key or any run of eight words of the article."""
    assert spans
    words = article.split()
    runs = {" ".join(words[i : i + 8]) for i in range(len(words) - 7)}
    unique_line = article.strip().splitlines()[-1]
    for span in spans:
        for text in span.strings():
            assert api_key not in text, (span.name, text)
            assert LLM_KEY not in text, (span.name, text)
            assert unique_line.split()[-1] not in text, (span.name, text)
            leaked = [run for run in runs if run in text]
            assert not leaked, (span.name, leaked[:1])


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({}, []),
        ({"OTEL_SERVICE_NAME": "x"}, []),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, ["otlp", "console"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, []),
    ],
)
def test_the_standard_variables_decide_whether_to_trace(
    environ: dict[str, str], exporters: list[str]
) -> None:
    assert requested_exporters(environ) == exporters


def run_probe(probe: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`probe` in a fresh interpreter with no OTEL_ settings but `env`, on an in-memory database."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**environ, "DATABASE_URL": "sqlite://", "PYTHONPATH": str(ROOT), **env},
        check=True,
    )


def test_with_tracing_off_nothing_is_traced_or_instrumented() -> None:
    # (redis-py imports the OpenTelemetry SDK for metrics of its own when it is installed)
    probe = (
        "import sys, api.main, worker.tasks\n"
        "from opentelemetry import trace\n"
        "print(type(trace.get_tracer_provider()).__name__, "
        "sorted(m for m in sys.modules if m.startswith('opentelemetry.instrumentation')))\n"
    )
    done = run_probe(probe)
    assert done.stdout.strip() == "ProxyTracerProvider []"


def test_tracing_asked_for_without_the_otel_extra_says_so_and_runs_untraced() -> None:
    probe = (
        "import sys\n"
        "class NoOtelExtra:\n"  # as if evenhand[otel] were not installed
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.startswith(('opentelemetry.sdk', 'opentelemetry.instrumentation', "
        "'opentelemetry.exporter')):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, NoOtelExtra())\n"
        "import api.main\n"
        "from kernel.tracing import trace_worker\n"
        "print('WORKER TRACED', trace_worker())\n"
    )
    done = run_probe(probe, OTEL_TRACES_EXPORTER="console", EVENHAND_LOG_JSON="true")
    assert "WORKER TRACED False" in done.stdout
    assert "tracing_unavailable" in done.stderr and "evenhand[otel]" in done.stderr
