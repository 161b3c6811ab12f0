"""An event for every end, on a real Kafka and a real Temporal: bridge, worker, sweep schedule.

The worker creates the ending sweep's Temporal Schedule at start; here it runs
every second (``endings_sweep_seconds=1``), so the stated bound of an ending
(the sweep interval plus one sweep's work) is a few seconds. A saga
terminated while it waits for approval, or timing out, gets exactly one
``OrderFailed``, its reservation released; a sweep run again over the same
window publishes nothing new.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.structs import ConsumerRecord
from temporalio.api.common.v1 import WorkflowExecution as ProtoExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError

from activities.endings import SweepInput, ending_workflow_id
from activities.outcomes import PublishOutcomeInput
from relayflow.config.settings import Settings
from relayflow.reference.activities.store import DEFAULT_STOCK
from relayflow.reference.app import APP
from relayflow.reference.events import (
    ApprovalRequested,
    BatchCompleted,
    BatchProgress,
    BatchRequested,
    OrderFailed,
    OrderPlaced,
)
from relayflow.reference.settings import ReferenceSettings
from relayflow.reference.topics import (
    BATCHES_OUTCOMES,
    BATCHES_REQUESTS,
    ORDERS_EVENTS,
    ORDERS_OUTCOMES,
)
from relayflow.runtime.bootstrap import connect_temporal
from relayflow.runtime.endings import ending_schedule_id, ensure_ending_schedule
from schemas import EventMeta, Inbound, Outcome
from schemas.framing import to_record
from schemas.headers import EVENT_TYPE
from tests.helpers.support import (
    KafkaProbe,
    as_json,
    cli,
    kafka_probe,
    order_placed,
    reference_store,
)
from tests.integration.running import relayflow_running
from workflows.endings import SweepEndings
from workflows.outcomes import outcome_event_id

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SWEEP_SECONDS = 1
STATED_SECONDS = SWEEP_SECONDS + 10
"""The bound this test holds an ending to: one sweep interval plus a sweep's own work."""
CODEC = APP.codec()
REFERENCE = ReferenceSettings()


@pytest.fixture(scope="module")
async def swept(relayflow_stack: Settings) -> AsyncIterator[Settings]:
    """The reference app's bridge and worker, the ending sweep scheduled every second."""
    async with relayflow_running(relayflow_stack,
                                 endings_sweep_seconds=SWEEP_SECONDS) as settings:
        yield settings


@pytest.fixture
async def probe(swept: Settings) -> AsyncIterator[KafkaProbe]:
    async with kafka_probe(swept, [ORDERS_OUTCOMES]) as p:
        yield p


def waiting_order() -> OrderPlaced:
    """An order at the approval threshold (it waits a long time), of a SKU of its own."""
    return order_placed(sku=f"SKU-END-{uuid.uuid4().hex[:8]}", quantity=1,
                        unit_price_cents=REFERENCE.approval_threshold_cents,
                        approval_timeout_seconds=3600)


def failures(probe: KafkaProbe, order: OrderPlaced) -> list[ConsumerRecord[bytes, bytes]]:
    return [r for r in probe.seen if r.key == order.order_id.encode()
            and dict(r.headers)[EVENT_TYPE] == OrderFailed.avro_name.encode()]


async def ended(probe: KafkaProbe, order: OrderPlaced, since: float) -> OrderFailed:
    """The order's one ``OrderFailed``, once it arrived within the stated time."""
    found = await probe.wait_for(lambda r: r in failures(probe, order),
                                 wait_seconds=STATED_SECONDS * 3)
    took = time.monotonic() - since
    assert found, f"no OrderFailed within {took:.1f}s"
    assert took < STATED_SECONDS, f"OrderFailed after {took:.1f}s"
    event = CODEC.decode(found[0].value)
    assert isinstance(event, OrderFailed)
    return event


async def resweep_publishes_nothing_new(client: Client, settings: Settings, probe: KafkaProbe,
                                        order: OrderPlaced) -> None:
    """A sweep over the same window starts no ending; the topic keeps one ``OrderFailed``."""
    summary = await client.execute_workflow(
        SweepEndings.run, SweepInput(window_seconds=3600),
        id=f"resweep-{uuid.uuid4().hex[:8]}", task_queue=settings.task_queue)
    assert summary.started == []
    assert summary.already_ended >= 1
    await asyncio.sleep(2 * SWEEP_SECONDS)  # the schedule's own sweeps too
    await probe.caught_up()
    assert len(failures(probe, order)) == 1


