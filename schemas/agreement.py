"""Whether an event model and its ``.avsc`` file say the same thing.

Every event is written twice: an ``.avsc`` file (the source of truth) and the
pydantic model that mirrors it. Nothing else ties the two together: a field
renamed in the ``.avsc`` fails only when a record is encoded, and a field that
only the model has is silently dropped. ``disagreements`` compares them field
by field, and ``relayflow.application.Application`` refuses, when it is built,
an application whose models and schemas disagree. It checks:

* the model's ``avro_name`` against the schema's namespace and name;
* field names and their order, recursively into nested records (inside
  arrays, maps and unions);
* types: ``str``, ``int`` (Avro ``int`` or ``long``), ``float`` (``float`` or
  ``double``), ``bool``, ``bytes`` (``bytes`` or ``fixed``), ``X | None`` with
  ``["null", X]``, ``tuple[X, ...]``, ``list[X]`` or ``Sequence[X]`` with arrays,
  ``dict[str, X]`` with maps, a nested model with a record, a ``Literal`` or
  ``Enum`` with an enum of the same symbols (or with a string), and the
  logical types: ``UUID`` (``uuid``), ``datetime`` (``timestamp-*``), ``date``,
  ``time`` (``time-*``), ``Decimal`` (``decimal``);
* defaults: a field has one in both or in neither, and the two are equal (a
  union's Avro default is for its first branch).

It deliberately leaves alone what the model adds on purpose (lengths, ranges,
patterns: a model may be narrower than Avro), whether an ``int`` fits Avro's
32-bit ``int``, a decimal's precision and scale, the names of nested records,
docs, aliases and field-level pydantic options (``alias``, ``exclude``).
"""

from __future__ import annotations

import enum
import json
import types
from collections import abc
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, NewType, Union, get_args, get_origin
from uuid import UUID

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from schemas.models import Event

__all__ = ["contract_disagreements", "describe_avro_type", "disagreements"]

_Problem = tuple[str, str]
"""A field path (``items[].quantity``) and what is wrong there."""

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})
_RECORDS = frozenset({"record", "error"})
_ARRAYS = frozenset({list, abc.Sequence})
_MAPS = frozenset({dict, abc.Mapping})
_UNIONS = frozenset({Union, types.UnionType})

_PYTHON: dict[str, type] = {
    "null": type(None), "boolean": bool, "int": int, "long": int, "float": float,
    "double": float, "bytes": bytes, "fixed": bytes, "string": str, "enum": str,
}
"""What pydantic holds (and ``model_dump`` gives fastavro) for each Avro type."""

