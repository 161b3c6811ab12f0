"""A deterministic corpus of hostile Kafka records for the bridge, and good ones to mix in.

Every byte comes from the seed: the same seed gives the same records, so a
record that misbehaves can be rebuilt by its name. Each record has a key of its
own (``corpus-s<seed>-<name>``; good orders use ``good-s<seed>-<n>``), because
the bridge works per key: one dead letter must never hold up another record.

``expected_reason`` is what the bridge really does today, found by running
``bridge.decoding.Decoder`` on every variant:

* A body cut short is ``malformed-avro``; ``truncated`` only covers a framing
  header cut short (fewer than 10 single-object or 5 Confluent bytes), and a
  value cut to its first byte is ``unknown-framing``.
* A writer schema the codec does not know (a new event type, or a newer version
  of a known one) is ``unknown-schema``: its fingerprint names nothing.
  ``unknown-event-type`` cannot happen with a codec that knows every model; a
  known model with no route on the topic is ``no-route``.
* A Confluent-framed value is ``unknown-schema`` when no registry is configured.
* An ``event_id`` that is not a UUID is ``malformed-avro`` (fastavro's logical
  type fails), not ``invalid-event``.
* An ``occurred_at`` outside Python's datetime range is ``malformed-avro``.
* A ``correlation-id`` / ``causation-id`` / ``traceparent`` header longer than
  200 characters is ``bad-header`` (outcomes carry them on, bounded).
* Contract headers are optional: missing or empty ones, foreign headers, a
  wrong ``content-type`` or ``traceparent``, and a contradicting *second*
  ``event-type`` / ``event-id`` (the first occurrence wins) are all accepted.
  Those variants are in ``bad_records`` with ``expected_reason`` None and a
  valid order, so they must complete like any good record. An ``event-id``
  header is compared as text: the same UUID in upper case is a mismatch.

Against a stack that keeps state (parked keys, finished workflow ids), use a
fresh seed per run. Two keys cannot depend on the seed: ``bad-key-none`` (None;
the bridge never parks it) and ``bad-key-empty`` (``b""``; parked by the first
run, so later runs see it dead-lettered as ``parked`` until it is released).
"""

from __future__ import annotations

import base64
import io
import json
import random
import struct
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import fastavro
from fastavro.schema import to_parsing_canonical_form

from relayflow.reference.events import (
    SCHEMA_FOLDER,
    ApprovalDecided,
    BatchCompleted,
    BatchRequested,
    OrderCancelled,
    OrderCompleted,
    OrderLine,
    OrderPlaced,
)
from relayflow.reference.topics import APPROVALS_DECISIONS, BATCHES_REQUESTS, ORDERS_EVENTS
from schemas import Event
from schemas.codec import (
    CONFLUENT_MAGIC,
    SINGLE_OBJECT_MARKER,
    crc64_avro,
    load_history,
    load_schemas,
)
from schemas.formats import FormatCodec
from schemas.framing import to_record
from schemas.headers import (
    CAUSATION_ID,
    CONTENT_TYPE,
    CORRELATION_ID,
    EVENT_ID,
    EVENT_TYPE,
    TRACEPARENT,
)

__all__ = [
    "CorpusRecord",
    "bad_records",
    "good_records",
    "mixed_stream",
    "routed_records",
]

"""The bridge's reason for a record whose decoding raised something unforeseen."""

Headers = list[tuple[str, bytes]]
ValueMaker = Callable[[bytes, random.Random], bytes | None]
"""Turns the valid value of a record into its variant (with the variant's own rng)."""
HeaderMaker = Callable[[Headers, random.Random], Headers]
KeyMaker = Callable[[bytes], bytes | None]

_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
_YEAR_SECONDS = 365 * 24 * 3600
_FINGERPRINT = struct.Struct("<Q")
_HEADER = len(SINGLE_OBJECT_MARKER) + _FINGERPRINT.size
_SKUS = ("SKU-TEA", "SKU-MUG", "SKU-PEN", "SKU-BOOK")
_MIN_PAYLOAD = 256
# Milliseconds since the epoch that no Python datetime can hold.
_AFTER_YEAR_9999 = 253_402_300_800_000
_BEFORE_YEAR_1 = -62_135_596_800_001


@dataclass(frozen=True)
class CorpusRecord:
    """One record to produce, and what the bridge must make of it.

    Attributes:
        name: Unique, readable name, e.g. ``truncated-body-3``.
        topic: Input topic to produce to.
        key: Raw key (not always UTF-8, sometimes None).
        value: Raw value (sometimes None or empty).
        headers: Raw header pairs.
        expected_reason: None when the record must decode (and, being a
            valid routine order, complete); otherwise the ``dlq-reason`` the
            bridge gives it.
        order_id: Business key of a record that must decode, to find its
            outcome; None for a rejected record.
    """

    name: str
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    expected_reason: str | None
    order_id: str | None


