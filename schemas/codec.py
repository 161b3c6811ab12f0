"""Avro codec for relayflow events: fastavro in the hot path.

Two framings are spoken:

* Avro single-object encoding (the default): ``C3 01``, the 8-byte
  little-endian CRC-64-AVRO fingerprint of the writer schema's parsing
  canonical form, then the Avro binary body. Any Avro library can decode it
  with the ``.avsc`` file alone.
* Confluent wire format: byte ``0``, a 4-byte big-endian schema id from a
  schema registry, then the body. Used for encoding when a registry is given;
  accepted when decoding (the schema is fetched from the registry by id).

The registry is asked once per schema and process. Its calls block, so async
code calls ``prepare_decode`` / ``prepare_encode`` first: they run the one
lookup a value needs in a thread and are free when nothing is missing.

Writer schemas are looked up by fingerprint (or registry id) and resolved
against the current reader schema of the same full name, so records written
with an older, compatible version of a schema still decode.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import fastavro
from fastavro.schema import to_parsing_canonical_form
from fastavro.validation import ValidationError as AvroValidationError
from fastavro.validation import validate
from pydantic import ValidationError

from schemas.agreement import describe_avro_type
from schemas.dead_letters import CodecReason, DlqReason
from schemas.headers import AVRO_CONTENT_TYPE
from schemas.models import Event
from schemas.replies import FRAMEWORK_SCHEMA_FOLDER

__all__ = [
    "CONFLUENT_HEADER",
    "CONFLUENT_MAGIC",
    "CONFLUENT_SCHEMA_ID",
    "SINGLE_OBJECT_MARKER",
    "AvroCodec",
    "DecodeError",
    "EncodeError",
    "SchemaRegistry",
    "confluent_schema_id",
    "crc64_avro",
    "fetch_once",
    "load_history",
    "load_schemas",
]

SINGLE_OBJECT_MARKER = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
_FINGERPRINT = struct.Struct("<Q")
CONFLUENT_SCHEMA_ID = struct.Struct(">I")
"""The registry's schema id after ``CONFLUENT_MAGIC`` (big-endian, 4 bytes)."""
_SINGLE_OBJECT_HEADER = len(SINGLE_OBJECT_MARKER) + _FINGERPRINT.size
CONFLUENT_HEADER = len(CONFLUENT_MAGIC) + CONFLUENT_SCHEMA_ID.size
"""Bytes of the Confluent wire format before the body."""
_UNPACK_SCHEMA_ID = CONFLUENT_SCHEMA_ID.unpack_from

_CRC64_EMPTY = 0xC15D213AA4D7A795
_ERRORS_IN_FULL = 10
"""An ``invalid-event`` message lists this many validation errors at most."""


def _crc64_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    return tuple(table)


_CRC64_TABLE = _crc64_table()


def confluent_schema_id(data: bytes) -> int | None:
    """The registry schema id of a Confluent-framed value, or None for any other value.

    The one reading of the Confluent wire format's header (magic byte ``0``, then
    a 4-byte big-endian schema id) in relayflow. It runs for every record the
    bridge decodes, so it stays a length test, one byte and one unpack.

    Args:
        data: A record value, framed any way.

    Returns:
        The schema id; None when ``data`` does not start with the magic byte or
        is shorter than the 5-byte header (a truncated Confluent value).
    """
    if len(data) < CONFLUENT_HEADER or data[0]:  # data[0]: the magic byte is 0
        return None
    schema_id: int = _UNPACK_SCHEMA_ID(data, len(CONFLUENT_MAGIC))[0]
    return schema_id


_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def legacy_canonical_form(schema: Mapping[str, Any]) -> str:
    """The parsing canonical form as the Python ``avro`` library (1.11, 1.12) writes it.

    The specification reduces a primitive with a logical type to its bare name
    (``"string"``); that library keeps it as an object (``{"type":"string"}``),
    so its fingerprints differ for every schema with a logical type. The codec
    accepts those fingerprints as aliases when decoding.

    Args:
        schema: A schema as loaded from its ``.avsc`` file.
    """
    canonical = json.loads(to_parsing_canonical_form(dict(schema)))
    return json.dumps(_legacy(schema, canonical), separators=(",", ":"), ensure_ascii=False)


