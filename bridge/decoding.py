"""From raw record to routed event: every validation rule of the input contract.

One entry point, ``Decoder.decode``. The rules are pure (no I/O), so each is a
unit test; the one exception is fetching a writer schema the schema registry
holds, which ``decode`` awaits off the event loop, and only for a
Confluent-framed record whose schema id this process has not seen. A record
that breaks a rule raises ``PermanentFailure`` with the reason the
dead-letter record carries (``DECODE_REASONS``, members of
``schemas.dead_letters.DlqReason``); a registry that does not answer raises
``TransientFailure`` (retry later, never dead-letter):

==================  ==========================================================
reason              when
==================  ==========================================================
``oversize``        the value is larger than ``max_payload_bytes`` (checked
                    before decoding anything)
``bad-header``      more than ``max_header_count`` headers, or their names and
                    values total more than ``max_header_bytes`` (checked before
                    decoding anything); or a ``correlation-id`` /
                    ``causation-id`` / ``traceparent`` header is longer than
                    200 characters
``bad-key``         the key is not UTF-8, or differs from the event's business key
codec reasons       the value is not a valid event: ``DecodeError.reason``,
                    one of ``schemas.dead_letters.CODEC_REASONS``
``header-mismatch`` an ``event-type`` / ``event-id`` header contradicts the value
``no-route``        no route for this event type on this topic
==================  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from pydantic import ValidationError

from bridge.consumed import ConsumedRecord
from bridge.failures import PermanentFailure, TransientFailure
from bridge.routes import Route, RouteTable
from schemas import Event, EventMeta, Inbound
from schemas.codec import DecodeError
from schemas.dead_letters import CODEC_REASONS, DlqReason
from schemas.formats import EventCodec
from schemas.headers import EventHeaders

__all__ = ["DECODE_REASONS", "DEFAULT_MAX_HEADER_BYTES", "DEFAULT_MAX_HEADER_COUNT", "Decoder",
           "Routed"]

DECODE_REASONS: frozenset[DlqReason] = CODEC_REASONS | {
    DlqReason.OVERSIZE, DlqReason.BAD_HEADER, DlqReason.BAD_KEY, DlqReason.HEADER_MISMATCH,
    DlqReason.NO_ROUTE}
"""Every reason ``Decoder.decode`` gives: the table above (the fuzz tests hold it to these)."""

DEFAULT_MAX_HEADER_COUNT = 64
"""Most headers a record may carry (the contract uses six, a DLQ replay adds three)."""
DEFAULT_MAX_HEADER_BYTES = 16 * 1024
"""Most bytes a record's header names and values may total (UTF-8)."""


@dataclass(frozen=True, slots=True)
class Routed:
    """A record that passed every rule.

    Attributes:
        route: What to do with it.
        inbound: The argument for the workflow or signal.
    """

    route: Route
    inbound: Inbound[Event]