def _avro_body(schema: Mapping[str, Any], datum: Mapping[str, Any]) -> bytes:
    # parse_schema registers named types in what it is given: parse a copy.
    parsed = fastavro.parse_schema(json.loads(json.dumps(schema)))
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, dict(datum))
    return buffer.getvalue()


def _fingerprint(schema: Mapping[str, Any]) -> bytes:
    canonical: str = to_parsing_canonical_form(dict(schema))
    return _FINGERPRINT.pack(crc64_avro(canonical.encode("utf-8")))


def _single_object(schema: Mapping[str, Any], datum: Mapping[str, Any]) -> bytes:
    return SINGLE_OBJECT_MARKER + _fingerprint(schema) + _avro_body(schema, datum)


def _written_with(_value: bytes, _rng: random.Random, *, schema: Mapping[str, Any],
                  datum: Mapping[str, Any]) -> bytes:
    """A value maker that ignores the valid value and writes ``datum`` instead."""
    return _single_object(schema, datum)


def _reject(record: CorpusRecord, reason: str) -> CorpusRecord:
    return replace(record, expected_reason=reason, order_id=None)


def _confluent(schema_id: int) -> bytes:
    return CONFLUENT_MAGIC + schema_id.to_bytes(4, "big")


def _line(sku: str, quantity: int, unit_price_cents: int) -> dict[str, Any]:
    return {"sku": sku, "quantity": quantity, "unit_price_cents": unit_price_cents}


def _unframed_bytes(rng: random.Random, size: int) -> bytes:
    """Random bytes that start with neither framing's first byte."""
    first = rng.choice([b for b in range(1, 256) if b != SINGLE_OBJECT_MARKER[0]])
    return bytes([first]) + rng.randbytes(size - 1)


def _set_header(headers: Headers, name: str, value: bytes) -> Headers:
    """Replace the header's value, or append it when the record has none."""
    if all(n != name for n, _ in headers):
        return [*headers, (name, value)]
    return [(n, value if n == name else v) for n, v in headers]


def _header(headers: Headers, name: str) -> bytes:
    return next(v for n, v in headers if n == name)


def _event_id(headers: Headers) -> uuid.UUID:
    return uuid.UUID(_header(headers, EVENT_ID).decode())


def _random_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


