"""Turn an event into the Kafka record the contract describes.

One place decides which key, value framing and headers an event travels with,
so producers in the demo, the CLI, the tests and the outcome activity agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.formats import EventCodec
from schemas.headers import EventHeaders, new_traceparent
from schemas.models import Event, Outcome

__all__ = ["KafkaRecord", "to_record"]


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """A ready-to-send record.

    Attributes:
        key: UTF-8 business key.
        value: Avro-encoded event.
        headers: Contract headers.
    """

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def to_record(
    event: Event,
    codec: EventCodec,
    *,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    traceparent: str | None = None,
) -> KafkaRecord:
    """Encode an event with its key and contract headers.

    Args:
        event: The event to send.
        codec: Encodes the value.
        correlation_id: Flow id; defaults to the outcome's own
            ``correlation_id``, else to the event id (a new flow starts here).
        causation_id: Id of the event that caused this one; defaults to the
            outcome's ``causation_id``, else empty.
        traceparent: W3C trace context; a new one when not given.

    Returns:
        Key, value and headers for any Kafka producer.
    """
    if isinstance(event, Outcome):
        correlation_id = correlation_id or event.correlation_id
        causation_id = causation_id or event.causation_id
    headers = EventHeaders(
        event_type=event.avro_name,
        event_id=str(event.event_id),
        correlation_id=correlation_id or str(event.event_id),
        causation_id=causation_id or "",
        traceparent=traceparent or new_traceparent(),
        content_type=codec.content_type(event.avro_name),
    )
    return KafkaRecord(event.key.encode(), codec.encode(event), headers.to_kafka())