_LOGICAL: dict[tuple[str, str], type] = {
    ("string", "uuid"): UUID,
    ("long", "timestamp-millis"): datetime,
    ("long", "timestamp-micros"): datetime,
    ("long", "local-timestamp-millis"): datetime,
    ("long", "local-timestamp-micros"): datetime,
    ("int", "date"): date,
    ("int", "time-millis"): time,
    ("long", "time-micros"): time,
    ("bytes", "decimal"): Decimal,
    ("fixed", "decimal"): Decimal,
}
"""Logical types fastavro converts; any other is ignored, as the Avro specification says."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FROM_LOGICAL: dict[str, Callable[[Any], Any]] = {
    "uuid": UUID,
    "timestamp-millis": lambda v: _EPOCH + timedelta(milliseconds=v),
    "timestamp-micros": lambda v: _EPOCH + timedelta(microseconds=v),
    "local-timestamp-millis": lambda v: _EPOCH.replace(tzinfo=None) + timedelta(milliseconds=v),
    "local-timestamp-micros": lambda v: _EPOCH.replace(tzinfo=None) + timedelta(microseconds=v),
    "date": lambda v: _EPOCH.date() + timedelta(days=v),
    "time-millis": lambda v: (_EPOCH + timedelta(milliseconds=v)).time(),
    "time-micros": lambda v: (_EPOCH + timedelta(microseconds=v)).time(),
}
"""A default's JSON value (a number or string) as the logical type's Python value."""

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "null": (type(None),), "boolean": (bool,), "int": (int,), "long": (int,),
    "float": (int, float), "double": (int, float), "string": (str,),
}
"""The JSON values a default of each primitive may be (exactly: a bool is no int here)."""


def disagreements(model: type[Event], schema: Mapping[str, Any]) -> list[str]:
    """Where an event model and its Avro schema disagree.

    Args:
        model: The event's pydantic model.
        schema: Its record schema, as parsed from the ``.avsc`` file.

    Returns:
        One line per problem, naming the event and the field path, e.g.
        ``relayflow.orders.OrderPlaced field items[].quantity: model says
        int | None, .avsc says "int"``; empty when they agree.
    """
    name: str | None = getattr(model, "avro_name", None)
    label = name or model.__name__
    declared = _full_name(schema)
    found = []
    if name is None:
        found.append(f"{label}: the model has no avro_name; the .avsc names {declared}")
    elif name != declared:
        found.append(f"{label}: the .avsc names {declared}")
    if schema.get("type") not in _RECORDS:
        return [*found, f"{label}: the .avsc is not a record"]
    walk = _Walk(_named_types(schema))
    return found + [f"{label} field {path}: {text}" for path, text in walk.record(model, schema)]


def contract_disagreements(models: Iterable[type[Event]],
                           schemas: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """``disagreements`` of each model with its schema, and the models that have none.

    Args:
        models: Event models.
        schemas: Schemas by Avro full name, as ``schemas.codec.load_schemas`` reads them.

    Returns:
        One line per problem; empty when every model agrees with its schema.
    """
    by_short_name: dict[str, list[str]] = {}
    for full_name in schemas:
        by_short_name.setdefault(full_name.rpartition(".")[2], []).append(full_name)
    found: list[str] = []
    for model in models:
        name = getattr(model, "avro_name", model.__name__)
        schema = schemas.get(name)
        if schema is None:
            # A wrong namespace would otherwise read as a missing file: say which part differs.
            near = by_short_name.get(name.rpartition(".")[2], [])
            if len(near) != 1:
                found.append(f"{name}: no .avsc file declares it")
                continue
            schema = schemas[near[0]]
        found += disagreements(model, schema)
    return found


def describe_avro_type(avro: Any) -> str:
    """An Avro type as JSON, with named types (records, enums, fixed) by their names.

    Args:
        avro: A type as it appears in a schema.
    """
    return json.dumps(_brief(avro))


def _brief(avro: Any) -> Any:
    if isinstance(avro, list):
        return [_brief(branch) for branch in avro]
    if not isinstance(avro, Mapping):
        return avro
    if avro.get("type") in _NAMED:
        return avro["name"]
    kept = ("type", "logicalType", "items", "values", "precision", "scale")
    return {key: _brief(value) for key, value in avro.items() if key in kept}


def _full_name(named: Mapping[str, Any], namespace: str = "") -> str:
    name = str(named.get("name", ""))
    if "." in name:  # a dotted name is already the full name; its namespace is ignored
        return name
    namespace = str(named.get("namespace", namespace))
    return f"{namespace}.{name}" if namespace else name


def _named_types(schema: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Every record, enum and fixed a schema defines, by full and by short name.

    A schema may define a type once and refer to it by name afterwards.
    """
    found: dict[str, Mapping[str, Any]] = {}

    def visit(avro: Any, namespace: str) -> None:
        if isinstance(avro, list):
            for branch in avro:
                visit(branch, namespace)
            return
        if not isinstance(avro, Mapping):
            return
        kind = avro.get("type")
        if kind in _NAMED:
            full_name = _full_name(avro, namespace)
            found.setdefault(full_name, avro)
            found.setdefault(full_name.rpartition(".")[2], avro)
            namespace = full_name.rpartition(".")[0]
        for nested in (kind, avro.get("items"), avro.get("values"),
                       *(field["type"] for field in avro.get("fields", ()))):
            visit(nested, namespace)

    visit(schema, "")
    return found


