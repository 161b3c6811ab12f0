"""The pydantic models mirror the .avsc files (the source of truth) one to one."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest

from relayflow.reference.events import EVENT_TYPES, SCHEMA_FOLDER
from schemas import Event
from schemas.codec import load_schemas
from tests.support import samples

SCHEMAS = load_schemas(SCHEMA_FOLDER)


def test_every_schema_has_a_model_and_every_model_a_schema() -> None:
    assert set(SCHEMAS) == set(EVENT_TYPES)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_is_documented_and_namespaced(name: str) -> None:
    schema = SCHEMAS[name]
    assert schema["namespace"].startswith("relayflow.")
    assert schema.get("doc")
    names = [f["name"] for f in schema["fields"]]
    assert names[:2] == ["event_id", "occurred_at"]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_model_fields_match_schema_fields(name: str) -> None:
    schema, model = SCHEMAS[name], EVENT_TYPES[name]
    assert [f["name"] for f in schema["fields"]] == list(model.model_fields)
    for field in schema["fields"]:
        model_field = model.model_fields[field["name"]]
        # A schema default means the model must not require the field, and vice versa.
        assert ("default" in field) == (not model_field.is_required()), field["name"]
        if "default" in field:
            assert _same_default(field["default"], model_field.default), field["name"]


def _same_default(avro_default: Any, model_default: Any) -> bool:
    return bool(list(model_default) == avro_default if isinstance(model_default, tuple)
                else avro_default == model_default)


@pytest.mark.parametrize("event", samples(), ids=lambda e: type(e).__name__)
def test_model_round_trips_through_its_schema(event: Event) -> None:
    parsed = fastavro.parse_schema(SCHEMAS[event.avro_name])
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, event.model_dump(mode="python"))
    buffer.seek(0)
    assert type(event).model_validate(fastavro.schemaless_reader(buffer, parsed)) == event
