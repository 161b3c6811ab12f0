"""The bridge on a real Kafka and a real Temporal.

A tiny workflow registered as ``OrderSaga`` on this module's own worker and
task queue stands in for the real saga, so these tests check the bridge only.
Each bridge runs in its own consumer group whose offsets start at the current
end of the topics, so records of other tests are never replayed here.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord, RecordMetadata
from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bridge.commands import TemporalCommands
from bridge.failures import PermanentFailure
from bridge.routes import Action, Route, RouteTable
from relayflow import devstack
from relayflow.config.settings import Settings
from relayflow.devstack import free_port
from relayflow.kafka.reads import start_group_at_end
from relayflow.reference.app import APP, ROUTES
from relayflow.reference.events import (
    ApprovalDecided,
    OrderCancelled,
    OrderPlaced,
)
from relayflow.reference.topics import APPROVALS_DECISIONS, ORDERS_EVENTS
from relayflow.runtime.bootstrap import connect_temporal, run_bridge
from relayflow.runtime.clients import kafka_clients
from schemas import Event, EventMeta, Inbound
from schemas.framing import to_record
from schemas.headers import (
    DLQ_FAILED_AT,
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
)
from schemas.topics import dlq_topic
from tests.helpers.support import KafkaProbe, kafka_probe, order_placed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CODEC = APP.codec()
WAIT = 60.0  # bound on every wait for something the bridge does


@workflow.defn(name="OrderSaga")
class TinySaga:
    """Waits for ``finish`` (or cancellation); returns the metadata it was started with."""

    def __init__(self) -> None:
        self._finished = False
        self.decisions: list[str] = []

    @workflow.run
    async def run(self, inbound: Inbound[Any]) -> EventMeta:
        await workflow.wait_condition(lambda: self._finished)
        return inbound.meta

    @workflow.signal
    def finish(self) -> None:
        self._finished = True

    @workflow.signal
    def approval_decided(self, inbound: Inbound[Any]) -> None:
        self.decisions.append(inbound.meta.event_id)

    @workflow.query
    def decided(self) -> list[str]:
        return self.decisions


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it holds; fail after ``WAIT`` seconds."""
    async with asyncio.timeout(WAIT):
        while not await check():  # noqa: ASYNC110 - polling a remote service, no event to wait on
            await asyncio.sleep(0.2)
    assert await check(), what


async def exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def committed(settings: Settings, tp: TopicPartition) -> int:
    """The group's committed offset of a partition (-1 when none)."""
    admin = kafka_clients(settings).admin()
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.kafka_consumer_group)
    finally:
        await admin.close()
    return offsets[tp].offset if tp in offsets else -1


@asynccontextmanager
async def bridge_running(settings: Settings, routes: RouteTable = ROUTES) -> AsyncIterator[None]:
    await start_group_at_end(kafka_clients(settings), settings.kafka_consumer_group, routes.topics)
    stop = asyncio.Event()
    task = asyncio.create_task(run_bridge(settings, stop=stop, routes=routes))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT)


@dataclass
class Bridged:
    settings: Settings
    client: Client
    probe: KafkaProbe

    async def send(self, event: Event, topic: str = ORDERS_EVENTS, **headers: str,
                   ) -> RecordMetadata:
        record = to_record(event, CODEC, **headers)
        return await self.probe.send_record(topic, record)

    def handle(self, workflow_id: str) -> WorkflowHandle[Any, EventMeta]:
        return self.client.get_workflow_handle(workflow_id, result_type=EventMeta)

    async def runs(self, workflow_id: str) -> int:
        return len([w async for w in self.client.list_workflows(f"WorkflowId = '{workflow_id}'")])

    async def dead(self, key: str, count: int = 1) -> list[ConsumerRecord[bytes, bytes]]:
        found = await self.probe.wait_for(
            lambda r: r.topic == dlq_topic(ORDERS_EVENTS) and r.key == key.encode(),
            count=count)  # bounded by the probe's own default wait
        assert len(found) >= count, f"{count} dead letters for {key} expected, got {len(found)}"
        return found


APPROVAL = Route(APPROVALS_DECISIONS, ApprovalDecided, Action.SIGNAL, "OrderSaga",
                 "order-{order_id}", signal="approval_decided")
APPROVAL_STARTS = Route(APPROVALS_DECISIONS, ApprovalDecided, Action.SIGNAL_WITH_START,
                        "OrderSaga", "order-{order_id}", signal="approval_decided")
