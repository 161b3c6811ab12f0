"""One trace from event to outcome, and the record fields on every log line, on the real stack.

The plugin's ``relayflow_system`` runs bridge and worker with this module's
tracer provider (an in-memory exporter); a test's own span plays the
producer whose ``traceparent`` the record carries.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime

import pytest
from opentelemetry.propagate import extract
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from bridge.observing import DLQ_REASON_ATTRIBUTE
from relayflow.config.settings import Settings
from relayflow.observability.logs import formatter
from relayflow.reference.app import APP
from relayflow.reference.events import OrderCancelled, OrderCompleted
from relayflow.reference.topics import ORDERS_EVENTS, ORDERS_OUTCOMES
from schemas.framing import to_record
from schemas.headers import DLQ_REASON, TRACEPARENT
from schemas.topics import dlq_topic
from tests.helpers.support import KafkaProbe, kafka_probe, order_placed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

CODEC = APP.codec()
RECORD_FIELDS = {"topic", "partition", "offset", "key", "event_id", "workflow_id", "trace_id"}


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="module")
def relayflow_tracer_provider(spans: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    yield provider
    provider.shutdown()


@pytest.fixture
async def probe(relayflow_system: Settings) -> AsyncIterator[KafkaProbe]:
    async with kafka_probe(relayflow_system, [ORDERS_OUTCOMES, dlq_topic(ORDERS_EVENTS)]) as p:
        yield p


@pytest.fixture
def bridge_lines() -> Iterator[io.StringIO]:
    """The bridge's log lines, rendered as JSON like ``RELAYFLOW_LOG_FORMAT=json`` does."""
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(formatter("json"))
    logger = logging.getLogger("bridge")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield captured
    logger.removeHandler(handler)
    logger.setLevel(level)


def _produced(provider: TracerProvider) -> tuple[ReadableSpan, bytes]:
    """A traced producer's send: its span, and the traceparent its record carries."""
    with provider.get_tracer("producer").start_as_current_span(
            "send orders.events", kind=SpanKind.PRODUCER) as span:
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
    assert isinstance(span, ReadableSpan)
    return span, carrier[TRACEPARENT].encode()


async def _trace(spans: InMemorySpanExporter, trace_id: int,
                 until: Callable[[list[ReadableSpan]], bool]) -> list[ReadableSpan]:
    """The finished spans of one trace once ``until`` holds for them (bounded wait)."""
    deadline = time.monotonic() + 30
    while True:
        found = [s for s in spans.get_finished_spans()
                 if s.context is not None and s.context.trace_id == trace_id]
        if until(found) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


def _named(found: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in found if s.name == name]