def _unwrap(annotation: Any) -> Any:
    """The type under ``Annotated[...]`` (constraints) and ``NewType``."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        elif isinstance(annotation, NewType):
            annotation = annotation.__supertype__
        else:
            return annotation


def _branches(annotation: Any) -> list[Any]:
    annotation = _unwrap(annotation)
    if get_origin(annotation) in _UNIONS:
        return [_unwrap(branch) for branch in get_args(annotation)]
    return [annotation]


def _describe(annotation: Any) -> str:
    """A model's type as its source spells it, without module paths."""
    annotation = _unwrap(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is None or annotation is type(None):
        return "None"
    if origin in _UNIONS:
        return " | ".join(map(_describe, args))
    if origin is Literal:
        return f"Literal[{', '.join(map(repr, args))}]"
    if origin is not None:
        inner = ", ".join("..." if arg is Ellipsis else _describe(arg) for arg in args)
        return f"{getattr(origin, '__name__', repr(origin))}[{inner}]"
    return str(getattr(annotation, "__name__", repr(annotation)))


def _choices(annotation: Any) -> tuple[Any, ...] | None:
    """The values a ``Literal`` or an ``Enum`` allows; None for any other type."""
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return tuple(member.value for member in annotation)
    return None


def _item_type(annotation: Any) -> Any | None:
    """The item type of an array-like annotation; None when it is not one."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is tuple and args[1:] == (Ellipsis,):  # tuple[X, ...]; tuple[X, Y] is no array
        return args[0]
    return args[0] if origin in _ARRAYS and args else None


def _value_type(annotation: Any) -> Any | None:
    """The value type of a ``dict[str, X]``-like annotation; None when it is not one."""
    origin, args = get_origin(annotation), get_args(annotation)
    return args[1] if origin in _MAPS and args and _unwrap(args[0]) is str else None


def _lcs(ours: list[str], theirs: list[str]) -> set[str]:
    """The longest run of fields both sides keep in the same order."""
    table = [[0] * (len(theirs) + 1) for _ in range(len(ours) + 1)]
    for i in reversed(range(len(ours))):
        for j in reversed(range(len(theirs))):
            table[i][j] = (table[i + 1][j + 1] + 1 if ours[i] == theirs[j]
                           else max(table[i + 1][j], table[i][j + 1]))
    kept: set[str] = set()
    i = j = 0
    while i < len(ours) and j < len(theirs):
        if ours[i] == theirs[j]:
            kept.add(ours[i])
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return kept


def _place(names: list[str], name: str) -> str:
    index = names.index(name)
    return f"after {names[index - 1]}" if index else "first"


def _names(ours: list[str], theirs: list[str], prefix: str) -> Iterator[_Problem]:
    """Fields on one side only (a rename when both sides have one at the same place), order."""
    only_theirs = [name for name in theirs if name not in ours]
    for index, name in enumerate(ours):
        if name in theirs:
            continue
        there = theirs[index] if index < len(theirs) else None
        if there in only_theirs:
            only_theirs.remove(there)
            yield prefix + name, f"the .avsc has {there} in its place"
        else:
            yield prefix + name, "only in the model (encoding drops it)"
    for name in only_theirs:
        yield prefix + name, "only in the .avsc"
    ours = [name for name in ours if name in theirs]
    theirs = [name for name in theirs if name in ours]
    kept = _lcs(ours, theirs)
    for name in ours:
        if name not in kept:
            yield prefix + name, (f"out of order: the model has it {_place(ours, name)}, "
                                  f"the .avsc {_place(theirs, name)}")


def _model_default(field: FieldInfo) -> Any:
    # A factory that reads the other fields' values has no value on its own.
    if field.default_factory_takes_validated_data:
        return None
    return field.get_default(call_default_factory=True)


def _same_value(annotation: Any, model_value: Any, avro_value: Any) -> bool:
    """Equal once both are validated as the field's type (``[]`` is ``()``, ``"A"`` a member)."""
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)

    def validated(value: Any) -> Any:
        try:
            return adapter.validate_python(value)
        except ValidationError:
            return value

    return bool(validated(model_value) == validated(avro_value))


