"""The schema registry client over real HTTP, and the codec and bridge decoder with it.

What any Confluent-compatible registry does (registration, lookup by id,
subject naming, refusals) runs against both the real Apicurio Registry and
the small registry written here (``registry``); compatibility checks against
Apicurio only; outages, request counts and credentials against the small one
(``server``), which can be told to fail.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
from collections.abc import Iterator

import fastavro
import pytest

from relayflow.config.settings import Settings
from relayflow.devstack import free_port
from relayflow.kafka.schema_registry import (
    HttpSchemaRegistry,
    RegistryUnavailable,
    SchemaRegistryError,
    redacted_url,
)
from relayflow.reference.app import APP
from relayflow.reference.events import SCHEMA_FOLDER, OrderCompleted, OrderPlaced
from relayflow.runtime.bootstrap import event_codec
from schemas.codec import DecodeError, load_schemas
from tests.helpers.registry import ApicurioRegistry, Registry, RegistryServer, registry_server
from tests.helpers.support import order_placed

ORDER_PLACED_SCHEMA = json.dumps(load_schemas(SCHEMA_FOLDER)[OrderPlaced.avro_name])


@pytest.fixture
def server() -> Iterator[RegistryServer]:
    with registry_server() as running:
        yield running


@pytest.fixture(params=["apicurio", "written-here"])
def registry(request: pytest.FixtureRequest) -> Registry:
    fixture = "apicurio" if request.param == "apicurio" else "server"
    found: Registry = request.getfixturevalue(fixture)
    return found


def test_register_is_idempotent_and_ids_are_global(registry: Registry) -> None:
    client = HttpSchemaRegistry(registry.url)
    first = client.register(OrderPlaced.avro_name, ORDER_PLACED_SCHEMA)
    assert client.register(OrderPlaced.avro_name, ORDER_PLACED_SCHEMA) == first
    assert client.register("orders.events-value", ORDER_PLACED_SCHEMA) == first
    assert json.loads(client.schema_by_id(first)) == json.loads(ORDER_PLACED_SCHEMA)


def test_unknown_id_is_a_lookup_error(registry: Registry) -> None:
    with pytest.raises(LookupError, match="no schema with id 77777"):
        HttpSchemaRegistry(registry.url).schema_by_id(77777)


def test_a_schema_that_is_not_avro_is_refused(registry: Registry) -> None:
    schema_id = registry.add('syntax = "proto3"; message M {}', schema_type="PROTOBUF")
    with pytest.raises(SchemaRegistryError, match="PROTOBUF, not AVRO"):
        HttpSchemaRegistry(registry.url).schema_by_id(schema_id)


def test_invalid_schema_on_register_is_refused_with_the_registry_code(
        registry: Registry) -> None:
    with pytest.raises(SchemaRegistryError) as info:
        HttpSchemaRegistry(registry.url).register("s", "{not json")
    assert (info.value.status, info.value.error_code) == (422, 42201)


def test_outage_answers_and_refused_connections_are_transient(server: RegistryServer) -> None:
    client = HttpSchemaRegistry(server.url, attempts=1)  # retries: tests/security/
    server.failing = {"GET", "POST"}
    with pytest.raises(RegistryUnavailable, match="HTTP 503"):
        client.schema_by_id(1)
    with pytest.raises(RegistryUnavailable, match="HTTP 503"):
        client.register("s", ORDER_PLACED_SCHEMA)
    with pytest.raises(RegistryUnavailable):
        HttpSchemaRegistry(f"http://127.0.0.1:{free_port()}", timeout=2,
                           attempts=1).schema_by_id(1)


def test_basic_auth_comes_from_the_url_and_stays_out_of_it() -> None:
    with registry_server(credentials=("svc-orders", "s3cr:t")) as server:
        host = server.url.removeprefix("http://")
        client = HttpSchemaRegistry(f"http://svc-orders:s3cr%3At@{host}")
        assert client.base_url == server.url
        assert client.register("s", ORDER_PLACED_SCHEMA) == 1
        # Wrong credentials are retried, not fatal: an operator can fix them.
        with pytest.raises(RegistryUnavailable, match="HTTP 401"):
            HttpSchemaRegistry(server.url).schema_by_id(1)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "registry:8081", "http://"])
def test_only_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(ValueError, match="must be http"):
        HttpSchemaRegistry(url)


def test_a_refused_url_is_shown_without_its_password() -> None:
    with pytest.raises(ValueError, match="must be http") as refused:
        HttpSchemaRegistry("ftp://svc-orders:s3cr3t-pw@registry:8081")
    assert "'ftp://svc-orders:***@registry:8081'" in str(refused.value)
    assert "s3cr3t-pw" not in str(refused.value)


@pytest.mark.parametrize(("url", "shown"), [
    ("https://svc:pw@registry:8081/x", "https://svc:***@registry:8081/x"),
    ("https://svc:p%40ss:w@registry", "https://svc:***@registry"),
    ("https://svc@registry", "https://svc@registry"),
    ("https://registry:8081", "https://registry:8081"),
])
def test_redacted_url_hides_only_the_password(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


def test_settings_show_the_registry_url_without_its_password() -> None:
    settings = Settings(schema_registry_url="https://svc-orders:s3cr3t-pw@registry:8081")
    for text in (repr(settings), str(settings)):
        assert "schema_registry_url='https://svc-orders:***@registry:8081'" in text
        assert "s3cr3t-pw" not in text
    # Children get the URL itself.
    assert settings.as_env()["RELAYFLOW_SCHEMA_REGISTRY_URL"].endswith("s3cr3t-pw@registry:8081")


def test_settings_give_a_codec_that_frames_with_the_registry(registry: Registry) -> None:
    codec = event_codec(Settings(schema_registry_url=registry.url))
    event = order_placed()
    data = codec.encode(event)
    assert data[0] == 0
    # Record-name subjects: the Avro full name, whatever the topic.
    assert registry.subjects() == {OrderPlaced.avro_name: [struct.unpack(">I", data[1:5])[0]]}
    assert codec.decode(data) == event
    assert event_codec(Settings()).encode(event)[:2] == b"\xc3\x01"  # no registry: single-object


async def test_a_fresh_codec_asks_the_registry_once_per_schema_off_the_loop(
        server: RegistryServer) -> None:
    data = APP.codec(HttpSchemaRegistry(server.url)).encode(
        order_placed())
    reader = APP.codec(HttpSchemaRegistry(server.url))
    assert reader.needs_registry(data)
    await reader.prepare_decode(data)
    assert not reader.needs_registry(data)
    for _ in range(3):
        assert isinstance(reader.decode(data), OrderPlaced)
    assert server.requests["GET by-id"] == 1


async def test_prepare_encode_registers_once(server: RegistryServer) -> None:
    codec = APP.codec(HttpSchemaRegistry(server.url))
    await codec.prepare_encode(OrderCompleted.avro_name)
    await codec.prepare_encode(OrderCompleted.avro_name)
    assert server.requests["POST register"] == 1
    assert list(server.subjects()) == [OrderCompleted.avro_name]


def test_without_a_registry_confluent_records_are_unknown_schema(registry: Registry) -> None:
    data = APP.codec(HttpSchemaRegistry(registry.url)).encode(
        order_placed())
    codec = APP.codec()
    assert not codec.needs_registry(data)
    with pytest.raises(DecodeError, match="no registry configured"):
        codec.decode(data)


def test_a_newer_writer_version_from_the_registry_decodes_without_a_redeploy(
        registry: Registry) -> None:
    # Another team ships OrderPlaced v-next (an extra field) before relayflow knows it:
    # through the registry the bridge gets the writer schema and resolves it to its own.
    newer = json.loads(ORDER_PLACED_SCHEMA)
    newer["fields"].append({"name": "gift_note", "type": ["null", "string"], "default": None})
    schema_id = registry.add(newer)
    event = order_placed()
    data = _confluent_record(schema_id, newer, {**event.model_dump(mode="python"),
                                                "gift_note": "for Ada"})
    assert event_codec(Settings(schema_registry_url=registry.url)).decode(data) == event


def _confluent_record(schema_id: int, schema: dict[str, object],
                      value: dict[str, object]) -> bytes:
    """A record as a Confluent serializer frames it: byte 0, the id, the Avro body."""
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), value)
    return b"\x00" + struct.pack(">I", schema_id) + body.getvalue()


def test_the_registry_checks_compatibility_and_the_client_reports_its_refusal(
        apicurio: ApicurioRegistry) -> None:
    client = HttpSchemaRegistry(apicurio.url)
    first = client.register(OrderPlaced.avro_name, ORDER_PLACED_SCHEMA)
    apicurio.set_compatibility(OrderPlaced.avro_name, "BACKWARD")
    # A new field without a default: readers of the new schema cannot read old records.
    breaking = json.loads(ORDER_PLACED_SCHEMA)
    breaking["fields"].append({"name": "gift_note", "type": "string"})
    with pytest.raises(SchemaRegistryError) as refused:
        client.register(OrderPlaced.avro_name, json.dumps(breaking))
    assert (refused.value.status, refused.value.error_code) == (409, 409)
    # With a default it is backward compatible: a second version, a new id, both readable.
    compatible = json.loads(ORDER_PLACED_SCHEMA)
    compatible["fields"].append({"name": "gift_note", "type": ["null", "string"],
                                 "default": None})
    second = client.register(OrderPlaced.avro_name, json.dumps(compatible))
    assert second != first
    assert apicurio.subjects() == {OrderPlaced.avro_name: [first, second]}
    assert json.loads(client.schema_by_id(second)) == compatible
    event = order_placed()
    data = _confluent_record(second, compatible, {**event.model_dump(mode="python"),
                                                  "gift_note": None})
    assert event_codec(Settings(schema_registry_url=apicurio.url)).decode(data) == event


async def test_records_of_a_new_id_arriving_together_share_one_lookup(
        server: RegistryServer) -> None:
    data = APP.codec(HttpSchemaRegistry(server.url)).encode(
        order_placed())
    reader = APP.codec(HttpSchemaRegistry(server.url))
    await asyncio.gather(*(reader.prepare_decode(data) for _ in range(20)))
    assert server.requests["GET by-id"] == 1
    server.failing = {"GET"}
    other = APP.codec(HttpSchemaRegistry(server.url, attempts=1))
    failed = await asyncio.gather(*(other.prepare_decode(data) for _ in range(5)),
                                  return_exceptions=True)
    assert all(isinstance(f, RegistryUnavailable) for f in failed)
    assert server.requests["GET by-id"] == 2  # the outage, too, was asked about once
    server.failing = set()
    await other.prepare_decode(data)  # nothing cached from the failure: asked again
    assert not other.needs_registry(data)
