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

A ``signal`` route signals a workflow the stand-in says runs (it stores
nothing). Update routes (``update``, ``update-with-start``) are requests:
each variant sends the Workflow Update the bridge sends (update id = event
id, waiting for acceptance, then the result) and publishes one reply to a reply topic with
``acks=all`` before the record counts as done. The stand-in answers every
update with a null result, so every reply is a ``RequestFailed`` (``failed``,
no ``Reply``) in all three variants alike.

Each is timed from the moment the frontend has counted the warm-up (joined,
connected, running) until it counted every record and, for the bridge and the
loop, the group committed them all. The rate is records per second; the cost
is the consuming process's CPU time (user + system, all threads, from
``/proc``) per record in that window; the frontend's own is shown beside it,
to show it was never the bottleneck.

Then the scale-out pair (``--scale-action``, start by default): one bridge
process, then two in one consumer group, over ``orders.events`` (6
partitions). Each pair member first waits until its group is stable with all
its members, then ``--scale-events`` fresh records are produced, and it is
timed from when they are all in Kafka (and the warm-up counted) until the
frontend counted the last and the group committed it: the ratio is what a
second process on the same two cores adds, with the frontend and Kafka
(their CPU shown beside) sharing those cores too. Under it, the most the pair
could reach here: every core busy at the two processes' CPU per record
(bridge, frontend and Kafka together).