async def test_a_terminated_waiting_order_fails_once_and_releases_its_reservation(
        swept: Settings, probe: KafkaProbe) -> None:
    order = waiting_order()
    sku = order.items[0].sku
    store = reference_store(swept)
    await probe.send_record(ORDERS_EVENTS, to_record(order, CODEC, correlation_id="corr-end"))
    await probe.wait_for(lambda r: r.key == order.order_id.encode()
                         and dict(r.headers)[EVENT_TYPE] == ApprovalRequested.avro_name.encode())
    assert store.available(sku) == DEFAULT_STOCK - 1  # reserved, waiting for approval

    client = await connect_temporal(swept)
    workflow_id = f"order-{order.order_id}"
    handle = client.get_workflow_handle(workflow_id)
    await handle.terminate(reason="stuck, says the operator")
    terminated = time.monotonic()

    failed = await ended(probe, order, terminated)
    assert failed.reason == "terminated"
    assert failed.event_id == outcome_event_id(workflow_id, "failed")
    assert (failed.correlation_id, failed.causation_id) == ("corr-end", str(order.event_id))
    assert failed.failed_step is None
    assert "awaiting_approval" in failed.error
    assert "stuck, says the operator" in failed.error
    assert failed.compensations == ("release_inventory",)
    assert store.available(sku) == DEFAULT_STOCK  # the reservation is released

    run_id = (await handle.describe()).run_id
    ending = client.get_workflow_handle(ending_workflow_id(workflow_id, run_id),
                                        result_type=PublishOutcomeInput)
    published = await asyncio.wait_for(ending.result(), STATED_SECONDS)
    assert (published.topic, published.event["event_id"]) == (ORDERS_OUTCOMES,
                                                              str(failed.event_id))
    await resweep_publishes_nothing_new(client, swept, probe, order)


async def test_an_order_past_its_execution_timeout_fails_once(
        swept: Settings, probe: KafkaProbe) -> None:
    order = waiting_order()
    client = await connect_temporal(swept)
    workflow_id = f"order-{order.order_id}"
    # Started as the bridge would, with an execution timeout the bridge does not set.
    inbound = Inbound[OrderPlaced](event=order, meta=EventMeta(
        event_type=order.avro_name, event_id=str(order.event_id), correlation_id="corr-late"))
    await client.start_workflow("OrderSaga", inbound, id=workflow_id,
                                task_queue=swept.task_queue,
                                execution_timeout=timedelta(seconds=3))
    started = time.monotonic()

    failed = await ended(probe, order, started + 3)
    assert failed.reason == "timed_out"
    assert failed.event_id == outcome_event_id(workflow_id, "failed")
    assert failed.correlation_id == "corr-late"
    assert failed.compensations == ("release_inventory",)
    await resweep_publishes_nothing_new(client, swept, probe, order)


