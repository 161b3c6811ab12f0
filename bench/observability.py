"""What observability costs: bridge start throughput with metrics and tracing on and off.

Side by side in one run, on one stack: the bridge starts ``BenchNoop``
workflows (no worker: only the start is measured, as in start_throughput)
for a burst of events, in three variants

* off: ``RELAYFLOW_METRICS=false`` (nothing counted) and no HTTP endpoints,
  tracing off;
* metrics: counted and served on a free port, ``/metrics`` scraped once a
  second while the bridge runs (so the exposition's cost is in);
* metrics + tracing: as metrics, plus an SDK ``TracerProvider`` with the
  ``BatchSpanProcessor`` and the OTLP/gRPC exporter (the default ``otlp``)
  sending to a real receiver in a process of its own
  (``devtools.otlp_receiver``), which counts the spans it got: the table
  shows that export really happened.

The variants alternate round by round (each round in a rotated order, after
an unmeasured burst warms the fresh stack up), so all meet the same load;
ratios are of the medians. Then, per record, in a loop (free of the stack's
noise): what ``bridge.observing`` costs with tracing off (binding the
record's log context and reading its ``traceparent``) and on (making the
consume span), and what the bridge's metrics of a started record cost on and
with metrics off, against a bare loop.

    python -m bench.observability [--events 2000] [--rounds 5] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka.structs import ConsumerRecord
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from bench.common import CODEC, bench_stack, orders, record, table
from bench.start_throughput import bridge_rate
from bridge.metrics import BridgeMetrics
from bridge.observing import RecordObserver
from devtools.otlp_receiver import OtlpReceiver, otlp_receiver
from relayflow.config.settings import Settings
from relayflow.observability.monitoring import Endpoints, monitored
from relayflow.reference.topics import ORDERS_EVENTS
from schemas.framing import to_record

OFF, METRICS, TRACING = "off", "metrics", "metrics + tracing"
VARIANTS = (OFF, METRICS, TRACING)
GOALS = {METRICS: 0.97, TRACING: 0.90}
"""Least ratio to ``off`` (issue 12: metrics cost at most 3%, metrics with tracing 10%)."""
SCRAPE_INTERVAL_S = 1.0


@dataclass
class Scrapes:
    """What a scraper fetched."""

    count: int = 0
    bytes: int = 0


@contextlib.asynccontextmanager
async def scraping(url: str) -> AsyncIterator[Scrapes]:
    """GET ``url`` once a second, as Prometheus would, while the block runs."""
    done = Scrapes()

    async def scrape() -> None:
        async with aiohttp.ClientSession() as http:
            while True:
                async with http.get(url) as answer:
                    answer.raise_for_status()
                    done.bytes += len(await answer.read())
                    done.count += 1
                await asyncio.sleep(SCRAPE_INTERVAL_S)

    task = asyncio.create_task(scrape())
    try:
        yield done
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def exporting(receiver: OtlpReceiver) -> TracerProvider:
    """A tracer provider as ``RELAYFLOW_TRACING=on`` builds it, exporting to ``receiver``."""
    provider = TracerProvider(resource=Resource({SERVICE_NAME: "relayflow-bench"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.endpoint,
                                                                    insecure=True)))
    return provider


@dataclass
class Measured:
    """One variant over the rounds."""

    rates: list[float]
    scrapes: int = 0
    spans: int = 0


async def one_round(variant: str, settings: Settings, tag: str, args: argparse.Namespace,
                    provider: TracerProvider, receiver: OtlpReceiver, into: Measured) -> None:
    """One burst of ``variant``; its rate, scrapes and spans are added to ``into``."""
    if variant == OFF:
        off = settings.model_copy(update={"metrics": False, "bridge_http_port": -1})
        into.rates.append(await bridge_rate(off, tag, args.events, args.concurrency))
        return
    tracing = provider if variant == TRACING else None
    before = receiver.spans()
    async with monitored(settings, "bridge_http_port") as monitoring, \
            scraping(f"http://127.0.0.1:{monitoring.endpoints.port}/metrics") as scrapes:
        into.rates.append(await bridge_rate(settings, tag, args.events, args.concurrency,
                                            tracer_provider=tracing, monitoring=monitoring))
    into.scrapes += scrapes.count
    if tracing is not None:
        tracing.force_flush()  # what the round made is at the receiver once this returns
        into.spans += receiver.spans() - before


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Rates per variant, round by round, and the per-record cost of the log context."""
    measured = {variant: Measured([]) for variant in VARIANTS}
    with bench_stack() as settings, tempfile.TemporaryDirectory() as folder, \
            otlp_receiver(Path(folder)) as receiver:
        provider = exporting(receiver)
        try:
            # Unmeasured: the first burst on a fresh stack pays for Temporal's caches.
            await bridge_rate(settings, "obs-warm-up", args.events, args.concurrency)
            for round_ in range(args.rounds):
                for n in range(len(VARIANTS)):
                    variant = VARIANTS[(round_ + n) % len(VARIANTS)]
                    await one_round(variant, settings, f"obs{round_}{n}", args, provider,
                                    receiver, measured[variant])
        finally:
            provider.shutdown()
    return {"variants": {v: vars(m) for v, m in measured.items()},
            "per_record_us": per_record_cost(args.records)}