def _legacy(raw: Any, canonical: Any) -> Any:
    """Walk the original and the canonical schema together, re-wrapping logical primitives."""
    if isinstance(raw, list):
        return [_legacy(r, c) for r, c in zip(raw, canonical, strict=True)]
    if not isinstance(raw, dict):
        return canonical
    kind = raw.get("type")
    if "logicalType" in raw and kind in _PRIMITIVES:
        return {"type": kind}
    if isinstance(kind, dict | list):
        return _legacy(kind, canonical)
    if not isinstance(canonical, dict):
        return canonical  # a primitive in object form, reduced to its name by both
    walked = dict(canonical)
    if kind in {"record", "error"}:
        walked["fields"] = [{**c, "type": _legacy(r["type"], c["type"])}
                            for r, c in zip(raw["fields"], canonical["fields"], strict=True)]
    for nested in ("items", "values"):
        if nested in raw:
            walked[nested] = _legacy(raw[nested], canonical[nested])
    return walked


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO (Rabin) fingerprint, as the Avro specification defines it.

    Args:
        data: Usually the UTF-8 parsing canonical form of a schema.

    Returns:
        The 64-bit fingerprint as an unsigned integer.
    """
    fp = _CRC64_EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _CRC64_TABLE[(fp ^ byte) & 0xFF]
    return fp


class DecodeError(ValueError):
    """A record could not be turned into an event; permanent, never retried.

    Attributes:
        reason: The dead-letter header's value: one of the codec's reasons
            (``CodecReason``, described in ``schemas.dead_letters``).
    """

    def __init__(self, reason: CodecReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class EncodeError(ValueError):
    """An event does not fit its schema: its model and its ``.avsc`` disagree.

    A bug, not bad input: ``schemas.agreement`` finds such a model before any
    record is written, and ``Application`` refuses it when it is built.
    """


class SchemaRegistry(Protocol):
    """The part of a Confluent-compatible schema registry the codec needs."""

    def register(self, subject: str, schema: str) -> int:
        """Register (or look up) a schema under a subject and return its id."""
        ...

    def schema_by_id(self, schema_id: int) -> str:
        """Return the schema JSON with this id."""
        ...


@dataclass(frozen=True, slots=True)
class _Writer:
    full_name: str
    parsed: Any
    fingerprint: int


def load_history(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Every published version of every schema, oldest first.

    ``<schema folder>/history/<full name>.v<N>.avsc`` holds version N exactly as
    it was published; records written with any of them must keep decoding.

    Args:
        folder: The history folder (none there: no versions).

    Returns:
        Raw schema JSON versions by Avro full name.
    """
    root = folder
    versions: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for path in root.glob("*.avsc"):
        name, _, version = path.stem.rpartition(".v")
        versions.setdefault(name, []).append(
            (int(version), json.loads(path.read_text(encoding="utf-8"))))
    return {name: [schema for _, schema in sorted(found, key=lambda v: v[0])]
            for name, found in versions.items()}


