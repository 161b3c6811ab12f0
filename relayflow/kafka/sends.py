"""Sending an application's events as contract records: the topic its route reads, key, headers.

``relayflow send``, ``relayflow decide`` and the test plugin's ``AppKafka`` all
send through ``send_event``, so an event travels the same way whoever sends
it: ``schemas.framing.to_record`` with the application's codec (the schema
registry's framing when one is configured), to the input topic the routes
read, acknowledged by every in-sync replica (``KafkaClients``' producer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from schemas.framing import to_record

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

    from relayflow.application import Application
    from schemas.formats import EventCodec
    from schemas.models import Event

__all__ = ["Delivered", "input_topic_for", "send_event"]


@dataclass(frozen=True, slots=True)
class Delivered:
    """Where a sent record landed.

    Attributes:
        topic: The topic.
        partition: Its partition.
        offset: The record's offset.
        key: The record key (the event's business key).
        event_id: The event's id, as text.
    """

    topic: str
    partition: int
    offset: int
    key: str
    event_id: str


def input_topic_for(app: Application, event_type: type[Event]) -> str:
    """The one input topic of ``app`` that takes this event type.

    The topic of the routes that take the type; else the input topic whose
    event list names it.

    Raises:
        ValueError: No topic or more than one takes the type.
    """
    name = event_type.avro_name
    topics = list(dict.fromkeys(route.topic for route in app.routes
                                if route.event_type.avro_name == name))
    if not topics:
        topics = [t.name for t in app.topics if t.inbound and name in t.events]
    if len(topics) != 1:
        why = "no route or input topic takes" if not topics \
            else f"{len(topics)} topics ({', '.join(topics)}) take"
        raise ValueError(f"{why} {event_type.__name__} in {app.name}; pass topic= to choose")
    return topics[0]


async def send_event(producer: AIOKafkaProducer, codec: EventCodec, event: Event, topic: str, *,
                     correlation_id: str | None = None, causation_id: str | None = None,
                     traceparent: str | None = None) -> Delivered:
    """Encode an event as a contract record, send it and wait for the broker's acknowledgement.

    Args:
        producer: A started producer.
        codec: The application's codec.
        event: The event.
        topic: Where to send it.
        correlation_id: ``correlation-id`` header (default: the event id).
        causation_id: ``causation-id`` header (default: empty).
        traceparent: W3C trace context (default: a new one).

    Returns:
        Where it landed.
    """
    await codec.prepare_encode(event.avro_name)
    record = to_record(event, codec, correlation_id=correlation_id, causation_id=causation_id,
                       traceparent=traceparent)
    metadata = await producer.send_and_wait(topic, record.value, key=record.key,
                                            headers=record.headers)
    return Delivered(topic, metadata.partition, metadata.offset, event.key, str(event.event_id))