class _Corpus:
    """Builds deterministic events and records for one seed.

    Args:
        codec: Encodes valid values; must use single-object encoding.
        seed: Every random choice derives from it (and the record's name).
    """

    def __init__(self, codec: FormatCodec, seed: int) -> None:
        self.codec = codec
        self.seed = seed
        self.schemas = load_schemas(SCHEMA_FOLDER)

    def rng(self, name: str) -> random.Random:
        """A generator of its own per name, so adding a variant changes no other."""
        return random.Random(f"relayflow-corpus/{self.seed}/{name}")

    def key(self, name: str) -> str:
        """The business key (and Kafka key) of a corpus record."""
        return f"corpus-s{self.seed}-{name}"

    def stamp(self, name: str) -> dict[str, Any]:
        """A deterministic ``event_id`` and ``occurred_at``."""
        rng = self.rng(f"{name}/event")
        return {"event_id": _random_uuid(rng),
                "occurred_at": _EPOCH + timedelta(seconds=rng.randrange(_YEAR_SECONDS))}

    def order(self, name: str, order_id: str | None = None) -> OrderPlaced:
        """A routine order: normal SKUs, a small amount, shipped to DE; it completes."""
        rng = self.rng(f"{name}/order")
        items = tuple(OrderLine(sku=rng.choice(_SKUS), quantity=rng.randint(1, 3),
                                unit_price_cents=rng.randrange(100, 2000))
                      for _ in range(rng.randint(1, 3)))
        return OrderPlaced(
            **self.stamp(name), order_id=order_id or self.key(name),
            customer_id=f"c-{rng.randrange(1000)}", items=items,
            amount_cents=sum(line.quantity * line.unit_price_cents for line in items),
        )

    def cancelled(self, name: str) -> OrderCancelled:
        """An ``OrderCancelled`` keyed by the name."""
        return OrderCancelled(**self.stamp(name), order_id=self.key(name), reason="corpus")

    def decided(self, name: str) -> ApprovalDecided:
        """An ``ApprovalDecided`` keyed by the name."""
        return ApprovalDecided(**self.stamp(name), approval_id=f"ap-{self.key(name)}",
                               order_id=self.key(name), decision="APPROVED", decided_by="ops")

    def batch(self, name: str) -> BatchRequested:
        """A small generated ``BatchRequested`` keyed by the name."""
        return BatchRequested(**self.stamp(name), batch_id=self.key(name), item_count=10)

    def completed(self, name: str) -> OrderCompleted:
        """An ``OrderCompleted`` outcome keyed by the name."""
        return OrderCompleted(**self.stamp(name), correlation_id="corr", causation_id="cause",
                              order_id=self.key(name), amount_cents=100, currency="EUR",
                              reservation_id="r-1", payment_id="p-1", shipment_id="s-1")

    def batch_completed(self, name: str) -> BatchCompleted:
        """A ``BatchCompleted`` outcome keyed by the name."""
        return BatchCompleted(**self.stamp(name), correlation_id="corr", causation_id="cause",
                              batch_id=self.key(name), total=10, succeeded=10, failed=0,
                              chunks_done=1, chunks_total=1)

    def record(self, name: str, event: Event, *, topic: str = ORDERS_EVENTS) -> CorpusRecord:
        """The valid record of an event, with every contract header."""
        rng = self.rng(f"{name}/headers")
        traceparent = f"00-{rng.getrandbits(128):032x}-{rng.getrandbits(64):016x}-01"
        kafka = to_record(event, self.codec, traceparent=traceparent)
        order_id = event.order_id if isinstance(event, OrderPlaced) else None
        return CorpusRecord(name, topic, kafka.key, kafka.value, kafka.headers, None, order_id)

    def variant(self, name: str, reason: str | None, *, event: Event | None = None,
                topic: str = ORDERS_EVENTS, value: ValueMaker | None = None,
                headers: HeaderMaker | None = None, key: KeyMaker | None = None,
                ) -> CorpusRecord:
        """A valid record (an order unless ``event`` is given) with parts replaced.

        Args:
            name: Record name; also seeds the record's randomness.
            reason: Expected ``dlq-reason``; None for a variant the bridge accepts.
            event: The event to start from; a routine order by default.
            topic: Topic to produce to.
            value: Makes the value from the valid one.
            headers: Makes the headers from the valid ones.
            key: Makes the key from the valid one.
        """
        record = self.record(name, event or self.order(name), topic=topic)
        assert record.key is not None
        assert record.value is not None
        rng = self.rng(f"{name}/variant")
        record = replace(
            record,
            value=record.value if value is None else value(record.value, rng),
            headers=record.headers if headers is None else headers(record.headers, rng),
            key=record.key if key is None else key(record.key),
        )
        return record if reason is None else _reject(record, reason)

    def raw(self, name: str, reason: str, event: Event, overrides: Mapping[str, Any], *,
            topic: str = ORDERS_EVENTS, schema: Mapping[str, Any] | None = None,
            ) -> CorpusRecord:
        """A record whose value is written field by field, bypassing model validation.

        Args:
            name: Record name.
            reason: Expected ``dlq-reason``.
            event: The event whose fields (and headers) are the starting point.
            overrides: Field values to write instead (Avro-level values).
            topic: Topic to produce to.
            schema: Writer schema; by default the event's current schema.
        """
        writer = schema if schema is not None else self.schemas[event.avro_name]
        datum = event.model_dump(mode="python") | dict(overrides)
        return self.variant(name, reason, event=event, topic=topic,
                            value=partial(_written_with, schema=writer, datum=datum))

    def reframed(self, name: str, reason: str, event: Event, as_type: str) -> CorpusRecord:
        """A record of ``event`` framed with the fingerprint of another schema."""
        fingerprint = _fingerprint(self.schemas[as_type])
        return self.variant(name, reason, event=event,
                            value=lambda v, _rng: v[:2] + fingerprint + v[_HEADER:])


# ------------------------------------------------------------------ tables of variants

def _cut(value: bytes, _rng: random.Random, *, at: int) -> bytes:
    return value[:at]


def _body_cut(value: bytes, _rng: random.Random, *, share: float) -> bytes:
    """Keep the framing header and ``share`` of the body (0: none, 1: all but a byte)."""
    body = len(value) - _HEADER
    return value[:_HEADER + round(share * (body - 1))]


def _confluent_cut(_value: bytes, _rng: random.Random, *, at: int) -> bytes:
    return _confluent(1)[:at]


def _random_fingerprint(value: bytes, rng: random.Random) -> bytes:
    return value[:2] + rng.randbytes(_FINGERPRINT.size) + value[_HEADER:]


def _confluent_id(value: bytes, _rng: random.Random, *, schema_id: int) -> bytes:
    return _confluent(schema_id) + value[_HEADER:]


_BODY_CUTS = 10
_RANDOM_FINGERPRINTS = 4
_RANDOM_UNFRAMED = 3