async def test_a_reset_is_not_an_end(swept: Settings, probe: KafkaProbe) -> None:
    """Reset terminates the run it resets; the order goes on in the new run: no event."""
    order = waiting_order()
    await probe.send_record(ORDERS_EVENTS, to_record(order, CODEC, correlation_id="corr-reset"))
    await probe.wait_for(lambda r: r.key == order.order_id.encode()
                         and dict(r.headers)[EVENT_TYPE] == ApprovalRequested.avro_name.encode())
    client = await connect_temporal(swept)
    handle = client.get_workflow_handle(f"order-{order.order_id}")
    old_run = (await handle.describe()).run_id
    history = await handle.fetch_history()
    first_task = next(event.event_id for event in history.events
                      if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    await client.workflow_service.reset_workflow_execution(ResetWorkflowExecutionRequest(
        namespace=swept.temporal_namespace, reason="replay from the start",
        workflow_execution=ProtoExecution(workflow_id=handle.id, run_id=old_run),
        workflow_task_finish_event_id=first_task, request_id=str(uuid.uuid4())))
    await asyncio.sleep(3 * SWEEP_SECONDS + 2)  # sweeps that saw the reset run closed
    await probe.caught_up()
    assert failures(probe, order) == []
    assert (await handle.describe()).run_id != old_run  # the order waits in the new run

    await handle.terminate(reason="now it ends")
    failed = await ended(probe, order, time.monotonic())
    assert failed.reason == "terminated"
    await resweep_publishes_nothing_new(client, swept, probe, order)


async def test_a_terminated_batch_completes_cancelled_once_with_its_counts(
        swept: Settings) -> None:
    batch = BatchRequested(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                           batch_id=f"b-end-{uuid.uuid4().hex[:8]}", item_count=5_000,
                           chunk_size=50, max_concurrent_children=2, progress_every_chunks=1)
    key = batch.batch_id.encode()

    def of_type(kind: type[Outcome]) -> Callable[[ConsumerRecord[bytes, bytes]], bool]:
        return lambda r: r.key == key and dict(r.headers)[EVENT_TYPE] == kind.avro_name.encode()

    async with kafka_probe(swept, [BATCHES_OUTCOMES]) as probe:
        await probe.send_record(BATCHES_REQUESTS, to_record(batch, CODEC))
        assert await probe.wait_for(of_type(BatchProgress))  # under way
        client = await connect_temporal(swept)
        await client.get_workflow_handle(f"batch-{batch.batch_id}").terminate(reason="enough")
        terminated = time.monotonic()
        found = await probe.wait_for(of_type(BatchCompleted), wait_seconds=STATED_SECONDS * 3)
        assert found, "no BatchCompleted"
        assert time.monotonic() - terminated < STATED_SECONDS
        await asyncio.sleep(3 * SWEEP_SECONDS)  # more sweeps
        seen = await probe.caught_up()
    [record] = [r for r in seen if of_type(BatchCompleted)(r)]
    completed = CODEC.decode(record.value)
    last = CODEC.decode([r for r in seen if of_type(BatchProgress)(r)][-1].value)
    assert isinstance(completed, BatchCompleted)
    assert isinstance(last, BatchProgress)
    assert completed.cancelled
    assert completed.event_id == outcome_event_id(f"batch-{batch.batch_id}", "completed")
    assert completed.chunks_total == 100
    # The counts of the closed run, at least those of its last progress report.
    assert last.chunks_done <= completed.chunks_done < completed.chunks_total
    assert completed.succeeded == 50 * completed.chunks_done


async def test_the_worker_created_the_schedule(swept: Settings) -> None:
    client = await connect_temporal(swept)
    schedule = client.get_schedule_handle(ending_schedule_id(swept.task_queue))
    for _ in range(100):  # the worker may still be starting when the module's first test runs
        with contextlib.suppress(RPCError):
            described = await schedule.describe()
            if described.info.num_actions:
                break
        await asyncio.sleep(0.3)
    assert described.schedule.spec.intervals[0].every == timedelta(seconds=SWEEP_SECONDS)
    assert described.info.num_actions >= 1


async def test_scheduling_again_updates_the_interval_and_keeps_a_pause(swept: Settings) -> None:
    settings = swept.model_copy(update={"task_queue": f"sched-{uuid.uuid4().hex[:8]}",
                                        "endings_sweep_seconds": 60})
    client = await connect_temporal(settings)
    schedule = client.get_schedule_handle(ending_schedule_id(settings.task_queue))
    try:
        assert await ensure_ending_schedule(client, settings, APP)
        await schedule.pause(note="an operator's pause")
        faster = settings.model_copy(update={"endings_sweep_seconds": 5})
        assert await ensure_ending_schedule(client, faster, APP)  # a worker restarted
        described = await schedule.describe()
        assert described.schedule.spec.intervals[0].every == timedelta(seconds=5)
        assert described.schedule.state.paused
        off = settings.model_copy(update={"endings_sweep_seconds": 0})
        assert not await ensure_ending_schedule(client, off, APP)
    finally:
        await schedule.delete()


async def test_an_operator_sweeps_now_with_the_schedule_paused(
        swept: Settings, probe: KafkaProbe) -> None:
    """``relayflow endings sweep``: the ending of a run the paused schedule would leave alone."""
    client = await connect_temporal(swept)
    schedule = client.get_schedule_handle(ending_schedule_id(swept.task_queue))
    await schedule.pause(note="the operator sweeps by hand")
    try:
        await asyncio.sleep(2 * SWEEP_SECONDS)  # a scheduled sweep under way has ended
        order = waiting_order()
        await probe.send_record(ORDERS_EVENTS, to_record(order, CODEC))
        await probe.wait_for(lambda r: r.key == order.order_id.encode() and dict(
            r.headers)[EVENT_TYPE] == ApprovalRequested.avro_name.encode())
        handle = client.get_workflow_handle(f"order-{order.order_id}")
        run_id = (await handle.describe()).run_id
        await handle.terminate(reason="swept by hand")

        swept_now = as_json(await cli(swept, "endings", "sweep", "-o", "json"))
        assert swept_now["window_seconds"] == swept.endings_window_seconds
        assert ending_workflow_id(handle.id, run_id) in swept_now["started"]
        failed = await ended(probe, order, time.monotonic())
        assert failed.reason == "terminated"

        again = await cli(swept, "endings", "sweep", "--window-seconds", "600")
        assert again.exit_code == 0, again.output
        assert "0 ending(s) started" in again.stdout
        await probe.caught_up()
        assert len(failures(probe, order)) == 1
    finally:
        await schedule.unpause(note="the operator is done")
