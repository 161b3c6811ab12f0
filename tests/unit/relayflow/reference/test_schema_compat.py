"""Schema evolution: only backward-compatible changes, and every published version stays readable.

To change a schema: edit its .avsc (new fields need defaults), then copy it to
``relayflow/reference/avro/history/<full name>.v<N+1>.avsc``. These tests fail until both
are done, and fail for good if the change would break readers of old records.
"""

from __future__ import annotations

import io
import struct
import uuid
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest
from fastavro.schema import to_parsing_canonical_form

from relayflow.reference.app import APP
from relayflow.reference.events import SCHEMA_FOLDER, OrderPlaced
from schemas.codec import crc64_avro, load_history, load_schemas

CURRENT = load_schemas(SCHEMA_FOLDER)
HISTORY = load_history(SCHEMA_FOLDER / "history")
PROMOTIONS = {("int", "long"), ("int", "float"), ("int", "double"), ("long", "float"),
              ("long", "double"), ("float", "double"), ("string", "bytes"), ("bytes", "string")}


def _versions() -> list[tuple[str, int]]:
    return [(name, n) for name, versions in HISTORY.items() for n in range(len(versions))]


def test_every_current_schema_is_its_latest_published_version() -> None:
    assert set(HISTORY) == set(CURRENT)
    for name, schema in CURRENT.items():
        assert HISTORY[name][-1] == schema, (
            f"{name} changed: add it as relayflow/reference/avro/history/"
            f"{name}.v{len(HISTORY[name]) + 1}.avsc"
        )


def _type_name(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "union"
    return str(schema["type"])


def _problems(old: Any, new: Any, path: str) -> list[str]:
    """Why a reader with ``new`` could not read data written with ``old``."""
    old_t, new_t = _type_name(old), _type_name(new)
    if old_t == "union" or new_t == "union":
        olds = old if isinstance(old, list) else [old]
        news = new if isinstance(new, list) else [new]
        # Every branch the writer may use must resolve against some reader branch.
        return [f"{path}: union branch {_type_name(o)} has no match" for o in olds
                if all(_problems(o, n, path) for n in news)]
    if old_t != new_t:
        return [] if (old_t, new_t) in PROMOTIONS else [f"{path}: {old_t} -> {new_t}"]
    if new_t == "record":
        old_fields = {f["name"]: f for f in old["fields"]}
        found = []
        for field in new["fields"]:
            where = f"{path}.{field['name']}"
            if field["name"] in old_fields:
                found += _problems(old_fields[field["name"]]["type"], field["type"], where)
            elif "default" not in field:
                found.append(f"{where}: new field without default")
        return found
    if new_t == "array":
        return _problems(old["items"], new["items"], path + "[]")
    if new_t == "enum":
        missing = set(old["symbols"]) - set(new["symbols"])
        breaking = missing and "default" not in new
        return [f"{path}: enum symbols removed {missing}"] if breaking else []
    return []


@pytest.mark.parametrize(("name", "version"), _versions())
def test_current_schema_reads_every_published_version(name: str, version: int) -> None:
    old = HISTORY[name][version]
    assert _problems(old, CURRENT[name], name) == []
    # And for real: data written with the old version resolves with the current one.
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(old), _sample(old))
    buffer.seek(0)
    record = fastavro.schemaless_reader(buffer, fastavro.parse_schema(old),
                                        fastavro.parse_schema(CURRENT[name]))
    assert isinstance(record, dict)
    assert {f["name"] for f in CURRENT[name]["fields"]} == set(record)


def _sample(schema: Any) -> Any:  # noqa: PLR0911 - one return per Avro type
    """A valid datum for any schema of ours (records, arrays, enums, unions, logical types)."""
    if isinstance(schema, list):
        return _sample(next(branch for branch in schema if branch != "null"))
    kind = _type_name(schema)
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if logical == "uuid":
        return str(uuid.uuid4())
    if logical == "timestamp-millis":
        return datetime(2026, 1, 1, tzinfo=UTC)
    samples = {"string": "x", "int": 1, "long": 1, "boolean": True, "double": 1.0,
               "float": 1.0, "bytes": b"x", "null": None}
    if kind in samples:
        return samples[kind]
    if kind == "record":
        return {f["name"]: _sample(f["type"]) for f in schema["fields"]}
    if kind == "array":
        return [_sample(schema["items"])]
    if kind == "enum":
        return schema["symbols"][0]
    raise AssertionError(f"no sample for {schema}")


def test_a_breaking_change_is_caught() -> None:
    old = CURRENT[OrderPlaced.avro_name]
    broken = dict(old, fields=[*old["fields"], {"name": "vip", "type": "boolean"}])
    retyped = dict(old, fields=[
        dict(f, type="int") if f["name"] == "customer_id" else f for f in old["fields"]])
    assert _problems(old, broken, "x") == ["x.vip: new field without default"]
    assert _problems(old, retyped, "x") == ["x.customer_id: string -> int"]


def test_records_written_with_an_old_version_still_decode() -> None:
    v1 = HISTORY[OrderPlaced.avro_name][0]
    assert "approval_timeout_seconds" not in {f["name"] for f in v1["fields"]}
    datum = _sample(v1) | {"items": [{"sku": "S", "quantity": 2, "unit_price_cents": 5}],
                           "amount_cents": 10, "currency": "EUR", "shipping_country": "DE"}
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(v1), datum)
    fingerprint = crc64_avro(to_parsing_canonical_form(v1).encode())
    framed = b"\xc3\x01" + struct.pack("<Q", fingerprint) + buffer.getvalue()

    event = APP.codec().decode(framed)
    assert isinstance(event, OrderPlaced)
    assert event.approval_timeout_seconds is None
    assert event.amount_cents == 10