_VALUE_VARIANTS: dict[str, tuple[str, ValueMaker]] = {
    "empty-none": ("empty", lambda _v, _r: None),
    "empty-bytes": ("empty", lambda _v, _r: b""),
    "framing-text": ("unknown-framing", lambda _v, _r: b"not avro at all"),
    "framing-json-object": ("unknown-framing", lambda _v, _r: b"{}"),
    "framing-json-null": ("unknown-framing", lambda _v, _r: b"null"),
    "framing-base64": ("unknown-framing", lambda v, _r: base64.b64encode(v)),
    "framing-hex": ("unknown-framing", lambda v, _r: v.hex().encode()),
    "framing-marker-reversed": ("unknown-framing", lambda v, _r: v[1::-1] + v[2:]),
    "framing-marker-first-byte-only": ("unknown-framing", lambda v, _r: v[:1]),
    "framing-marker-second-byte-wrong": ("unknown-framing", lambda v, _r: v[:1] + b"\x02" + v[2:]),
    "framing-avro-container-magic": ("unknown-framing", lambda v, _r: b"Obj\x01" + v[_HEADER:]),
    "framing-body-without-header": ("unknown-framing", lambda v, _r: v[_HEADER:]),
    **{f"framing-random-{i}": ("unknown-framing",
                               lambda v, r: _unframed_bytes(r, len(v)))
       for i in range(_RANDOM_UNFRAMED)},
    **{f"truncated-header-{at}": ("truncated", partial(_cut, at=at))
       for at in range(len(SINGLE_OBJECT_MARKER), _HEADER)},
    **{f"truncated-confluent-header-{at}": ("truncated", partial(_confluent_cut, at=at))
       for at in range(1, len(_confluent(1)))},
    **{f"truncated-body-{i}": ("malformed-avro", partial(_body_cut, share=i / (_BODY_CUTS - 1)))
       for i in range(_BODY_CUTS)},
    "trailing-zero-byte": ("malformed-avro", lambda v, _r: v + b"\x00"),
    "trailing-junk": ("malformed-avro", lambda v, _r: v + b"junk"),
    "trailing-second-copy-of-body": ("malformed-avro", lambda v, _r: v + v[_HEADER:]),
    "malformed-negative-string-length": (
        "malformed-avro", lambda v, _r: v[:_HEADER] + b"\x01" + v[_HEADER + 1:]),
    # A routine order has no approval timeout: its last byte is the union branch.
    "malformed-union-branch-out-of-range": ("malformed-avro", lambda v, _r: v[:-1] + b"\x08"),
    **{f"fingerprint-random-{i}": ("unknown-schema", _random_fingerprint)
       for i in range(_RANDOM_FINGERPRINTS)},
    "fingerprint-zero": ("unknown-schema", lambda v, _r: v[:2] + bytes(8) + v[_HEADER:]),
    "fingerprint-big-endian": ("unknown-schema", lambda v, _r: v[:2] + v[2:_HEADER][::-1]
                               + v[_HEADER:]),
    **{f"confluent-unknown-id-{schema_id}": (
        "unknown-schema", partial(_confluent_id, schema_id=schema_id))
       for schema_id in (0, 1, 4242, 2**32 - 1)},
}
"""Value variants of a routine order on ``orders.events``: name -> (reason, maker)."""


def _other_event_type(headers: Headers, _rng: random.Random, *, name: str) -> Headers:
    return _set_header(headers, EVENT_TYPE, name.encode())


def _transformed_event_type(transform: Callable[[bytes], bytes]) -> HeaderMaker:
    return lambda h, _r: _set_header(h, EVENT_TYPE, transform(_header(h, EVENT_TYPE)))


def _transformed_event_id(transform: Callable[[uuid.UUID], str]) -> HeaderMaker:
    return lambda h, _r: _set_header(h, EVENT_ID, transform(_event_id(h)).encode())


def _contradicting(rng: random.Random) -> Headers:
    return [(EVENT_TYPE, OrderCancelled.avro_name.encode()),
            (EVENT_ID, str(_random_uuid(rng)).encode())]


