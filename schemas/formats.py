"""Event formats beside Avro: JSON validated by a JSON Schema, and Protobuf.

An event type declares its format in ``Event.schema_format``; Avro stays the
default and keeps its codec (``schemas.codec.AvroCodec``) unchanged. Each
format's schema files are its source of truth, in the application's schema
folder beside the ``.avsc`` files:

* JSON: ``<anything>.json``, a draft-07 JSON Schema whose ``title`` is the
  event type's full name (what Confluent's record-name strategy reads). The
  value is the event as UTF-8 JSON.
* Protobuf: ``<anything>.proto`` (proto3), compiled when the codec is built by
  ``protoc`` from the PyPI package ``grpcio-tools``; the message's full name
  (``package.Message``) is the event type. The value is the binary message.

Framing. Without a registry a JSON or Protobuf value is the bare body, and the
record's ``event-type`` header says which schema it follows (a Protobuf body
names nothing). With a registry every format uses the Confluent wire format:
byte ``0``, the 4-byte schema id, then (Protobuf only) the message-index array
(zig-zag varints; ``[0]`` written as a single ``0``), then the body.

``FormatCodec`` joins the three behind one interface (``EventCodec``), so the
bridge, the worker and the operator tools never ask which format a value is.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import json
import re
import tempfile
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError as ProtobufDecodeError
from grpc_tools import protoc
from jsonschema import Draft7Validator
from pydantic import ValidationError

from schemas.codec import (
    CONFLUENT_HEADER,
    CONFLUENT_MAGIC,
    CONFLUENT_SCHEMA_ID,
    AvroCodec,
    DecodeError,
    EncodeError,
    SchemaRegistry,
    confluent_schema_id,
    fetch_once,
)
from schemas.dead_letters import DlqReason
from schemas.headers import AVRO_CONTENT_TYPE
from schemas.models import Event

__all__ = [
    "JSON_CONTENT_TYPE",
    "PROTOBUF_CONTENT_TYPE",
    "EventCodec",
    "FormatCodec",
    "JsonSchemaCodec",
    "ProtobufCodec",
    "SchemaFormat",
    "SubjectNameStrategy",
    "TypedSchemaRegistry",
    "format_of",
    "protobuf_message_indexes",
    "read_message_indexes",
]

JSON_CONTENT_TYPE = "application/json"
"""``content-type`` of a JSON Schema event's value."""
PROTOBUF_CONTENT_TYPE = "application/x-protobuf"
"""``content-type`` of a Protobuf event's value."""

_ERRORS_IN_FULL = 10
_VARINT_BITS = 64
_MAX_NESTING = 64
"""A message-index array longer than this is garbage, not a message path."""


class SchemaFormat(StrEnum):
    """How an event type's values are written, with its registry ``schemaType``.

    Attributes:
        registry_type: The Confluent registry's name for the format.
        content_type: The ``content-type`` header of a value.
        asyncapi_format: AsyncAPI 3 ``schemaFormat`` of the schema.
    """

    registry_type: str
    content_type: str
    asyncapi_format: str

    def __new__(cls, value: str, registry_type: str, content_type: str,
                asyncapi_format: str) -> Self:
        """Make a member from its value and its three names elsewhere."""
        member = str.__new__(cls, value)
        member._value_ = value
        member.registry_type = registry_type
        member.content_type = content_type
        member.asyncapi_format = asyncapi_format
        return member

    AVRO = ("avro", "AVRO", AVRO_CONTENT_TYPE,
            "application/vnd.apache.avro+json;version=1.9.0")
    JSON = ("json", "JSON", JSON_CONTENT_TYPE, "application/schema+json;version=draft-07")
    PROTOBUF = ("protobuf", "PROTOBUF", PROTOBUF_CONTENT_TYPE,
                "application/vnd.google.protobuf;version=3")


def format_of(model: type[Event]) -> SchemaFormat:
    """The format an event model declares (``Event.schema_format``).

    Raises:
        ValueError: Not one of ``avro``, ``json``, ``protobuf``.
    """
    for member in SchemaFormat:
        if member.value == model.schema_format:
            return member
    raise ValueError(f"{model.__name__}.schema_format {model.schema_format!r} is not one of "
                     f"{[m.value for m in SchemaFormat]}")