# This module's own table, so it does not change when relayflow's routes grow.
TEST_ROUTES = RouteTable([
    Route(ORDERS_EVENTS, OrderPlaced, Action.START, "OrderSaga", "order-{order_id}"),
    Route(ORDERS_EVENTS, OrderCancelled, Action.CANCEL, "OrderSaga", "order-{order_id}"),
    APPROVAL,
])


@pytest.fixture(scope="module")
async def bridged(stack: Settings) -> AsyncIterator[Bridged]:
    suffix = uuid.uuid4().hex[:8]
    settings = stack.model_copy(update={"task_queue": f"bridge-it-{suffix}",
                                        "kafka_consumer_group": f"bridge-it-{suffix}",
                                        "bridge_batch_size": 50,
                                        "bridge_signal_hold_seconds": WAIT})
    client = await connect_temporal(settings)
    worker = Worker(client, task_queue=settings.task_queue, workflows=[TinySaga],
                    workflow_runner=UnsandboxedWorkflowRunner())
    async with worker, bridge_running(settings, TEST_ROUTES), kafka_probe(
            settings, [dlq_topic(ORDERS_EVENTS)]) as probe:
        yield Bridged(settings, client, probe)


def new_order_id() -> str:
    return f"bt-{uuid.uuid4().hex[:10]}"


def cancelled(order_id: str) -> OrderCancelled:
    return OrderCancelled(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), order_id=order_id)


# ---------------------------------------------------------------- through Kafka


async def test_order_placed_starts_the_saga_with_the_inbound_envelope(bridged: Bridged) -> None:
    order = order_placed(new_order_id())
    sent = await bridged.send(order, correlation_id="corr-it-1")
    handle = bridged.handle(f"order-{order.order_id}")
    await eventually(lambda: exists(bridged.client, handle.id), "saga started")
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    await handle.signal(TinySaga.finish)
    meta = await asyncio.wait_for(handle.result(), WAIT)
    assert meta.correlation_id == "corr-it-1"
    assert meta.event_id == str(order.event_id)
    assert (meta.topic, meta.partition, meta.offset) == (ORDERS_EVENTS, sent.partition,
                                                         sent.offset)


async def test_duplicates_start_one_saga_and_are_all_committed(bridged: Bridged) -> None:
    order = order_placed(new_order_id())
    handle = bridged.handle(f"order-{order.order_id}")
    first = [await bridged.send(order) for _ in range(3)]  # while it runs: attach
    await eventually(lambda: exists(bridged.client, handle.id), "saga started")
    await handle.signal(TinySaga.finish)
    await asyncio.wait_for(handle.result(), WAIT)
    last = await bridged.send(order)  # after it closed: already started, not started again

    tp = TopicPartition(ORDERS_EVENTS, last.partition)
    assert {m.partition for m in first} == {last.partition}  # same key, same partition
    await eventually(lambda: _committed_past(bridged.settings, tp, last.offset),
                     "every duplicate committed")
    assert await bridged.runs(handle.id) == 1
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def _committed_past(settings: Settings, tp: TopicPartition, offset: int) -> bool:
    return await committed(settings, tp) > offset


async def test_undecodable_record_is_dead_lettered_its_key_parked_the_partition_moves_on(
    bridged: Bridged,
) -> None:
    order_id, other_id = new_order_id(), new_order_id()
    original = [("event-type", b"relayflow.orders.OrderPlaced"), ("x-trace", b"\xff\x00")]
    bad = await bridged.probe.send(ORDERS_EVENTS, b"\xc3\x01garbage", order_id.encode(), original)
    await bridged.send(order_placed(order_id))  # same key, after the bad record: parked
    other = to_record(order_placed(other_id), CODEC)  # another key on the same partition
    await bridged.probe.producer.send_and_wait(ORDERS_EVENTS, other.value, key=other.key,
                                               partition=bad.partition, headers=other.headers)

    dead, parked = await bridged.dead(order_id, count=2)
    assert dict(parked.headers)[DLQ_REASON] == b"parked"
    headers = dict(dead.headers)
    assert dead.value == b"\xc3\x01garbage"
    assert list(dead.headers)[:2] == original
    assert headers[DLQ_REASON] == b"truncated"
    assert headers[DLQ_SOURCE_TOPIC] == ORDERS_EVENTS.encode()
    assert int(headers[DLQ_SOURCE_PARTITION]) == bad.partition == dead.partition
    assert int(headers[DLQ_SOURCE_OFFSET]) == bad.offset
    assert datetime.fromisoformat(headers[DLQ_FAILED_AT].decode()).tzinfo is not None
    await eventually(lambda: exists(bridged.client, f"order-{other_id}"), "next record processed")
    assert not await exists(bridged.client, f"order-{order_id}")


