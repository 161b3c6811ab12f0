"""What one record's handling is observed through: its consume span and its log context.

Every log line written while a record is handled (by the bridge, or by a
library it calls) carries the record's ``topic``, ``partition``, ``offset``,
``key``, ``event_id``, ``workflow_id`` and ``trace_id``, set as one mapping in
one context variable (``bridge.logcontext``; the process's log configuration
merges them into each line; without it they show nowhere). With tracing off
this is all a record costs here, a few microseconds: the trace id is read
from the header directly (``producer_trace_id``), without the propagator's
context objects, and the variable is reset by its token
(``bench.observability`` measures it).

With a tracer, each record also gets a CONSUMER span, ``process <topic>``,
whose parent is the producer's span from the record's ``traceparent`` header
(W3C trace context). It is current while the record is handled, so the
Temporal client's interceptor makes its StartWorkflow / SignalWorkflow span a
child of it. Neither FastStream's telemetry middleware (one span per fetched
batch, in a new trace) nor the aiokafka instrumentation (receive spans ended
before the handler runs) gives a span per record that the Temporal call can
continue, so the bridge opens it with the OpenTelemetry API. Without a tracer
(tracing off) no span is made at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from contextvars import Token
from dataclasses import dataclass
from types import TracebackType

from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from bridge.consumed import ConsumedRecord
from bridge.logcontext import RECORD_LOG_CONTEXT, RecordLogContext
from bridge.routes import Route
from schemas.dead_letters import DlqReason
from schemas.headers import EVENT_ID, TRACEPARENT

__all__ = ["DLQ_REASON_ATTRIBUTE", "RecordObserver", "RecordScope", "producer_trace_id"]

DLQ_REASON_ATTRIBUTE = "relayflow.dlq.reason"
"""Span attribute of a dead-lettered record: the ``dlq-reason`` header's value."""

_Headers = Sequence[tuple[str, bytes | None]]


class _HeaderGetter(Getter[_Headers]):
    """Reads Kafka headers (raw bytes, maybe None) for the OpenTelemetry propagator."""

    def get(self, carrier: _Headers, key: str) -> list[str] | None:
        found = [v.decode(errors="replace") for k, v in carrier if k == key and v is not None]
        return found or None

    def keys(self, carrier: _Headers) -> list[str]:
        return [k for k, _ in carrier]


_GETTER = _HeaderGetter()
# The contract's header is W3C ``traceparent`` whatever OTEL_PROPAGATORS says.
_PROPAGATOR = TraceContextTextMapPropagator()
# The propagator's own pattern and limit, so producer_trace_id accepts what it accepts.
_TRACEPARENT_FORMAT = TraceContextTextMapPropagator._TRACEPARENT_HEADER_FORMAT_RE  # noqa: SLF001
_TRACEPARENT_MAX = TraceContextTextMapPropagator._TRACEPARENT_MAXIMUM_LENGTH  # noqa: SLF001
_INVALID_TRACE_ID, _INVALID_SPAN_ID = "0" * 32, "0" * 16


def producer_trace_id(traceparent: str | None) -> str | None:
    """The trace id of a ``traceparent`` value, if OpenTelemetry's W3C propagator accepts it.

    The same answer as extracting it with the propagator and formatting the
    span context's trace id, for a fraction of the cost.
    """
    if not traceparent or len(traceparent) > _TRACEPARENT_MAX:
        return None
    match = _TRACEPARENT_FORMAT.search(traceparent)
    if match is None:
        return None
    version, trace_id, span_id, _, rest = match.groups()
    if (trace_id == _INVALID_TRACE_ID or span_id == _INVALID_SPAN_ID or version == "ff"
            or (version == "00" and rest)):
        return None
    return trace_id


