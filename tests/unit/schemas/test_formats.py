"""JSON Schema and Protobuf codecs, and every format behind ``FormatCodec``.

The parcels example is the contract under test: ``ParcelShipped`` and
``ParcelClosed`` are Protobuf (``parcels.proto``), ``ParcelDelivered`` is JSON
(``ParcelDelivered.json``). Registry framing runs against the real Apicurio
registry and the one written here.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar
from uuid import UUID, uuid4

import pytest
from google.protobuf import json_format

from examples.parcels.app import APP, PARCELS_EVENTS, SCHEMA_FOLDER
from examples.parcels.events import ParcelClosed, ParcelDelivered, ParcelShipped
from examples.parcels.workflows import PARCELS_OUTCOMES
from relayflow.kafka.schema_registry import HttpSchemaRegistry
from relayflow.reference.app import APP as REFERENCE
from schemas.codec import DecodeError, EncodeError
from schemas.dead_letters import DlqReason
from schemas.formats import (
    JSON_CONTENT_TYPE,
    PROTOBUF_CONTENT_TYPE,
    FormatCodec,
    JsonSchemaCodec,
    ProtobufCodec,
    SchemaFormat,
    SubjectNameStrategy,
    proto_message_name,
    protobuf_message_indexes,
    read_message_indexes,
)
from schemas.framing import to_record
from schemas.headers import AVRO_CONTENT_TYPE, CONTENT_TYPE
from schemas.models import Event
from tests.helpers.registry import Registry, RegistryServer, registry_server
from tests.helpers.support import order_placed

CODEC = APP.codec()
NOW = datetime(2026, 12, 6, 5, 0, 0, 123_000, tzinfo=UTC)


def shipped(**changes: object) -> ParcelShipped:
    fields: dict[str, object] = {"event_id": uuid4(), "occurred_at": NOW, "parcel_id": "p-1",
                                 "carrier": "dhl", "weight_grams": 1200}
    return ParcelShipped.model_validate({**fields, **changes})


def delivered(**changes: object) -> ParcelDelivered:
    fields: dict[str, object] = {"event_id": uuid4(), "occurred_at": NOW, "parcel_id": "p-1",
                                 "signed_by": "ann"}
    return ParcelDelivered.model_validate({**fields, **changes})


def closed(**changes: object) -> ParcelClosed:
    fields: dict[str, object] = {"event_id": uuid4(), "occurred_at": NOW, "parcel_id": "p-1",
                                 "correlation_id": "c-1", "causation_id": "e-1",
                                 "status": "DELIVERED", "signed_by": "ann"}
    return ParcelClosed.model_validate({**fields, **changes})


EVENTS = [shipped(), delivered(), closed(), closed(status="LOST", signed_by="")]


def reason(data: bytes, event_type: str | None, codec: FormatCodec = CODEC) -> str:
    with pytest.raises(DecodeError) as raised:
        codec.decode(data, event_type)
    return raised.value.reason


def proto_bytes(event_type: str, record: dict[str, object]) -> bytes:
    """A Protobuf body written by another producer (the message class, not our encoder)."""
    message = CODEC.protobuf._classes[event_type]()  # the compiled class
    json_format.ParseDict(record, message)
    body: bytes = message.SerializeToString()
    return body


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_round_trip_bare(event: Event) -> None:
    data = CODEC.encode(event)
    assert CODEC.decode(data, event.avro_name) == event


def test_each_event_says_its_format_in_content_type() -> None:
    wanted = {ParcelShipped: PROTOBUF_CONTENT_TYPE, ParcelDelivered: JSON_CONTENT_TYPE,
              ParcelClosed: PROTOBUF_CONTENT_TYPE}
    for event in EVENTS[:3]:
        headers = dict(to_record(event, CODEC).headers)
        assert headers[CONTENT_TYPE].decode() == wanted[type(event)]
    reference = REFERENCE.codec()
    placed = to_record(order_placed(), reference)
    assert dict(placed.headers)[CONTENT_TYPE].decode() == AVRO_CONTENT_TYPE


def test_json_body_is_plain_json_any_reader_can_read() -> None:
    event = delivered()
    assert json.loads(CODEC.encode(event)) == event.model_dump(mode="json")


def test_protobuf_body_is_the_message_any_reader_can_read() -> None:
    event = shipped()
    message = CODEC.protobuf._classes[event.avro_name]()
    message.ParseFromString(CODEC.encode(event))
    assert message.parcel_id == "p-1"
    assert message.weight_grams == 1200
    assert message.occurred_at.ToDatetime(tzinfo=UTC) == NOW


DELIVERED = {"event_id": "1b7c4f1e-8a39-4a55-9f0a-0d1b7d3c1a00",
             "occurred_at": "2026-12-06T05:00:00Z", "parcel_id": "p", "signed_by": "ann"}


@pytest.mark.parametrize(("data", "event_type", "wanted"), [
    (b"", "parcels.ParcelDelivered", DlqReason.EMPTY),
    (b"{not json", "parcels.ParcelDelivered", DlqReason.MALFORMED_JSON),
    (b"\xff\xfe{}", "parcels.ParcelDelivered", DlqReason.MALFORMED_JSON),
    (b"[1, 2]", "parcels.ParcelDelivered", DlqReason.INVALID_EVENT),
    (b'{"parcel_id": "p"}', "parcels.ParcelDelivered", DlqReason.INVALID_EVENT),
    (json.dumps({**DELIVERED, "event_id": "not-a-uuid"}).encode(), "parcels.ParcelDelivered",
     DlqReason.INVALID_EVENT),
    (json.dumps({**DELIVERED, "extra": 1}).encode(), "parcels.ParcelDelivered",
     DlqReason.INVALID_EVENT),
    (b'{"a": 1}', "parcels.Unknown", DlqReason.UNKNOWN_EVENT_TYPE),
], ids=["empty", "not-json", "not-utf8", "not-an-object", "missing-fields", "bad-uuid",
        "extra-field", "unknown-type"])
def test_json_failures_have_their_reason(data: bytes, event_type: str, wanted: DlqReason) -> None:
    assert reason(data, event_type) == wanted


def test_protobuf_failures_have_their_reason() -> None:
    name = ParcelShipped.avro_name
    assert reason(b"\x0a\xff", name) == DlqReason.MALFORMED_PROTOBUF  # a length past the end
    assert reason(b"\x07", name) == DlqReason.MALFORMED_PROTOBUF  # wire type 7 does not exist
    good = {"event_id": str(uuid4()), "occurred_at": "2026-12-06T05:00:00Z", "parcel_id": "p",
            "carrier": "dhl", "weight_grams": 5}
    unset = CODEC.decode(proto_bytes(name, good), name)
    assert isinstance(unset, ParcelShipped)
    assert unset.deliver_within_seconds == 86_400  # optional, unset: the default
    # Valid Protobuf, but the model's rules refuse it: proto3 sends no empty string.
    assert reason(proto_bytes(name, {**good, "parcel_id": ""}), name) == DlqReason.INVALID_EVENT
    assert reason(proto_bytes(name, {**good, "weight_grams": 0}), name) == DlqReason.INVALID_EVENT
    status: dict[str, object] = {"event_id": str(uuid4()), "occurred_at": "2026-12-06T05:00:00Z",
                                 "parcel_id": "p", "correlation_id": "c", "causation_id": "e"}
    unspecified = proto_bytes(ParcelClosed.avro_name, status)
    assert reason(unspecified, ParcelClosed.avro_name) == DlqReason.INVALID_EVENT


def test_a_bare_body_without_event_type_is_not_guessed() -> None:
    # A Protobuf body names nothing: without the header it is not taken for Avro's.
    assert reason(CODEC.encode(shipped()), None) == DlqReason.UNKNOWN_FRAMING
    assert reason(CODEC.encode(delivered()), None) == DlqReason.UNKNOWN_FRAMING


class ParcelWithNote(ParcelDelivered):
    """A model that drifted from its schemas: a field neither file has."""

    avro_name: ClassVar[str] = "parcels.ParcelDelivered"
    note: str = "x"


class ShippedWithNote(ParcelShipped):
    avro_name: ClassVar[str] = "parcels.ParcelShipped"
    note: str = "x"


def test_a_model_that_breaks_its_schema_is_an_encode_error() -> None:
    json_codec = JsonSchemaCodec([ParcelWithNote], SCHEMA_FOLDER)
    with pytest.raises(EncodeError, match="note"):
        json_codec.encode_body(ParcelWithNote(**delivered().model_dump()))
    proto_codec = ProtobufCodec([ShippedWithNote], SCHEMA_FOLDER)
    with pytest.raises(EncodeError, match="note"):
        proto_codec.encode_body(ShippedWithNote(**shipped().model_dump()))


def test_a_model_without_its_schema_is_refused_when_the_codec_is_built(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match=r"parcels\.ParcelDelivered"):
        JsonSchemaCodec([ParcelDelivered], tmp_path)
    with pytest.raises(KeyError, match=r"parcels\.ParcelShipped"):
        ProtobufCodec([ParcelShipped], tmp_path)


def test_a_broken_proto_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "broken.proto").write_text('syntax = "proto3"; message {', encoding="utf-8")
    with pytest.raises(ValueError, match="protoc"):
        ProtobufCodec([], tmp_path)


@pytest.mark.parametrize("path", [[0], [1], [2, 3], [0, 0, 7], [300]])
def test_message_indexes_round_trip(path: list[int]) -> None:
    framed = protobuf_message_indexes(path) + b"body"
    indexes, at = read_message_indexes(framed, 0)
    assert (indexes, framed[at:]) == (path, b"body")


def test_message_indexes_are_confluent_s() -> None:
    assert protobuf_message_indexes([0]) == b"\x00"  # the one-byte common case
    assert protobuf_message_indexes([1]) == b"\x02\x02"  # count 1, index 1, zig-zag
    assert CODEC.protobuf.message_indexes(ParcelClosed.avro_name) == b"\x02\x02"
    with pytest.raises(DecodeError) as raised:
        read_message_indexes(b"\x04\x02", 0)  # two indexes announced, one there
    assert raised.value.reason == DlqReason.TRUNCATED


def test_proto_message_names_by_index() -> None:
    text = (SCHEMA_FOLDER / "parcels.proto").read_text(encoding="utf-8")
    assert proto_message_name(text, [0]) == "parcels.ParcelShipped"
    assert proto_message_name(text, [1]) == "parcels.ParcelClosed"
    nested = ("package a.b; // message Fake {\nmessage X { message Y {} message Z { } }\n"
              "message W { string s = 1; }")
    assert proto_message_name(nested, [0, 1]) == "a.b.X.Z"
    assert proto_message_name(nested, [1]) == "a.b.W"
    with pytest.raises(LookupError):
        proto_message_name(nested, [2])


def test_an_unknown_format_name_is_refused() -> None:
    class Odd(ParcelDelivered):
        schema_format: ClassVar[str] = "xml"

    with pytest.raises(ValueError, match="xml"):
        FormatCodec([Odd], SCHEMA_FOLDER)


def test_schema_formats_name_the_asyncapi_formats() -> None:
    assert SchemaFormat.JSON.asyncapi_format == "application/schema+json;version=draft-07"
    assert SchemaFormat.PROTOBUF.asyncapi_format == "application/vnd.google.protobuf;version=3"
    assert SchemaFormat.PROTOBUF.registry_type == "PROTOBUF"


# Registry framing: the real registry and the one written here.

@pytest.fixture
def server() -> Iterator[RegistryServer]:
    with registry_server() as running:
        yield running


@pytest.fixture(params=["apicurio", "written-here"])
def registry(request: pytest.FixtureRequest) -> Registry:
    found: Registry = request.getfixturevalue(
        "apicurio" if request.param == "apicurio" else "server")
    return found


def registered(registry: Registry, strategy: str = "record") -> FormatCodec:
    return APP.codec(HttpSchemaRegistry(registry.url), strategy)


def decoded(codec: FormatCodec, data: bytes) -> Event:
    asyncio.run(codec.prepare_decode(data))
    return codec.decode(data)  # no event-type: the registry says what the value is


@pytest.mark.parametrize("event", EVENTS[:3], ids=lambda e: type(e).__name__)
def test_confluent_framing_round_trip(registry: Registry, event: Event) -> None:
    producer = registered(registry)
    asyncio.run(producer.prepare_encode(event.avro_name))
    data = producer.encode(event)
    assert data[:1] == b"\x00"
    (schema_id,) = struct.unpack_from(">I", data, 1)
    assert registry.subjects()[event.avro_name] == [schema_id]
    if event.schema_format == SchemaFormat.PROTOBUF:
        indexes, start = read_message_indexes(data, 5)
        assert indexes == ([0] if isinstance(event, ParcelShipped) else [1])
        assert data[start:] == CODEC.encode(event)
    else:
        assert data[5:] == CODEC.encode(event)
    assert decoded(registered(registry), data) == event  # a fresh consumer fetches the schema


@pytest.mark.parametrize(("strategy", "subjects"), [
    ("record", {"parcels.ParcelShipped", "parcels.ParcelDelivered", "parcels.ParcelClosed"}),
    ("topic", {f"{PARCELS_EVENTS}-value", f"{PARCELS_OUTCOMES}-value"}),
    ("topic-record", {f"{PARCELS_EVENTS}-parcels.ParcelShipped",
                      f"{PARCELS_EVENTS}-parcels.ParcelDelivered",
                      f"{PARCELS_OUTCOMES}-parcels.ParcelClosed"}),
])
def test_subject_name_strategies(server: RegistryServer, strategy: str,
                                 subjects: set[str]) -> None:
    codec = registered(server, strategy)
    for event in EVENTS[:3]:
        codec.encode(event)
    assert set(server.subjects()) == subjects


def test_topic_strategy_needs_a_topic() -> None:
    with pytest.raises(ValueError, match="needs one"):
        SubjectNameStrategy.TOPIC.subject("a.B", None)


def test_registry_failures_have_their_reason(server: RegistryServer) -> None:
    codec = registered(server)
    unknown = b"\x00" + struct.pack(">I", 9999) + b"{}"
    with pytest.raises(DecodeError) as raised:
        asyncio.run(codec.prepare_decode(unknown))
    assert raised.value.reason == DlqReason.UNKNOWN_SCHEMA
    xml = server.add("<schema/>", "XML")
    assert reason(b"\x00" + struct.pack(">I", xml) + b"<a/>", None, codec) \
        == DlqReason.UNKNOWN_SCHEMA
    untitled = server.add(json.dumps({"type": "object"}), "JSON")
    assert reason(b"\x00" + struct.pack(">I", untitled) + b"{}", None, codec) \
        == DlqReason.UNKNOWN_SCHEMA
    proto = server.add('syntax = "proto3"; package x; message Only { string a = 1; }', "PROTOBUF")
    assert reason(b"\x00" + struct.pack(">I", proto) + b"\x02\x04", None, codec) \
        == DlqReason.UNKNOWN_SCHEMA  # message index 2 is not in that file
    assert reason(b"\x00" + struct.pack(">I", proto) + b"\x00\x0a\x01a", None, codec) \
        == DlqReason.UNKNOWN_EVENT_TYPE  # x.Only: a schema with no model here
    assert reason(b"\x00\x00", None, codec) == DlqReason.TRUNCATED


def test_a_json_value_of_another_producer_decodes(registry: Registry) -> None:
    event = delivered()
    schema_id = registry.add((SCHEMA_FOLDER / "ParcelDelivered.json").read_text(), "JSON")
    data = b"\x00" + struct.pack(">I", schema_id) + json.dumps(
        {"event_id": str(event.event_id), "occurred_at": "2026-12-06T05:00:00.123Z",
         "parcel_id": "p-1", "signed_by": "ann"}).encode()
    assert decoded(registered(registry), data) == event


def test_avro_still_decodes_with_the_typed_registry(server: RegistryServer) -> None:
    codec = REFERENCE.codec(HttpSchemaRegistry(server.url))
    event = order_placed()
    data = codec.encode(event)
    fresh = REFERENCE.codec(HttpSchemaRegistry(server.url))
    assert decoded(fresh, data) == event
    assert set(server.subjects()) == {event.avro_name}


def test_event_ids_survive_every_format() -> None:
    ids = {UUID(int=7)}
    for event in (shipped(event_id=UUID(int=7)), delivered(event_id=UUID(int=7))):
        assert CODEC.decode(CODEC.encode(event), event.avro_name).event_id in ids
