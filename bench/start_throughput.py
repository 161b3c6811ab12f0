"""Start throughput: relayflow's bridge vs the raw Temporal client vs a naive FastStream handler.

All three start the same trivial workflow (``BenchNoop``, no worker, so only
the start is measured) for the same orders, side by side on one stack:

* raw: ``client.start_workflow`` from one process, ``--concurrency`` in flight,
  each start carrying the argument the bridge's carries (the event and its
  metadata), so both ask the server for the same work; a second raw run
  starts with no argument at all, the cheapest start there is, for reference;
* bridge: relayflow's bridge (``relayflow.runtime.bootstrap.running``, the real consumer,
  codec, routes and commit discipline) with the same concurrency, timed from
  the first produced event of a burst until its group committed the last;
* naive: the handler most teams write first, one FastStream subscriber
  awaiting one ``start_workflow`` per record.

On loopback the dev server's CPU is the bound; in a real deployment the
network is, so every variant also runs with latency injected between it and
Temporal (Toxiproxy, ``--latency-ms`` each way).

No worker runs, so every workflow started stays open and the dev server's
SQLite grows burst by burst: a variant measured later meets a slower server.
So the variants run in ``--rounds`` rounds at each latency, in alternating
order (``bench.common.alternating``: as listed, then reversed, ...), and each
variant's figure is the median of its rounds: over an even number of rounds
a steady slow-down cancels out of the medians (the best of the rounds would
not: it favours whichever variant ran first). Every round's rate is printed
too, so the spread shows. The naive handler is one round trip a record and
the raw client is bounded by the server, so bridge/naive can never exceed
raw/naive: that bound is printed beside the ratio.

    python -m bench.start_throughput [--events 1500] [--concurrency 64] [--latency-ms 10]
                                     [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from temporalio.client import Client

from bench.common import (
    alternating,
    bench_stack,
    caught_up,
    orders,
    produce,
    record,
    start_at_end,
    table,
)
from bridge.routes import Action, Route, RouteTable
from devtools.toxiproxy import Toxiproxy
from relayflow.config.settings import Settings
from relayflow.reference.events import SCHEMA_FOLDER, OrderPlaced
from relayflow.reference.topics import ORDERS_EVENTS
from relayflow.runtime.bootstrap import connect_temporal, running
from relayflow.runtime.clients import kafka_clients
from schemas import EventMeta, Inbound
from schemas.codec import AvroCodec

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from relayflow.observability.monitoring import Monitoring

TASK_QUEUE = "bench-starts"  # no worker polls it: a start is all that is measured
CODEC = AvroCodec([OrderPlaced], SCHEMA_FOLDER)
BARE, RAW, BRIDGE, NAIVE = ("raw client, no argument", "raw client", "relayflow bridge",
                            "naive FastStream")
VARIANTS = (BARE, RAW, BRIDGE, NAIVE)
"""In the order of a round; the naive one only with latency, as in a deployment."""
NAIVE_GOAL = 5.0
"""Least bridge/naive rate with latency."""


@dataclass
class Run:
    """One measured variant."""

    variant: str
    latency_ms: int
    events: int
    seconds: float
    round: int = 1

    @property
    def rate(self) -> float:
        """Workflow starts per second."""
        return self.events / self.seconds


def argument(event: OrderPlaced) -> Inbound[OrderPlaced]:
    """The workflow argument the bridge sends for this event: the event and its metadata."""
    return Inbound[OrderPlaced](event=event, meta=EventMeta(
        event_type=event.avro_name, event_id=str(event.event_id),
        correlation_id=str(event.event_id), topic=ORDERS_EVENTS, partition=0, offset=0))


async def raw(client: Client, events: list[OrderPlaced], concurrency: int, tag: str, *,
              with_argument: bool = True) -> float:
    """Seconds to start one workflow per event with ``concurrency`` calls in flight.

    With ``with_argument`` each start carries what the bridge's start carries (the
    same work for the server); without, it is the cheapest start there is.
    """
    slots = asyncio.Semaphore(concurrency)

    async def start(event: OrderPlaced) -> None:
        async with slots:
            await client.start_workflow("BenchNoop", argument(event) if with_argument else None,
                                        id=f"{tag}-{event.order_id}", task_queue=TASK_QUEUE)

    started = time.perf_counter()
    await asyncio.gather(*(start(e) for e in events))
    return time.perf_counter() - started


@contextlib.asynccontextmanager
async def relayflow_bridge(settings: Settings, tag: str, concurrency: int, *,
                           tracer_provider: TracerProvider | None = None,
                           monitoring: Monitoring | None = None) -> AsyncIterator[str]:
    """relayflow's bridge running (joined, warmed up) with a bench route; yields its group.

    ``tracer_provider`` and ``monitoring`` go to ``running`` as they are.
    """
    group = f"bench-{tag}-{uuid.uuid4().hex[:6]}"
    routes = RouteTable([Route(ORDERS_EVENTS, OrderPlaced, Action.START, "BenchNoop",
                               tag + "-{order_id}")])
    mine = settings.model_copy(update={"kafka_consumer_group": group, "task_queue": TASK_QUEUE,
                                       "bridge_concurrency": concurrency})
    await start_at_end(mine, group)
    async with running(mine, worker=False, routes=routes, tracer_provider=tracer_provider,
                       monitoring=monitoring):
        await produce(mine, ORDERS_EVENTS, orders(1))  # warm-up: joined and connected
        await caught_up(mine, group)
        yield group


async def bridge_seconds(settings: Settings, tag: str, events: int, concurrency: int, *,
                         tracer_provider: TracerProvider | None = None,
                         monitoring: Monitoring | None = None) -> float:
    """Seconds of one burst through the bridge (first produce to last commit)."""
    async with relayflow_bridge(settings, tag, concurrency, tracer_provider=tracer_provider,
                                monitoring=monitoring) as group:
        started = time.perf_counter()
        await produce(settings, ORDERS_EVENTS, orders(events))
        await caught_up(settings, group)
        return time.perf_counter() - started


async def bridge_rate(settings: Settings, tag: str, events: int, concurrency: int, *,
                      tracer_provider: TracerProvider | None = None,
                      monitoring: Monitoring | None = None) -> float:
    """Starts per second of one burst through the bridge (first produce to last commit)."""
    return events / await bridge_seconds(settings, tag, events, concurrency,
                                         tracer_provider=tracer_provider, monitoring=monitoring)


@contextlib.asynccontextmanager
async def naive_bridge(settings: Settings, client: Client, tag: str,
                       ) -> AsyncIterator[asyncio.Queue[None]]:
    """One FastStream subscriber awaiting one start per record; yields a queue of starts."""
    group = f"naive-{tag}-{uuid.uuid4().hex[:6]}"
    await start_at_end(settings, group)
    broker = kafka_clients(settings).broker(logger=None)
    starts: asyncio.Queue[None] = asyncio.Queue()

    async def raw_body(message: object) -> object:
        return getattr(message, "body", b"")

    @broker.subscriber(ORDERS_EVENTS, group_id=group, decoder=raw_body)
    async def handle(body: bytes) -> None:
        event = CODEC.decode(body)
        assert isinstance(event, OrderPlaced)
        await client.start_workflow("BenchNoop", argument(event), id=f"{tag}-{event.order_id}",
                                    task_queue=TASK_QUEUE)
        starts.put_nowait(None)

    await broker.start()
    try:
        await produce(settings, ORDERS_EVENTS, orders(1))  # warm-up
        await asyncio.wait_for(starts.get(), 60)
        yield starts
    finally:
        await broker.stop()


async def naive_seconds(settings: Settings, client: Client, tag: str, events: int) -> float:
    """Seconds of one burst through the naive handler (first produce to last start)."""
    async with naive_bridge(settings, client, tag) as starts:
        started = time.perf_counter()
        await produce(settings, ORDERS_EVENTS, orders(events))
        for _ in range(events):
            await starts.get()
        return time.perf_counter() - started


async def measure(settings: Settings, latency_ms: int, events: int, naive_events: int,
                  concurrency: int, *, round_: int = 1,
                  order: list[str] | None = None) -> list[Run]:
    """One round of every variant at one latency, in ``order`` (default: ``VARIANTS``).

    The naive one runs only with latency (``latency_ms`` > 0), as in a deployment.
    """
    client = await connect_temporal(settings)
    tag = f"l{latency_ms}r{round_}"
    bursts: dict[str, tuple[int, Callable[[], Awaitable[float]]]] = {
        BARE: (events, lambda: raw(client, orders(events), concurrency, f"bare{tag}",
                                   with_argument=False)),
        RAW: (events, lambda: raw(client, orders(events), concurrency, f"raw{tag}")),
        BRIDGE: (events, lambda: bridge_seconds(settings, f"bridge{tag}", events, concurrency)),
    }
    if latency_ms:
        bursts[NAIVE] = (naive_events,
                         lambda: naive_seconds(settings, client, f"naive{tag}", naive_events))
    runs = []
    for variant in [v for v in order or VARIANTS if v in bursts]:
        count, burst = bursts[variant]
        runs.append(Run(variant, latency_ms, count, await burst(), round_))
    return runs


async def rounds(settings: Settings, latency_ms: int, args: argparse.Namespace) -> list[Run]:
    """``args.rounds`` rounds at one latency, the variants' order alternating."""
    runs: list[Run] = []
    for number, order in alternating(VARIANTS, args.rounds):
        runs += await measure(settings, latency_ms, args.events, args.naive_events,
                              args.concurrency, round_=number, order=order)
    return runs


