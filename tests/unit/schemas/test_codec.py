"""The Avro codec, with the Apache reference implementation as the oracle."""

from __future__ import annotations

import contextlib
import io
import json
import random
import struct
from datetime import datetime
from pathlib import Path

import avro.io
import avro.schema
import pytest
from fastavro.schema import fingerprint as fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form

from relayflow.reference.app import APP
from relayflow.reference.events import EVENT_TYPES, SCHEMA_FOLDER, OrderCancelled, OrderPlaced
from schemas import Event
from schemas.codec import (
    AvroCodec,
    DecodeError,
    confluent_schema_id,
    crc64_avro,
    legacy_canonical_form,
    load_schemas,
)
from schemas.dead_letters import DlqReason
from tests.helpers.fuzzing import FuzzRecord, check_memory, longest_order, order_with_lines
from tests.helpers.support import order_placed, samples

AVRO_DIR = SCHEMA_FOLDER
CODEC = APP.codec()


class InMemoryRegistry:
    """Our own schema registry double (the codec's SchemaRegistry protocol)."""

    def __init__(self) -> None:
        self.schemas: dict[int, str] = {}

    def register(self, subject: str, schema: str) -> int:
        assert subject == json.loads(schema)["namespace"] + "." + json.loads(schema)["name"]
        for schema_id, known in self.schemas.items():
            if known == schema:
                return schema_id
        schema_id = 100 + len(self.schemas)
        self.schemas[schema_id] = schema
        return schema_id

    def schema_by_id(self, schema_id: int) -> str:
        return self.schemas[schema_id]


@pytest.mark.parametrize("event", samples(), ids=lambda e: type(e).__name__)
def test_round_trip(event: Event) -> None:
    assert CODEC.decode(CODEC.encode(event)) == event


@pytest.mark.parametrize(
    ("schema", "expected"),
    # Values from Apache Avro's share/test/data/schema-tests.txt (Java's fingerprints).
    [('"null"', 7195948357588979594), ('"int"', 8247732601305521295)],
)
def test_crc64_avro_matches_the_reference_vectors(schema: str, expected: int) -> None:
    assert crc64_avro(schema.encode()) == expected


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_fingerprint_agrees_with_fastavro(name: str) -> None:
    canonical = to_parsing_canonical_form(load_schemas(SCHEMA_FOLDER)[name])
    little_endian = struct.pack("<Q", CODEC.fingerprint(name)).hex()
    assert little_endian == fastavro_fingerprint(canonical, "CRC-64-AVRO")


def test_single_object_framing() -> None:
    event = order_placed()
    data = CODEC.encode(event)
    assert data[:2] == b"\xc3\x01"
    assert struct.unpack("<Q", data[2:10])[0] == CODEC.fingerprint(OrderPlaced.avro_name)


def _reference_datum(event: Event) -> dict[str, object]:
    # The reference implementation wants uuids as text and arrays as lists
    # (JSON mode), but timestamp-millis as a datetime.
    timestamps = {k: v for k, v in event.model_dump().items() if isinstance(v, datetime)}
    return event.model_dump(mode="json") | timestamps


def _reference_schema(event: Event) -> avro.schema.Schema:
    return avro.schema.parse((AVRO_DIR / f"{type(event).__name__}.avsc").read_text())


@pytest.mark.parametrize("event", samples(), ids=lambda e: type(e).__name__)
def test_reference_implementation_reads_what_we_write(event: Event) -> None:
    body = CODEC.encode(event)[10:]
    reader = avro.io.DatumReader(_reference_schema(event))
    record = reader.read(avro.io.BinaryDecoder(io.BytesIO(body)))
    assert type(event).model_validate(record) == event


@pytest.mark.parametrize("event", samples(), ids=lambda e: type(e).__name__)
def test_we_read_what_the_reference_implementation_writes(event: Event) -> None:
    buffer = io.BytesIO()
    writer = avro.io.DatumWriter(_reference_schema(event))
    writer.write(_reference_datum(event), avro.io.BinaryEncoder(buffer))
    header = b"\xc3\x01" + struct.pack("<Q", CODEC.fingerprint(event.avro_name))
    assert CODEC.decode(header + buffer.getvalue()) == event


@pytest.mark.parametrize("path", sorted(AVRO_DIR.rglob("*.avsc")), ids=lambda p: p.name)
def test_legacy_canonical_form_is_what_the_python_avro_library_writes(path: Path) -> None:
    text = path.read_text()
    assert legacy_canonical_form(json.loads(text)) == avro.schema.parse(text).canonical_form


@pytest.mark.parametrize("event", samples(), ids=lambda e: type(e).__name__)
def test_we_read_records_framed_with_the_python_avro_librarys_fingerprint(event: Event) -> None:
    schema = _reference_schema(event)
    buffer = io.BytesIO()
    avro.io.DatumWriter(schema).write(_reference_datum(event), avro.io.BinaryEncoder(buffer))
    legacy = crc64_avro(schema.canonical_form.encode())
    header = b"\xc3\x01" + struct.pack("<Q", legacy)
    assert CODEC.decode(header + buffer.getvalue()) == event


def test_confluent_wire_format_round_trip() -> None:
    registry = InMemoryRegistry()
    codec = APP.codec(registry)
    event = order_placed()
    data = codec.encode(event)
    assert data[0] == 0
    schema_id = struct.unpack(">I", data[1:5])[0]
    registered = json.loads(registry.schemas[schema_id])
    assert f"{registered['namespace']}.{registered['name']}" == OrderPlaced.avro_name
    assert registered["fields"][0]["type"]["logicalType"] == "uuid"  # full schema, not canonical
    assert codec.decode(data) == event