@dataclass(frozen=True, slots=True)
class RecordScope:
    """The span of the record being handled (a non-recording one when tracing is off)."""

    span: trace.Span

    def routed(self, route: Route, workflow_id: str, event_id: str) -> None:
        """The record decoded and routed: its workflow id joins the log context."""
        # A new mapping, not an update: tasks started earlier keep what they saw.
        fields = RECORD_LOG_CONTEXT.get()
        RECORD_LOG_CONTEXT.set({**(fields or {}), "event_id": event_id,
                                "workflow_id": workflow_id})
        if self.span.is_recording():
            self.span.set_attributes({
                "messaging.message.id": event_id,
                "relayflow.route.action": str(route.action),
                "relayflow.workflow.type": route.workflow,
                "relayflow.workflow.id": workflow_id,
            })

    def done(self, result: str) -> None:
        """Temporal's answer (``started``, ``signalled``, ...) for the span."""
        if self.span.is_recording():
            self.span.set_attribute("relayflow.result", result)

    def dead_lettered(self, reason: DlqReason, error: str) -> None:
        """The record went to the DLQ: the span says why and ends in error."""
        if self.span.is_recording():
            self.span.set_attribute(DLQ_REASON_ATTRIBUTE, reason)
            self.span.add_event("dead-lettered", {DLQ_REASON_ATTRIBUTE: reason,
                                                  "relayflow.dlq.error": error})
            self.span.set_status(Status(StatusCode.ERROR, f"{reason}: {error}"))


class RecordObserver:
    """Opens the scope every record is handled in.

    Args:
        tracer: Makes the consume spans; None (tracing off) makes none.
        group: The consumer group, for the spans.
    """

    def __init__(self, tracer: trace.Tracer | None = None, *, group: str = "") -> None:
        self._tracer = tracer
        self._group = group

    def scope(self, record: ConsumedRecord) -> _Scope:
        """Bind the record's log context, and open its span when tracing is on.

        A context manager whose value is the record's ``RecordScope``.
        """
        return _Scope(self._tracer, self._group, record)


_UNTRACED = RecordScope(trace.INVALID_SPAN)


class _Scope:
    """``RecordObserver.scope``: a class, not a generator (per record, a few µs less)."""

    __slots__ = ("_group", "_record", "_span", "_token", "_tracer")

    def __init__(self, tracer: trace.Tracer | None, group: str, record: ConsumedRecord) -> None:
        self._tracer = tracer
        self._group = group
        self._record = record
        self._span: AbstractContextManager[trace.Span] | None = None
        self._token: Token[RecordLogContext | None] | None = None

    def __enter__(self) -> RecordScope:
        record = self._record
        event_id = traceparent = None
        for name, value in record.headers:  # the first of each, as the propagator reads them
            if value is None:
                continue
            if name == EVENT_ID and event_id is None:
                event_id = value.decode(errors="replace")
            elif name == TRACEPARENT and traceparent is None:
                traceparent = value.decode(errors="replace")
        key = None if record.key is None else record.key.decode(errors="replace")
        self._token = RECORD_LOG_CONTEXT.set({
            "topic": record.topic, "partition": record.partition, "offset": record.offset,
            "key": key, "event_id": event_id, "workflow_id": None,
            "trace_id": producer_trace_id(traceparent)})
        if self._tracer is None:
            return _UNTRACED
        try:
            parent = _PROPAGATOR.extract(record.headers, getter=_GETTER)
            attributes: dict[str, str | int] = {
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": record.topic,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
                "messaging.consumer.group.name": self._group,
            }
            if key is not None:
                attributes["messaging.kafka.message.key"] = key
            self._span = self._tracer.start_as_current_span(
                f"process {record.topic}", context=parent, kind=SpanKind.CONSUMER,
                attributes=attributes)
            return RecordScope(self._span.__enter__())
        except BaseException:
            RECORD_LOG_CONTEXT.reset(self._token)
            raise

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            if self._span is not None:
                self._span.__exit__(kind, error, traceback)
        finally:
            assert self._token is not None
            RECORD_LOG_CONTEXT.reset(self._token)
