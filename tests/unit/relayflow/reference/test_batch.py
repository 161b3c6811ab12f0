"""BatchWorkflow in the time-skipping server: window, failures, continue-as-new, cancellation."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity, workflow

# This module defines a workflow, so the sandbox re-imports it: pass the rest through.
with workflow.unsafe.imports_passed_through():
    import pytest
    from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
    from temporalio.exceptions import CancelledError
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from relayflow.reference.events import BatchRequested
    from relayflow.reference.timeouts import ActivityTimeouts, use_activity_timeouts
    from relayflow.reference.workflows.batch import (
        BatchCarry,
        BatchResult,
        BatchRun,
        BatchWorkflow,
        ChunkInput,
        ChunkResult,
    )
    from relayflow.reference.workflows.batch import ChunkWorkflow as RealChunkWorkflow
    from schemas import EventMeta, Inbound
    from tests.helpers.workflow_env import start_workflow_environment
    from tests.helpers.workflow_fakes import FakeBatchActivities


@dataclass
class Recorder:
    """Test-process memory the fakes report to."""

    fakes: FakeBatchActivities = field(default_factory=FakeBatchActivities)
    in_flight: int = 0
    peak: int = 0
    in_flight_at_start: list[int] = field(default_factory=list)
    chunk_ids: list[str] = field(default_factory=list)


REC = Recorder()


@activity.defn(name="chunk_started")
async def chunk_started(workflow_id: str) -> None:
    REC.in_flight_at_start.append(REC.in_flight)
    REC.in_flight += 1
    REC.peak = max(REC.peak, REC.in_flight)
    REC.chunk_ids.append(workflow_id)


@activity.defn(name="chunk_finished")
async def chunk_finished() -> None:
    REC.in_flight -= 1


@workflow.defn(name="ChunkWorkflow")
class SlowChunkWorkflow:
    """Stands in for ChunkWorkflow: reports start and end, takes (chunk % 3 + 1) minutes."""

    @workflow.run
    async def run(self, request: ChunkInput) -> ChunkResult:
        await workflow.execute_activity(chunk_started, workflow.info().workflow_id,
                                        start_to_close_timeout=timedelta(seconds=10))
        await workflow.sleep(timedelta(minutes=request.chunk % 3 + 1))
        await workflow.execute_activity(chunk_finished,
                                        start_to_close_timeout=timedelta(seconds=10))
        return ChunkResult(chunk=request.chunk, succeeded=len(request.item_ids),
                           failed_item_ids=[])


@pytest.fixture
async def env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
    global REC  # noqa: PLW0603 - fresh recorder per test
    REC = Recorder()
    async with await start_workflow_environment(request.config) as environment:
        yield environment


def batch(**fields: Any) -> Inbound[BatchRequested]:
    event = BatchRequested(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                           batch_id=f"b-{uuid.uuid4().hex[:8]}", **fields)
    return Inbound[BatchRequested](event=event, meta=EventMeta(
        event_type=event.avro_name, event_id=str(event.event_id), correlation_id="corr-b"))


@contextlib.asynccontextmanager
async def running_batch(env: WorkflowEnvironment, inbound: Inbound[BatchRequested], *,
                        chunk_workflow: type = RealChunkWorkflow,
                        carry: BatchCarry | None = None,
                        ) -> AsyncIterator[WorkflowHandle[Any, BatchResult]]:
    """Start the batch with a worker that lives as long as the context."""
    task_queue = f"tq-{uuid.uuid4()}"
    worker = Worker(env.client, task_queue=task_queue,
                    workflows=[BatchWorkflow, chunk_workflow],
                    activities=[*REC.fakes.all(), chunk_started, chunk_finished])
    async with worker:
        yield await env.client.start_workflow(
            BatchWorkflow.run, BatchRun(inbound=inbound, carry=carry),
            id=f"batch-{inbound.event.batch_id}",
            task_queue=task_queue)


async def run_batch(env: WorkflowEnvironment, inbound: Inbound[BatchRequested], *,
                    chunk_workflow: type = RealChunkWorkflow, carry: BatchCarry | None = None,
                    ) -> tuple[WorkflowHandle[Any, BatchResult], BatchResult]:
    async with running_batch(env, inbound, chunk_workflow=chunk_workflow, carry=carry) as handle:
        return handle, await handle.result()


def published(kind: str) -> list[dict[str, Any]]:
    return [p.event for p in REC.fakes.published if p.event_type.endswith(kind)]


async def test_items_are_processed_and_failures_counted_not_lost(env: WorkflowEnvironment) -> None:
    items = [f"i-{n}" for n in range(22)] + ["bad-1", "bad-2", "bad-3"]
    _, result = await run_batch(env, batch(items=items, chunk_size=10, progress_every_chunks=1))

    assert (result.succeeded, result.failed) == (22, 3)
    assert sorted(REC.fakes.processed) == sorted(items[:22])
    [completed] = published("BatchCompleted")
    assert (completed["succeeded"], completed["failed"], completed["chunks_total"]) == (22, 3, 3)
    assert sorted(completed["failed_item_ids"]) == ["bad-1", "bad-2", "bad-3"]
    assert completed["correlation_id"] == "corr-b"
    assert len(published("BatchProgress")) == 3
    assert completed["failed_items_ref"] == f"store:batch_failures/{completed['batch_id']}"
    assert completed["failed_items_truncated"] is False
    assert (completed["cancelled"], completed["reason"]) == (False, None)  # ran to the end
    assert sorted(REC.fakes.failures) == ["bad-1", "bad-2", "bad-3"]
    assert "invalid" in REC.fakes.failures["bad-1"]


async def test_long_failure_list_is_truncated_in_the_event_but_kept_whole(
    env: WorkflowEnvironment,
) -> None:
    _, result = await run_batch(env, batch(item_count=40, fail_every=2, chunk_size=10),
                                carry=BatchCarry(max_listed_failures=5))
    assert (result.succeeded, result.failed) == (20, 20)
    [completed] = published("BatchCompleted")
    assert len(completed["failed_item_ids"]) == 5
    assert completed["failed_items_truncated"] is True
    assert len(REC.fakes.failures) == 20


async def test_generated_batch_marks_every_nth_item_invalid(env: WorkflowEnvironment) -> None:
    _, result = await run_batch(env, batch(item_count=50, seed=7, fail_every=10, chunk_size=20))
    assert (result.succeeded, result.failed) == (45, 5)
    assert "bad-7-0" in published("BatchCompleted")[0]["failed_item_ids"]


async def test_window_slides_and_is_never_exceeded(env: WorkflowEnvironment) -> None:
    _, result = await run_batch(env, batch(item_count=100, chunk_size=10,
                                           max_concurrent_children=3),
                                chunk_workflow=SlowChunkWorkflow)
    assert result.succeeded == 100
    assert REC.peak == 3
    # Sliding, not waves: every chunk after the first three starts while others still run.
    assert all(n >= 1 for n in REC.in_flight_at_start[3:])
    assert sorted(REC.chunk_ids) == sorted(f"batch-{{}}-chunk-{n}".format(
        REC.chunk_ids[0].split("-chunk-")[0].removeprefix("batch-")) for n in range(10))


async def test_continue_as_new_carries_progress(env: WorkflowEnvironment) -> None:
    REC.fakes.history_event_limit = 60  # what the worker's settings would say
    handle, result = await run_batch(
        env, batch(item_count=200, chunk_size=10, max_concurrent_children=2),
        chunk_workflow=SlowChunkWorkflow)
    assert result.runs > 2
    assert REC.fakes.limits_asked == 1  # the first run asks; later runs carry the answer
    assert result.succeeded == 200
    [completed] = published("BatchCompleted")
    assert (completed["succeeded"], completed["chunks_done"]) == (200, 20)
    assert len(set(REC.chunk_ids)) == 20  # no chunk ran twice across runs
    history = await handle.fetch_history()
    assert len(history.events) < 200  # the last run's history stayed small


async def test_cancellation_cancels_children_and_reports_what_finished(
    env: WorkflowEnvironment,
) -> None:
    inbound = batch(item_count=100, chunk_size=10, max_concurrent_children=2)
    async with running_batch(env, inbound, chunk_workflow=SlowChunkWorkflow) as handle:
        for _ in range(300):
            if len(REC.chunk_ids) >= 4:
                break
            await env.sleep(30)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    assert isinstance(info.value.cause, CancelledError)
    [completed] = published("BatchCompleted")
    assert (completed["cancelled"], completed["reason"]) == (True, "cancelled")
    # At least 4 had started and 2 were running when the cancel came.
    assert 2 <= completed["chunks_done"] < 10
    assert completed["succeeded"] == completed["chunks_done"] * 10
    # The chunks running at cancel time were cancelled, not left running.
    for chunk_id in REC.chunk_ids[completed["chunks_done"]:]:
        description = await env.client.get_workflow_handle(chunk_id).describe()
        assert description.status == WorkflowExecutionStatus.CANCELED


async def _scheduled_in(env: WorkflowEnvironment, workflow_id: str) -> list[Any]:
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    return [e.activity_task_scheduled_event_attributes for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")]


async def test_a_chunk_runs_its_items_in_one_heartbeating_activity(
        env: WorkflowEnvironment) -> None:
    handle, result = await run_batch(env, batch(items=["i-1", "bad-2", "i-3"], chunk_size=3))
    assert (result.succeeded, result.failed) == (2, 1)
    scheduled = await _scheduled_in(env, f"{handle.id}-chunk-0")
    assert [s.activity_type.name for s in scheduled] == ["process_items", "record_failures"]
    assert scheduled[0].heartbeat_timeout.ToTimedelta() == timedelta(seconds=10)
    assert list(REC.fakes.failures) == ["bad-2"]


async def test_a_chunk_heartbeats_within_the_workers_heartbeat_timeout(
        env: WorkflowEnvironment) -> None:
    use_activity_timeouts(ActivityTimeouts(chunk_heartbeat=timedelta(seconds=3)))
    try:
        handle, _ = await run_batch(env, batch(items=["i-1", "i-2"], chunk_size=2))
    finally:
        use_activity_timeouts(ActivityTimeouts())
    [process_items] = (await _scheduled_in(env, f"{handle.id}-chunk-0"))
    assert process_items.heartbeat_timeout.ToTimedelta() == timedelta(seconds=3)


async def test_a_chunk_that_gives_up_goes_item_by_item_and_counts_each_once(
        env: WorkflowEnvironment) -> None:
    REC.fakes.chunks_fail = True
    handle, result = await run_batch(env, batch(items=["i-1", "bad-2", "i-3"], chunk_size=3))
    assert (result.succeeded, result.failed) == (2, 1)
    assert REC.fakes.chunk_attempts == 10  # every attempt of its retry policy, then per item
    scheduled = await _scheduled_in(env, f"{handle.id}-chunk-0")
    assert [s.activity_type.name for s in scheduled] == [
        "process_items", "process_item", "process_item", "process_item", "record_failures"]
    assert sorted(REC.fakes.processed) == ["i-1", "i-3"]
