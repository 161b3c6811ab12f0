"""A second worker build becomes current under running workflows, on the real Temporal dev server.

Two versioned workers of the reference workflows (``worker_deployment``,
the config ``build_worker`` gives the worker) poll one task queue as builds
``build-1`` and ``build-2`` of one Worker Deployment; ``relayflow
deployment promote`` switches from the first to the second while an order
saga waits for its approval and a batch waits for its first chunk. As
Temporal documents the behaviours each workflow type declares:

* the pinned ``OrderSaga`` finishes on ``build-1``, the build it started on;
* the auto-upgrading ``BatchWorkflow`` runs its next workflow task on
  ``build-2``, and the chunk it starts then runs there; the pinned chunk it
  had started before ends on ``build-1``;
* a saga started after the promotion runs on ``build-2``.

Which build ran each workflow task is what the history records
(``WorkflowTaskCompleted.deployment_version``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.api.enums.v1 import VersioningBehavior as ApiBehavior
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from relayflow.config.settings import Settings
from relayflow.reference.events import BatchRequested
from relayflow.reference.workflows.approval import APPROVAL_SIGNAL
from relayflow.reference.workflows.batch import BatchResult, BatchWorkflow, ChunkWorkflow
from relayflow.reference.workflows.order_saga import OrderSaga
from relayflow.runtime.bootstrap import connect_temporal, worker_deployment
from tests.helpers.support import as_json, cli, order_placed
from tests.helpers.workflow_fakes import (
    FakeBatchActivities,
    FakeOrderActivities,
    decision,
    inbound,
    wait_for_approval,
)
from workflows.versioning import versioned_workers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]



def build(settings: Settings, build_id: str) -> Settings:
    return settings.model_copy(update={"worker_build_id": build_id})


@contextlib.asynccontextmanager
async def versioned_worker(client: Client, settings: Settings, orders: FakeOrderActivities,
                           batches: FakeBatchActivities) -> AsyncIterator[None]:
    """The reference workflows on workers of ``settings``' build, running while the block runs.

    Orders and batches poll task queues of their own (each fake has its own
    ``publish_outcome``); one deployment version spans both.
    """
    deployment = worker_deployment(settings)
    with versioned_workers():
        async with Worker(client, task_queue=settings.task_queue, workflows=[OrderSaga],
                          activities=orders.all(), deployment_config=deployment), \
                Worker(client, task_queue=batch_queue(settings),
                       workflows=[BatchWorkflow, ChunkWorkflow], activities=batches.all(),
                       deployment_config=deployment):
            yield


def batch_queue(settings: Settings) -> str:
    return f"{settings.task_queue}-batches"


async def promoted(settings: Settings, build_id: str) -> dict[str, Any]:
    """``relayflow deployment promote``, retried until the build's worker has polled."""
    deadline = time.monotonic() + 30
    while True:
        result = await cli(settings, "deployment", "promote", build_id, "-o", "json")
        if result.exit_code == 0 or time.monotonic() > deadline:
            return dict(as_json(result))
        await asyncio.sleep(0.5)


async def builds_that_ran(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """The build id of each completed workflow task of the run, in order."""
    return [e.workflow_task_completed_event_attributes.deployment_version.build_id
            for e in (await handle.fetch_history()).events
            if e.HasField("workflow_task_completed_event_attributes")]


async def behaviour(handle: WorkflowHandle[Any, Any]) -> tuple[int, str]:
    info = (await handle.describe()).raw_description.workflow_execution_info.versioning_info
    return info.behavior, info.deployment_version.build_id


async def test_pinned_runs_stay_on_their_build_and_auto_upgrade_runs_move(
        stack: Settings) -> None:
    settings = stack.model_copy(update={
        "task_queue": f"deploys-{uuid.uuid4().hex[:8]}",
        "worker_deployment_name": f"relayflow-{uuid.uuid4().hex[:8]}"})
    client = await connect_temporal(settings)
    orders, batches = FakeOrderActivities(), FakeBatchActivities(block_item="i-1")
    order = order_placed(quantity=2_000, unit_price_cents=100)  # needs an approval
    request = BatchRequested(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                             batch_id=f"b-{uuid.uuid4().hex[:8]}",
                             items=tuple(f"i-{n}" for n in range(4)), chunk_size=2,
                             max_concurrent_children=1, progress_every_chunks=1)
    async with versioned_worker(client, build(settings, "build-1"), orders, batches):
        first = await promoted(settings, "build-1")
        assert first["build_id"] == "build-1"
        saga = await client.start_workflow(OrderSaga.run, inbound(order),
                                           id=f"order-{order.order_id}",
                                           task_queue=settings.task_queue)
        batch = await client.start_workflow("BatchWorkflow", inbound(request),
                                            id=f"batch-{request.batch_id}",
                                            task_queue=batch_queue(settings),
                                            result_type=BatchResult)
        await wait_for_approval(saga)
        await asyncio.wait_for(batches.blocked.wait(), timeout=30)

        async with versioned_worker(client, build(settings, "build-2"), orders, batches):
            second = await promoted(settings, "build-2")
            assert (second["build_id"], second["previous_build_id"]) == ("build-2", "build-1")
            shown = as_json(await cli(settings, "deployment", "show", "-o", "json"))
            assert shown["current_build_id"] == "build-2"
            assert {v["build_id"] for v in shown["versions"]} == {"build-1", "build-2"}

            await saga.signal(APPROVAL_SIGNAL, inbound(decision(order.order_id, "APPROVED")))
            batches.release.set()
            assert (await saga.result()).outcome == "OrderCompleted"
            assert (await batch.result()).succeeded == 4

            later = order_placed()
            after = await client.start_workflow(OrderSaga.run, inbound(later),
                                                id=f"order-{later.order_id}",
                                                task_queue=settings.task_queue)
            assert (await after.result()).outcome == "OrderCompleted"

    # Pinned: every task of the saga ran on the build it started on, after the promotion too.
    assert set(await builds_that_ran(saga)) == {"build-1"}
    assert await behaviour(saga) == (ApiBehavior.VERSIONING_BEHAVIOR_PINNED, "build-1")
    # Auto-upgrade: the batch started on build-1 and moved to build-2.
    ran = await builds_that_ran(batch)
    assert ran[0] == "build-1", ran
    assert ran[-1] == "build-2", ran
    assert await behaviour(batch) == (ApiBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE, "build-2")
    chunk_0 = client.get_workflow_handle(f"{batch.id}-chunk-0")
    chunk_1 = client.get_workflow_handle(f"{batch.id}-chunk-1")
    assert set(await builds_that_ran(chunk_0)) == {"build-1"}
    assert set(await builds_that_ran(chunk_1)) == {"build-2"}
    assert set(await builds_that_ran(after)) == {"build-2"}
