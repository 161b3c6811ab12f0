"""Publishing workflow outcomes to Kafka: a reusable activity.

Any team's workflow can publish an event of the contract by calling
``publish_outcome`` with the event as data; the activity validates it
against the event model, encodes it with the Avro codec, adds the contract
headers and waits for the broker's acknowledgement (``acks=all``, idempotent
producer). Outcome event ids are chosen by the workflow deterministically, so
a retried publish produces a record with the same ``event-id`` that
subscribers can drop.

The record's ``traceparent`` continues the trace of the event that caused
it. With tracing on, the activity runs in a span of that trace (Temporal's
tracing interceptor carries it from the bridge through the workflow), and
the header names that span as the parent, so a subscriber's spans hang below
``RunActivity:publish_outcome``. Otherwise (tracing off, or the workflow
passes the trace context of another event, e.g. of a signal) the header is the
workflow's ``traceparent`` as given.

An outcome too large for its topic (the producer's ``max_request_size`` or the
topic's ``max.message.bytes`` refuses it), or at least ``claim_check_bytes``
when that is set, goes by claim check when a blob store is configured: its
value is stored (``activities.claim_check.store_value``, content-addressed, so
a retry stores nothing new) before a record with an empty value and the
``claim-check-*`` headers is sent. Without a store such an outcome fails the
attempt with ``OutcomeTooLarge`` (retried: configuring a store or raising the
topic's limit lets it through), never dropped.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any, Protocol

from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import BaseModel, ConfigDict, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.claim_check import BlobStore, store_value
from activities.metrics import WorkerMetrics
from schemas.formats import EventCodec
from schemas.framing import KafkaRecord, to_record
from schemas.headers import CONTENT_TYPE, TRACEPARENT

__all__ = ["OUTCOME_TOO_LARGE", "OutcomePublisher", "Producer", "PublishOutcomeInput",
           "PublishOutcomeResult", "continued_traceparent"]


OUTCOME_TOO_LARGE = "OutcomeTooLarge"
"""Error type of a publication refused for its size with no claim-check store configured."""
_SIZE_REFUSALS = (MessageSizeTooLargeError, RecordTooLargeError)
"""The producer's or the broker's answer to a record too large: the same bytes never pass."""

# The contract's header is W3C ``traceparent`` whatever OTEL_PROPAGATORS says.
_W3C = TraceContextTextMapPropagator()


def continued_traceparent(traceparent: str) -> str:
    """The outcome's ``traceparent``: the current span's when it continues ``traceparent``'s trace.

    Args:
        traceparent: The trace context the workflow passed (its cause's), may be empty.

    Returns:
        The current span as W3C ``traceparent`` when there is one and it is in
        the same trace as ``traceparent`` (or that is empty or malformed);
        else ``traceparent`` unchanged.
    """
    current = trace.get_current_span().get_span_context()
    if not current.is_valid:
        return traceparent
    cause = trace.get_current_span(_W3C.extract({TRACEPARENT: traceparent})).get_span_context()
    if cause.is_valid and cause.trace_id != current.trace_id:
        return traceparent
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier[TRACEPARENT]


class Producer(Protocol):
    """The part of a Kafka producer the publisher needs (aiokafka's signature)."""

    async def send_and_wait(
        self, topic: str, value: bytes | None = None, key: bytes | None = None,
        partition: int | None = None, timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        """Send one record and wait for the broker's acknowledgement."""
        ...


class PublishOutcomeInput(BaseModel):
    """Input of ``publish_outcome``.

    Attributes:
        topic: Outcome topic, e.g. ``orders.outcomes``.
        event_type: Avro full name of the event.
        event: The event's fields (as the model would dump them).
        traceparent: W3C trace context to carry on, may be empty.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: str
    event_type: str
    event: dict[str, Any]
    traceparent: str = ""


class PublishOutcomeResult(BaseModel):
    """Where the outcome landed.

    Attributes:
        topic: Topic written.
        partition: Partition written.
        offset: Offset of the record.
        event_id: The event's id.
    """

    topic: str
    partition: int
    offset: int
    event_id: str


class OutcomePublisher:
    """Publishes contract events to Kafka from workflows.

    Args:
        producer: A started producer (``acks="all"``, idempotence on).
        codec: Knows every event type that may be published.
        metrics: Counts what was published and how long the broker took.
        blobs: The claim-check store, for outcomes too large for their topic; None: off.
        claim_check_bytes: Values of at least this many bytes go by claim check without
            trying the topic first; None: only those the producer or topic refuses.
    """

    def __init__(self, producer: Producer, codec: EventCodec, *,
                 metrics: WorkerMetrics | None = None, blobs: BlobStore | None = None,
                 claim_check_bytes: int | None = None) -> None:
        self._producer = producer
        self._codec = codec
        self._metrics = metrics or WorkerMetrics()
        self._blobs = blobs
        self._claim_check_bytes = claim_check_bytes

    @activity.defn(name="publish_outcome")
    async def publish_outcome(self, request: PublishOutcomeInput) -> PublishOutcomeResult:
        """Validate, encode and produce one outcome event; wait for the broker's ack."""
        model = self._codec.event_types.get(request.event_type)
        if model is None:
            raise ApplicationError(f"unknown event type {request.event_type}",
                                   type="InvalidOutcome", non_retryable=True)
        try:
            event = model.model_validate(request.event)
        except ValidationError as error:
            raise ApplicationError(f"{request.event_type}: {error}", type="InvalidOutcome",
                                   non_retryable=True) from error
        # With a schema registry: register off the event loop, once per schema. A
        # registry that is down or refuses the schema fails the attempt; Temporal retries.
        await self._codec.prepare_encode(event.avro_name)
        record = to_record(event, self._codec,
                           traceparent=continued_traceparent(request.traceparent) or None)
        sent = time.perf_counter()
        try:
            metadata = await self._send(request.topic, record)
        except Exception:
            self._metrics.publish_failed()
            raise
        self._metrics.published(request.topic, request.event_type, time.perf_counter() - sent)
        # A failpoint: a fault test may kill the process here (the repository\'s failpoints).
        sys.audit("relayflow.failpoint", "activity.publish-outcome.after-send")
        return PublishOutcomeResult(topic=request.topic, partition=metadata.partition,
                                    offset=metadata.offset, event_id=str(event.event_id))

    async def _send(self, topic: str, record: KafkaRecord) -> Any:
        """Send ``record`` whole, or by claim check when it is too large for ``topic``."""
        large = self._claim_check_bytes is not None and len(record.value) >= self._claim_check_bytes
        if not (large and self._blobs is not None):
            try:
                return await self._producer.send_and_wait(topic, record.value, key=record.key,
                                                          headers=record.headers)
            except _SIZE_REFUSALS as refusal:
                if self._blobs is None:
                    raise ApplicationError(
                        f"{len(record.value)} bytes refused by {topic} ({refusal}) and no "
                        "claim-check store is configured: set RELAYFLOW_CLAIM_CHECK_DIR or "
                        "RELAYFLOW_CLAIM_CHECK_S3_ENDPOINT, or raise the topic's "
                        "max.message.bytes (the worker's producer sends up to 1 MiB)",
                        type=OUTCOME_TOO_LARGE) from refusal
        return await self._producer.send_and_wait(
            topic, b"", key=record.key, headers=await self._by_reference(record))

    async def _by_reference(self, record: KafkaRecord) -> list[tuple[str, bytes]]:
        """Store the value (durably, before any record names it); the headers naming it."""
        assert self._blobs is not None
        content_type = dict(record.headers).get(CONTENT_TYPE, b"").decode()
        reference = await asyncio.to_thread(store_value, self._blobs, record.value, content_type)
        activity.logger.info("outcome of %d bytes sent by claim check as %s", reference.size,
                             reference.key)
        return [*record.headers, *reference.to_kafka()]