class SubjectNameStrategy(StrEnum):
    """Confluent's subject name strategies: where a schema is registered."""

    TOPIC = "topic"
    """``<topic>-value``: one schema per topic (Confluent's default)."""
    RECORD = "record"
    """``<full name>``: one subject per event type, whatever its topic (relayflow's default)."""
    TOPIC_RECORD = "topic-record"
    """``<topic>-<full name>``: one subject per event type and topic."""

    def subject(self, full_name: str, topic: str | None) -> str:
        """The subject of ``full_name``'s schema, written to ``topic``.

        Raises:
            ValueError: The strategy needs a topic and the event type has none.
        """
        if self is SubjectNameStrategy.RECORD:
            return full_name
        if topic is None:
            raise ValueError(f"{full_name} is on no topic; the {self} strategy needs one")
        return f"{topic}-value" if self is SubjectNameStrategy.TOPIC else f"{topic}-{full_name}"


@runtime_checkable
class TypedSchemaRegistry(SchemaRegistry, Protocol):
    """A registry that also stores JSON Schema and Protobuf schemas (ccompat v7)."""

    def register(self, subject: str, schema: str, schema_type: str = "AVRO") -> int:
        """Register (or look up) a schema of ``schema_type`` under a subject; its id."""
        ...

    def typed_schema_by_id(self, schema_id: int) -> tuple[str, str]:
        """The ``(schemaType, schema text)`` with this id."""
        ...


class EventCodec(Protocol):
    """What the bridge, the worker and the tools need of a codec, whatever the format."""

    @property
    def event_types(self) -> Mapping[str, type[Event]]:
        """Known event models by full name."""
        ...

    def content_type(self, event_type: str) -> str:
        """The ``content-type`` header of ``event_type``'s values."""
        ...

    def encode(self, event: Event) -> bytes:
        """The framed value of ``event``; ``EncodeError`` when it breaks its schema."""
        ...

    def decode(self, data: bytes, event_type: str | None = None) -> Event:
        """The validated event in ``data``; ``DecodeError`` with its reason when it is not.

        ``event_type`` is the record's ``event-type`` header: a bare JSON or
        Protobuf body does not say which schema it follows.
        """
        ...

    def needs_registry(self, data: bytes) -> bool:
        """True when decoding ``data`` would ask the registry."""
        ...

    async def prepare_decode(self, data: bytes) -> None:
        """Fetch, off the event loop, the writer schema ``data`` names, if not yet known."""
        ...

    async def prepare_encode(self, event_type: str) -> None:
        """Register, off the event loop, the schema ``encode`` will name, if not yet done."""
        ...


def _zigzag(value: int) -> bytes:
    number = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_zigzag(data: bytes, at: int) -> tuple[int, int]:
    shift = number = 0
    while True:
        if at >= len(data) or shift >= _VARINT_BITS:
            raise DecodeError(DlqReason.TRUNCATED, "the message-index array ends early")
        byte = data[at]
        at += 1
        number |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return (number >> 1) ^ -(number & 1), at


def protobuf_message_indexes(path: Iterable[int]) -> bytes:
    """The Confluent message-index array of a message at ``path`` in its file.

    Args:
        path: Index of the top-level message, then of each nested one.
    """
    indexes = list(path)
    if indexes == [0]:
        return b"\x00"  # the common case, one byte
    return _zigzag(len(indexes)) + b"".join(_zigzag(i) for i in indexes)


def read_message_indexes(data: bytes, at: int) -> tuple[list[int], int]:
    """Read a message-index array at ``at``; the indexes and where the body starts.

    Raises:
        DecodeError: The array is cut short (``truncated``).
    """
    count, at = _read_zigzag(data, at)
    if count == 0:
        return [0], at
    if count < 0 or count > _MAX_NESTING:
        raise DecodeError(DlqReason.MALFORMED_PROTOBUF, f"message-index count {count}")
    indexes = []
    for _ in range(count):
        index, at = _read_zigzag(data, at)
        indexes.append(index)
    return indexes, at


def _validated(model: type[Event], record: Any, name: str) -> Event:
    try:
        return model.model_validate(record)
    except ValidationError as exc:
        raise DecodeError(DlqReason.INVALID_EVENT, f"{name}: {_summary(exc)}") from exc


def _summary(error: ValidationError) -> str:
    count = error.error_count()
    if count <= _ERRORS_IN_FULL:
        return str(error)
    first = "; ".join(
        f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
        for e in error.errors(include_url=False, include_input=False)[:_ERRORS_IN_FULL])
    return f"{count} validation errors, the first {_ERRORS_IN_FULL}: {first}"