_HEADER_VARIANTS: dict[str, tuple[str | None, HeaderMaker]] = {
    "header-event-type-cancelled": (
        "header-mismatch", partial(_other_event_type, name=OrderCancelled.avro_name)),
    "header-event-type-approval": (
        "header-mismatch", partial(_other_event_type, name=ApprovalDecided.avro_name)),
    "header-event-type-short-name": (
        "header-mismatch", partial(_other_event_type, name=OrderPlaced.__name__)),
    "header-event-type-lowercase": ("header-mismatch", _transformed_event_type(bytes.lower)),
    "header-event-type-trailing-space": (
        "header-mismatch", _transformed_event_type(lambda t: t + b" ")),
    "header-event-type-non-utf8": (
        "header-mismatch", _transformed_event_type(lambda t: t.replace(b"Placed", b"\xffPlaced"))),
    "header-event-id-other": (
        "header-mismatch", lambda h, r: _set_header(h, EVENT_ID, str(_random_uuid(r)).encode())),
    "header-event-id-without-hyphens": ("header-mismatch", _transformed_event_id(lambda u: u.hex)),
    "header-event-id-uppercase": (
        "header-mismatch", _transformed_event_id(lambda u: str(u).upper())),
    "header-event-id-braces": ("header-mismatch", _transformed_event_id(lambda u: f"{{{u}}}")),
    "header-event-id-urn": ("header-mismatch", _transformed_event_id(lambda u: u.urn)),
    "header-event-id-non-utf8": (
        "header-mismatch", lambda h, _r: _set_header(h, EVENT_ID, b"\xff" + _header(h, EVENT_ID))),
    "header-duplicates-contradicting-first": ("header-mismatch",
                                              lambda h, r: _contradicting(r) + h),
    # Accepted: contract headers are optional, and only their first occurrence counts.
    "accepted-headers-missing": (None, lambda _h, _r: []),
    "accepted-headers-foreign-only": (
        None, lambda _h, _r: [("x-producer", b"\xfe\xfflegacy"), (CONTENT_TYPE, b"text/plain")]),
    "accepted-headers-empty-values": (
        None, lambda h, _r: _set_header(_set_header(h, EVENT_TYPE, b""), EVENT_ID, b"")),
    "accepted-headers-duplicates-contradicting-second": (None,
                                                         lambda h, r: h + _contradicting(r)),
    "accepted-headers-wrong-content-type": (
        None, lambda h, _r: _set_header(h, CONTENT_TYPE, b"application/json")),
    "accepted-headers-garbage-traceparent": (
        None, lambda h, _r: _set_header(h, TRACEPARENT, b"not-a-traceparent")),
    "accepted-headers-non-utf8-correlation-id": (
        None, lambda h, _r: _set_header(h, CORRELATION_ID, b"\xff\xfecorrelation")),
    "bad-header-correlation-id-too-long": (
        "bad-header", lambda h, _r: _set_header(h, CORRELATION_ID, b"c" * 201)),
    "bad-header-causation-id-too-long": (
        "bad-header", lambda h, _r: _set_header(h, CAUSATION_ID, b"e" * 5000)),
    "bad-header-traceparent-too-long": (
        "bad-header", lambda h, _r: _set_header(h, TRACEPARENT, b"00-" + b"f" * 300)),
}
"""Header variants of a routine order: name -> (reason or None when accepted, maker)."""

_KEY_VARIANTS: dict[str, KeyMaker] = {
    "bad-key-invalid-start-bytes": lambda k: b"\xff\xfe" + k,
    "bad-key-lone-continuation-byte": lambda k: k + b"\x80",
    "bad-key-overlong-encoding": lambda k: k + b"\xc0\xaf",
    "bad-key-utf16-surrogate": lambda k: k + b"\xed\xa0\x80",
    "bad-key-cut-multibyte": lambda k: k + "\N{EURO SIGN}".encode()[:2],
    "bad-key-latin1": lambda k: k + "\N{LATIN SMALL LETTER E WITH ACUTE}".encode("latin-1"),
    "bad-key-utf16": lambda k: k.decode().encode("utf-16-le"),
    "bad-key-uppercase": bytes.upper,
    "bad-key-trailing-space": lambda k: k + b" ",
    "bad-key-byte-order-mark": lambda k: "\N{ZERO WIDTH NO-BREAK SPACE}".encode() + k,
    "bad-key-workflow-id": lambda k: b"order-" + k,
    "bad-key-other-order": lambda k: k + b"-other",
    "bad-key-empty": lambda _k: b"",
    "bad-key-none": lambda _k: None,
}
"""Key variants of a routine order, all ``bad-key``: name -> maker."""

_INVALID_ORDERS: dict[str, dict[str, Any]] = {
    "invalid-amount-not-sum-of-lines": {"items": [_line("SKU-TEA", 2, 1250)], "amount_cents": 2499},
    "invalid-negative-quantity": {"items": [_line("SKU-TEA", -1, 100)], "amount_cents": 0},
    "invalid-zero-quantity": {"items": [_line("SKU-TEA", 0, 100)], "amount_cents": 0},
    "invalid-quantity-too-large": {"items": [_line("SKU-TEA", 1_000_001, 0)], "amount_cents": 0},
    "invalid-negative-unit-price": {"items": [_line("SKU-TEA", 1, -5)], "amount_cents": 0},
    "invalid-negative-amount": {"items": [_line("SKU-TEA", 1, 0)], "amount_cents": -1},
    "invalid-empty-items": {"items": [], "amount_cents": 0},
    "invalid-too-many-lines": {"items": [_line("S", 1, 0)] * 1001, "amount_cents": 0},
    "invalid-empty-sku": {"items": [_line("", 1, 100)], "amount_cents": 100},
    "invalid-empty-order-id": {"order_id": ""},
    "invalid-order-id-too-long": {"order_id": "o" * 201},
    "invalid-empty-customer-id": {"customer_id": ""},
    "invalid-currency-lowercase": {"currency": "eur"},
    "invalid-country-three-letters": {"shipping_country": "DEU"},
    "invalid-approval-timeout-zero": {"approval_timeout_seconds": 0},
    "invalid-approval-timeout-over-a-year": {"approval_timeout_seconds": _YEAR_SECONDS + 1},
}
"""Valid Avro, invalid order: name -> fields written instead."""