def load_schemas(folder: Path) -> dict[str, dict[str, Any]]:
    """Read every ``.avsc`` file of an application's contract.

    Args:
        folder: The application's schema folder.

    Returns:
        Raw schema JSON by Avro full name.
    """
    root = folder
    loaded: dict[str, dict[str, Any]] = {}
    for path in sorted(root.glob("*.avsc")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        loaded[f"{schema['namespace']}.{schema['name']}"] = schema
    return loaded



T = TypeVar("T")


def fetch_once(in_flight: dict[int, asyncio.Future[T]], schema_id: int,
               fetch: Callable[[int], T]) -> asyncio.Future[T]:
    """The registry fetch of ``schema_id`` in flight, or a new one run off the event loop.

    Records of a new id arrive together (64 keys at once): one request serves all.

    Args:
        in_flight: The caller's fetches in flight, by schema id (each leaves when done).
        schema_id: The registry id to fetch.
        fetch: Fetches it (blocking; run in a thread).

    Returns:
        The fetch to await (shield it: one waiter cancelled must not cancel the others').
    """
    running = in_flight.get(schema_id)
    if running is None:
        running = asyncio.ensure_future(asyncio.to_thread(fetch, schema_id))
        in_flight[schema_id] = running
        running.add_done_callback(lambda _: in_flight.pop(schema_id, None))
    return running

class AvroCodec:
    """Encode events to Avro bytes and decode bytes back to validated events.

    Args:
        models: Event models the codec knows, each mirroring one schema.
        schema_folder: Where their ``.avsc`` files live.
        registry: When given, ``encode`` uses the Confluent wire format with
            ids from this registry (subject = the record's full name).
        extra_writer_schemas: Older versions of schemas to accept when
            decoding (raw schema JSON); by default every published version in
            ``<schema_folder>/history``.
    """

    def __init__(
        self,
        models: Iterable[type[Event]],
        schema_folder: Path,
        *,
        registry: SchemaRegistry | None = None,
        extra_writer_schemas: Iterable[Mapping[str, Any]] | None = None,
    ) -> None:
        # relayflow's own events (replies) are known to every codec; an app's files come second.
        raw = {**load_schemas(FRAMEWORK_SCHEMA_FOLDER), **load_schemas(schema_folder)}
        self._models: dict[str, type[Event]] = {}
        self._readers: dict[str, Any] = {}
        self._header: dict[str, bytes] = {}  # single-object header of each current schema
        self._by_fingerprint: dict[int, _Writer] = {}
        self._by_registry_id: dict[int, _Writer] = {}
        self._registry_ids: dict[str, int] = {}
        self._registry = registry
        self._fetching: dict[int, asyncio.Future[_Writer]] = {}
        self._schema_json: dict[str, str] = {}
        self._max_items: dict[str, dict[str, int]] = {}
        for model in models:
            if model.avro_name not in raw:
                raise KeyError(f"no .avsc file for {model.avro_name}")
            self._models[model.avro_name] = model
            self._max_items[model.avro_name] = _max_items(model)
            self._schema_json[model.avro_name] = json.dumps(raw[model.avro_name])
            writer = self._add_writer(raw[model.avro_name])
            self._readers[model.avro_name] = writer.parsed
            self._header[model.avro_name] = (SINGLE_OBJECT_MARKER
                                             + _FINGERPRINT.pack(writer.fingerprint))
        if extra_writer_schemas is None:
            extra_writer_schemas = [
                old for name, versions in load_history(schema_folder / "history").items()
                if name in self._models
                for old in versions
            ]
        current = {writer.fingerprint for writer in self._by_fingerprint.values()}
        for schema in extra_writer_schemas:
            # An old version must not replace the current one under the same fingerprint.
            canonical = to_parsing_canonical_form(dict(schema))
            if crc64_avro(canonical.encode("utf-8")) not in current:
                self._add_writer(schema)

    def _add_writer(self, schema: Mapping[str, Any]) -> _Writer:
        name = str(schema["name"])
        full_name = name if "." in name else f"{schema.get('namespace', '')}.{name}".lstrip(".")
        # parse_schema mutates named-type registries; give each its own copy.
        parsed = fastavro.parse_schema(json.loads(json.dumps(schema)), _write_hint=False)
        canonical = to_parsing_canonical_form(dict(schema))
        writer = _Writer(full_name, parsed, crc64_avro(canonical.encode("utf-8")))
        self._by_fingerprint[writer.fingerprint] = writer
        # Decode-only alias: producers using the Python ``avro`` library frame records
        # with its (non-standard) canonical form's fingerprint; never used to encode.
        legacy = crc64_avro(legacy_canonical_form(schema).encode("utf-8"))
        self._by_fingerprint.setdefault(legacy, writer)
        return writer

    @property
    def event_types(self) -> Mapping[str, type[Event]]:
        """Known event models by Avro full name."""
        return self._models

    def content_type(self, event_type: str) -> str:
        """The ``content-type`` header of every value this codec writes."""
        del event_type  # one format
        return AVRO_CONTENT_TYPE

    def schema_text(self, event_type: str) -> str:
        """The current ``.avsc`` of ``event_type``, as JSON text."""
        return self._schema_json[event_type]

    def fingerprint(self, event_type: str) -> int:
        """CRC-64-AVRO fingerprint of the current schema of ``event_type``."""
        for writer in self._by_fingerprint.values():
            if writer.full_name == event_type and writer.parsed is self._readers[event_type]:
                return writer.fingerprint
        raise KeyError(event_type)

    def encode(self, event: Event) -> bytes:
        """Serialize an event with its current schema.

        Args:
            event: A model whose ``avro_name`` this codec knows.

        Returns:
            Single-object encoded bytes, or Confluent-framed bytes when the
            codec has a registry.

        Raises:
            EncodeError: The event does not fit its schema; the message names
                the event type and, when fastavro's validator finds it, the field.
        """
        name = event.avro_name
        schema = self._readers[name]
        buffer = io.BytesIO()
        if self._registry is None:
            buffer.write(self._header[name])
        else:
            buffer.write(CONFLUENT_MAGIC)
            buffer.write(CONFLUENT_SCHEMA_ID.pack(self._registry_id(name)))
        record = event.model_dump(mode="python")
        try:
            fastavro.schemaless_writer(buffer, schema, record)
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            problem = _encode_problem(name, schema, record, exc)
            raise EncodeError(f"{name} does not fit its .avsc: {problem}") from exc
        return buffer.getvalue()

    def needs_registry(self, data: bytes) -> bool:
        """True when decoding ``data`` would ask the registry (a schema id not yet seen)."""
        if self._registry is None:
            return False
        schema_id = confluent_schema_id(data)
        return schema_id is not None and schema_id not in self._by_registry_id

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
        fetch = fetch_once(self._fetching, schema_id, self._writer_for_registry_id)
        await asyncio.shield(fetch)  # one waiter cancelled does not cancel the others' fetch

    async def prepare_encode(self, event_type: str) -> None:
        """Register, off the event loop, the schema ``encode`` will name, if not yet done.

        Raises:
            ValueError: The registry refused the schema (e.g. incompatible).
            OSError: The registry did not answer; try again later.
        """
        if self._registry is not None and event_type not in self._registry_ids:
            await asyncio.to_thread(self._registry_id, event_type)

    def _registry_id(self, name: str) -> int:
        assert self._registry is not None
        if name not in self._registry_ids:
            # The full .avsc, not the canonical form: other readers keep the logical types.
            self._registry_ids[name] = self._registry.register(name, self._schema_json[name])
        return self._registry_ids[name]

    def _writer_for_registry_id(self, schema_id: int) -> _Writer:
        if schema_id not in self._by_registry_id:
            if self._registry is None:
                raise DecodeError(
                    DlqReason.UNKNOWN_SCHEMA,
                    f"Confluent schema id {schema_id} but no registry configured")
            try:
                schema = json.loads(self._registry.schema_by_id(schema_id))
            except (OSError, LookupError, ValueError) as exc:
                # A registry outage is transient; let the caller retry.
                if isinstance(exc, OSError):
                    raise
                raise DecodeError(DlqReason.UNKNOWN_SCHEMA,
                                  f"schema id {schema_id}: {exc}") from exc
            self._by_registry_id[schema_id] = self._add_writer(schema)
        return self._by_registry_id[schema_id]

    def _split_frame(self, data: bytes) -> tuple[_Writer, bytes]:
        if data[:2] == SINGLE_OBJECT_MARKER:
            if len(data) < _SINGLE_OBJECT_HEADER:
                raise DecodeError(DlqReason.TRUNCATED, "single-object header shorter than 10 bytes")
            (fingerprint,) = _FINGERPRINT.unpack_from(data, len(SINGLE_OBJECT_MARKER))
            writer = self._by_fingerprint.get(fingerprint)
            if writer is None:
                message = f"no schema with fingerprint {fingerprint:#018x}"
                raise DecodeError(DlqReason.UNKNOWN_SCHEMA, message)
            return writer, data[_SINGLE_OBJECT_HEADER:]
        schema_id = confluent_schema_id(data)
        if schema_id is not None:
            return self._writer_for_registry_id(schema_id), data[CONFLUENT_HEADER:]
        if data[:1] == CONFLUENT_MAGIC:
            raise DecodeError(DlqReason.TRUNCATED, "Confluent header shorter than 5 bytes")
        raise DecodeError(
            DlqReason.UNKNOWN_FRAMING, f"value starts with {data[:2].hex()}, expected c301 or 00"
        )

    def decode(self, data: bytes, event_type: str | None = None) -> Event:
        """Turn framed Avro bytes into a validated event.

        Args:
            data: A record value in either framing.
            event_type: The ``event-type`` header; unused, an Avro value names its schema.

        Returns:
            The event model, validated.

        Raises:
            DecodeError: The bytes are not a valid event; the reason says why.
        """
        del event_type
        if not data:
            raise DecodeError(DlqReason.EMPTY, "record value is empty")
        writer, body = self._split_frame(data)
        model = self._models.get(writer.full_name)
        if model is None:
            raise DecodeError(DlqReason.UNKNOWN_EVENT_TYPE,
                              f"{writer.full_name} is not handled here")
        name = writer.full_name
        stream = io.BytesIO(body)
        try:
            # Same writer and reader schema (the common case): no resolution step.
            reader = None if writer.parsed is self._readers[name] else self._readers[name]
            record = fastavro.schemaless_reader(stream, writer.parsed, reader)
        except (EOFError, ValueError, TypeError, IndexError, KeyError, UnicodeDecodeError,
                OverflowError) as exc:  # OverflowError: a timestamp beyond Python's datetime
            raise DecodeError(DlqReason.MALFORMED_AVRO, f"{name}: {exc!r}") from exc
        if stream.tell() != len(body):
            trailing = len(body) - stream.tell()
            raise DecodeError(DlqReason.MALFORMED_AVRO, f"{trailing} trailing bytes after {name}")
        for field, limit in self._max_items[name].items():
            # Before validating: a 512 KiB value holds 170 000 three-byte order lines,
            # and pydantic would report every one of them (100 MB for one record).
            items = record.get(field) if isinstance(record, dict) else None
            if isinstance(items, list) and len(items) > limit:
                raise DecodeError(DlqReason.INVALID_EVENT,
                                  f"{name}: {field} has {len(items)} items, at most {limit}")
        try:
            return model.model_validate(record)
        except ValidationError as exc:
            raise DecodeError(DlqReason.INVALID_EVENT, f"{name}: {_summary(exc)}") from exc


def _encode_problem(name: str, schema: Any, record: dict[str, Any], error: Exception) -> str:
    """Which field fastavro could not write, found again by its validator (only on failure).

    fastavro's writer says ``an integer is required on field q`` or just
    ``'x' is not in list``; its validator names the record and field.
    """
    try:
        validate(record, schema, raise_errors=True)
    except AvroValidationError as invalid:
        first = invalid.errors[0]
        # Same field, several entries: the branches of a union that all refused the value.
        wanted = [e.schema for e in invalid.errors if e.field == first.field]
        field = first.field.removeprefix(f"{name}.")
        value = "has no value" if first.datum is None \
            else f"is {first.datum!r} ({type(first.datum).__name__})"
        return (f"field {field} {value}, the .avsc wants "
                f"{describe_avro_type(wanted[0] if len(wanted) == 1 else wanted)}")
    return str(error)


def _max_items(model: type[Event]) -> dict[str, int]:
    """The most items each list field of ``model`` may hold (its ``max_length``)."""
    limits: dict[str, int] = {}
    for name, field in model.model_fields.items():
        for constraint in field.metadata:
            if isinstance(limit := getattr(constraint, "max_length", None), int):
                limits[name] = limit
    return limits


def _summary(error: ValidationError) -> str:
    """Pydantic's message, shortened to its first errors when there are many."""
    count = error.error_count()
    if count <= _ERRORS_IN_FULL:
        return str(error)
    first = "; ".join(
        f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
        for e in error.errors(include_url=False, include_input=False)[:_ERRORS_IN_FULL])
    return f"{count} validation errors, the first {_ERRORS_IN_FULL}: {first}"
