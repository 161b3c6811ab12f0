"""What every benchmark shares: its own stack, a trivial workflow, events, a table.

Benchmarks run on a stack of their own (``.relayflow-bench/``, ports
29092/29093/27233/28233 or from ``RELAYFLOW_BENCH_PORT_BASE``, purged before
and after so runs compare) unless
``RELAYFLOW_BENCH_STACK=external``, which uses the ``RELAYFLOW_*`` addresses
as they are. Each script prints a table and the ratios, measured side by side
in one run, and appends a JSON line to ``bench/results.jsonl``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from temporalio import workflow

from relayflow import devstack
from relayflow.config.settings import Settings
from relayflow.kafka.reads import committed_to_end, partitions_of, start_group_at_end
from relayflow.reference.app import APP
from relayflow.reference.events import OrderLine, OrderPlaced
from relayflow.runtime.clients import kafka_clients
from schemas.framing import to_record

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.jsonl"
CODEC = APP.codec()
_TICKS = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")


@workflow.defn(name="BenchNoop")
class BenchNoop:
    """The cheapest workflow there is: what a start costs, not what a saga costs."""

    @workflow.run
    async def run(self, _: Any) -> str:
        """Return when it first runs: ``workflow.now()`` is when that was."""
        return workflow.now().isoformat()


def bench_ports() -> tuple[int, int, int, int]:
    """Kafka, its controller, Temporal and its UI: 29092/29093/27233/28233.

    ``RELAYFLOW_BENCH_PORT_BASE=N`` moves them to N..N+3 (``bench.servers`` puts
    its second Temporal 10 above the first), for a machine where they are taken.
    """
    base = os.environ.get("RELAYFLOW_BENCH_PORT_BASE")
    if base is None:
        return 29092, 29093, 27233, 28233
    return int(base), int(base) + 1, int(base) + 2, int(base) + 3


@contextlib.contextmanager
def bench_stack(*, keep: bool = False) -> Iterator[Settings]:
    """A fresh local stack for benchmarks (or the external one), torn down afterwards."""
    if os.environ.get("RELAYFLOW_BENCH_STACK") == "external":
        yield Settings()
        return
    kafka, controller, temporal, ui = bench_ports()
    settings = Settings(
        data_dir=ROOT / ".relayflow-bench",
        kafka_port=kafka, kafka_controller_port=controller,
        temporal_port=temporal, temporal_ui_port=ui,
        kafka_bootstrap_servers=f"127.0.0.1:{kafka}", temporal_address=f"127.0.0.1:{temporal}",
        # Endpoints on free ports: a benchmark never collides with a running bridge or worker.
        bridge_http_port=0, worker_http_port=0, temporal_metrics_port=-1,
    )
    devstack.down(settings, purge=True)  # every run starts from the same empty state
    devstack.up(settings)
    try:
        yield settings
    finally:
        if not keep:
            devstack.down(settings, purge=True)


def orders(count: int, prefix: str | None = None) -> list[OrderPlaced]:
    """Routine orders (they complete in the reference saga), unique ids per call."""
    prefix = prefix or uuid.uuid4().hex[:6]
    return [OrderPlaced(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                        order_id=f"{prefix}-{n}", customer_id="bench",
                        items=(OrderLine(sku="SKU-TEA", quantity=1, unit_price_cents=100),),
                        amount_cents=100) for n in range(count)]


async def produce(settings: Settings, topic: str, events: Sequence[OrderPlaced]) -> float:
    """Produce events as fast as the producer batches them; returns the seconds it took."""
    producer = kafka_clients(settings).producer(linger_ms=5)
    await producer.start()
    started = time.perf_counter()
    try:
        sends = []
        for event in events:
            record = to_record(event, CODEC)
            sends.append(await producer.send(topic, record.value, key=record.key,
                                             headers=record.headers))
        for sent in sends:
            await sent
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def start_at_end(settings: Settings, group: str) -> None:
    """Make ``group`` read the reference app's input topics from their current end."""
    await start_group_at_end(kafka_clients(settings), group, APP.input_topics)


async def caught_up(settings: Settings, group: str) -> None:
    """Return once ``group`` has committed every input partition up to its current end."""
    kafka = kafka_clients(settings)
    await committed_to_end(kafka, group, await partitions_of(kafka, APP.input_topics))


def group_cpu(pgid: int | None) -> float:
    """CPU seconds of a process group so far (its live members, and the reaped children
    its leader waited for)."""
    if pgid is None:
        return 0.0
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) == pgid:  # fields[0] is field 3 (state); pgrp is field 5
                total += int(fields[11]) + int(fields[12])
                if int(stat.parent.name) == pgid:
                    total += int(fields[13]) + int(fields[14])
    return total / _TICKS


def alternating(variants: Sequence[T], rounds: int) -> Iterator[tuple[int, list[T]]]:
    """Round numbers (from 1) and the variants' order in each: as given, then reversed (ABBA).

    Whatever runs later meets a busier stack (the dev server's SQLite grows
    with every start, and nothing here ends the workflows). Alternating the
    order gives every variant every position equally often over an even
    number of rounds, so a steady drift cancels out of each variant's median
    (the middle two of an even count, averaged); a fixed order charges it all
    to the later variants.
    """
    for number in range(1, rounds + 1):
        yield number, list(variants if number % 2 else reversed(variants))


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` (0..1) percentile, nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))
    return ordered[index]


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table (also valid Markdown) for the console and BENCHMARKS.md."""
    cells = [[str(c) for c in header], *[[_fmt(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [f"### {title}", ""]
    for n, row in enumerate(cells):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            lines.append("| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def record(name: str, params: dict[str, Any], results: dict[str, Any]) -> None:
    """Append one run's figures to ``bench/results.jsonl`` (with the machine)."""
    line = {"bench": name, "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "system": platform.platform()},
            "params": params, "results": results}
    with RESULTS.open("a") as out:
        out.write(json.dumps(line) + "\n")