_FIELD_OVERRIDES_OF_ORDERS: dict[str, tuple[str, dict[str, Any]]] = {
    "malformed-event-id-not-a-uuid": ("malformed-avro", {"event_id": "not-a-uuid"}),
    "malformed-occurred-at-after-year-9999": (
        "malformed-avro", {"occurred_at": _AFTER_YEAR_9999}),
    "malformed-occurred-at-before-year-1": ("malformed-avro", {"occurred_at": _BEFORE_YEAR_1}),
    "malformed-occurred-at-huge": ("malformed-avro", {"occurred_at": 2**62}),
}
"""Other field-level breakage of orders: name -> (reason, fields written instead)."""


# ------------------------------------------------------------------ categories

def _table_variants(c: _Corpus) -> Iterator[CorpusRecord]:
    for name, (reason, value) in _VALUE_VARIANTS.items():
        yield c.variant(name, reason, value=value)
    for name, (accepted_or_reason, headers) in _HEADER_VARIANTS.items():
        yield c.variant(name, accepted_or_reason, headers=headers)
    for name, key in _KEY_VARIANTS.items():
        yield c.variant(name, "bad-key", key=key)
    for name, overrides in _INVALID_ORDERS.items():
        yield c.raw(name, "invalid-event", c.order(name), overrides)
    for name, (reason, overrides) in _FIELD_OVERRIDES_OF_ORDERS.items():
        yield c.raw(name, reason, c.order(name), overrides)


def _bare_empty(c: _Corpus) -> Iterator[CorpusRecord]:
    """Empty values without any header either (a tombstone or a probe)."""
    values: dict[str, ValueMaker] = {"empty-none-without-headers": lambda _v, _r: None,
                                     "empty-bytes-without-headers": lambda _v, _r: b""}
    for name, value in values.items():
        yield c.variant(name, "empty", value=value, headers=lambda _h, _r: [])


def _oversize(c: _Corpus, limit: int) -> Iterator[CorpusRecord]:
    """Values of ``limit + 1`` bytes (no more: the corpus stays small), and one at the limit."""
    over: dict[str, ValueMaker] = {
        "oversize-random": lambda _v, r: r.randbytes(limit + 1),
        "oversize-valid-order-padded": lambda v, _r: v + bytes(limit + 1 - len(v)),
        "oversize-confluent-padded": lambda _v, _r: _confluent(1) + bytes(limit - 4),
        "oversize-json": lambda _v, _r: b"[" + b" " * (limit - 1) + b"]",
    }
    for name, value in over.items():
        yield c.variant(name, "oversize", value=value)
    # Exactly at the limit is not oversize: the padding is then trailing bytes.
    yield c.variant("at-limit-valid-order-padded", "malformed-avro",
                    value=lambda v, _r: v + bytes(limit - len(v)))


def _schema_confusion(c: _Corpus) -> Iterator[CorpusRecord]:
    """Bodies framed with another schema's fingerprint, and schemas nobody knows."""
    swaps: list[tuple[str, Callable[[str], Event], str]] = [
        ("wrong-schema-placed-as-cancelled", c.order, OrderCancelled.avro_name),
        ("wrong-schema-placed-as-approval", c.order, ApprovalDecided.avro_name),
        ("wrong-schema-cancelled-as-placed", c.cancelled, OrderPlaced.avro_name),
        ("wrong-schema-approval-as-placed", c.decided, OrderPlaced.avro_name),
    ]
    for name, make, as_type in swaps:
        yield c.reframed(name, "malformed-avro", make(name), as_type)
    current = c.schemas[OrderPlaced.avro_name]
    name = "unknown-type-order-refunded"
    refunded = {"type": "record", "name": "OrderRefunded", "namespace": "relayflow.orders",
                "fields": [{"name": "order_id", "type": "string"},
                           {"name": "refund_cents", "type": "long"}]}
    yield c.variant(name, "unknown-schema", value=lambda _v, _r: _single_object(
        refunded, {"order_id": c.key(name), "refund_cents": 100}))
    name = "unknown-type-future-order-placed-version"
    future = {**current, "fields": [*current["fields"],
                                    {"name": "gift_wrap", "type": "boolean", "default": False}]}
    order = c.order(name)
    yield c.raw(name, "unknown-schema", order, {"gift_wrap": True}, schema=future)
    name = "fingerprint-of-non-canonical-schema-json"
    non_canonical = _FINGERPRINT.pack(crc64_avro(json.dumps(current).encode()))
    yield c.variant(name, "unknown-schema",
                    value=lambda v, _r: v[:2] + non_canonical + v[_HEADER:])
    name = "malformed-invalid-utf8-in-string"
    marker = "@@customer@@"
    yield c.variant(name, "malformed-avro", event=c.order(name).model_copy(
        update={"customer_id": marker}), value=lambda v, _r: v.replace(
            marker.encode(), b"\xff" * len(marker)))


