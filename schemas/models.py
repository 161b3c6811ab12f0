"""The bases of every application's event models: ``Event`` and ``Outcome``.

An application's models mirror its ``.avsc`` files one to one (the files are
the source of truth); each names its schema in ``avro_name`` and its Kafka
key in ``key``. ``Key`` and ``UtcDatetime`` are the field types the contract
uses for business ids and timestamps.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = ["Event", "Key", "Outcome", "Record", "UtcDatetime"]


def _utc(value: datetime) -> datetime:
    # Avro timestamp-millis has no zone; naive datetimes would compare wrongly.
    if value.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware")
    # Truncate to what timestamp-millis carries, so a decoded event equals the sent one.
    value = value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
Key = Annotated[str, Field(min_length=1, max_length=200)]


class Record(BaseModel):
    """Base of nested records inside events: frozen, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Event(Record):
    """Base of every event on a relayflow topic.

    Attributes:
        event_id: Unique id of the event; a redelivered event keeps its id.
        occurred_at: When the fact happened, timezone-aware.
    """

    avro_name: ClassVar[str]
    """Full name of the schema this model mirrors (Avro, JSON Schema ``title`` or Protobuf)."""
    schema_format: ClassVar[str] = "avro"
    """How values are written: ``avro`` (default), ``json`` or ``protobuf`` (``SchemaFormat``)."""

    event_id: UUID
    occurred_at: UtcDatetime

    @property
    def key(self) -> str:
        """Kafka message key: the business entity id."""
        raise NotImplementedError


class Outcome(Event):
    """Base of every event relayflow publishes.

    Attributes:
        correlation_id: Carried over from the event that started the flow.
        causation_id: ``event_id`` of the event that caused this one.
    """

    correlation_id: Key
    causation_id: Key