@pytest.mark.parametrize(("data", "schema_id"), [
    (b"\x00\x00\x00\x00\x00", 0),
    (b"\x00\x00\x00\x00\x01rest", 1),
    (b"\x00\x00\x01\x00\x00", 65_536),  # big-endian
    (b"\x00\xff\xff\xff\xff\x02", 2**32 - 1),
    (b"\x00" + struct.pack(">I", 90_000), 90_000),
], ids=["zero", "one", "big-endian", "largest", "registry-id"])
def test_confluent_schema_id_reads_the_header(data: bytes, schema_id: int) -> None:
    assert confluent_schema_id(data) == schema_id


@pytest.mark.parametrize("data", [
    b"", b"\x00", b"\x00\x00\x00\x01",  # the magic byte, then a cut schema id
    b"\x01\x00\x00\x00\x01", b"\xc3\x01" + b"\x00" * 9, b'{"json": 1}',  # not Confluent
], ids=["empty", "magic-only", "four-bytes", "magic-1", "single-object", "json"])
def test_confluent_schema_id_is_none_for_anything_else(data: bytes) -> None:
    assert confluent_schema_id(data) is None


def test_the_codec_reads_the_schema_id_the_helper_reads() -> None:
    registry = InMemoryRegistry()
    data = APP.codec(registry).encode(order_placed())
    assert confluent_schema_id(data) in registry.schemas
    assert confluent_schema_id(CODEC.encode(order_placed())) is None  # single-object framing


def test_confluent_without_registry_is_rejected() -> None:
    data = APP.codec(InMemoryRegistry()).encode(order_placed())
    with pytest.raises(DecodeError) as info:
        CODEC.decode(data)
    assert info.value.reason is DlqReason.UNKNOWN_SCHEMA


def _valid() -> bytes:
    return CODEC.encode(order_placed("A-1"))


def _invalid_total() -> bytes:
    # Valid Avro whose fields break a rule Avro cannot express (total != lines).
    event = order_placed("A-1")
    record = _reference_datum(event) | {"amount_cents": 1}
    buffer = io.BytesIO()
    avro.io.DatumWriter(_reference_schema(event)).write(record, avro.io.BinaryEncoder(buffer))
    return _valid()[:10] + buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b'{"json": true}', "unknown-framing"),
        (b"\xc3\x01\x00\x01", "truncated"),
        (b"\x00\x00\x01", "truncated"),
        (b"\xc3\x01" + b"\x00" * 8 + b"\x02", "unknown-schema"),
        (_valid()[:20], "malformed-avro"),
        (_valid() + b"\x00", "malformed-avro"),
        (_invalid_total(), "invalid-event"),
    ],
    ids=["empty", "json", "short-single-object", "short-confluent", "fingerprint",
         "truncated-body", "trailing-bytes", "invalid-total"],
)
def test_decode_errors_name_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        CODEC.decode(data)
    assert info.value.reason == reason


def test_known_schema_without_model_is_unknown_event_type() -> None:
    orders_only = AvroCodec([OrderPlaced], SCHEMA_FOLDER)
    data = CODEC.encode(samples()[1])  # OrderCancelled: schema known to CODEC only
    with pytest.raises(DecodeError) as info:
        orders_only.decode(data)
    assert info.value.reason is DlqReason.UNKNOWN_SCHEMA
    old_writer = load_schemas(SCHEMA_FOLDER)[OrderCancelled.avro_name]
    codec = AvroCodec([OrderPlaced], SCHEMA_FOLDER, extra_writer_schemas=[old_writer])
    with pytest.raises(DecodeError) as info:
        codec.decode(data)
    assert info.value.reason is DlqReason.UNKNOWN_EVENT_TYPE


def test_random_corruption_only_ever_raises_decode_error() -> None:
    rng = random.Random(20261125)
    valid = [CODEC.encode(event) for event in samples()]
    for _ in range(3000):
        data = bytearray(rng.choice(valid))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(10, len(data))] = rng.randrange(256)  # keep the header
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        with contextlib.suppress(DecodeError):
            CODEC.decode(bytes(data))


def test_an_array_past_the_models_limit_is_refused_before_validating_each_item() -> None:
    # Found by fuzzing: 174 000 three-byte order lines made pydantic report every
    # line (104 MB traced for a 512 KiB value); now refused after Avro decoding.
    value = longest_order()
    with pytest.raises(DecodeError, match=r"items has 174677 items, at most 1000") as info:
        CODEC.decode(value)
    assert info.value.reason is DlqReason.INVALID_EVENT
    check_memory(FuzzRecord("orders.events", 0, 0, b"A-1", value))


def test_many_validation_errors_make_a_short_message() -> None:
    with pytest.raises(DecodeError, match=r"^relayflow.orders.OrderPlaced: 1001 validation "
                                          r"errors, the first 10: items.0.sku: String") as info:
        CODEC.decode(order_with_lines(1000))  # each line's empty sku, and the total
    assert info.value.reason is DlqReason.INVALID_EVENT
    assert len(str(info.value)) < 1000
    with pytest.raises(DecodeError, match="2 validation errors for OrderPlaced"):
        CODEC.decode(order_with_lines(1))  # few errors: pydantic's own message
