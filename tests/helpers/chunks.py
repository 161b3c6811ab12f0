"""A reference batch chunk whose items take time, run by a worker of the test's process.

For the tests of ``relayflow activity``, ``relayflow status`` and the
console's activities page: long enough (~6 s) to be paused mid-way, every
item's effect in a store of the test's own, and what its ``process_items``
returned read from the history. A chunk is started alone, or as the one
chunk of a ``BatchWorkflow`` (whose outcomes go to a fake publisher).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from relayflow.config.settings import Settings
from relayflow.operate.activities import PendingActivity, pending_activities
from relayflow.operate.errors import NotFound
from relayflow.reference.activities.batches import BatchActivities, ProcessItemsResult
from relayflow.reference.activities.store import Store
from relayflow.reference.events import BatchRequested
from relayflow.reference.workflows.batch import (
    BatchWorkflow,
    ChunkInput,
    ChunkResult,
    ChunkWorkflow,
)
from relayflow.runtime.bootstrap import connect_temporal
from tests.helpers.workflow_fakes import FakePublisher, inbound

__all__ = ["ITEMS", "WORK_SECONDS", "Chunk", "ChunkRig", "chunk_rig", "finished",
           "started_and_working", "until"]

ITEMS = 300
WORK_SECONDS = 0.02  # per item: a chunk takes ~6 s, long enough to pause mid-way
HEARTBEAT_THROTTLE = timedelta(seconds=1)
"""The longest the rig's worker holds back a heartbeat. The SDK's default here (0.8 x the
chunk's 10 s heartbeat timeout) would let a paused activity run on up to 8 s: a pause or
reset reaches the activity in a heartbeat's answer, so within about a second."""


@dataclass
class Chunk:
    """One chunk started on the test's worker, and where its effects land."""

    client: Client
    handle: WorkflowHandle[Any, ChunkResult]
    batch_id: str
    store: Store

    @property
    def processed(self) -> int:
        """Items whose effect is in the store."""
        return self.store.processed_items(self.batch_id)


@dataclass
class ChunkRig:
    """Starts chunks on a worker of this process whose items take ``WORK_SECONDS`` each."""

    settings: Settings
    client: Client
    task_queue: str
    store: Store

    async def chunk(self) -> Chunk:
        """A chunk workflow of its own (no batch around it)."""
        batch_id, items = _batch_items()
        handle = await self.client.start_workflow(
            ChunkWorkflow.run,
            ChunkInput(batch_id=batch_id, batch_workflow_id=f"batch-{batch_id}", chunk=0,
                       item_ids=items),
            id=f"batch-{batch_id}-chunk-0", task_queue=self.task_queue)
        return Chunk(self.client, handle, batch_id, self.store)

    async def batch(self) -> Chunk:
        """A ``BatchWorkflow`` (``batch-<id>``) of one such chunk; the chunk is returned."""
        batch_id, items = _batch_items()
        request = BatchRequested(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                                 batch_id=batch_id, items=tuple(items), chunk_size=ITEMS)
        await self.client.start_workflow("BatchWorkflow", inbound(request),
                                         id=f"batch-{batch_id}", task_queue=self.task_queue)
        chunk = self.client.get_workflow_handle(f"batch-{batch_id}-chunk-0",
                                                result_type=ChunkResult)
        return Chunk(self.client, chunk, batch_id, self.store)


def _batch_items() -> tuple[str, list[str]]:
    items = [f"item-{n}" for n in range(ITEMS)]
    items[ITEMS // 2] = "bad-middle"  # listed as a failure, not retried
    return f"hb-{uuid.uuid4().hex[:8]}", items


@asynccontextmanager
async def chunk_rig(stack: Settings, folder: Path) -> AsyncIterator[ChunkRig]:
    """A worker for chunks (its own task queue and store in ``folder``) while in the context."""
    client = await connect_temporal(stack)
    task_queue = f"activity-ops-{uuid.uuid4()}"
    store = Store(folder / "store.db", card_limit_cents=0)
    activities = BatchActivities(store, item_work_seconds=WORK_SECONDS)
    with ThreadPoolExecutor(4) as executor:
        async with Worker(client, task_queue=task_queue,
                          workflows=[ChunkWorkflow, BatchWorkflow],
                          activities=[*activities.all(), *FakePublisher().activities()],
                          activity_executor=executor,
                          max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE):
            yield ChunkRig(stack, client, task_queue, store)


async def until(settings: Settings, chunk: Chunk,
                condition: Callable[[PendingActivity], bool], within: float = 60.0,
                ) -> PendingActivity:
    """Its one pending activity once ``condition`` holds (bounded)."""
    deadline = time.monotonic() + within
    while True:
        try:
            pending = await pending_activities(settings, chunk.handle.id, seconds=10)
        except NotFound:  # a batch's chunk not started yet
            pending = []
        if pending and condition(pending[0]):
            return pending[0]
        assert time.monotonic() < deadline, f"never: {pending}"
        await asyncio.sleep(0.2)


async def started_and_working(rig: ChunkRig, chunk: Chunk | None = None) -> Chunk:
    """A chunk (default: one of its own) started, its activity running, 20 items done."""
    chunk = chunk or await rig.chunk()
    await until(rig.settings, chunk, lambda a: a.state == "running")
    while chunk.processed < 20:  # noqa: ASYNC110 - polling the store
        await asyncio.sleep(0.1)
    return chunk


async def finished(chunk: Chunk) -> ProcessItemsResult:
    """The chunk's result checked, and what its ``process_items`` returned."""
    result = await asyncio.wait_for(chunk.handle.result(), 120)
    assert (result.succeeded, result.failed_item_ids) == (ITEMS - 1, ["bad-middle"])
    assert chunk.processed == ITEMS - 1  # every valid item's effect, once
    completed = [e.activity_task_completed_event_attributes
                 async for e in chunk.handle.fetch_history_events()
                 if e.HasField("activity_task_completed_event_attributes")]
    # process_items first, then record_failures.
    [done] = await chunk.client.data_converter.decode(completed[0].result.payloads,
                                                      [ProcessItemsResult])
    assert isinstance(done, ProcessItemsResult)
    return done