def _sample_record() -> ConsumerRecord[bytes, bytes]:
    """A record as the bridge fetches it, with the contract's headers (``traceparent`` too)."""
    framed = to_record(orders(1)[0], CODEC)
    return ConsumerRecord(topic=ORDERS_EVENTS, partition=0, offset=42, timestamp=0,
                          timestamp_type=0, key=framed.key, value=framed.value, checksum=None,
                          serialized_key_size=0, serialized_value_size=0,
                          headers=list(framed.headers))


def _bare(records: int) -> None:
    for _ in range(records):
        pass


def _scoped(observer: RecordObserver, records: int) -> None:
    fetched = _sample_record()
    for _ in range(records):
        with observer.scope(fetched):
            pass


def _counted(metrics: BridgeMetrics, records: int) -> None:
    for _ in range(records):  # what bridge.consumer and bridge.commands count for a start
        metrics.records_consumed.labels(ORDERS_EVENTS).inc()
        with metrics.temporal_call("start"):
            pass
        metrics.commands.labels(ORDERS_EVENTS, "OrderPlaced", "start", "started").inc()


def per_record_cost(records: int) -> dict[str, float]:
    """Microseconds per record: a bare loop, ``RecordObserver.scope``, and a start's metrics.

    The scope's tracer is an SDK one with no processor: the spans' making, not
    their export. A started record's metrics are what the bridge counts for it,
    on and with ``RELAYFLOW_METRICS`` off. Each is the best of three runs, the
    one least disturbed by other load.
    """
    loops: dict[str, Callable[[int], None]] = {
        "bare loop": _bare,
        "scope, tracing off": partial(_scoped, RecordObserver(None, group="bench")),
        "scope, tracing on": partial(_scoped, RecordObserver(
            TracerProvider().get_tracer("bench"), group="bench")),
        "a start's metrics, on": partial(_counted, Endpoints().metrics(BridgeMetrics)),
        "a start's metrics, off": partial(_counted,
                                          Endpoints(counting=False).metrics(BridgeMetrics)),
    }
    costs = {}
    for name, loop in loops.items():
        times = []
        for _ in range(3):
            started = time.perf_counter()
            loop(records)
            times.append(time.perf_counter() - started)
        costs[name] = 1e6 * min(times) / records
    return costs


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    """The tables and the ratios."""
    measured = {v: Measured(**m) for v, m in results["variants"].items()}
    medians = {v: statistics.median(m.rates) for v, m in measured.items()}
    ratios = {f"{v}/{OFF}": medians[v] / medians[OFF] for v in GOALS}
    per_record: dict[str, float] = results["per_record_us"]
    lines = [table("Bridge start throughput with metrics and tracing (starts per second)",
                   ["variant", "rounds", "median starts/s", "min", "max", "scrapes",
                    "spans exported"],
                   [(v, len(m.rates), medians[v], min(m.rates), max(m.rates), m.scrapes,
                     m.spans) for v, m in measured.items()]), "",
             table("Per record: bridge.observing's scope (microseconds)",
                   ["loop", "us per record"], list(per_record.items())), ""]
    lines += [f"{name}: {value:.2f}x (goal >= {GOALS[name.split('/')[0]]:.2f}x)"
              for name, value in ratios.items()]
    lines.append(f"({args.events} events a round, concurrency {args.concurrency}, /metrics "
                 f"scraped every {SCRAPE_INTERVAL_S:g}s, spans by OTLP/gRPC to a receiver "
                 f"process)")
    record("observability", vars(args), results | {"ratios": ratios})
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--records", type=int, default=50_000,
                        help="records of the per-record loop")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    print(report(asyncio.run(main(arguments)), arguments))
