"""What the bridge hands to a workflow: the decoded event plus where it came from.

Every workflow the bridge starts, and every signal it sends, takes one
``Inbound[SomeEvent]`` argument. The metadata carries the correlation and
causation ids a workflow needs for its outcome events, and the Kafka
coordinates for tracing a workflow back to the record that caused it.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from schemas.models import Event

__all__ = ["MAX_ID_LENGTH", "EventMeta", "Inbound", "InboundBatch"]

MAX_ID_LENGTH = 200
"""Longest ``correlation-id`` / ``causation-id`` / ``traceparent`` header accepted."""

EventT = TypeVar("EventT", bound=Event)


class EventMeta(BaseModel):
    """Delivery metadata of one inbound record.

    Attributes:
        event_type: Avro full name (``event-type`` header).
        event_id: The event's id, as text.
        correlation_id: ``correlation-id`` header, or the event id when the
            producer sent none (the event starts a new flow).
        causation_id: ``causation-id`` header, may be empty.
        traceparent: W3C trace context, may be empty.
        topic: Source topic.
        partition: Source partition.
        offset: Source offset.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: str
    event_id: str
    # Bounded like the outcome events that carry them on (max 200 characters).
    correlation_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    causation_id: str = Field(default="", max_length=MAX_ID_LENGTH)
    traceparent: str = Field(default="", max_length=MAX_ID_LENGTH)
    topic: str = ""
    partition: int = -1
    offset: int = -1


class Inbound(BaseModel, Generic[EventT]):
    """The single argument of a bridge-started workflow or bridge-sent signal.

    Attributes:
        event: The decoded, validated event.
        meta: Where it came from and which flow it belongs to.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: EventT
    meta: EventMeta


class InboundBatch(BaseModel, Generic[EventT]):
    """The argument of a batched signal (a route with ``batch``): consecutive events of one key.

    The bridge sends consecutive records of one key from one fetch as one
    signal, in offset order, so a hot key costs one signal (one Temporal call,
    one history event) per batch rather than per record. Each event keeps its
    own ``meta`` (event id, coordinates), so a receiver still drops the
    duplicates of a redelivered batch one event at a time.

    Attributes:
        events: The events, in offset order; never empty.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    events: list[Inbound[EventT]] = Field(min_length=1)