class JsonSchemaCodec:
    """Bare JSON bodies of JSON Schema event types, validated by schema then by model.

    Args:
        models: The JSON event models, each with a ``.json`` schema whose
            ``title`` is its ``avro_name``.
        schema_folder: Where the ``.json`` schema files live.
    """

    def __init__(self, models: Iterable[type[Event]], schema_folder: Path) -> None:
        raw: dict[str, dict[str, Any]] = {}
        for path in sorted(schema_folder.glob("*.json")):
            schema = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(schema, dict) and isinstance(schema.get("title"), str):
                raw[schema["title"]] = schema
        self._models: dict[str, type[Event]] = {}
        self._validators: dict[str, Draft7Validator] = {}
        self.schema_text: dict[str, str] = {}
        """Each event type's schema as registered: the file's JSON."""
        for model in models:
            if model.avro_name not in raw:
                raise KeyError(f"no .json schema titled {model.avro_name}")
            Draft7Validator.check_schema(raw[model.avro_name])
            self._models[model.avro_name] = model
            self._validators[model.avro_name] = Draft7Validator(raw[model.avro_name])
            self.schema_text[model.avro_name] = json.dumps(raw[model.avro_name])

    @property
    def event_types(self) -> Mapping[str, type[Event]]:
        """Known event models by full name."""
        return self._models

    def schema_of(self, event_type: str) -> dict[str, Any]:
        """The JSON Schema of ``event_type``."""
        schema: dict[str, Any] = json.loads(self.schema_text[event_type])
        return schema

    def encode_body(self, event: Event) -> bytes:
        """The event as compact UTF-8 JSON, checked against its schema.

        Raises:
            EncodeError: The model and its ``.json`` schema disagree.
        """
        name = event.avro_name
        record = event.model_dump(mode="json")
        problem = self._first_problem(name, record)
        if problem is not None:
            raise EncodeError(f"{name} does not fit its .json schema: {problem}")
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()

    def decode_body(self, body: bytes, event_type: str) -> Event:
        """A bare JSON body of ``event_type`` as its validated model.

        Raises:
            DecodeError: ``unknown-event-type``, ``malformed-json`` or ``invalid-event``.
        """
        model = self._models.get(event_type)
        if model is None:
            raise DecodeError(DlqReason.UNKNOWN_EVENT_TYPE, f"{event_type} is not handled here")
        try:
            record = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise DecodeError(DlqReason.MALFORMED_JSON, f"{event_type}: {exc}") from exc
        problem = self._first_problem(event_type, record)
        if problem is not None:
            raise DecodeError(DlqReason.INVALID_EVENT, f"{event_type}: {problem}")
        return _validated(model, record, event_type)

    def _first_problem(self, name: str, record: Any) -> str | None:
        errors = sorted(self._validators[name].iter_errors(record), key=lambda e: list(e.path))
        if not errors:
            return None
        shown = "; ".join(f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}"
                          for e in errors[:_ERRORS_IN_FULL])
        return f"{len(errors)} schema errors: {shown}" if len(errors) > 1 else shown


