"""Event models agree with their .avsc files field by field; each disagreement is one line."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from examples.tickets.app import SCHEMA_FOLDER as TICKET_SCHEMAS
from examples.tickets.events import EVENT_TYPES as TICKET_EVENTS
from relayflow.application import Application
from relayflow.reference.events import EVENT_TYPES, SCHEMA_FOLDER, OrderPlaced
from schemas import Event
from schemas.agreement import contract_disagreements, disagreements
from schemas.codec import AvroCodec, EncodeError, load_schemas

REFERENCE_SCHEMAS = load_schemas(SCHEMA_FOLDER)
"""The reference application's .avsc files, by full name."""


class Line(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: str
    quantity: int = Field(gt=0)


class Placed(Event):
    avro_name: ClassVar[str] = "test.orders.Placed"

    order_id: str
    lines: tuple[Line, ...]
    note: str | None = None
    currency: str = "EUR"

    @property
    def key(self) -> str:
        return self.order_id


def _placed_schema() -> dict[str, Any]:
    line = {"type": "record", "name": "Line",
            "fields": [{"name": "sku", "type": "string"}, {"name": "quantity", "type": "int"}]}
    return {"type": "record", "name": "Placed", "namespace": "test.orders", "fields": [
        {"name": "event_id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "order_id", "type": "string"},
        {"name": "lines", "type": {"type": "array", "items": line}},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "currency", "type": "string", "default": "EUR"},
    ]}


def _field(schema: dict[str, Any], path: str) -> dict[str, Any]:
    """A field of the schema by dotted path; ``lines.quantity`` is inside the array's record."""
    fields = schema["fields"]
    *outer, name = path.split(".")
    for step in outer:
        fields = next(f for f in fields if f["name"] == step)["type"]["items"]["fields"]
    return next(f for f in fields if f["name"] == name)


_ID, _AT = uuid.UUID(int=1), datetime(2025, 1, 2, tzinfo=UTC)


def _placed() -> Placed:
    return Placed(event_id=_ID, occurred_at=_AT, order_id="A-1",
                  lines=(Line(sku="s", quantity=2),))


def _write(folder: Path, schema: dict[str, Any]) -> Path:
    (folder / f"{schema['name']}.avsc").write_text(json.dumps(schema), encoding="utf-8")
    return folder


def test_the_reference_models_agree_with_their_schemas() -> None:
    assert contract_disagreements(EVENT_TYPES.values(), REFERENCE_SCHEMAS) == []


def test_the_tickets_models_agree_with_their_schemas() -> None:
    assert contract_disagreements(TICKET_EVENTS, load_schemas(TICKET_SCHEMAS)) == []


def test_the_test_model_agrees_with_its_schema() -> None:
    assert disagreements(Placed, _placed_schema()) == []


def _rename(schema: dict[str, Any]) -> None:
    _field(schema, "order_id")["name"] = "order_ref"


def _swap(schema: dict[str, Any]) -> None:
    fields = schema["fields"]
    fields[4], fields[5] = fields[5], fields[4]


def _retype(path: str, avro: Any) -> Callable[[dict[str, Any]], None]:
    return lambda schema: _field(schema, path).update(type=avro)


def _default(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda schema: _field(schema, path).update(default=value)


def _nullable_currency(schema: dict[str, Any]) -> None:
    _field(schema, "currency").update(type=["null", "string"], default=None)


@pytest.mark.parametrize(("change", "line"), [
    (_rename, "field order_id: the .avsc has order_ref in its place"),
    (lambda s: s["fields"].append({"name": "channel", "type": "string", "default": "web"}),
     "field channel: only in the .avsc"),
    (_swap, "field note: out of order: the model has it after lines, the .avsc after currency"),
    (_retype("order_id", "long"), 'field order_id: model says str, .avsc says "long"'),
    (_retype("event_id", "string"), 'field event_id: model says UUID, .avsc says "string"'),
    (_retype("occurred_at", "long"), 'field occurred_at: model says datetime, .avsc says "long"'),
    (_retype("note", "string"), 'field note: model says str | None, .avsc says "string"'),
    (_nullable_currency, 'field currency: model says str, .avsc says ["null", "string"]'),
    (_default("currency", "USD"), ("field currency: model has default 'EUR', "
                                  '.avsc has default "USD"')),
    (lambda s: _field(s, "currency").pop("default"),
     "field currency: model has default 'EUR', .avsc has no default"),
    (_default("order_id", ""),
     'field order_id: model has no default (required), .avsc has default ""'),
    (_retype("note", ["string", "null"]), ('field note: .avsc default null does not fit '
     '["string", "null"] (a union\'s default is for its first branch)')),
    (_retype("lines.quantity", "string"),
     'field lines[].quantity: model says int, .avsc says "string"'),
    (lambda s: _field(s, "lines.sku").update(name="code"),
     "field lines[].sku: the .avsc has code in its place"),
    (_retype("lines", {"type": "array", "items": "string"}),
     'field lines[]: model says Line, .avsc says "string"'),
    (_retype("lines", "string"), 'field lines: model says tuple[Line, ...], .avsc says "string"'),
], ids=["renamed", "only-in-avsc", "order", "type", "uuid", "timestamp", "optional-in-model",
        "optional-in-avsc", "default", "default-in-model-only", "default-in-avsc-only",
        "union-default", "nested-type", "nested-rename", "array-item",
        "not-an-array"])
def test_each_disagreement_is_one_line_naming_event_and_field(
        change: Callable[[dict[str, Any]], None], line: str) -> None:
    schema = _placed_schema()
    change(schema)
    assert disagreements(Placed, schema) == [f"test.orders.Placed {line}"]


class WithGift(Placed):
    gift: tuple[Line, ...] = ()


def _with_gift(default: Any) -> dict[str, Any]:
    schema = _placed_schema()
    # Line is defined by the field lines; gift refers to it by name, as Avro allows.
    schema["fields"].append({"name": "gift", "type": {"type": "array", "items": "Line"},
                             "default": default})
    return schema


def test_a_record_referred_to_by_name_is_compared_under_each_path() -> None:
    assert disagreements(WithGift, _with_gift([])) == []
    schema = _with_gift([])
    _retype("lines.quantity", "long")(schema)
    assert disagreements(WithGift, schema) == []  # an int is an Avro int or long
    _retype("lines.quantity", "double")(schema)
    assert disagreements(WithGift, schema) == [
        'test.orders.Placed field lines[].quantity: model says int, .avsc says "double"',
        'test.orders.Placed field gift[].quantity: model says int, .avsc says "double"']
    assert disagreements(WithGift, _with_gift([{"sku": "s", "quantity": 1}])) == [
        ('test.orders.Placed field gift: model has default (), '
        '.avsc has default [{"sku": "s", "quantity": 1}]')]


def test_a_name_the_avsc_does_not_define_is_named() -> None:
    schema = _with_gift([])
    _retype("lines", {"type": "array", "items": "string"})(schema)
    assert disagreements(WithGift, schema) == [
        'test.orders.Placed field lines[]: model says Line, .avsc says "string"',
        "test.orders.Placed field gift[]: the .avsc refers to Line, which it does not define"]


def test_a_field_only_in_the_model_is_named() -> None:
    class WithChannel(Placed):
        channel: str = "web"

    assert disagreements(WithChannel, _placed_schema()) == [
        "test.orders.Placed field channel: only in the model (encoding drops it)"]


def test_an_optional_nested_field_is_named_by_its_path() -> None:
    class MaybeLine(Line):
        quantity: int | None = None  # type: ignore[assignment]

    class MaybePlaced(Placed):
        lines: tuple[MaybeLine, ...]

    assert disagreements(MaybePlaced, _placed_schema()) == [
        'test.orders.Placed field lines[].quantity: model says int | None, .avsc says "int"']


def test_a_wrong_namespace_is_named() -> None:
    schema = _placed_schema()
    schema["namespace"] = "test.order"
    assert disagreements(Placed, schema) == [
        "test.orders.Placed: the .avsc names test.order.Placed"]


def test_a_reference_event_against_a_changed_schema() -> None:
    schema = copy.deepcopy(REFERENCE_SCHEMAS[OrderPlaced.avro_name])
    schema["fields"][4]["type"]["items"]["fields"][1]["type"] = ["null", "int"]
    assert disagreements(OrderPlaced, schema) == [
        ('relayflow.orders.OrderPlaced field items[].quantity: model says int, '
        '.avsc says ["null", "int"]')]


class Colour(StrEnum):
    RED = "RED"
    BLUE = "BLUE"


class Shade(Enum):
    DARK = "DARK"
    LIGHT = "LIGHT"


class Rich(Event):
    avro_name: ClassVar[str] = "test.rich.Rich"

    colour: Colour = Colour.RED
    level: Literal["LOW", "HIGH"]
    counts: dict[str, int] = Field(default_factory=dict)
    ratio: float
    flag: bool = False
    blob: bytes
    day: date
    price: Decimal
    labels: list[Annotated[str, Field(min_length=1)]]
    since: datetime | None = None


def _rich_schema() -> dict[str, Any]:
    return {"type": "record", "name": "Rich", "namespace": "test.rich", "fields": [
        {"name": "event_id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "colour", "type": {"type": "enum", "name": "Colour", "symbols": ["RED", "BLUE"]},
         "default": "RED"},
        {"name": "level", "type": {"type": "enum", "name": "Level", "symbols": ["LOW", "HIGH"]}},
        {"name": "counts", "type": {"type": "map", "values": "long"}, "default": {}},
        {"name": "ratio", "type": "double"},
        {"name": "flag", "type": "boolean", "default": False},
        {"name": "blob", "type": "bytes"},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9,
                                   "scale": 2}},
        {"name": "labels", "type": {"type": "array", "items": "string"}},
        {"name": "since", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}],
         "default": None},
    ]}