def _accepted_old_writer(c: _Corpus) -> Iterator[CorpusRecord]:
    """Accepted: an order written with each published version older than the current one."""
    current = _fingerprint(c.schemas[OrderPlaced.avro_name])
    versions = load_history(SCHEMA_FOLDER / "history")[OrderPlaced.avro_name]
    for version, schema in enumerate(versions, start=1):
        if _fingerprint(schema) == current:
            continue
        name = f"accepted-old-writer-schema-v{version}"
        order = c.order(name)
        fields = {field["name"] for field in schema["fields"]}
        datum = {k: v for k, v in order.model_dump(mode="python").items() if k in fields}
        yield c.variant(name, None, event=order,
                        value=partial(_written_with, schema=schema, datum=datum))


def _other_topics(c: _Corpus) -> Iterator[CorpusRecord]:
    """Events on a topic with no route for them, and bad records on the other inputs."""
    routes: list[tuple[str, str, Callable[[str], Event]]] = [
        ("no-route-approval-on-orders", ORDERS_EVENTS, c.decided),
        ("no-route-batch-on-orders", ORDERS_EVENTS, c.batch),
        ("no-route-outcome-on-orders", ORDERS_EVENTS, c.completed),
        ("no-route-order-on-approvals", APPROVALS_DECISIONS, c.order),
        ("no-route-cancel-on-approvals", APPROVALS_DECISIONS, c.cancelled),
        ("no-route-order-on-batches", BATCHES_REQUESTS, c.order),
        ("no-route-batch-outcome-on-batches", BATCHES_REQUESTS, c.batch_completed),
    ]
    for name, topic, make in routes:
        yield c.variant(name, "no-route", event=make(name), topic=topic)
    yield from _approvals(c)
    yield from _batches(c)


def _approvals(c: _Corpus) -> Iterator[CorpusRecord]:
    for name, overrides in {"approvals-invalid-empty-decided-by": {"decided_by": ""},
                            "approvals-invalid-comment-too-long": {"comment": "x" * 2001}}.items():
        yield c.raw(name, "invalid-event", c.decided(name), overrides, topic=APPROVALS_DECISIONS)
    name = "approvals-malformed-decision-out-of-range"
    schema = c.schemas[ApprovalDecided.avro_name]
    # Written with a wider enum and framed as the current schema: index 2 is out of range.
    wider = {**schema, "fields": [
        {**f, "type": {**f["type"], "symbols": [*f["type"]["symbols"], "MAYBE"]}}
        if f["name"] == "decision" else f for f in schema["fields"]]}
    body = _avro_body(wider, c.decided(name).model_dump(mode="python") | {"decision": "MAYBE"})
    yield c.variant(name, "malformed-avro", event=c.decided(name), topic=APPROVALS_DECISIONS,
                    value=lambda v, _r: v[:_HEADER] + body)
    yield c.variant("approvals-truncated-body", "malformed-avro", event=c.decided(
        "approvals-truncated-body"), topic=APPROVALS_DECISIONS, value=lambda v, _r: v[:-3])
    yield c.variant("approvals-bad-key-other-order", "bad-key", event=c.decided(
        "approvals-bad-key-other-order"), topic=APPROVALS_DECISIONS, key=lambda k: k + b"-other")


def _batches(c: _Corpus) -> Iterator[CorpusRecord]:
    invalid: dict[str, dict[str, Any]] = {
        "batches-invalid-items-and-count": {"items": ["a", "b"], "item_count": 2},
        "batches-invalid-neither-items-nor-count": {"items": [], "item_count": 0},
        "batches-invalid-chunk-size-zero": {"chunk_size": 0},
        "batches-invalid-too-many-children": {"max_concurrent_children": 101},
    }
    for name, overrides in invalid.items():
        yield c.raw(name, "invalid-event", c.batch(name), overrides, topic=BATCHES_REQUESTS)
    name = "batches-framing-json"
    yield c.variant(name, "unknown-framing", event=c.batch(name), topic=BATCHES_REQUESTS,
                    value=lambda _v, _r: json.dumps({"batch_id": c.key(name)}).encode())


