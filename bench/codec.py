"""Codec: every format (Avro, JSON Schema, Protobuf) and every event, decode and encode, one run.

Both directions include the pydantic model on each side (the bridge needs a
validated model either way), so the figures compare what a record costs the
bridge, not the serializers alone.

* The same order (the reference ``OrderPlaced``, three lines) in each format:
  Avro (fastavro, single-object encoding), JSON validated by its JSON Schema
  (``jsonschema``), Protobuf (the ``protobuf`` runtime), and ``json-plain``:
  JSON through pydantic alone, no schema (the floor). Ratios are against Avro.
* Each event of the parcels example (Protobuf and JSON Schema) and the
  reference's ``OrderPlaced`` (Avro), in the format it declares, through
  its application's own codec.

    python -m bench.codec [--events 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from bench.common import record, table
from examples.parcels.app import APP as PARCELS
from examples.parcels.events import ParcelClosed, ParcelDelivered, ParcelShipped
from relayflow.reference.app import APP
from relayflow.reference.events import OrderLine, OrderPlaced
from schemas.formats import EventCodec, FormatCodec
from schemas.models import Event

FOLDER = Path(__file__).resolve().parent / "formats"
"""``orders.proto`` and ``OrderJson.json``: ``OrderPlaced`` in the other two formats."""


class OrderJson(OrderPlaced):
    """``OrderPlaced`` as JSON validated by ``OrderJson.json``."""

    avro_name: ClassVar[str] = "bench.OrderJson"
    schema_format: ClassVar[str] = "json"


class OrderProto(OrderPlaced):
    """``OrderPlaced`` as the Protobuf message ``bench.OrderProto``."""

    avro_name: ClassVar[str] = "bench.OrderProto"
    schema_format: ClassVar[str] = "protobuf"


def sample(count: int, model: type[OrderPlaced] = OrderPlaced) -> list[OrderPlaced]:
    """Orders with three lines each, like a real basket."""
    return [model(
        event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), order_id=f"o-{n}",
        customer_id=f"c-{n % 97}", shipping_country="DE", amount_cents=3 * 1250,
        items=tuple(OrderLine(sku=f"SKU-{k}", quantity=1, unit_price_cents=1250)
                    for k in range(3)),
    ) for n in range(count)]


def best_rate(operation: Callable[[], object], count: int, rounds: int) -> float:
    """Operations per second of the fastest of ``rounds`` runs of ``count`` operations."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        operation()
        best = min(best, time.perf_counter() - started)
    return count / best


def measured(codec: EventCodec, events: Sequence[Event],
             rounds: int) -> tuple[float, float, float]:
    """Encode and decode rates of ``events`` through ``codec``, and their mean size."""
    values = [codec.encode(e) for e in events]
    names = [e.avro_name for e in events]  # the event-type header a bare body needs
    encode = best_rate(lambda: [codec.encode(e) for e in events], len(events), rounds)
    decode = best_rate(lambda: [codec.decode(v, n) for v, n in zip(values, names, strict=True)],
                       len(events), rounds)
    return encode, decode, sum(map(len, values)) / len(values)


def _plain_json(events: Sequence[Event], rounds: int) -> tuple[float, float, float]:
    values = [e.model_dump_json().encode() for e in events]
    encode = best_rate(lambda: [e.model_dump_json().encode() for e in events], len(events),
                       rounds)
    decode = best_rate(lambda: [OrderPlaced.model_validate_json(v) for v in values],
                       len(events), rounds)
    return encode, decode, sum(map(len, values)) / len(values)


def main(args: argparse.Namespace) -> str:
    others = FormatCodec([OrderJson, OrderProto], FOLDER)
    formats = {
        "avro": measured(APP.codec(), sample(args.events), args.rounds),
        "json-schema": measured(others, sample(args.events, OrderJson), args.rounds),
        "protobuf": measured(others, sample(args.events, OrderProto), args.rounds),
        "json-plain": _plain_json(sample(args.events), args.rounds),
    }
    avro = formats["avro"]
    ratios = {f"{what} {name}/avro": rates[at] / avro[at]
              for name, rates in formats.items() if name != "avro"
              for at, what in enumerate(("encode", "decode", "size"))}
    per_event: dict[str, tuple[float, float, float]] = {}
    parcels = PARCELS.codec()
    now = datetime.now(UTC)
    parcel_events: list[Event] = [
        ParcelShipped(event_id=uuid.uuid4(), occurred_at=now, parcel_id="p", carrier="dhl",
                      weight_grams=1200),
        ParcelDelivered(event_id=uuid.uuid4(), occurred_at=now, parcel_id="p", signed_by="ann"),
        ParcelClosed(event_id=uuid.uuid4(), occurred_at=now, parcel_id="p",
                     correlation_id="c", causation_id="e", status="DELIVERED", signed_by="ann"),
    ]
    each = max(args.events // 5, 1)
    reference = APP.codec()
    for codec, event in [(reference, sample(1)[0]),
                         *((parcels, e) for e in parcel_events)]:
        name = f"{type(event).__name__} ({codec.format_of(event.avro_name)})"
        per_event[name] = measured(codec, [event] * each, args.rounds)
    record("codec", vars(args), {"formats": formats, "ratios": ratios, "events": per_event})
    return "\n".join([
        table("One order, each format (events per second, one core)",
              ["format", "encode/s", "decode/s", "bytes/event"],
              [(name, *rates) for name, rates in formats.items()]), "",
        *(f"{name}: {value:.2f}x" for name, value in ratios.items()), "",
        table("Every event in its own format (events per second, one core)",
              ["event (format)", "encode/s", "decode/s", "bytes/event"],
              [(name, *rates) for name, rates in per_event.items()]),
    ])


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(main(parse()))