def test_enums_maps_and_logical_types_agree_and_round_trip(tmp_path: Path) -> None:
    assert disagreements(Rich, _rich_schema()) == []
    codec = AvroCodec([Rich], schema_folder=_write(tmp_path, _rich_schema()))
    event = Rich(event_id=_ID, occurred_at=_AT, level="HIGH", counts={"a": 1}, ratio=0.5,
                 blob=b"\x00\xff", day=date(2025, 1, 2), price=Decimal("12.34"), labels=["x"],
                 since=datetime(2025, 1, 1, tzinfo=UTC))
    assert codec.decode(codec.encode(event)) == event


@pytest.mark.parametrize(("change", "line"), [
    (lambda s: _field(s, "level")["type"].update(symbols=["LOW", "MEDIUM", "HIGH"]),
     "field level: model allows ['HIGH', 'LOW'], .avsc enum Level has ['LOW', 'MEDIUM', 'HIGH']"),
    (_retype("level", "string"), ""),  # a Literal may narrow a string: no problem
    (_retype("counts", {"type": "map", "values": "string"}),
     'field counts{}: model says int, .avsc says "string"'),
    (_retype("flag", "int"), 'field flag: model says bool, .avsc says "int"'),
    (_retype("ratio", "long"), 'field ratio: model says float, .avsc says "long"'),
    (_retype("day", {"type": "long", "logicalType": "timestamp-millis"}),
     'field day: model says date, .avsc says {"type": "long", "logicalType": "timestamp-millis"}'),
    (_retype("since", ["null", "long"]),
     'field since: model says datetime | None, .avsc says ["null", "long"]'),
    (_default("colour", "BLUE"),
     "field colour: model has default <Colour.RED: 'RED'>, .avsc has default \"BLUE\""),
    (_default("counts", {"a": 1}), ("field counts: model has default {}, .avsc has default "
                                   '{"a": 1}')),
], ids=["enum-symbols", "literal-string", "map-values", "bool-int", "float-long", "date",
        "optional-timestamp", "enum-default", "map-default"])