class ProtobufCodec:
    """Binary Protobuf bodies of Protobuf event types, compiled from ``.proto`` files.

    Args:
        models: The Protobuf event models; each ``avro_name`` is a message's
            full name (``package.Message``).
        schema_folder: Where the ``.proto`` files live (imports resolve
            there and in protoc's well-known types).
    """

    def __init__(self, models: Iterable[type[Event]], schema_folder: Path) -> None:
        pool = descriptor_pool.DescriptorPool()
        files = descriptor_pb2.FileDescriptorSet.FromString(_compile(schema_folder))
        for proto in files.file:
            pool.Add(proto)
        self._models: dict[str, type[Event]] = {}
        self._classes: dict[str, Any] = {}
        self._indexes: dict[str, bytes] = {}
        self.schema_text: dict[str, str] = {}
        """Each event type's ``.proto`` file, as registered."""
        for model in models:
            try:
                descriptor = pool.FindMessageTypeByName(model.avro_name)
            except KeyError:
                raise KeyError(f"no .proto message {model.avro_name}") from None
            self._models[model.avro_name] = model
            self._classes[model.avro_name] = message_factory.GetMessageClass(descriptor)
            self._indexes[model.avro_name] = protobuf_message_indexes(_path_of(descriptor))
            self.schema_text[model.avro_name] = (
                schema_folder / descriptor.file.name).read_text(encoding="utf-8")

    @property
    def event_types(self) -> Mapping[str, type[Event]]:
        """Known event models by full name."""
        return self._models

    def message_indexes(self, event_type: str) -> bytes:
        """The Confluent message-index array of ``event_type``'s message."""
        return self._indexes[event_type]

    def encode_body(self, event: Event) -> bytes:
        """The event as a deterministic binary Protobuf message.

        Raises:
            EncodeError: The model and its ``.proto`` message disagree.
        """
        name = event.avro_name
        message = self._classes[name]()
        try:
            json_format.ParseDict(event.model_dump(mode="json"), message)
        except json_format.ParseError as exc:
            raise EncodeError(f"{name} does not fit its .proto message: {exc}") from exc
        body: bytes = message.SerializeToString(deterministic=True)
        return body

    def decode_body(self, body: bytes, event_type: str) -> Event:
        """A binary Protobuf body of ``event_type`` as its validated model.

        Raises:
            DecodeError: ``unknown-event-type``, ``malformed-protobuf`` or ``invalid-event``.
        """
        model = self._models.get(event_type)
        if model is None:
            raise DecodeError(DlqReason.UNKNOWN_EVENT_TYPE, f"{event_type} is not handled here")
        try:
            message = self._classes[event_type].FromString(body)
        except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
            raise DecodeError(DlqReason.MALFORMED_PROTOBUF, f"{event_type}: {exc}") from exc
        record = json_format.MessageToDict(
            message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
        return _validated(model, record, event_type)


def _compile(folder: Path) -> bytes:
    """Every ``.proto`` file of ``folder`` as a serialized FileDescriptorSet (protoc in-process)."""
    files = sorted(p.name for p in folder.glob("*.proto"))
    if not files:
        return b""
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "set.pb"
        status = protoc.main(["protoc", f"-I{folder}", f"-I{well_known}",
                              f"--descriptor_set_out={out}", "--include_imports", *files])
        if status != 0:
            raise ValueError(f"protoc could not compile {folder}/*.proto (status {status})")
        return out.read_bytes()


def _path_of(descriptor: Any) -> list[int]:
    """Indexes of a message in its file: top-level index, then each nested one."""
    path: list[int] = []
    while descriptor.containing_type is not None:
        parent = descriptor.containing_type
        path.append(list(parent.nested_types).index(descriptor))
        descriptor = parent
    path.append(list(descriptor.file.message_types_by_name.values()).index(descriptor))
    return path[::-1]


_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)\s*;", re.MULTILINE)
_TOKENS = re.compile(r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\])*\"|[{}]|\bmessage\s+(\w+)", re.DOTALL)


def proto_message_name(text: str, indexes: list[int]) -> str:
    """The full name of the message at ``indexes`` in a ``.proto`` file's text.

    Enough of a parser for a registry's answer: the package, and messages
    counted by nesting depth (comments and strings skipped).

    Raises:
        LookupError: No message at those indexes.
    """
    package = _PACKAGE.search(text)
    names: list[str] = []
    found: list[int] = []  # message counts per depth on the current path
    stack: list[bool] = []  # per open brace: was it a message's?
    pending: str | None = None
    wanted = list(indexes)
    for token in _TOKENS.finditer(text):
        if token.group(1):
            pending = token.group(1)
        elif token.group(0) == "{":
            depth = sum(stack)
            if pending is not None:
                while len(found) <= depth:
                    found.append(-1)
                found[depth] += 1
                del found[depth + 1:]
                names = [*names[:depth], pending]
                if found[:depth + 1] == wanted[:depth + 1] and depth + 1 == len(wanted):
                    return ".".join(filter(None, [package.group(1) if package else "", *names]))
            stack.append(pending is not None)
            pending = None
        elif token.group(0) == "}" and stack:
            stack.pop()
    raise LookupError(f"no message at indexes {indexes}")


class _Registered:
    """The registry as the format codecs use it: one subject strategy, answers cached."""

    def __init__(self, registry: SchemaRegistry, strategy: SubjectNameStrategy,
                 topics: Mapping[str, str]) -> None:
        self.registry = registry
        self._strategy = strategy
        self._topics = topics
        self._by_id: dict[int, tuple[str, str]] = {}

    def register(self, subject: str, schema: str, schema_type: str = "AVRO") -> int:
        # Codecs name the subject by the record's full name; the strategy decides.
        real = self._strategy.subject(subject, self._topics.get(subject))
        if isinstance(self.registry, TypedSchemaRegistry):
            return self.registry.register(real, schema, schema_type)
        if schema_type != "AVRO":
            raise ValueError(f"this registry client speaks Avro only, not {schema_type}")
        return self.registry.register(real, schema)

    def typed_schema_by_id(self, schema_id: int) -> tuple[str, str]:
        if schema_id not in self._by_id:
            self._by_id[schema_id] = (
                self.registry.typed_schema_by_id(schema_id)
                if isinstance(self.registry, TypedSchemaRegistry)
                else ("AVRO", self.registry.schema_by_id(schema_id)))  # an Avro-only client
        return self._by_id[schema_id]

    def schema_by_id(self, schema_id: int) -> str:
        schema_type, text = self.typed_schema_by_id(schema_id)
        if schema_type != "AVRO":
            raise ValueError(f"schema id {schema_id} is {schema_type}, not AVRO")
        return text


