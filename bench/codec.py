"""Codec: fastavro single-object encoding vs JSON through pydantic, for the same events.

Both directions include the pydantic model on each side (the bridge needs a
validated model either way), so the figures compare what a record costs the
bridge, not the serializers alone.

    python -m bench.codec [--events 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from bench.common import record, table
from relayflow.reference.app import APP
from relayflow.reference.events import OrderLine, OrderPlaced


def sample(count: int) -> list[OrderPlaced]:
    """Orders with three lines each, like a real basket."""
    return [OrderPlaced(
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


def main(args: argparse.Namespace) -> str:
    codec = APP.codec()
    events = sample(args.events)
    avro = [codec.encode(e) for e in events]
    json = [e.model_dump_json().encode() for e in events]
    rates = {
        "avro encode": best_rate(lambda: [codec.encode(e) for e in events], len(events),
                                 args.rounds),
        "json encode": best_rate(lambda: [e.model_dump_json().encode() for e in events],
                                 len(events), args.rounds),
        "avro decode": best_rate(lambda: [codec.decode(b) for b in avro], len(events),
                                 args.rounds),
        "json decode": best_rate(lambda: [OrderPlaced.model_validate_json(b) for b in json],
                                 len(events), args.rounds),
    }
    size = {"avro": sum(map(len, avro)) / len(avro), "json": sum(map(len, json)) / len(json)}
    ratios = {"encode avro/json": rates["avro encode"] / rates["json encode"],
              "decode avro/json": rates["avro decode"] / rates["json decode"],
              "size avro/json": size["avro"] / size["json"]}
    record("codec", vars(args), {"rates": rates, "bytes": size, "ratios": ratios})
    rows = [(name, rate, size[name.split()[0]]) for name, rate in rates.items()]
    return "\n".join([
        table("Codec (events per second, one core)", ["operation", "events/s", "bytes/event"],
              rows), "",
        *(f"{name}: {value:.2f}x" for name, value in ratios.items()),
    ])


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(main(parse()))
