"""The bridge's own ceiling: the bridge vs the smallest hand-written loop vs naive FastStream.

Every other throughput figure is bounded by the Temporal dev server on the
same two cores. Here Temporal is the stand-in frontend
(``devtools.fakefrontend``, Go), which answers every call at once and counts
it, so the consumer is the bottleneck. With ``--events`` records already in
Kafka (after ``--warmup`` more), each variant runs as a process of its own,
reading them from the first in a new consumer group, ``--concurrency`` calls
in flight:

* bridge: relayflow's bridge as in production (``relayflow.runtime.bootstrap.running``:
  the configured app's codec, envelope, parking, metrics, commit discipline) with
  one route to the action measured;
* loop: the smallest correct hand-written loop: aiokafka ``getmany``, decode,
  one ``temporalio`` call per record with the argument and policies the bridge
  sends, then commit the batch once every call was acknowledged;
* naive: one FastStream subscriber awaiting one call per record (only
  ``--naive-events`` of them: it is slow).

Each is timed from the moment the frontend has counted the warm-up (joined,
connected, running) until it counted every record and, for the bridge and the
loop, the group committed them all. The rate is records per second; the cost
is the consuming process's CPU time (user + system, all threads, from
``/proc``) per record in that window; the frontend's own is shown beside it,
to show it was never the bottleneck.

    python -m bench.ceiling [--events 20000] [--concurrency 64] [--action start]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from bench.common import ROOT, bench_stack, orders, produce, record, table
from bridge.routes import Action, Route, RouteTable
from devtools.fakefrontend import FakeFrontend
from relayflow import devstack
from relayflow.config.settings import Settings
from relayflow.kafka.reads import commit_group, committed_to_end, end_offsets, partitions_of
from relayflow.reference.app import APP
from relayflow.reference.events import OrderPlaced
from relayflow.reference.topics import ORDERS_EVENTS
from relayflow.runtime.bootstrap import connect_temporal, running
from relayflow.runtime.clients import kafka_clients
from schemas import EventMeta, Inbound

TASK_QUEUE = "bench-ceiling"
SIGNAL = "bench"
STARTED = "WorkflowsStarted"  # the frontend's count of calls that started a workflow
VARIANTS = ("relayflow bridge", "hand-written loop", "naive FastStream")
ACTIONS = (Action.START, Action.SIGNAL_WITH_START)
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One measured variant."""

    variant: str
    action: str
    records: int
    seconds: float
    cpu_seconds: float
    frontend_cpu_seconds: float
    calls: dict[str, int]

    @property
    def rate(self) -> float:
        """Records per second."""
        return self.records / self.seconds

    @property
    def cpu_us(self) -> float:
        """CPU time of the consuming process per record, in microseconds."""
        return self.cpu_seconds / self.records * 1e6

    @property
    def calls_per_record(self) -> float:
        """Every call the frontend answered in the whole run (connect too) per record it started."""
        return sum(n for name, n in self.calls.items() if name != STARTED) / self.calls[STARTED]

    @property
    def frontend_cpu_us(self) -> float:
        """CPU time of the stand-in frontend per record: it must stay far below ``cpu_us``."""
        return self.frontend_cpu_seconds / self.records * 1e6


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (every thread) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


# ---- the consuming processes -------------------------------------------------------------


def inbound(event: OrderPlaced, message: ConsumerRecord[bytes, bytes]) -> Inbound[OrderPlaced]:
    """The workflow argument the bridge sends for this record: the event and its metadata."""
    return Inbound[OrderPlaced](event=event, meta=EventMeta(
        event_type=event.avro_name, event_id=str(event.event_id),
        correlation_id=str(event.event_id), topic=message.topic,
        partition=message.partition, offset=message.offset))