class FormatCodec:
    """Every format of an application behind one codec (``EventCodec``).

    Avro events go through ``AvroCodec`` unchanged; JSON Schema and Protobuf
    events through their own codecs. With a registry every format is written
    in the Confluent wire format, its schema registered under the subject the
    strategy names.

    Args:
        models: Every event model; each declares its ``schema_format``.
        schema_folder: The ``.avsc``, ``.json`` and ``.proto`` files.
        registry: A schema registry (Confluent framing), or None; one
            without ``typed_schema_by_id`` (``SchemaRegistry``) serves Avro only.
        subject_strategy: Where schemas are registered.
        topics: The topic each event type is written to (the topic
            strategies need it).
    """

    def __init__(self, models: Iterable[type[Event]], schema_folder: Path, *,
                 registry: SchemaRegistry | None = None,
                 subject_strategy: SubjectNameStrategy = SubjectNameStrategy.RECORD,
                 topics: Mapping[str, str] | None = None) -> None:
        by_format: dict[SchemaFormat, list[type[Event]]] = {f: [] for f in SchemaFormat}
        for model in models:
            by_format[format_of(model)].append(model)
        self._registry = None if registry is None else _Registered(
            registry, subject_strategy, topics or {})
        self.avro = AvroCodec(by_format[SchemaFormat.AVRO], schema_folder,
                              registry=self._registry)
        self.json = JsonSchemaCodec(by_format[SchemaFormat.JSON], schema_folder)
        self.protobuf = ProtobufCodec(by_format[SchemaFormat.PROTOBUF], schema_folder)
        self._models: dict[str, type[Event]] = {
            **self.avro.event_types, **self.json.event_types, **self.protobuf.event_types}
        self._registry_ids: dict[str, int] = {}
        self._fetching: dict[int, asyncio.Future[tuple[str, str]]] = {}

    @property
    def event_types(self) -> Mapping[str, type[Event]]:
        """Known event models by full name."""
        return self._models

    def format_of(self, event_type: str) -> SchemaFormat:
        """The format ``event_type`` declares."""
        return format_of(self._models[event_type])

    def content_type(self, event_type: str) -> str:
        """The ``content-type`` header of ``event_type``'s values."""
        return self.format_of(event_type).content_type

    def fingerprint(self, event_type: str) -> int:
        """CRC-64-AVRO fingerprint of an Avro event type's current schema."""
        return self.avro.fingerprint(event_type)

    def schema_text(self, event_type: str) -> str:
        """The schema of ``event_type`` as its source file holds it."""
        fmt = self.format_of(event_type)
        if fmt is SchemaFormat.JSON:
            return self.json.schema_text[event_type]
        if fmt is SchemaFormat.PROTOBUF:
            return self.protobuf.schema_text[event_type]
        return self.avro.schema_text(event_type)

    def encode(self, event: Event) -> bytes:
        """The framed value of ``event`` in its format.

        Raises:
            EncodeError: The event does not fit its schema.
        """
        fmt = format_of(type(event))
        if fmt is SchemaFormat.AVRO:
            return self.avro.encode(event)
        if fmt is SchemaFormat.JSON:
            body = self.json.encode_body(event)
            indexes = b""
        else:
            body = self.protobuf.encode_body(event)
            indexes = self.protobuf.message_indexes(event.avro_name)
        if self._registry is None:
            return body
        schema_id = self._registry_id(event.avro_name)
        return CONFLUENT_MAGIC + CONFLUENT_SCHEMA_ID.pack(schema_id) + indexes + body

    def _registry_id(self, name: str) -> int:
        assert self._registry is not None
        if name not in self._registry_ids:
            fmt = self.format_of(name)
            self._registry_ids[name] = self._registry.register(
                name, self.schema_text(name), fmt.registry_type)
        return self._registry_ids[name]

    def needs_registry(self, data: bytes) -> bool:
        """True when decoding ``data`` would ask the registry (a schema id not yet seen)."""
        if self._registry is None:
            return False
        schema_id = confluent_schema_id(data)
        known = self._registry._by_id  # noqa: SLF001  # our own cache
        return schema_id is not None and schema_id not in known

    async def prepare_decode(self, data: bytes) -> None:
        """Fetch, off the event loop, the writer schema ``data`` names, if not yet known.

        Raises:
            DecodeError: The registry has no such schema (``unknown-schema``).
            OSError: The registry did not answer; try again later.
        """
        if not self.needs_registry(data):
            return
        schema_id = confluent_schema_id(data)
        assert schema_id is not None  # needs_registry: a Confluent value
        fetch = fetch_once(self._fetching, schema_id, self._typed_schema)
        schema_type, _ = await asyncio.shield(fetch)
        if schema_type == "AVRO":
            await self.avro.prepare_decode(data)  # parses the writer from the cached answer

    async def prepare_encode(self, event_type: str) -> None:
        """Register, off the event loop, the schema ``encode`` will name, if not yet done.

        Raises:
            ValueError: The registry refused the schema (e.g. incompatible).
            OSError: The registry did not answer; try again later.
        """
        if self._registry is None:
            return
        if self.format_of(event_type) is SchemaFormat.AVRO:
            await self.avro.prepare_encode(event_type)
        elif event_type not in self._registry_ids:
            await asyncio.to_thread(self._registry_id, event_type)

    def _typed_schema(self, schema_id: int) -> tuple[str, str]:
        if self._registry is None:
            raise DecodeError(DlqReason.UNKNOWN_SCHEMA,
                              f"Confluent schema id {schema_id} but no registry configured")
        try:
            return self._registry.typed_schema_by_id(schema_id)
        except OSError:
            raise  # an outage: the caller retries
        except (LookupError, ValueError) as exc:
            raise DecodeError(DlqReason.UNKNOWN_SCHEMA, f"schema id {schema_id}: {exc}") from exc

    def decode(self, data: bytes, event_type: str | None = None) -> Event:
        """Turn a record value of any format into a validated event.

        Args:
            data: The record value.
            event_type: The record's ``event-type`` header; needed for a bare
                JSON or Protobuf body, which names no schema.

        Raises:
            DecodeError: The bytes are not a valid event; the reason says why.
        """
        if not data:
            raise DecodeError(DlqReason.EMPTY, "record value is empty")
        declared = self._models.get(event_type or "")
        if data[:1] == CONFLUENT_MAGIC:
            return self._decode_confluent(data)
        if declared is not None and declared.schema_format == SchemaFormat.JSON:
            return self.json.decode_body(data, declared.avro_name)
        if declared is not None and declared.schema_format == SchemaFormat.PROTOBUF:
            return self.protobuf.decode_body(data, declared.avro_name)
        if data[:1] == b"{" and event_type and declared is None:
            raise DecodeError(DlqReason.UNKNOWN_EVENT_TYPE, f"{event_type} is not handled here")
        return self.avro.decode(data)

    def _decode_confluent(self, data: bytes) -> Event:
        schema_id = confluent_schema_id(data)
        if schema_id is None:  # the magic byte, then fewer than 4 bytes
            raise DecodeError(DlqReason.TRUNCATED, "Confluent header shorter than 5 bytes")
        schema_type, text = self._typed_schema(schema_id)
        if schema_type == "AVRO":
            return self.avro.decode(data)
        if schema_type == "JSON":
            try:
                name = json.loads(text)["title"]
            except (ValueError, KeyError, TypeError) as exc:
                raise DecodeError(DlqReason.UNKNOWN_SCHEMA,
                                  f"schema id {schema_id} has no title") from exc
            return self.json.decode_body(data[CONFLUENT_HEADER:], str(name))
        if schema_type == "PROTOBUF":
            indexes, start = read_message_indexes(data, CONFLUENT_HEADER)
            try:
                name = proto_message_name(text, indexes)
            except LookupError as exc:
                raise DecodeError(DlqReason.UNKNOWN_SCHEMA,
                                  f"schema id {schema_id}: {exc}") from exc
            return self.protobuf.decode_body(data[start:], name)
        raise DecodeError(DlqReason.UNKNOWN_SCHEMA,
                          f"schema id {schema_id} is {schema_type}, a format not spoken here")