def _kind(avro: Any) -> tuple[str, str]:
    """An Avro type's kind (``"long"``, ``"array"``, ...) and logical type (or ``""``)."""
    if isinstance(avro, Mapping):
        return str(avro.get("type")), str(avro.get("logicalType", ""))
    return str(avro), ""


@dataclass(frozen=True, slots=True)
class _Where:
    """Where the walk is: the field path, and whether the model dumps enums as values."""

    path: str
    enum_values: bool

    def then(self, suffix: str) -> _Where:
        return _Where(self.path + suffix, self.enum_values)

    def problem(self, text: str) -> list[_Problem]:
        return [(self.path, text)]

    def mismatch(self, annotation: Any, avro: Any) -> list[_Problem]:
        return self.problem(
            f"model says {_describe(annotation)}, .avsc says {describe_avro_type(avro)}")


class _Walk:
    """Compares a model with a record schema, resolving references to named types."""

    def __init__(self, named: Mapping[str, Mapping[str, Any]]) -> None:
        self._named = named
        self._open: set[tuple[type[BaseModel], int]] = set()

    def _resolve(self, avro: Any) -> Any:
        if isinstance(avro, str) and avro not in _PRIMITIVES:
            return self._named.get(avro, avro)
        if isinstance(avro, Mapping) and isinstance(avro.get("type"), list | Mapping):
            return self._resolve(avro["type"])  # {"type": {...}}: a type wrapped once more
        return avro

    def record(self, model: type[BaseModel], record: Mapping[str, Any],
               prefix: str = "") -> list[_Problem]:
        """Problems of a model against a record schema, field paths starting with ``prefix``."""
        key = (model, id(record))
        if key in self._open:  # a recursive type: its fields are being compared already
            return []
        self._open.add(key)
        fields = {field["name"]: field for field in record.get("fields", ())}
        found = list(_names(list(model.model_fields), list(fields), prefix))
        enum_values = bool(model.model_config.get("use_enum_values"))
        for name, info in model.model_fields.items():
            if name in fields:
                where = _Where(prefix + name, enum_values)
                # Defaults only mean something once the types agree.
                found += (self.compare(info.annotation, fields[name]["type"], where)
                          or self._default(info, fields[name], where.path))
        self._open.discard(key)
        return found

    def compare(self, annotation: Any, avro: Any, where: _Where) -> list[_Problem]:
        """Problems of a model type against an Avro type (a union or not)."""
        avro = self._resolve(avro)
        ours = _branches(annotation)
        theirs = [self._resolve(b) for b in avro] if isinstance(avro, list) else [avro]
        if len(ours) == 1 and len(theirs) == 1:
            return self._one(ours[0], theirs[0], where)
        ours_rest = [branch for branch in ours if branch is not type(None)]
        theirs_rest = [branch for branch in theirs if branch != "null"]
        same_nullability = (len(ours_rest) < len(ours)) == (len(theirs_rest) < len(theirs))
        if same_nullability and len(ours_rest) == len(theirs_rest):
            if len(ours_rest) == 1:
                inner = self._one(ours_rest[0], theirs_rest[0], where)
                # A mismatch of the branch itself reads better as the whole union's.
                if all(path != where.path for path, _ in inner):
                    return inner
            elif self._pairs(ours_rest, theirs_rest, where):
                return []
        return where.mismatch(annotation, avro)

    def _pairs(self, ours: list[Any], theirs: list[Any], where: _Where) -> bool:
        """Whether every branch of a wider union has a twin on the other side."""
        fits = [[not self._one(o, t, where) for t in theirs] for o in ours]
        return all(map(any, fits)) and all(map(any, zip(*fits, strict=True)))

    def _one(self, annotation: Any, avro: Any, where: _Where) -> list[_Problem]:
        """Problems of one (non-union) model type against one (non-union) Avro type."""
        annotation, avro = _unwrap(annotation), self._resolve(avro)
        if isinstance(avro, list):
            return self.compare(annotation, avro, where)
        kind, _ = _kind(avro)
        if kind in _RECORDS:
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                return self.record(annotation, avro, f"{where.path}.")
        elif kind == "array":
            if (item := _item_type(annotation)) is not None:
                return self.compare(item, avro["items"], where.then("[]"))
        elif kind == "map":
            if (value := _value_type(annotation)) is not None:
                return self.compare(value, avro["values"], where.then("{}"))
        else:
            return _leaf(annotation, avro, where)
        return where.mismatch(annotation, avro)

    def _default(self, info: FieldInfo, field: Mapping[str, Any], path: str) -> list[_Problem]:
        ours, theirs = not info.is_required(), "default" in field
        if not ours and not theirs:
            return []
        shown = json.dumps(field.get("default"))
        if not theirs:
            return [(path, f"model has default {_model_default(info)!r}, .avsc has no default")]
        if not ours:
            return [(path, f"model has no default (required), .avsc has default {shown}")]
        avro = self._resolve(field["type"])
        try:
            avro_value = self._from_avro(field["default"], avro)
        except (ValueError, TypeError, KeyError):
            union = " (a union's default is for its first branch)" if isinstance(avro, list) else ""
            return [(path, f".avsc default {shown} does not fit {describe_avro_type(avro)}{union}")]
        model_value = _model_default(info)
        if _same_value(info.annotation, model_value, avro_value):
            return []
        return [(path, f"model has default {model_value!r}, .avsc has default {shown}")]

    def _from_avro(self, value: Any, avro: Any) -> Any:
        """A default's JSON value as the Python value fastavro would read.

        Raises:
            ValueError: The value does not fit the type.
        """
        avro = self._resolve(avro)
        if isinstance(avro, list):
            return self._from_avro(value, avro[0])
        kind, _ = _kind(avro)
        if kind == "array" and isinstance(value, list):
            return [self._from_avro(item, avro["items"]) for item in value]
        if kind == "map" and isinstance(value, dict):
            return {key: self._from_avro(item, avro["values"]) for key, item in value.items()}
        if kind in _RECORDS and isinstance(value, dict):
            return {field["name"]: self._from_avro(value[field["name"]], field["type"])
                    for field in avro["fields"] if field["name"] in value}
        return _scalar_from_avro(value, avro)


