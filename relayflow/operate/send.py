"""``relayflow send``: one event, validated against its model, sent as the contract says.

The event type is one of the configured application's (``RELAYFLOW_APP``),
named by its class or Avro full name. The JSON is validated by the model
before anything connects, so bad input sends nothing; ``event_id`` and
``occurred_at`` are filled in when left out. The record goes out through
``relayflow.kafka.sends.send_event``, the same code the test plugin uses: the
application's codec (the schema registry's framing when configured), the
business key, the contract headers, acknowledged by every in-sync replica.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from relayflow.application import Application
from relayflow.config.settings import Settings
from relayflow.kafka.sends import Delivered, input_topic_for, send_event
from relayflow.operate.deadlines import BadInput, kafka_answers
from relayflow.runtime.bootstrap import event_codec
from relayflow.runtime.clients import kafka_clients
from schemas.models import Event

__all__ = ["Sent", "event_type_named", "parse_event", "send", "validation_lines"]

_ERRORS_SHOWN = 10


@dataclass(frozen=True, slots=True)
class Sent:
    """What ``send`` did.

    Attributes:
        event: The event as sent.
        delivered: Where it landed.
    """

    event: Event
    delivered: Delivered

    def as_json(self) -> dict[str, object]:
        """Where it landed, for scripts."""
        d = self.delivered
        return {"topic": d.topic, "partition": d.partition, "offset": d.offset, "key": d.key,
                "event_id": d.event_id, "event_type": self.event.avro_name}

    def as_line(self) -> str:
        """Where it landed, for people."""
        d = self.delivered
        return (f"sent {self.event.avro_name} to {d.topic} partition {d.partition} offset "
                f"{d.offset}, key {d.key!r}, event id {d.event_id}")


def event_type_named(app: Application, name: str) -> type[Event]:
    """The application's event type called ``name`` (class name or Avro full name).

    Raises:
        BadInput: No such event type; the message lists them.
    """
    for model in app.event_types:
        if name in {model.__name__, model.avro_name}:
            return model
    known = ", ".join(sorted(model.__name__ for model in app.event_types))
    raise BadInput(f"no event type {name!r} in application {app.name} (known: {known})")


def validation_lines(error: ValidationError) -> list[str]:
    """One line per problem, ``field.path: message``, at most ``_ERRORS_SHOWN``."""
    lines = [f"{'.'.join(str(p) for p in problem['loc']) or '(event)'}: {problem['msg']}"
             for problem in error.errors(include_url=False, include_input=False)]
    more = len(lines) - _ERRORS_SHOWN
    return lines[:_ERRORS_SHOWN] + ([f"... and {more} more"] if more > 0 else [])


def parse_event(model: type[Event], text: str) -> Event:
    """Validate JSON ``text`` as a ``model`` event; a new ``event_id`` and now when left out.

    Raises:
        BadInput: Not JSON, not an object, or not a valid event; says why.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInput(f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise BadInput(f"a {model.__name__} is a JSON object, not {type(data).__name__}")
    data.setdefault("event_id", str(uuid.uuid4()))
    data.setdefault("occurred_at", datetime.now(UTC).isoformat())
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise BadInput(f"not a valid {model.__name__} ({model.avro_name}):\n  "
                       + "\n  ".join(validation_lines(error))) from None


def topic_for(app: Application, model: type[Event], topic: str | None) -> str:
    """``topic`` when given, else the one input topic whose route takes ``model``.

    Raises:
        BadInput: No single input topic takes it.
    """
    if topic:
        return topic
    try:
        return input_topic_for(app, model)
    except ValueError as error:
        raise BadInput(str(error).replace("pass topic=", "pass --topic")) from None


async def send(settings: Settings, app: Application, event: Event, topic: str, *,
               seconds: float, correlation_id: str | None = None,
               causation_id: str | None = None) -> Sent:
    """Send ``event`` to ``topic`` as a contract record; ``Unanswered`` when Kafka is silent.

    Args:
        settings: Where Kafka (and the schema registry) is.
        app: The application whose codec encodes it.
        event: A validated event.
        topic: Where to send it.
        seconds: Bound of connecting and of the acknowledgement.
        correlation_id: ``correlation-id`` header (default: the event id).
        causation_id: ``causation-id`` header (default: empty).
    """
    codec = event_codec(settings, app)
    async with kafka_answers(settings, seconds), \
            kafka_clients(settings).started_producer() as producer:
        delivered = await send_event(producer, codec, event, topic,
                                     correlation_id=correlation_id, causation_id=causation_id)
    return Sent(event, delivered)
