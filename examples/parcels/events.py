"""The parcels contract as pydantic models: Protobuf and JSON Schema events side by side.

Each model names its schema in ``avro_name`` (the Protobuf message's or the
JSON Schema ``title``'s full name) and its format in ``schema_format``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from relayflow import Event, Key, Outcome

__all__ = ["EVENT_TYPES", "ParcelClosed", "ParcelDelivered", "ParcelShipped"]


class ParcelShipped(Event):
    """A carrier took the parcel; starts ``ParcelWorkflow``.

    Attributes:
        parcel_id: Business key of the parcel.
        carrier: Who carries it.
        weight_grams: Its weight.
        deliver_within_seconds: The parcel is lost without a delivery by then.
    """

    avro_name: ClassVar[str] = "parcels.ParcelShipped"
    key_field = "parcel_id"
    schema_format: ClassVar[str] = "protobuf"

    parcel_id: Key
    carrier: Key
    weight_grams: int = Field(gt=0)
    deliver_within_seconds: int = Field(default=86_400, gt=0, le=30 * 86_400)


class ParcelDelivered(Event):
    """The parcel reached its addressee; signals its workflow.

    Attributes:
        parcel_id: Business key of the parcel.
        signed_by: Who signed for it.
    """

    avro_name: ClassVar[str] = "parcels.ParcelDelivered"
    key_field = "parcel_id"
    schema_format: ClassVar[str] = "json"

    parcel_id: Key
    signed_by: Key


class ParcelClosed(Outcome):
    """How the parcel's journey ended.

    Attributes:
        parcel_id: Business key of the parcel.
        status: ``DELIVERED`` or ``LOST``.
        signed_by: Who signed for it (empty when lost).
    """

    avro_name: ClassVar[str] = "parcels.ParcelClosed"
    key_field = "parcel_id"
    schema_format: ClassVar[str] = "protobuf"

    parcel_id: Key
    status: Literal["DELIVERED", "LOST"]
    signed_by: str = ""


EVENT_TYPES: tuple[type[Event], ...] = (ParcelShipped, ParcelDelivered, ParcelClosed)
"""Every event of the parcels contract."""
