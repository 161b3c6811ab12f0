"""Tracing: off by default, exporters from OTEL_*, the outcome's traceparent, the consume span."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.propagate import extract
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from structlog.contextvars import bound_contextvars
from typer.testing import CliRunner

from activities.outcomes import continued_traceparent
from bridge.consumer import FetchProcessor
from bridge.logcontext import record_log_context
from bridge.observing import DLQ_REASON_ATTRIBUTE, RecordObserver, producer_trace_id
from relayflow.cli.main import app
from relayflow.config.settings import SettingError, Settings
from relayflow.observability.logs import LogFormat, formatter
from relayflow.observability.tracing import span_exporters, tracer_provider
from relayflow.reference.app import ROUTES
from schemas.framing import to_record
from schemas.headers import EVENT_ID, TRACEPARENT
from tests.helpers.fakes import FakeCommands, FakeDeadLetters, Record
from tests.helpers.support import CODEC, decoder, order_placed, record

PRODUCER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(spans: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return provider


def test_tracing_is_off_by_default() -> None:
    assert Settings().tracing is False
    assert tracer_provider(Settings()) is None


@pytest.mark.parametrize(("env", "kinds"), [
    ({}, [GrpcExporter]),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
     [HttpExporter]),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
      "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, [GrpcExporter]),
    ({"OTEL_TRACES_EXPORTER": "console,otlp_proto_http"}, [ConsoleSpanExporter, HttpExporter]),
    ({"OTEL_TRACES_EXPORTER": "none"}, []),
])
def test_exporters_come_from_the_standard_variables(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str], kinds: list[type]) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL",
                 "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert [type(e) for e in span_exporters()] == kinds


@pytest.mark.parametrize(("env", "named"), [
    ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER: no span exporter 'jaeger'"),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json'"),
])
def test_a_bad_exporter_setting_names_the_variable(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingError) as raised:
        span_exporters()
    assert str(raised.value).startswith(named)


def test_the_bridge_stops_at_start_on_a_bad_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYFLOW_TRACING", "on")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "jaeger")
    result = CliRunner().invoke(app, ["bridge"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("relayflow: OTEL_TRACES_EXPORTER: ")


def test_outcome_traceparent_is_copied_when_no_span_is_current() -> None:
    assert continued_traceparent(PRODUCER) == PRODUCER
    assert continued_traceparent("") == ""


def test_outcome_traceparent_names_the_current_span_of_the_same_trace(
        provider: TracerProvider) -> None:
    with provider.get_tracer("t").start_as_current_span(
            "RunActivity:publish_outcome", context=extract({TRACEPARENT: PRODUCER})) as span:
        continued = continued_traceparent(PRODUCER)
    context = span.get_span_context()
    assert continued == f"00-{context.trace_id:032x}-{context.span_id:016x}-01"
    assert continued.split("-")[1] == PRODUCER.split("-")[1]


def test_outcome_traceparent_of_another_trace_is_kept(provider: TracerProvider) -> None:
    # E.g. a workflow publishing what a signal's event caused: that event's trace, as given.
    with provider.get_tracer("t").start_as_current_span("RunActivity:publish_outcome"):
        assert continued_traceparent(PRODUCER) == PRODUCER
        assert continued_traceparent("").startswith("00-")


def _processor(observer: RecordObserver) -> FetchProcessor:
    return FetchProcessor(decoder(), FakeCommands(), FakeDeadLetters(), observer=observer)


async def test_each_record_gets_a_consume_span_child_of_its_producer(
        provider: TracerProvider, spans: InMemorySpanExporter) -> None:
    order, other = order_placed(), order_placed()
    traced = record(order, offset=7, headers=list(
        to_record(order, CODEC, traceparent=PRODUCER).headers))
    untraced = record(other, offset=8, headers=[
        (name, value) for name, value in record(other).headers if name != TRACEPARENT])
    observer = RecordObserver(provider.get_tracer("bridge"), group="g")
    await _processor(observer).process([traced, untraced])

    first, second = sorted(spans.get_finished_spans(), key=_offset)
    assert first.name == "process orders.events"
    assert first.kind is SpanKind.CONSUMER
    assert first.parent is not None
    assert f"{first.parent.trace_id:032x}-{first.parent.span_id:016x}" in PRODUCER
    assert first.attributes is not None
    assert first.attributes["relayflow.workflow.id"] == f"order-{order.order_id}"
    assert first.attributes["relayflow.result"] == "started"
    assert first.attributes["messaging.consumer.group.name"] == "g"
    assert second.parent is None  # no traceparent: a trace of its own


async def test_a_dead_lettered_record_span_says_why(
        provider: TracerProvider, spans: InMemorySpanExporter) -> None:
    good = record(order_placed(), offset=3)
    bad = Record(good.topic, good.partition, good.offset, good.key, b"\xc3\x01garbage",
                 good.headers)
    await _processor(RecordObserver(provider.get_tracer("bridge"))).process([bad])
    [span] = spans.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes[DLQ_REASON_ATTRIBUTE] == "truncated"
    assert span.status.status_code is StatusCode.ERROR
    assert span.events[0].name == "dead-lettered"


async def test_without_a_tracer_no_span_and_the_log_context_is_reset(
        spans: InMemorySpanExporter) -> None:
    await _processor(RecordObserver()).process([record(order_placed())])
    assert spans.get_finished_spans() == ()
    assert not {"topic", "offset", "workflow_id"} & record_log_context().keys()


_TRACE, _SPAN = PRODUCER.split("-")[1:3]


@pytest.mark.parametrize("value", [
    PRODUCER, f" 00-{_TRACE}-{_SPAN}-00\t", f"01-{_TRACE}-{_SPAN}-01-future-fields",
    f"00-{_TRACE}-{_SPAN}-01-not-in-version-00", f"ff-{_TRACE}-{_SPAN}-01",
    f"00-{'0' * 32}-{_SPAN}-01", f"00-{_TRACE}-{'0' * 16}-01", PRODUCER.upper(),
    PRODUCER[:-1], f"{PRODUCER}{' ' * 600}", "garbage", "", None,
])
def test_the_log_context_has_the_trace_id_the_propagator_reads(value: str | None) -> None:
    # With tracing off the bridge reads it without the propagator: both must agree.
    context = TraceContextTextMapPropagator().extract({} if value is None else {TRACEPARENT: value})
    found = trace.get_current_span(context).get_span_context()
    assert producer_trace_id(value) == (trace.format_trace_id(found.trace_id) if found.is_valid
                                        else None)


@pytest.mark.parametrize("tracing", [False, True])
def test_the_scope_binds_the_records_log_context_and_resets_it(
        provider: TracerProvider, tracing: bool) -> None:
    order = order_placed()
    fetched = record(order, offset=7, headers=[
        (TRACEPARENT, None), (EVENT_ID, b"e-1"), (EVENT_ID, b"e-2"),
        (TRACEPARENT, PRODUCER.encode()), (TRACEPARENT, b"00-other")])
    observer = RecordObserver(provider.get_tracer("bridge") if tracing else None)
    with observer.scope(fetched) as scope:
        assert record_log_context() == {
            "topic": fetched.topic, "partition": 0, "offset": 7, "key": order.order_id,
            "event_id": "e-1", "workflow_id": None, "trace_id": _TRACE}
        assert scope.span.is_recording() is tracing
        route = ROUTES.lookup(fetched.topic, order.avro_name)
        assert route is not None
        scope.routed(route, "order-1", "e-1")
        assert record_log_context()["workflow_id"] == "order-1"
    assert record_log_context() == {}


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_log_lines_in_the_scope_have_the_fields_structlog_contextvars_gave(
        log_format: LogFormat) -> None:
    # The fields were seven structlog context variables: a line must read as it did then.
    order = order_placed()
    fetched = record(order, offset=7,
                     headers=[(EVENT_ID, b"e-1"), (TRACEPARENT, PRODUCER.encode())])
    logger = logging.getLogger("tests.scope")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(log_format))
    logger.addHandler(handler)
    try:
        with RecordObserver().scope(fetched) as scope:
            logger.warning("before routing")
            route = ROUTES.lookup(fetched.topic, order.avro_name)
            assert route is not None
            scope.routed(route, "order-1", "e-1")
            logger.warning("routed")
        with bound_contextvars(topic=fetched.topic, partition=0, offset=7, key=order.order_id,
                               event_id="e-1", workflow_id=None, trace_id=_TRACE):
            logger.warning("before routing")
            with bound_contextvars(workflow_id="order-1"):
                logger.warning("routed")
    finally:
        logger.removeHandler(handler)
    lines = [re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "<time>", line)
             for line in stream.getvalue().splitlines()]
    assert len(lines) == 4
    if log_format == "json":
        assert [json.loads(line) for line in lines[:2]] == [json.loads(line) for line in lines[2:]]
        assert json.loads(lines[1])["workflow_id"] == "order-1"
    else:
        assert lines[:2] == lines[2:]


def _offset(span: ReadableSpan) -> int:
    assert span.attributes is not None
    return int(str(span.attributes["messaging.kafka.offset"]))


def test_on_the_process_provider_is_global_and_exports_as_configured() -> None:
    # A process of its own: OpenTelemetry's global provider can be set once per process.
    code = ("from opentelemetry import trace\n"
            "from relayflow.config.settings import Settings\n"
            "from relayflow.observability.tracing import tracer_provider\n"
            "provider = tracer_provider(Settings(tracing=True))\n"
            "assert provider is tracer_provider(Settings(tracing=True))\n"
            "assert trace.get_tracer_provider() is provider\n"
            "with trace.get_tracer('t').start_as_current_span('hello'):\n"
            "    pass\n")
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": ""}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    exported = json.loads(done.stdout)  # flushed at exit
    assert exported["name"] == "hello"
    assert exported["resource"]["attributes"]["service.name"] == "relayflow"
