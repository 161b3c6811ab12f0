"""Publishing workflow outcomes to Kafka: a reusable activity.

Any team's workflow can publish an event of the contract by calling
``publish_outcome`` with the event as data; the activity validates it
against the event model, encodes it with the Avro codec, adds the contract
headers and waits for the broker's acknowledgement (``acks=all``, idempotent
producer). Outcome event ids are chosen by the workflow deterministically, so
a retried publish produces a record with the same ``event-id`` that
subscribers can drop.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

import failpoints
from activities.metrics import WorkerMetrics
from schemas.codec import AvroCodec
from schemas.framing import to_record

__all__ = ["OutcomePublisher", "Producer", "PublishOutcomeInput", "PublishOutcomeResult"]


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
    """

    def __init__(self, producer: Producer, codec: AvroCodec, *,
                 metrics: WorkerMetrics | None = None) -> None:
        self._producer = producer
        self._codec = codec
        self._metrics = metrics or WorkerMetrics()

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
        record = to_record(event, self._codec, traceparent=request.traceparent or None)
        sent = time.perf_counter()
        try:
            metadata = await self._producer.send_and_wait(
                request.topic, record.value, key=record.key, headers=record.headers
            )
        except Exception:
            self._metrics.publish_failed()
            raise
        self._metrics.published(request.topic, request.event_type, time.perf_counter() - sent)
        failpoints.hit("activity.publish-outcome.after-send")
        return PublishOutcomeResult(topic=request.topic, partition=metadata.partition,
                                    offset=metadata.offset, event_id=str(event.event_id))