class Decoder:
    """Validates, decodes and routes records.

    Args:
        codec: Decodes values (both framings).
        routes: The routing table.
        max_payload_bytes: Larger values are dead-lettered undecoded.
        max_header_count: Records with more headers are dead-lettered undecoded.
        max_header_bytes: Records whose header names and values total more
            bytes are dead-lettered undecoded.
    """

    def __init__(self, codec: EventCodec, routes: RouteTable, *, max_payload_bytes: int,
                 max_header_count: int = DEFAULT_MAX_HEADER_COUNT,
                 max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES) -> None:
        self._codec = codec
        self._routes = routes
        self._max_payload = max_payload_bytes
        self._max_header_count = max_header_count
        self._max_header_bytes = max_header_bytes
        self._envelopes: dict[type[Event], Any] = {}
        self.batching = any(route.batch is not None for route in routes.routes.values())
        """Some route batches its signals, so the consumer decodes records ahead to group them."""

    async def decode(self, record: ConsumedRecord) -> Routed:
        """Apply every rule to one record; fetch its writer schema first if it must.

        Raises:
            PermanentFailure: The record breaks a rule; ``reason`` says which.
            TransientFailure: The schema registry did not answer; try again later.
        """
        value = record.value or b""
        self._check_limits(record, value)
        if self._codec.needs_registry(value):
            try:
                await self._codec.prepare_decode(value)
            except DecodeError as error:
                raise PermanentFailure(error.reason, str(error)) from error
            except OSError as error:
                raise TransientFailure(f"schema registry: {error}") from error
        return self._decode_known(record)

    def decode_now(self, record: ConsumedRecord) -> Routed | None:
        """``decode`` without waiting: None when the record needs the registry first.

        Raises:
            PermanentFailure: The record breaks a rule; ``reason`` says which.
        """
        value = record.value or b""
        self._check_limits(record, value)
        if self._codec.needs_registry(value):
            return None
        return self._decode_known(record)

    def _check_limits(self, record: ConsumedRecord, value: bytes) -> None:
        # Before anything is decoded or fetched: past these limits a record could
        # only cost memory and time (every header is decoded, then copied to the DLQ).
        if len(value) > self._max_payload:
            raise PermanentFailure(DlqReason.OVERSIZE, f"{len(value)} bytes > {self._max_payload}")
        count = len(record.headers)
        if count > self._max_header_count:
            raise PermanentFailure(
                DlqReason.BAD_HEADER,
                f"{count} headers > max_header_count {self._max_header_count}")
        size = sum((len(name) if name.isascii() else len(name.encode("utf-8", "surrogatepass")))
                   + len(raw or b"") for name, raw in record.headers)
        if size > self._max_header_bytes:
            raise PermanentFailure(
                DlqReason.BAD_HEADER,
                f"header names and values total {size} bytes > max_header_bytes "
                f"{self._max_header_bytes}")

    def _decode_known(self, record: ConsumedRecord) -> Routed:
        value = record.value or b""
        try:
            key = (record.key or b"").decode("utf-8")
        except UnicodeDecodeError as error:
            raise PermanentFailure(DlqReason.BAD_KEY, f"key is not UTF-8: {error}") from error
        headers = EventHeaders.from_kafka(record.headers)
        try:
            # The header names a bare JSON or Protobuf body's schema; Avro names its own.
            event = self._codec.decode(value, headers.event_type or None)
        except DecodeError as error:
            raise PermanentFailure(error.reason, str(error)) from error
        event_id = str(event.event_id)
        _check_headers(headers, event, event_id)
        if key != event.key:
            raise PermanentFailure(DlqReason.BAD_KEY,
                                   f"key {key!r} but the event's key is {event.key!r}")
        route = self._routes.lookup(record.topic, event.avro_name)
        if route is None:
            raise PermanentFailure(DlqReason.NO_ROUTE,
                                   f"no route for {event.avro_name} on {record.topic}")
        try:
            meta = EventMeta(
                event_type=event.avro_name,
                event_id=event_id,
                correlation_id=headers.correlation_id or event_id,
                causation_id=headers.causation_id,
                traceparent=headers.traceparent,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
        except ValidationError as error:
            # Caught here, not deep in a workflow that copies them onto its outcomes.
            raise PermanentFailure(DlqReason.BAD_HEADER,
                                   f"tracing header too long: {error}") from error
        # Parametrize with the concrete class: pydantic serializes by the declared
        # type, and Inbound[Event] would drop every field of the subclass.
        envelope: Any = self._envelopes.get(type(event))
        if envelope is None:  # pydantic's lookup of the parametrized class costs ~2 µs a call
            envelope = self._envelopes[type(event)] = Inbound[type(event)]  # type: ignore[misc]
        return Routed(route, cast("Inbound[Event]", envelope(event=event, meta=meta)))


def _check_headers(headers: EventHeaders, event: Event, event_id: str) -> None:
    # Headers are optional, but when present they must tell the truth: routing
    # and tracing downstream trust them without decoding the value.
    if headers.event_type and headers.event_type != event.avro_name:
        raise PermanentFailure(
            DlqReason.HEADER_MISMATCH,
            f"event-type {headers.event_type!r} but value is {event.avro_name}")
    if headers.event_id and headers.event_id != event_id:
        raise PermanentFailure(
            DlqReason.HEADER_MISMATCH,
            f"event-id {headers.event_id!r} but value has {event_id}")