async def main(args: argparse.Namespace) -> list[Run]:
    with bench_stack() as settings:
        runs = await rounds(settings, 0, args)
        if args.latency_ms:
            with Toxiproxy(settings, settings.data_dir / "toxiproxy.log") as toxiproxy:
                link = toxiproxy.proxy("temporal", settings.temporal_address)
                for stream in ("upstream", "downstream"):
                    link.latency(args.latency_ms, stream=stream)
                slow = settings.model_copy(update={"temporal_address": link.listen})
                runs += await rounds(slow, args.latency_ms, args)
    return runs


def medians(runs: list[Run]) -> dict[tuple[str, int], list[float]]:
    """Each (variant, latency)'s rates, round by round."""
    rates: dict[tuple[str, int], list[float]] = {}
    for run in runs:
        rates.setdefault((run.variant, run.latency_ms), []).append(run.rate)
    return rates


def report(runs: list[Run], args: argparse.Namespace) -> str:
    """The tables (every round, then the medians) and the ratios of the medians."""
    rates = medians(runs)
    rate = {key: statistics.median(values) for key, values in rates.items()}
    lines = [table("Start throughput, round by round (workflow starts per second)",
                   ["variant", "latency each way (ms)", "round", "events", "seconds",
                    "starts/s"],
                   [(r.variant, r.latency_ms, r.round, r.events, r.seconds, r.rate)
                    for r in sorted(runs, key=lambda r: (r.latency_ms, r.round))]), "",
             table("Start throughput (median of the rounds, starts per second)",
                   ["variant", "latency each way (ms)", "rounds", "median starts/s", "min",
                    "max"],
                   [(variant, latency, len(values), rate[variant, latency], min(values),
                     max(values)) for (variant, latency), values in rates.items()]), ""]
    ratios: dict[str, float] = {}
    notes: dict[str, str] = {}
    for latency in sorted({r.latency_ms for r in runs}):
        ratios[f"bridge/raw @{latency}ms"] = rate[BRIDGE, latency] / rate[RAW, latency]
        ratios[f"bridge/raw without argument @{latency}ms"] = (rate[BRIDGE, latency]
                                                               / rate[BARE, latency])
        if (NAIVE, latency) in rate:
            bound = rate[RAW, latency] / rate[NAIVE, latency]
            name = f"bridge/naive @{latency}ms"
            ratios[name] = rate[BRIDGE, latency] / rate[NAIVE, latency]
            ratios[f"raw/naive @{latency}ms"] = bound
            notes[name] = f"(its bound, raw/naive: {bound:.2f}x" + (
                f": the server does fewer than {NAIVE_GOAL:g}x the naive starts/s, so the "
                f"{NAIVE_GOAL:g}x goal is bounded by the server, not the bridge)"
                if bound < NAIVE_GOAL else ")")
    lines += [f"{name}: {value:.2f}x {notes.get(name, '')}".rstrip()
              for name, value in ratios.items()]
    lines.append(f"(goals: bridge/raw >= 0.9x, bridge/naive >= {NAIVE_GOAL:g}x; medians of "
                 f"{args.rounds} rounds in alternating order; concurrency {args.concurrency})")
    record("start_throughput", vars(args),
           {"runs": [vars(r) | {"rate": r.rate} for r in runs], "ratios": ratios})
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--naive-events", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds at each latency, the order alternating (keep it even)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    print(report(asyncio.run(main(arguments)), arguments))