def test_enum_map_and_logical_disagreements(change: Callable[[dict[str, Any]], None],
                                            line: str) -> None:
    schema = _rich_schema()
    change(schema)
    assert disagreements(Rich, schema) == ([f"test.rich.Rich {line}"] if line else [])


def test_an_enum_fastavro_cannot_write_is_named(tmp_path: Path) -> None:
    class Shaded(Event):
        avro_name: ClassVar[str] = "test.shade.Shaded"
        shade: Shade

    schema = {"type": "record", "name": "Shaded", "namespace": "test.shade", "fields": [
        *_rich_schema()["fields"][:2],
        {"name": "shade", "type": {"type": "enum", "name": "Shade", "symbols": ["DARK", "LIGHT"]}},
    ]}
    assert disagreements(Shaded, schema) == [
        ("test.shade.Shaded field shade: model says Shade, an Enum whose members are not str: "
        "fastavro cannot write them (use StrEnum)")]
    codec = AvroCodec([Shaded], schema_folder=_write(tmp_path, schema))
    with pytest.raises(EncodeError, match=r"field shade is <Shade\.DARK"):
        codec.encode(Shaded(event_id=_ID, occurred_at=_AT, shade=Shade.DARK))

    class AsValues(Shaded):
        model_config = ConfigDict(use_enum_values=True)

    assert disagreements(AsValues, schema) == []


