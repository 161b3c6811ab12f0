"""End-to-end latency at a steady offered rate: through relayflow vs started directly.

First the saga's maximum rate on this stack is measured (a burst of sagas
started with the client, until their outcomes are read back); then events
are offered at ``--load`` (default 50%) of it, evenly spaced, and timed:

* event produced -> workflow running (the trivial ``BenchNoop`` through the
  bridge; "running" is its first workflow task, ``workflow.now()``);
* event produced -> outcome consumed (``OrderSaga`` through the bridge and the
  worker, its ``OrderCompleted`` read from ``orders.outcomes``);
* the same saga started directly with the client -> outcome consumed, so the
  bridge's own share is the difference.

    python -m bench.latency [--seconds 20] [--load 0.5] [--calibrate 150] [--warm 3]
                            [--min-events 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import datetime
from typing import Any, Self

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.common import (
    CODEC,
    BenchNoop,
    bench_stack,
    caught_up,
    orders,
    percentile,
    record,
    start_at_end,
    table,
)
from bridge.routes import Action, Route, RouteTable
from relayflow.config.settings import Settings
from relayflow.reference.events import OrderCompleted, OrderPlaced
from relayflow.reference.topics import ORDERS_EVENTS, ORDERS_OUTCOMES
from relayflow.runtime.bootstrap import connect_temporal, running
from relayflow.runtime.clients import kafka_clients
from schemas import EventMeta, Inbound
from schemas.framing import to_record


class Outcomes:
    """Reads ``orders.outcomes`` from its current end; when each order's outcome arrived."""

    def __init__(self, settings: Settings) -> None:
        self._consumer = kafka_clients(settings).consumer(
            ORDERS_OUTCOMES, auto_offset_reset="latest", enable_auto_commit=False,
            fetch_max_wait_ms=10)
        self.arrived: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self._consumer.start()
        await self._consumer.seek_to_end()
        for tp in self._consumer.assignment():
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _read(self) -> None:
        async for message in self._consumer:
            event = CODEC.decode(message.value or b"")
            if isinstance(event, OrderCompleted):
                self.arrived.setdefault(event.order_id, time.time())

    async def all_of(self, order_ids: list[str], within: float = 300) -> None:
        """Wait (bounded) until every order's outcome arrived."""
        deadline = time.monotonic() + within
        while any(o not in self.arrived for o in order_ids):
            if time.monotonic() > deadline:
                raise TimeoutError("outcomes missing")
            await asyncio.sleep(0.05)


Send = Callable[[OrderPlaced], Coroutine[Any, Any, None]]


async def paced(events: list[OrderPlaced], rate: float, send: Send) -> dict[str, float]:
    """Send evenly spaced at ``rate`` per second; returns when each was sent (epoch s)."""
    sent: dict[str, float] = {}
    start = time.monotonic()
    tasks: list[asyncio.Task[None]] = []
    for n, event in enumerate(events):
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        sent[event.order_id] = time.time()
        tasks.append(asyncio.create_task(send(event)))
    await asyncio.gather(*tasks)
    return sent


def direct_start(client: Client, task_queue: str) -> Send:
    """Start ``OrderSaga`` for an event with the client, as the bridge would."""

    async def send(event: OrderPlaced) -> None:
        meta = EventMeta(event_type=event.avro_name, event_id=str(event.event_id),
                         correlation_id=str(event.event_id))
        await client.start_workflow("OrderSaga", Inbound[OrderPlaced](event=event, meta=meta),
                                    id=f"order-{event.order_id}", task_queue=task_queue)
    return send


@contextlib.asynccontextmanager
async def kafka_send(settings: Settings) -> AsyncIterator[Send]:
    """Produce each event to ``orders.events`` as its own acked record, on one producer."""
    producer = kafka_clients(settings).producer()
    await producer.start()

    async def send(event: OrderPlaced) -> None:
        record_ = to_record(event, CODEC)
        await producer.send_and_wait(ORDERS_EVENTS, record_.value, key=record_.key,
                                     headers=record_.headers)
    try:
        yield send
    finally:
        await producer.stop()


WARM_S = 3.0
"""Seconds ``warm`` gives relayflow's services to join, connect and poll (``--warm``)."""


@contextlib.asynccontextmanager
async def warm(settings: Settings, seconds: float = WARM_S,
               **services: Any) -> AsyncIterator[None]:
    """relayflow's services (``bootstrap.running``), given ``seconds`` to join, connect, poll."""
    async with running(settings, **services):
        await asyncio.sleep(seconds)
        yield


def summary(name: str, sent: dict[str, float], done: dict[str, float]) -> tuple[object, ...]:
    """One table row: p50/p95/p99 in milliseconds."""
    ms = [1000 * (done[o] - sent[o]) for o in sent]
    return (name, len(ms), percentile(ms, 0.5), percentile(ms, 0.95), percentile(ms, 0.99))


