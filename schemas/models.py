"""The bases of every application's event models: ``Event`` and ``Outcome``.

An application's models mirror its ``.avsc`` files one to one (the files are
the source of truth); each names its schema in ``avro_name`` and the field
that is its Kafka key in ``key_field`` (or computes ``key`` itself). ``Key``
and ``UtcDatetime`` are the field types the contract uses for business ids
and timestamps.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar
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

    key_field: ClassVar[str | None] = None
    """The field whose value is the Kafka message key (the business entity id), e.g.
    ``"order_id"``: every event of one entity then shares a key and a partition.
    A class variable, not a field, so the fields keep the ``.avsc`` order. None:
    the model overrides ``key`` instead (a key made of more than one field)."""

    event_id: UUID
    occurred_at: UtcDatetime

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse, when the class is defined, a ``key_field`` that names no field of it.

        Checked on the models that name a schema (``avro_name``): a base class may
        set ``key_field`` for subclasses that declare the field.

        Raises:
            TypeError: ``key_field`` names no field of the model, or was declared
                as a field itself (``key_field: str = ...``, not a ``ClassVar``).
        """
        super().__pydantic_init_subclass__(**kwargs)
        if "key_field" in cls.model_fields:
            raise TypeError(f"{cls.__qualname__}.key_field is a class variable, not a field: "
                            'write key_field = "..." (or annotate it ClassVar[str])')
        name = cls.key_field
        if name is not None and hasattr(cls, "avro_name") and name not in cls.model_fields:
            raise TypeError(f"{cls.__qualname__}.key_field names {name!r}, not one of its fields "
                            f"({', '.join(cls.model_fields)})")

    @property
    def key(self) -> str:
        """Kafka message key: the value of ``key_field``, as text.

        Raises:
            NotImplementedError: The model sets no ``key_field`` and does not
                override ``key``.
        """
        name = self.key_field
        if name is None:
            raise NotImplementedError(
                f"{type(self).__qualname__} has no Kafka key: set key_field or override key")
        return str(getattr(self, name))


class Outcome(Event):
    """Base of every event relayflow publishes.

    Attributes:
        correlation_id: Carried over from the event that started the flow.
        causation_id: ``event_id`` of the event that caused this one.
    """

    correlation_id: Key
    causation_id: Key