Everything runs ``--rounds`` times in alternating order (as listed, then
reversed: ``bench.common.alternating``); the ratios are of each variant's
medians (rate, CPU per record), and every round's row is printed. One run of
each is not enough on a shared machine: the same code's CPU per record moved
by 10-25% between back-to-back runs here.

    python -m bench.ceiling [--events 20000] [--concurrency 64] [--action start ...]
                            [--scale-action start] [--scale-events 20000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from pydantic import ValidationError
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateStage
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from bench.common import (
    CODEC,
    ROOT,
    alternating,
    bench_stack,
    group_cpu,
    orders,
    produce,
    record,
    table,
)
from bridge.routes import Action, Route, RouteTable
from devtools.fakefrontend import FakeFrontend
from relayflow import devstack
from relayflow.config.settings import Settings
from relayflow.devstack.kafka import KAFKA
from relayflow.devstack.process import recorded_pid
from relayflow.kafka.reads import (
    commit_group,
    committed_to_end,
    end_offsets,
    partitions_of,
    record_counts,
)
from relayflow.reference.events import OrderPlaced
from relayflow.reference.topics import ORDERS_EVENTS
from relayflow.runtime.bootstrap import connect_temporal, running
from relayflow.runtime.clients import kafka_clients
from schemas import Event, EventMeta, Inbound
from schemas.framing import to_record
from schemas.replies import Reply, ReplyReason, RequestFailed, reply_event_id
from schemas.topics import Topic

TASK_QUEUE = "bench-ceiling"
SIGNAL = "bench"
UPDATE = "bench"
REPLIES = "bench.replies"
"""The update routes' reply topic (created when an update route is measured)."""
STARTED = "WorkflowsStarted"  # the frontend's count of calls that started a workflow
COUNTED = {Action.SIGNAL: "SignalWorkflowExecution", Action.UPDATE: "UpdateWorkflowExecution"}
"""What the frontend counts once per record, by action (default: ``STARTED``)."""
VARIANTS = ("relayflow bridge", "hand-written loop", "naive FastStream")
ACTIONS = (Action.START, Action.SIGNAL, Action.SIGNAL_WITH_START, Action.UPDATE,
           Action.UPDATE_WITH_START)
SIGNALS = (Action.SIGNAL, Action.SIGNAL_WITH_START)
REQUESTS = (Action.UPDATE, Action.UPDATE_WITH_START)
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One measured variant (``processes`` of them in one consumer group)."""

    variant: str
    action: str
    records: int
    seconds: float
    cpu_seconds: float
    frontend_cpu_seconds: float
    calls: dict[str, int]
    processes: int = 1
    kafka_cpu_seconds: float | None = None
    replies: int | None = None
    """Replies the run put on the reply topic (requests only), warm-up included."""
    round: int = 1

    @property
    def rate(self) -> float:
        """Records per second."""
        return self.records / self.seconds

    @property
    def cpu_us(self) -> float:
        """CPU time of the consuming process(es) per record, in microseconds."""
        return self.cpu_seconds / self.records * 1e6

    @property
    def calls_per_record(self) -> float:
        """Every call the frontend answered in the whole run (connect too) per record counted."""
        counted = self.calls[COUNTED.get(Action(self.action), STARTED)]
        return sum(n for name, n in self.calls.items() if name != STARTED) / counted

    @property
    def frontend_cpu_us(self) -> float:
        """CPU time of the stand-in frontend per record: it must stay far below ``cpu_us``."""
        return self.frontend_cpu_seconds / self.records * 1e6

    @property
    def kafka_cpu_us(self) -> float | None:
        """CPU time of the Kafka broker per record (None: not a broker of the bench's stack)."""
        if self.kafka_cpu_seconds is None:
            return None
        return self.kafka_cpu_seconds / self.records * 1e6


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


class Calls:
    """The calls the bridge makes for ``action``, with its policies, made by hand.

    Args:
        client: Connected to the frontend.
        action: What to ask for each record.
        replies: Started producer (``acks="all"``) for update routes' replies.
    """

    def __init__(self, client: Client, action: Action,
                 replies: AIOKafkaProducer | None = None) -> None:
        self._client = client
        self._action = action
        self._replies = replies

    async def __call__(self, argument: Inbound[OrderPlaced]) -> None:
        """Make the call for one record; for a request, reply once it has its result."""
        workflow_id = f"ceiling-{argument.event.order_id}"
        if self._action in REQUESTS:
            await self._request(workflow_id, argument)
            return
        if self._action is Action.SIGNAL:
            await self._client.get_workflow_handle(workflow_id).signal(SIGNAL, argument)
            return
        options: dict[str, Any] = {"id": workflow_id, "task_queue": TASK_QUEUE,
                                   "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE}
        if self._action is Action.START:
            await self._client.start_workflow(
                "BenchNoop", argument, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                **options)
        else:
            await self._client.start_workflow("BenchNoop", argument, start_signal=SIGNAL,
                                              start_signal_args=[argument], **options)

    async def _request(self, workflow_id: str, argument: Inbound[OrderPlaced]) -> None:
        meta = argument.meta
        stage = WorkflowUpdateStage.ACCEPTED
        if self._action is Action.UPDATE_WITH_START:
            start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
                "BenchNoop", argument, id=workflow_id, task_queue=TASK_QUEUE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
            handle = await self._client.start_update_with_start_workflow(
                UPDATE, argument, start_workflow_operation=start, id=meta.event_id,
                result_type=Reply, wait_for_stage=stage)
        else:
            handle = await self._client.get_workflow_handle(workflow_id).start_update(
                UPDATE, argument, id=meta.event_id, result_type=Reply, wait_for_stage=stage)
        result = await handle.result()
        try:
            reply = Reply.model_validate(result)
            answer: Event = CODEC.event_types[reply.event_type].model_validate(reply.event)
        except ValidationError as error:  # the stand-in's null result: every time
            answer = RequestFailed(
                event_id=reply_event_id(meta.event_id, ReplyReason.FAILED.value),
                occurred_at=datetime.now(UTC), correlation_id=meta.correlation_id,
                causation_id=meta.event_id, request_key=argument.event.key,
                request_type=meta.event_type, workflow_id=workflow_id, update=UPDATE,
                reason=ReplyReason.FAILED.value, error_type="InvalidReply",
                message=str(error)[:1000])
        out = to_record(answer, CODEC, correlation_id=meta.correlation_id,
                        causation_id=meta.event_id)
        assert self._replies is not None, "a request needs a reply producer"
        await self._replies.send_and_wait(REPLIES, out.value, key=out.key, headers=out.headers)



async def bridge_process(settings: Settings, action: Action) -> None:
    """relayflow's bridge with one route to ``action``, until killed."""
    request = action in REQUESTS
    routes = RouteTable([Route(ORDERS_EVENTS, OrderPlaced, action, "BenchNoop",
                               "ceiling-{order_id}",
                               signal=SIGNAL if action in SIGNALS else None,
                               update=UPDATE if request else None,
                               reply_topic=REPLIES if request else None)],
                        reply_topics={REPLIES: ()})
    async with running(settings, worker=False, routes=routes):
        await asyncio.Event().wait()


async def _calls(settings: Settings, action: Action) -> tuple[Calls, AIOKafkaProducer | None]:
    """The hand-made calls (and, for a request, their started reply producer)."""
    client = await connect_temporal(settings)
    replies = kafka_clients(settings).producer(linger_ms=5) if action in REQUESTS else None
    if replies is not None:
        await replies.start()
    return Calls(client, action, replies), replies


async def loop_process(settings: Settings, action: Action) -> None:
    """The smallest correct loop: fetch a batch, call for each record, commit once all answered."""
    call, _ = await _calls(settings, action)
    slots = asyncio.Semaphore(settings.bridge_concurrency)

    async def one(message: ConsumerRecord[bytes, bytes]) -> None:
        assert message.value is not None
        event = CODEC.decode(message.value)
        assert isinstance(event, OrderPlaced)
        async with slots:
            await call(inbound(event, message))

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
    call, _ = await _calls(settings, action)
    broker = kafka_clients(settings).broker(logger=None)

    async def raw(message: object) -> object:
        return message  # the record itself: the handler decodes it like the others

    @broker.subscriber(ORDERS_EVENTS, group_id=settings.kafka_consumer_group,
                       auto_offset_reset="earliest", decoder=raw)
    async def handle(message: Any) -> None:
        event = CODEC.decode(message.body)
        assert isinstance(event, OrderPlaced)
        await call(inbound(event, message.raw_message))

    await broker.start()
    try:
        await asyncio.Event().wait()
    finally:
        await broker.stop()


_PROCESSES = {"relayflow bridge": bridge_process, "hand-written loop": loop_process,
              "naive FastStream": naive_process}


# ---- the measurement ---------------------------------------------------------------------


class Consumers:
    """The consuming processes of one run, in one consumer group; killed (by pid) on exit.

    Args:
        settings: The bench stack's.
        frontend: Their Temporal.
        variant: Which consumer they are.
        action: What they ask for each record.
        processes: How many.
        concurrency: Calls in flight in each.
        logs: Folder of their logs.
    """

    def __init__(self, settings: Settings, frontend: FakeFrontend, variant: str,
                 action: Action, *, processes: int, concurrency: int, logs: Path) -> None:
        kind = variant.rsplit(maxsplit=1)[-1].lower()
        self.group = f"ceiling-{kind}{processes}-{uuid.uuid4().hex[:6]}"
        self._settings = {
            "kafka_consumer_group": self.group, "task_queue": TASK_QUEUE,
            "bridge_concurrency": concurrency, "temporal_address": frontend.address,
            "kafka_bootstrap_servers": settings.kafka_bootstrap_servers,
            "data_dir": str(settings.data_dir), "bridge_http_port": 0, "worker_http_port": 0,
            "temporal_metrics_port": -1}
        self._argv = ["-m", "bench.ceiling", "--child", variant, "--action", action.value]
        self._count = processes
        self._log = logs / f"ceiling-{self.group}.log"
        self._children: list[asyncio.subprocess.Process] = []

    async def __aenter__(self) -> Self:
        """Start them (each reads the group's committed offsets)."""
        with self._log.open("ab") as out:
            for _ in range(self._count):
                self._children.append(await asyncio.create_subprocess_exec(
                    sys.executable, *self._argv, "--settings", json.dumps(self._settings),
                    cwd=ROOT, stdout=out, stderr=subprocess.STDOUT))
        return self

    async def __aexit__(self, *_: object) -> None:
        """Kill them."""
        for child in self._children:
            if child.returncode is None:
                child.kill()
            await child.wait()

    def cpu(self) -> float:
        """Their CPU seconds so far; raises if one has ended."""
        for child in self._children:
            if child.returncode is not None:
                raise RuntimeError(f"a consuming process ended ({child.returncode}); "
                                   f"see {self._log}")
        return sum(cpu_seconds(child.pid) for child in self._children)

    async def joined(self, settings: Settings) -> None:
        """Return once the group is stable with every process a member (partitions assigned)."""
        async with kafka_clients(settings).started_admin() as admin:
            while True:
                self.cpu()  # fails fast when one died
                [described] = await admin.describe_consumer_groups([self.group])
                _error, _group, state, _type, _protocol, members, *_ = described.groups[0]
                if state == "Stable" and len(members) == self._count:
                    return
                await asyncio.sleep(0.05)


async def measure(settings: Settings, frontend: FakeFrontend, variant: str, action: Action,
                  *, first: dict[TopicPartition, int], warmup: int, records: int,
                  concurrency: int, logs: Path) -> Run:
    """Run ``variant`` in a process of its own from offsets ``first``; time it past the warm-up."""
    consumers = Consumers(settings, frontend, variant, action, processes=1,
                          concurrency=concurrency, logs=logs)
    await commit_group(kafka_clients(settings), consumers.group, first)
    replied = await _replies(settings) if action in REQUESTS else None
    frontend.counts(reset=True)
    counter = COUNTED.get(action, STARTED)
    async with consumers, asyncio.timeout(600):
        counted, cpu, at = await _past(frontend, consumers, counter, warmup)
        served = cpu_seconds(frontend.pid)
        done, cpu_done, _ = await _past(frontend, consumers, counter, warmup + records)
        if variant != "naive FastStream":  # it commits on its own schedule
            await committed_to_end(kafka_clients(settings), consumers.group, first)
            cpu_done = consumers.cpu()
        ended = time.perf_counter()
        served = cpu_seconds(frontend.pid) - served
    if done == counted:
        raise RuntimeError(f"{variant} did them all during the warm-up: raise --events")
    if replied is not None:
        replied = await _replies(settings) - replied
    return Run(variant, action.value, done - counted, ended - at, cpu_done - cpu, served,
               frontend.counts(), replies=replied)


async def _replies(settings: Settings) -> int:
    """Records on the reply topic so far."""
    return (await record_counts(kafka_clients(settings), [REPLIES]))[REPLIES]


async def scale(settings: Settings, frontend: FakeFrontend, action: Action, processes: int,
                *, warmup: int, records: int, concurrency: int, logs: Path) -> Run:
    """``processes`` bridges in one group: joined first, then fed ``records`` fresh records."""
    kafka = kafka_clients(settings)
    first = await end_offsets(kafka, await partitions_of(kafka, [ORDERS_EVENTS]))
    if len(first) < processes:
        raise RuntimeError(f"{ORDERS_EVENTS} has {len(first)} partitions: too few for "
                           f"{processes} processes")
    consumers = Consumers(settings, frontend, "relayflow bridge", action, processes=processes,
                          concurrency=concurrency, logs=logs)
    await commit_group(kafka, consumers.group, first)
    counter, broker = COUNTED.get(action, STARTED), recorded_pid(settings, KAFKA)
    async with consumers, asyncio.timeout(600):
        await consumers.joined(settings)
        frontend.counts(reset=True)
        # Timed once every record is in Kafka: producing them is not what is measured.
        await produce(settings, ORDERS_EVENTS, orders(warmup + records))
        counted, cpu, at = await _past(frontend, consumers, counter, warmup)
        served, kafka_cpu = cpu_seconds(frontend.pid), group_cpu(broker)
        done, _, _ = await _past(frontend, consumers, counter, warmup + records)
        await committed_to_end(kafka, consumers.group, first)
        cpu_done, ended = consumers.cpu(), time.perf_counter()
        served, kafka_cpu = cpu_seconds(frontend.pid) - served, group_cpu(broker) - kafka_cpu
    if done == counted:
        raise RuntimeError(f"{processes} bridges did them all while they were produced: "
                           "raise --scale-events")
    return Run("relayflow bridge", action.value, done - counted, ended - at, cpu_done - cpu,
               served, frontend.counts(), processes, kafka_cpu if broker else None)


async def _past(frontend: FakeFrontend, consumers: Consumers, counter: str,
                target: int) -> tuple[int, float, float]:
    """Wait until the frontend counted ``target`` records; the count, CPU and time then."""
    while True:
        cpu = consumers.cpu()
        at = time.perf_counter()
        counted = (await asyncio.to_thread(frontend.counts)).get(counter, 0)
        if counted >= target:
            return counted, cpu, at
        await asyncio.sleep(0.01)


async def main(args: argparse.Namespace) -> tuple[list[Run], list[Run]]:
    """The variants of every action, then the scale-out pair."""
    runs: list[Run] = []
    scaled: list[Run] = []  # the scale-out pair: one process, then two
    with bench_stack() as settings:
        if os.environ.get("RELAYFLOW_BENCH_STACK") != "external":
            devstack.stop_temporal(settings)  # not used here: its CPU is the consumers'
        logs = settings.data_dir
        logs.mkdir(parents=True, exist_ok=True)
        actions = [Action(a) for a in args.action]
        if any(a in REQUESTS for a in actions):
            await asyncio.to_thread(devstack.ensure_topics, settings,
                                    [Topic(REPLIES, 1, inbound=False, replies=True)])
        kafka = kafka_clients(settings)
        first = await end_offsets(kafka, await partitions_of(kafka, [ORDERS_EVENTS]))
        await produce(settings, ORDERS_EVENTS, orders(args.warmup + args.events))
        with FakeFrontend(settings, logs / "fakefrontend.log") as frontend:
            for action in actions:
                for number, order in alternating(VARIANTS, args.rounds):
                    for variant in order:
                        records = (args.naive_events if variant == "naive FastStream"
                                   else args.events)
                        run = await measure(settings, frontend, variant, action, first=first,
                                            warmup=args.warmup, records=records,
                                            concurrency=args.concurrency, logs=logs)
                        run.round = number
                        runs.append(run)
            if args.scale_action != "none":
                for number, counts in alternating((1, 2), args.rounds):
                    for processes in counts:
                        run = await scale(settings, frontend, Action(args.scale_action),
                                          processes, warmup=args.warmup,
                                          records=args.scale_events,
                                          concurrency=args.concurrency, logs=logs)
                        run.round = number
                        scaled.append(run)
    return runs, scaled


def _median(runs: Sequence[Run], figure: str) -> float:
    """The median of one property of ``runs`` (rate, cpu_us...) over their rounds."""
    return statistics.median(float(getattr(run, figure)) for run in runs)


def report(measured: tuple[list[Run], list[Run]], args: argparse.Namespace) -> str:
    """The tables and the ratios."""
    runs, scaled = measured
    lines = [table("The bridge's ceiling (stand-in frontend: records per second, CPU per record)",
                   ["action", "variant", "round", "records", "seconds", "records/s",
                    "CPU µs/record", "frontend CPU µs/record", "calls/record"],
                   [(r.action, r.variant, r.round, r.records, r.seconds, r.rate, r.cpu_us,
                     r.frontend_cpu_us, r.calls_per_record) for r in runs]), ""]
    ratios: dict[str, float] = {}
    by: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        by.setdefault((run.action, run.variant), []).append(run)
    for action in dict.fromkeys(r.action for r in runs):
        bridge, loop = by[action, "relayflow bridge"], by[action, "hand-written loop"]
        ratios[f"bridge/loop rate ({action})"] = _median(bridge, "rate") / _median(loop, "rate")
        ratios[f"bridge/loop CPU per record ({action})"] = (_median(bridge, "cpu_us")
                                                            / _median(loop, "cpu_us"))
        if (action, "naive FastStream") in by:
            ratios[f"bridge/naive rate ({action})"] = (
                _median(bridge, "rate") / _median(by[action, "naive FastStream"], "rate"))
    notes = []
    if scaled:
        lines += [table(f"Scaling out: bridge processes in one consumer group over "
                        f"{ORDERS_EVENTS} ({scaled[0].action})",
                        ["processes", "round", "records", "seconds", "records/s",
                         "CPU µs/record", "frontend CPU µs/record", "Kafka CPU µs/record"],
                        [(r.processes, r.round, r.records, r.seconds, r.rate, r.cpu_us,
                          r.frontend_cpu_us, "-" if r.kafka_cpu_us is None else r.kafka_cpu_us)
                         for r in scaled]), ""]
        one = [r for r in scaled if r.processes == 1]
        two = [r for r in scaled if r.processes == 2]
        action = scaled[0].action
        ratios[f"2 bridges/1 bridge rate ({action})"] = (_median(two, "rate")
                                                          / _median(one, "rate"))
        bound, said = _scale_bound(one, two)
        ratios[f"2 bridges/1 bridge bound here ({action})"] = bound
        notes.append(said)
    lines += [f"{name}: {value:.2f}x" for name, value in ratios.items()]
    lines += notes
    lines.append(f"(goals: bridge/loop rate >= 0.8x, CPU per record <= 1.25x, 2 bridges/1 >= "
                 f"1.7x; medians of {args.rounds} round(s) in alternating order; concurrency "
                 f"{args.concurrency}, {os.cpu_count()} CPUs shared with Kafka and the "
                 f"frontend, load average {os.getloadavg()[0]:.1f} at the end)")
    record("ceiling", vars(args) | {"loadavg": os.getloadavg()},
           {"runs": [_recorded(r) for r in runs], "scaled": [_recorded(r) for r in scaled],
            "ratios": ratios})
    return "\n".join(lines)


def _scale_bound(one: Sequence[Run], two: Sequence[Run]) -> tuple[float, str]:
    """What two processes could reach at most here: every core busy at their cost per record.

    The bridge is not one core's worth: the SDK's core runs threads of its own, so one
    process can use more than a core, and the frontend and Kafka share the same cores.

    Returns:
        The bound as a ratio to one process's (median) rate, and a line that explains it.
    """
    def whole(runs: Sequence[Run]) -> float:  # CPU µs a record, consumers + frontend + Kafka
        return (_median(runs, "cpu_us") + _median(runs, "frontend_cpu_us")
                + statistics.median(r.kafka_cpu_us or 0.0 for r in runs))

    cores = os.cpu_count() or 1
    rate = _median(one, "rate")
    used = rate * whole(one) / 1e6
    bound = cores * 1e6 / whole(two)
    return bound / rate, (
        f"(the bound: one bridge, with the frontend and Kafka, kept {used:.2f} of {cores} "
        f"cores busy; two can at most keep all {cores} busy at their CPU per record, "
        f"{bound:,.0f} records/s)")


def _recorded(run: Run) -> dict[str, Any]:
    return vars(run) | {"rate": run.rate, "cpu_us": run.cpu_us,
                        "frontend_cpu_us": run.frontend_cpu_us,
                        "kafka_cpu_us": run.kafka_cpu_us, "calls_per_record": run.calls_per_record}


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--naive-events", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--action", nargs="+", choices=[a.value for a in ACTIONS],
                        default=[a.value for a in ACTIONS])
    parser.add_argument("--scale-action", choices=[*(a.value for a in ACTIONS), "none"],
                        default=Action.START.value,
                        help="the route of the one-vs-two bridge processes pair (none: skip it)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of every variant in alternating order (keep it even); "
                             "the ratios are of the medians")
    parser.add_argument("--scale-events", type=int, default=20000,
                        help="records each of the pair is timed on")
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