def _app(folder: Path, *models: type[Event]) -> Application:
    return Application(name="shop", event_types=models, topics=(), routes=(),
                       schema_folder=folder)


def test_an_application_whose_model_and_schema_agree_is_built(tmp_path: Path) -> None:
    assert _app(_write(tmp_path, _placed_schema()), Placed).problems() == []


def test_an_application_refuses_a_model_that_disagrees_with_its_schema(tmp_path: Path) -> None:
    schema = _placed_schema()
    _retype("lines.quantity", "string")(schema)
    with pytest.raises(ValueError, match="application 'shop' is inconsistent") as raised:
        _app(_write(tmp_path, schema), Placed)
    assert str(raised.value).splitlines()[1:] == [
        '  test.orders.Placed field lines[].quantity: model says int, .avsc says "string"']


@pytest.mark.parametrize(("namespace", "line"), [
    ("test.order", "test.orders.Placed: the .avsc names test.order.Placed"),
    (None, "test.orders.Placed: no .avsc file declares it"),
])
def test_an_application_names_an_event_without_its_schema(
        tmp_path: Path, namespace: str | None, line: str) -> None:
    if namespace is not None:
        _write(tmp_path, {**_placed_schema(), "namespace": namespace})
    with pytest.raises(ValueError, match="inconsistent") as raised:
        _app(tmp_path, Placed)
    assert str(raised.value).splitlines()[1:] == [f"  {line}"]


@pytest.mark.parametrize(("change", "message"), [
    (_rename, ('test.orders.Placed does not fit its .avsc: field order_ref has no value, '
              'the .avsc wants "string"')),
    (_retype("order_id", "long"), ("test.orders.Placed does not fit its .avsc: field order_id "
                                  "is 'A-1' (str), the .avsc wants \"long\"")),
    (_retype("lines.quantity", "string"),
     ("test.orders.Placed does not fit its .avsc: field test.orders.Line.quantity is 2 (int), "
     'the .avsc wants "string"')),
], ids=["renamed", "type", "nested"])
def test_encoding_an_event_that_does_not_fit_names_the_event_and_field(
        tmp_path: Path, change: Callable[[dict[str, Any]], None], message: str) -> None:
    schema = _placed_schema()
    change(schema)
    codec = AvroCodec([Placed], schema_folder=_write(tmp_path, schema))
    with pytest.raises(EncodeError) as raised:
        codec.encode(_placed())
    assert str(raised.value) == message