async def call(client: Client, action: Action, argument: Inbound[OrderPlaced]) -> None:
    """The call the bridge makes for ``action``, with its policies."""
    options: dict[str, Any] = {"id": f"ceiling-{argument.event.order_id}",
                               "task_queue": TASK_QUEUE,
                               "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE}
    if action is Action.START:
        await client.start_workflow("BenchNoop", argument,
                                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                                    **options)
    else:
        await client.start_workflow("BenchNoop", argument, start_signal=SIGNAL,
                                    start_signal_args=[argument], **options)


async def bridge_process(settings: Settings, action: Action) -> None:
    """relayflow's bridge with one route to ``action``, until killed."""
    routes = RouteTable([Route(ORDERS_EVENTS, OrderPlaced, action, "BenchNoop",
                               "ceiling-{order_id}",
                               signal=SIGNAL if action is Action.SIGNAL_WITH_START else None)])
    async with running(settings, worker=False, routes=routes):
        await asyncio.Event().wait()


async def loop_process(settings: Settings, action: Action) -> None:
    """The smallest correct loop: fetch a batch, call for each record, commit once all answered."""
    client = await connect_temporal(settings)
    codec = APP.codec()
    slots = asyncio.Semaphore(settings.bridge_concurrency)

    async def one(message: ConsumerRecord[bytes, bytes]) -> None:
        assert message.value is not None
        event = codec.decode(message.value)
        assert isinstance(event, OrderPlaced)
        async with slots:
            await call(client, action, inbound(event, message))

    async with kafka_clients(settings).started_consumer(
            ORDERS_EVENTS, group_id=settings.kafka_consumer_group, enable_auto_commit=False,
            auto_offset_reset="earliest") as consumer:
        while True:
            batch = await consumer.getmany(timeout_ms=500,
                                           max_records=settings.bridge_batch_size)
            if not batch:
                continue
            await asyncio.gather(*(one(m) for messages in batch.values() for m in messages))
            await consumer.commit({tp: messages[-1].offset + 1
                                   for tp, messages in batch.items()})


async def naive_process(settings: Settings, action: Action) -> None:
    """One FastStream subscriber awaiting one call per record, until killed."""
    client = await connect_temporal(settings)
    codec = APP.codec()
    broker = kafka_clients(settings).broker(logger=None)

    async def raw(message: object) -> object:
        return message  # the record itself: the handler decodes it like the others

    @broker.subscriber(ORDERS_EVENTS, group_id=settings.kafka_consumer_group,
                       auto_offset_reset="earliest", decoder=raw)
    async def handle(message: Any) -> None:
        event = codec.decode(message.body)
        assert isinstance(event, OrderPlaced)
        meta = message.raw_message
        await call(client, action, inbound(event, meta))

    await broker.start()
    try:
        await asyncio.Event().wait()
    finally:
        await broker.stop()


_PROCESSES = {"relayflow bridge": bridge_process, "hand-written loop": loop_process,
              "naive FastStream": naive_process}


# ---- the measurement ---------------------------------------------------------------------


async def measure(settings: Settings, frontend: FakeFrontend, variant: str, action: Action,
                  *, first: dict[TopicPartition, int], warmup: int, records: int,
                  concurrency: int, logs: Path) -> Run:
    """Run ``variant`` in a process of its own from offsets ``first``; time it past the warm-up."""
    group = f"ceiling-{variant.rsplit(maxsplit=1)[-1].lower()}-{uuid.uuid4().hex[:6]}"
    mine = {"kafka_consumer_group": group, "task_queue": TASK_QUEUE,
            "bridge_concurrency": concurrency, "temporal_address": frontend.address,
            "kafka_bootstrap_servers": settings.kafka_bootstrap_servers,
            "data_dir": str(settings.data_dir), "bridge_http_port": 0, "worker_http_port": 0,
            "temporal_metrics_port": -1}
    await commit_group(kafka_clients(settings), group, first)
    frontend.counts(reset=True)
    with (logs / f"ceiling-{group}.log").open("ab") as out:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.ceiling", "--child", variant, "--action", action.value,
            "--settings", json.dumps(mine), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        async with asyncio.timeout(600):
            counted, cpu, at = await _past(frontend, child, warmup)
            served = cpu_seconds(frontend.pid)
            done, cpu_done, _ = await _past(frontend, child, warmup + records)
            if variant != "naive FastStream":  # it commits on its own schedule
                await committed_to_end(kafka_clients(settings), group, first)
                cpu_done = cpu_seconds(child.pid)
            ended = time.perf_counter()
            served = cpu_seconds(frontend.pid) - served
    finally:
        child.kill()
        await child.wait()
    if done == counted:
        raise RuntimeError(f"{variant} did them all during the warm-up: raise --events")
    return Run(variant, action.value, done - counted, ended - at, cpu_done - cpu, served,
               frontend.counts())


async def _past(frontend: FakeFrontend, child: asyncio.subprocess.Process,
                target: int) -> tuple[int, float, float]:
    """Wait until the frontend counted ``target`` workflows; the count, CPU and time then."""
    while True:
        if child.returncode is not None:
            raise RuntimeError(f"the consuming process ended ({child.returncode}); see its log")
        cpu = cpu_seconds(child.pid)
        at = time.perf_counter()
        counted = (await asyncio.to_thread(frontend.counts))[STARTED]
        if counted >= target:
            return counted, cpu, at
        await asyncio.sleep(0.01)


async def main(args: argparse.Namespace) -> list[Run]:
    runs: list[Run] = []
    with bench_stack() as settings:
        if os.environ.get("RELAYFLOW_BENCH_STACK") != "external":
            devstack.stop_temporal(settings)  # not used here: its CPU is the consumers'
        logs = settings.data_dir
        logs.mkdir(parents=True, exist_ok=True)
        kafka = kafka_clients(settings)
        first = await end_offsets(kafka, await partitions_of(kafka, [ORDERS_EVENTS]))
        await produce(settings, ORDERS_EVENTS, orders(args.warmup + args.events))
        with FakeFrontend(settings, logs / "fakefrontend.log") as frontend:
            for action in (Action(a) for a in args.action):
                for variant in VARIANTS:
                    records = args.naive_events if variant == "naive FastStream" else args.events
                    runs.append(await measure(settings, frontend, variant, action, first=first,
                                              warmup=args.warmup, records=records,
                                              concurrency=args.concurrency, logs=logs))
    return runs


def report(runs: list[Run], args: argparse.Namespace) -> str:
    """The table and the ratios."""
    lines = [table("The bridge's ceiling (stand-in frontend: records per second, CPU per record)",
                   ["action", "variant", "records", "seconds", "records/s", "CPU µs/record",
                    "frontend CPU µs/record", "calls/record"],
                   [(r.action, r.variant, r.records, r.seconds, r.rate, r.cpu_us,
                     r.frontend_cpu_us, r.calls_per_record) for r in runs]), ""]
    ratios: dict[str, float] = {}
    by = {(r.action, r.variant): r for r in runs}
    for action in dict.fromkeys(r.action for r in runs):
        bridge, loop = by[action, "relayflow bridge"], by[action, "hand-written loop"]
        ratios[f"bridge/loop rate ({action})"] = bridge.rate / loop.rate
        ratios[f"bridge/loop CPU per record ({action})"] = bridge.cpu_us / loop.cpu_us
        if (action, "naive FastStream") in by:
            ratios[f"bridge/naive rate ({action})"] = bridge.rate / by[action,
                                                                        "naive FastStream"].rate
    lines += [f"{name}: {value:.2f}x" for name, value in ratios.items()]
    lines.append(f"(goals: bridge/loop rate >= 0.8x, CPU per record <= 1.25x; concurrency "
                 f"{args.concurrency}, {os.cpu_count()} CPUs, load average "
                 f"{os.getloadavg()[0]:.1f} at the end)")
    record("ceiling", vars(args) | {"loadavg": os.getloadavg()},
           {"runs": [vars(r) | {"rate": r.rate, "cpu_us": r.cpu_us,
                                "frontend_cpu_us": r.frontend_cpu_us,
                                "calls_per_record": r.calls_per_record} for r in runs],
            "ratios": ratios})
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--naive-events", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--action", nargs="+", choices=[a.value for a in ACTIONS],
                        default=[a.value for a in ACTIONS])
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    if arguments.child:  # one consuming process, started by the measurement
        overrides = json.loads(arguments.settings)
        child_settings = Settings().model_copy(update=overrides | {
            "data_dir": Path(overrides["data_dir"])})
        asyncio.run(_PROCESSES[arguments.child](child_settings, Action(arguments.action[0])))
    else:
        print(report(asyncio.run(main(arguments)), arguments))