def _check(records: Sequence[CorpusRecord]) -> None:
    names = [r.name for r in records]
    keys = [r.key for r in records]
    if len(set(names)) != len(names) or len(set(keys)) != len(keys):
        raise ValueError("corpus records must have unique names and unique keys")


def _require_single_object(codec: FormatCodec) -> None:
    sample = _Corpus(codec, 0).order("probe")
    if not codec.encode(sample).startswith(SINGLE_OBJECT_MARKER):
        raise ValueError("the corpus needs a codec that writes single-object encoding")


# ------------------------------------------------------------------ public API

def bad_records(codec: FormatCodec, *, seed: int = 0,
                max_payload_bytes: int = 524288) -> list[CorpusRecord]:
    """The hostile corpus: over a hundred records, each with its own key.

    Mostly ``orders.events``, a few on ``approvals.decisions`` and
    ``batches.requests``. Variants the bridge accepts (optional or duplicated
    headers, older writer schemas) are included with ``expected_reason`` None
    and a valid routine order (``accepted-*`` names), so they must complete.

    Args:
        codec: Encodes the valid values the variants start from; it must write
            single-object encoding (no registry).
        seed: Same seed, same records; keys are ``corpus-s<seed>-<name>``.
        max_payload_bytes: The bridge's limit; ``oversize-*`` values are one
            byte over it, ``at-limit-*`` exactly at it.

    Returns:
        The records, in a fixed order.

    Raises:
        ValueError: ``max_payload_bytes`` is too small for the records that
            must not be oversize, or the codec uses a registry.
    """
    if max_payload_bytes < _MIN_PAYLOAD:
        raise ValueError(f"max_payload_bytes must be at least {_MIN_PAYLOAD}")
    _require_single_object(codec)
    c = _Corpus(codec, seed)
    records = [*_table_variants(c), *_bare_empty(c), *_oversize(c, max_payload_bytes),
               *_schema_confusion(c), *_accepted_old_writer(c), *_other_topics(c)]
    _check(records)
    too_big = [r.name for r in records
               if r.expected_reason != "oversize" and len(r.value or b"") > max_payload_bytes]
    if too_big:
        raise ValueError(f"max_payload_bytes {max_payload_bytes} is too small for {too_big}")
    return records


def good_records(codec: FormatCodec, count: int, *, seed: int = 0) -> list[CorpusRecord]:
    """Valid ``OrderPlaced`` records that complete in the reference saga.

    Normal SKUs, totals far below the approval threshold and the card limit,
    shipped to DE, every contract header set.

    Args:
        codec: Encodes the values.
        count: How many.
        seed: Same seed, same records; order ids are ``good-s<seed>-<n>``.

    Returns:
        ``count`` records on ``orders.events`` with unique order ids (the keys).
    """
    c = _Corpus(codec, seed)
    return [c.record(f"good-{n}", c.order(f"good-{n}", f"good-s{seed}-{n:05d}"))
            for n in range(count)]


def mixed_stream(codec: FormatCodec, *, bad: Iterable[CorpusRecord],
                 good: Iterable[CorpusRecord], seed: int = 0) -> list[CorpusRecord]:
    """Interleave two lists at random but reproducibly, each keeping its own order.

    Args:
        codec: Unused; taken so every corpus function has the same first argument.
        bad: Records in the order they should keep among themselves.
        good: Same, for the other list.
        seed: Same seed, same interleaving.

    Returns:
        Every record of both lists, each interleaving equally likely.

    Raises:
        ValueError: Two records share a name or a key (the bridge would treat
            them as one key's sequence).
    """
    del codec
    first, second = list(bad), list(good)
    _check([*first, *second])
    rng = random.Random(f"relayflow-corpus/{seed}/mix")
    mixed: list[CorpusRecord] = []
    while first or second:
        source = first if rng.randrange(len(first) + len(second)) < len(first) else second
        mixed.append(source.pop(0))
    return mixed


def routed_records(codec: FormatCodec) -> list[CorpusRecord]:
    """One valid record for each route of the reference app (start, cancel, signal).

    Args:
        codec: Encodes the values.

    Returns:
        An order, a cancellation, a decision and a batch request, each on its topic.
    """
    c = _Corpus(codec, 0)
    return [c.record("routed-order", c.order("routed-order")),
            c.record("routed-cancel", c.cancelled("routed-cancel")),
            c.record("routed-decision", c.decided("routed-decision"), topic=APPROVALS_DECISIONS),
            c.record("routed-batch", c.batch("routed-batch"), topic=BATCHES_REQUESTS)]