async def test_cancel_reaches_the_running_saga_and_a_duplicate_is_harmless(
    bridged: Bridged,
) -> None:
    order = order_placed(new_order_id())
    handle = bridged.handle(f"order-{order.order_id}")
    await bridged.send(order)
    await bridged.send(cancelled(order.order_id))
    await eventually(lambda: _status_is(handle, WorkflowExecutionStatus.CANCELED), "cancelled")

    await bridged.send(cancelled(order.order_id))  # redelivered cancel: already cancelled
    await bridged.probe.send(ORDERS_EVENTS, b"sentinel", order.order_id.encode())
    [dead] = await bridged.dead(order.order_id)  # only the sentinel, after the duplicate
    assert dead.value == b"sentinel"


async def _status_is(handle: WorkflowHandle[Any, Any], status: WorkflowExecutionStatus) -> bool:
    try:
        return (await handle.describe()).status == status
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:  # not started yet
            return False
        raise


async def test_a_decision_before_its_saga_is_held_then_delivered(
    bridged: Bridged, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bridge")
    order = order_placed(new_order_id())
    early = decision(order.order_id)
    held = await bridged.send(early, APPROVALS_DECISIONS)  # no saga yet
    tp = TopicPartition(APPROVALS_DECISIONS, held.partition)
    handle = bridged.handle(f"order-{order.order_id}")

    # The bridge tried the signal, found no saga and holds the record.
    coordinates = f"{APPROVALS_DECISIONS}[{held.partition}]@{held.offset}"
    await eventually(lambda: _logged(caplog, f"holding {coordinates} for"), "decision held")
    # Meanwhile other partitions flow. The bridge's batches run one after another, so
    # once this later record is committed, the batch that held the decision has
    # committed too: everything but the decision, which stays uncommitted (not
    # dead-lettered, not skipped), and no saga was made up for it.
    other = order_placed(new_order_id())
    flowing = await bridged.send(other)
    await eventually(lambda: _committed_past(
        bridged.settings, TopicPartition(ORDERS_EVENTS, flowing.partition), flowing.offset),
        "another partition flows while the decision is held")
    assert await committed(bridged.settings, tp) <= held.offset
    assert not await exists(bridged.client, handle.id)
    await bridged.handle(f"order-{other.order_id}").signal(TinySaga.finish)

    await bridged.send(order)
    await eventually(lambda: exists(bridged.client, handle.id), "saga started")

    async def delivered() -> bool:
        return str(early.event_id) in await handle.query(TinySaga.decided)

    await eventually(delivered, "held decision delivered once the saga exists")
    await eventually(lambda: _committed_past(bridged.settings, tp, held.offset),
                     "held decision committed once delivered")
    assert await handle.query(TinySaga.decided) == [str(early.event_id)]  # delivered once
    await handle.signal(TinySaga.finish)
    await asyncio.wait_for(handle.result(), WAIT)


async def test_cancel_of_an_unknown_order_is_dead_lettered(bridged: Bridged) -> None:
    order_id = new_order_id()
    await bridged.send(cancelled(order_id))
    [dead] = await bridged.dead(order_id)
    assert dict(dead.headers)[DLQ_REASON] == b"target-not-found"


# ---------------------------------------------------------------- Temporal commands


def inbound(event: Event) -> Inbound[Event]:
    meta = EventMeta(event_type=event.avro_name, event_id=str(event.event_id),
                     correlation_id=str(event.event_id))
    envelope: Any = Inbound[type(event)]  # type: ignore[misc]
    return envelope(event=event, meta=meta)  # type: ignore[no-any-return]


def decision(order_id: str) -> ApprovalDecided:
    return ApprovalDecided(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                           approval_id=f"ap-{order_id}", order_id=order_id,
                           decision="APPROVED", decided_by="ops")


async def _reason(call: Awaitable[str]) -> str:
    try:
        return await call
    except PermanentFailure as failure:
        return f"dlq:{failure.reason}"


async def test_temporal_commands_on_running_missing_and_closed_targets(bridged: Bridged) -> None:
    commands = TemporalCommands(bridged.client, bridged.settings.task_queue)
    start = ROUTES.lookup(ORDERS_EVENTS, "relayflow.orders.OrderPlaced")
    cancel = ROUTES.lookup(ORDERS_EVENTS, "relayflow.orders.OrderCancelled")
    assert start is not None
    assert cancel is not None
    order = order_placed(new_order_id())
    handle = bridged.handle(f"order-{order.order_id}")

    assert await _reason(commands.execute(APPROVAL, inbound(decision(order.order_id)))) == (
        "dlq:target-not-found")
    assert await _reason(commands.execute(cancel, inbound(cancelled(order.order_id)))) == (
        "dlq:target-not-found")
    assert await commands.execute(start, inbound(order)) == "started"
    run_id = (await handle.describe()).run_id
    assert await commands.execute(start, inbound(order)) == "started"  # attached
    assert (await handle.describe()).run_id == run_id
    assert await commands.execute(APPROVAL, inbound(decision(order.order_id))) == "signalled"
    await handle.signal(TinySaga.finish)
    await asyncio.wait_for(handle.result(), WAIT)

    assert await commands.execute(start, inbound(order)) == "already-started"
    assert await _reason(commands.execute(APPROVAL, inbound(decision(order.order_id)))) == (
        "dlq:target-closed")
    assert await _reason(commands.execute(APPROVAL_STARTS, inbound(decision(order.order_id)))) == (
        "dlq:target-closed")
    assert await _reason(commands.execute(cancel, inbound(cancelled(order.order_id)))) == (
        "dlq:target-closed")
    assert await bridged.runs(handle.id) == 1


async def test_signal_with_start_starts_a_missing_workflow(bridged: Bridged) -> None:
    commands = TemporalCommands(bridged.client, bridged.settings.task_queue)
    order_id = new_order_id()
    first = decision(order_id)
    assert await commands.execute(APPROVAL_STARTS, inbound(first)) == "signalled"
    assert await commands.execute(APPROVAL_STARTS, inbound(decision(order_id))) == "signalled"
    handle = bridged.handle(f"order-{order_id}")
    decided = await handle.query(TinySaga.decided)
    assert decided[0] == str(first.event_id)
    assert len(decided) == 2
    await handle.signal(TinySaga.finish)


# ---------------------------------------------------------------- commit discipline


async def test_a_started_bridge_leaves_what_start_up_built_out_of_full_collections(
        stack: Settings) -> None:
    # Start-up's objects live as long as the process; walking them again in every full
    # collection cost the bridge ~15 µs a record (BENCHMARKS.md). Frozen once it serves.
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    suffix = uuid.uuid4().hex[:8]
    settings = stack.model_copy(update={"task_queue": f"bridge-gc-{suffix}",
                                        "kafka_consumer_group": f"bridge-gc-{suffix}"})
    async with bridge_running(settings, TEST_ROUTES), asyncio.timeout(WAIT):
        while gc.get_freeze_count() < 1000:  # noqa: ASYNC110 - nothing to wait on but the count
            await asyncio.sleep(0.1)
    gc.unfreeze()  # the rest of this test process collects as before


async def test_nothing_is_committed_while_temporal_is_down(
    stack: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    # A Temporal of our own (SQLite, so its workflows survive the restart) that we stop
    # and start again while the bridge has a record in hand.
    suffix = uuid.uuid4().hex[:8]
    settings = stack.model_copy(update={
        "data_dir": tmp_path, "temporal_port": free_port(), "temporal_ui_port": free_port(),
        "task_queue": f"bridge-outage-{suffix}", "kafka_consumer_group": f"bridge-outage-{suffix}",
    })
    settings = settings.model_copy(
        update={"temporal_address": f"127.0.0.1:{settings.temporal_port}"})
    await asyncio.to_thread(devstack.start_temporal, settings)
    try:
        client = await connect_temporal(settings)
        watch = [dlq_topic(ORDERS_EVENTS)]
        async with bridge_running(settings), kafka_probe(settings, watch) as probe:
            async def send(order_id: str) -> Any:
                record = to_record(order_placed(order_id), CODEC)
                return await probe.send_record(ORDERS_EVENTS, record)

            before = await send(new_order_id())
            tp = TopicPartition(ORDERS_EVENTS, before.partition)
            await eventually(lambda: _committed_past(settings, tp, before.offset),
                             "committed while Temporal is up")

            await asyncio.to_thread(devstack.stop_temporal, settings)
            caplog.set_level(logging.WARNING, logger="bridge")
            order_id = new_order_id()
            during = await send(order_id)
            during_tp = TopicPartition(ORDERS_EVENTS, during.partition)
            await eventually(lambda: _logged(caplog, "Temporal unavailable"), "outage noticed")
            assert await committed(settings, during_tp) <= during.offset

            await asyncio.to_thread(devstack.start_temporal, settings)
            await eventually(lambda: _committed_past(settings, during_tp, during.offset),
                             "committed once Temporal acknowledged")
            assert await exists(client, f"order-{order_id}")
            assert _logged_now(caplog, "Temporal available again")
    finally:
        await asyncio.to_thread(devstack.stop_temporal, settings)


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return _logged_now(caplog, text)


def _logged_now(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)