async def saga_latencies(settings: Settings, rate: float, count: int,
                         settle: float = WARM_S) -> list[tuple[object, ...]]:
    """Sagas through the bridge and started directly, interleaved at ``rate`` in total.

    Alternating the two paths event by event puts them under the same load at
    the same moments; run one after the other, they would not be (two cores
    shared by Kafka, Temporal, the worker, the bridge and this script).
    """
    client = await connect_temporal(settings)
    # From the current end: the events of earlier runs on this topic are not ours.
    await start_at_end(settings, settings.kafka_consumer_group)
    async with (warm(settings, settle), Outcomes(settings) as outcomes,
                kafka_send(settings) as kafka):
        direct = direct_start(client, settings.task_queue)
        events = orders(2 * (count // 2))
        through_bridge = {e.order_id for e in events[::2]}

        async def either(event: OrderPlaced) -> None:
            await (kafka if event.order_id in through_bridge else direct)(event)

        sent = await paced(events, rate, either)
        await outcomes.all_of(list(sent))
    bridged = {o: t for o, t in sent.items() if o in through_bridge}
    started = {o: t for o, t in sent.items() if o not in through_bridge}
    return [summary("produced -> outcome consumed (bridge)", bridged, outcomes.arrived),
            summary("client start -> outcome consumed (no bridge)", started, outcomes.arrived)]


async def running_latency(settings: Settings, rate: float, count: int,
                          settle: float = WARM_S) -> tuple[object, ...]:
    """Produced -> workflow running, for ``BenchNoop`` through the bridge."""
    client = await connect_temporal(settings)
    routes = RouteTable([Route(ORDERS_EVENTS, OrderPlaced, Action.START, "BenchNoop",
                               "noop-{order_id}")])
    group = f"{settings.kafka_consumer_group}-noop"
    mine = settings.model_copy(update={"task_queue": "bench-noop", "kafka_consumer_group": group})
    await start_at_end(mine, mine.kafka_consumer_group)
    worker = Worker(client, task_queue="bench-noop", workflows=[BenchNoop],
                    workflow_runner=UnsandboxedWorkflowRunner())
    async with worker, warm(mine, settle, worker=False, routes=routes), kafka_send(mine) as kafka:
        events = orders(count)
        sent = await paced(events, rate, kafka)
        await caught_up(mine, group)  # every workflow started
        began: dict[str, float] = {}
        for event in events:
            handle = client.get_workflow_handle(f"noop-{event.order_id}")
            first_task = await asyncio.wait_for(handle.result(), 120)
            began[event.order_id] = datetime.fromisoformat(first_task).timestamp()
    return summary("produced -> workflow running (bridge)", sent, began)


async def calibrate(settings: Settings, count: int, settle: float = WARM_S) -> float:
    """Sagas per second this stack completes in a burst (started with the client)."""
    client = await connect_temporal(settings)
    async with warm(settings, settle, bridge=False), Outcomes(settings) as outcomes:
        events = orders(count)
        started = time.monotonic()
        await asyncio.gather(*(direct_start(client, settings.task_queue)(e) for e in events))
        await outcomes.all_of([e.order_id for e in events])
        return count / (time.monotonic() - started)


async def measure(base: Settings, args: argparse.Namespace,
                  ) -> tuple[float, float, list[tuple[object, ...]]]:
    """The saga's maximum rate, the offered rate, and the three paths' latency rows."""
    run = uuid.uuid4().hex[:6]
    settings = base.model_copy(update={"task_queue": f"bench-latency-{run}",
                                       "kafka_consumer_group": f"bench-latency-{run}"})
    maximum = await calibrate(settings, args.calibrate, args.warm)
    rate = maximum * args.load
    count = max(args.min_events, int(rate * args.seconds))
    rows = [await running_latency(settings, rate, count, args.warm),
            *await saga_latencies(settings, rate, count, args.warm)]
    return maximum, rate, rows


def overhead(rows: list[tuple[object, ...]]) -> dict[str, float]:
    """The bridge's share of a saga's latency at p50: saga via the bridge vs started directly."""
    return {"bridge overhead p50 (ms)": float(str(rows[1][2])) - float(str(rows[2][2])),
            "bridge/direct p50": float(str(rows[1][2])) / float(str(rows[2][2]))}


async def main(args: argparse.Namespace) -> str:
    with bench_stack() as base:
        maximum, rate, rows = await measure(base, args)
    shares = overhead(rows)
    record("latency", vars(args), {"max_sagas_per_s": maximum, "rate": rate,
                                   "rows": [list(map(str, r)) for r in rows],
                                   "overhead": shares})
    return "\n".join([
        table(f"Latency (ms) at {rate:.1f} events/s = {args.load:.0%} of the measured "
              f"maximum {maximum:.1f} sagas/s", ["path", "events", "p50", "p95", "p99"], rows),
        "", *(f"{name}: {value:.2f}" for name, value in shares.items()),
    ])


def add_warm(parser: argparse.ArgumentParser) -> None:
    """``--warm`` and ``--min-events``: what only a tiny run (the smoke test's) lowers."""
    parser.add_argument("--warm", type=float, default=WARM_S,
                        help="seconds the bridge and worker get to join and poll before each part")
    parser.add_argument("--min-events", type=int, default=20,
                        help="events offered at least, however low the measured maximum")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--load", type=float, default=0.5)
    parser.add_argument("--calibrate", type=int, default=150)
    add_warm(parser)
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(asyncio.run(main(parse())))