def _parent_of(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def _lines(captured: io.StringIO, **match: object) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    return [line for line in lines if all(line.get(k) == v for k, v in match.items())]


async def test_one_trace_from_order_placed_to_order_completed(
        probe: KafkaProbe, relayflow_tracer_provider: TracerProvider,
        spans: InMemorySpanExporter, bridge_lines: io.StringIO) -> None:
    order = order_placed()
    producer, traceparent = _produced(relayflow_tracer_provider)
    record = to_record(order, CODEC, traceparent=traceparent.decode())
    sent = await probe.send_record(ORDERS_EVENTS, record)

    [outcome] = await probe.wait_for(
        lambda r: r.topic == ORDERS_OUTCOMES and r.key == order.order_id.encode())
    assert isinstance(CODEC.decode(outcome.value), OrderCompleted)
    assert producer.context is not None
    trace_id = producer.context.trace_id
    found = await _trace(spans, trace_id,
                         lambda f: bool(_named(f, "RunActivity:publish_outcome")))

    [consume] = _named(found, f"process {ORDERS_EVENTS}")
    assert consume.kind is SpanKind.CONSUMER
    assert _parent_of(consume) == producer.context.span_id
    assert consume.attributes is not None
    assert consume.attributes["messaging.kafka.offset"] == sent.offset
    assert consume.attributes["relayflow.workflow.id"] == f"order-{order.order_id}"
    [start] = _named(found, "StartWorkflow:OrderSaga")
    assert consume.context is not None
    assert _parent_of(start) == consume.context.span_id
    [run] = _named(found, "RunWorkflow:OrderSaga")
    assert start.context is not None
    assert _parent_of(run) == start.context.span_id
    by_id = {s.context.span_id: s for s in found if s.context is not None}
    activities = _named(found, "RunActivity:reserve_inventory") + _named(
        found, "RunActivity:charge_payment") + _named(found, "RunActivity:publish_outcome")
    assert len(activities) >= 3
    for activity in activities:
        # RunActivity <- StartActivity <- the workflow's context, the span that started it
        # (the SDK's TracingInterceptor makes RunWorkflow a zero-length sibling).
        scheduled = by_id[_parent_of(activity) or 0]
        assert scheduled.name == activity.name.replace("Run", "Start", 1)
        assert _parent_of(scheduled) == start.context.span_id

    # The outcome continues the trace: its parent is the span that published it.
    outcome_context = get_current_span(
        extract({TRACEPARENT: dict(outcome.headers)[TRACEPARENT].decode()})).get_span_context()
    [publish] = _named(found, "RunActivity:publish_outcome")
    assert publish.context is not None
    assert outcome_context.trace_id == trace_id
    assert outcome_context.span_id == publish.context.span_id

    # The bridge's line about the started workflow carries the record's fields.
    [started] = _lines(bridge_lines, event="start OrderSaga: started", offset=sent.offset,
                       topic=ORDERS_EVENTS)
    assert started.keys() >= RECORD_FIELDS
    assert started["partition"] == sent.partition
    assert started["key"] == order.order_id
    assert started["event_id"] == str(order.event_id)
    assert started["workflow_id"] == f"order-{order.order_id}"
    assert started["trace_id"] == f"{trace_id:032x}"


async def test_dead_lettered_record_has_a_span_with_the_reason(
        probe: KafkaProbe, relayflow_tracer_provider: TracerProvider,
        spans: InMemorySpanExporter, bridge_lines: io.StringIO) -> None:
    # Cancelling an order that never started: the target does not exist.
    order_id = f"ORD-{uuid.uuid4().hex[:12]}"
    cancel = OrderCancelled(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                            order_id=order_id)
    producer, traceparent = _produced(relayflow_tracer_provider)
    sent = await probe.send_record(ORDERS_EVENTS,
                                   to_record(cancel, CODEC, traceparent=traceparent.decode()))

    [dead] = await probe.wait_for(lambda r: r.topic == dlq_topic(ORDERS_EVENTS)
                                  and r.key == order_id.encode())
    assert dict(dead.headers)[DLQ_REASON] == b"target-not-found"
    assert producer.context is not None
    found = await _trace(spans, producer.context.trace_id,
                         lambda f: bool(_named(f, f"process {ORDERS_EVENTS}")))
    [consume] = _named(found, f"process {ORDERS_EVENTS}")
    assert _parent_of(consume) == producer.context.span_id
    assert consume.attributes is not None
    assert consume.attributes[DLQ_REASON_ATTRIBUTE] == "target-not-found"
    assert consume.status.status_code is StatusCode.ERROR
    assert [e.name for e in consume.events] == ["dead-lettered"]

    # Every line about it (dead-lettered, then its key parked) carries the record's fields.
    lines = _lines(bridge_lines, topic=ORDERS_EVENTS, partition=sent.partition,
                   offset=sent.offset)
    assert [str(line["event"]).split()[:2] for line in lines] == [["dead-lettered", str(
        f"{ORDERS_EVENTS}[{sent.partition}]@{sent.offset}")], ["parked", "key"]]
    for line in lines:
        assert line.keys() >= RECORD_FIELDS
        assert line["workflow_id"] == f"order-{order_id}"
        assert line["event_id"] == str(cancel.event_id)
        assert line["trace_id"] == f"{producer.context.trace_id:032x}"
        assert line["key"] == order_id