def _scalar_from_avro(value: Any, avro: Any) -> Any:
    kind, logical = _kind(avro)
    if kind == "enum" and value in avro["symbols"]:
        return value
    if kind in {"bytes", "fixed"} and isinstance(value, str):
        raw = value.encode("latin-1")  # Avro writes a bytes default as code points 0-255
        if logical != "decimal":
            return raw
        return Decimal(int.from_bytes(raw, "big", signed=True)).scaleb(-int(avro.get("scale", 0)))
    if type(value) not in _JSON_TYPES.get(kind, ()):
        raise ValueError(value)
    return _FROM_LOGICAL.get(logical, lambda v: v)(value)


def _leaf(annotation: Any, avro: Any, where: _Where) -> list[_Problem]:
    """Problems of a model type against a primitive, logical, enum or fixed Avro type."""
    kind, logical = _kind(avro)
    expected = _LOGICAL.get((kind, logical)) or _PYTHON.get(kind)
    if expected is None:  # a name left unresolved, or a kind of type Avro does not have
        return (where.problem(f"the .avsc refers to {avro}, which it does not define")
                if isinstance(avro, str) else where.mismatch(annotation, avro))
    if annotation is expected:
        return []
    choices = _choices(annotation)
    # bool is an int to isinstance; Avro keeps them apart, so compare exact types.
    if choices is None or any(type(choice) is not expected for choice in choices):
        return where.mismatch(annotation, avro)
    if isinstance(annotation, type) and not issubclass(annotation, expected) \
            and not where.enum_values:
        # model_dump(mode="python") keeps Enum members; fastavro writes only a str (or int).
        return where.problem(f"model says {_describe(annotation)}, an Enum whose members are "
                             f"not {expected.__name__}: fastavro cannot write them (use StrEnum)")
    if kind == "enum" and set(choices) != set(avro["symbols"]):
        return where.problem(f"model allows {sorted(choices)}, .avsc enum {avro['name']} has "
                             f"{avro['symbols']}")
    return []
