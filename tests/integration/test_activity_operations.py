"""Operators pause, unpause and reset a heartbeating activity on the real Temporal dev server.

The activity is the reference batch's ``process_items`` over one chunk
(started directly, with a worker in this process whose items take a little
time each), driven through ``relayflow activity``: paused, it stops making
progress; unpaused, it resumes from its last heartbeat and finishes; reset
with its heartbeat dropped, it starts again at attempt 1 from the first item.
Every item's effect is in the store once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from relayflow.config.settings import Settings
from relayflow.operate.activities import PendingActivity, pending_activities
from relayflow.reference.activities.batches import BatchActivities, ProcessItemsResult
from relayflow.reference.activities.store import Store
from relayflow.reference.workflows.batch import ChunkInput, ChunkResult, ChunkWorkflow
from relayflow.runtime.bootstrap import connect_temporal
from tests.helpers.support import as_json, cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ITEMS = 300
WORK_SECONDS = 0.04  # per item: a chunk takes ~12 s, long enough to pause mid-way
TICKETS_APP = "examples.tickets.app:APP"
"""Another application: the commands serve any, they only speak to Temporal."""


@dataclass
class Chunk:
    """One chunk started on the test's worker, and where its effects land."""

    client: Client
    handle: WorkflowHandle[Any, ChunkResult]
    batch_id: str
    store: Store

    @property
    def processed(self) -> int:
        return self.store.processed_items(self.batch_id)


@dataclass
class Rig:
    settings: Settings
    client: Client
    task_queue: str
    store: Store

    async def chunk(self) -> Chunk:
        batch_id = f"hb-{uuid.uuid4().hex[:8]}"
        items = [f"item-{n}" for n in range(ITEMS)]
        items[ITEMS // 2] = "bad-middle"  # listed as a failure, not retried
        handle = await self.client.start_workflow(
            ChunkWorkflow.run,
            ChunkInput(batch_id=batch_id, batch_workflow_id=f"batch-{batch_id}", chunk=0,
                       item_ids=items),
            id=f"batch-{batch_id}-chunk-0", task_queue=self.task_queue)
        return Chunk(self.client, handle, batch_id, self.store)


@pytest.fixture
async def rig(stack: Settings, tmp_path: Path) -> AsyncIterator[Rig]:
    client = await connect_temporal(stack)
    task_queue = f"activity-ops-{uuid.uuid4()}"
    store = Store(tmp_path / "store.db", card_limit_cents=0)
    activities = BatchActivities(store, item_work_seconds=WORK_SECONDS)
    with ThreadPoolExecutor(4) as executor:
        async with Worker(client, task_queue=task_queue, workflows=[ChunkWorkflow],
                          activities=activities.all(), activity_executor=executor):
            yield Rig(stack, client, task_queue, store)


async def until(settings: Settings, chunk: Chunk,
                condition: Callable[[PendingActivity], bool], within: float = 60.0,
                ) -> PendingActivity:
    """Its one pending activity once ``condition`` holds (bounded)."""
    deadline = time.monotonic() + within
    while True:
        pending = await pending_activities(settings, chunk.handle.id, seconds=10)
        if pending and condition(pending[0]):
            return pending[0]
        assert time.monotonic() < deadline, f"never: {pending}"
        await asyncio.sleep(0.2)


async def started_and_working(rig: Rig) -> Chunk:
    chunk = await rig.chunk()
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


async def test_a_paused_activity_stops_and_an_unpaused_one_resumes_from_its_heartbeat(
        rig: Rig) -> None:
    chunk = await started_and_working(rig)
    paused = as_json(await cli(rig.settings, "activity", "pause", chunk.handle.id,
                               "--reason", "db maintenance", "-o", "json"))
    assert paused["action"] == "pause"
    assert paused["activity_type"] == "process_items"
    assert paused["state"] in {"pause-requested", "paused"}

    # It stops at its next heartbeat (the SDK sends one at most every 8 s here).
    stopped = await until(rig.settings, chunk, lambda a: a.state == "paused")
    assert stopped.paused_by.endswith(": db maintenance")
    assert stopped.heartbeat is not None
    kept = stopped.heartbeat[0]["next_index"]
    before = chunk.processed
    await asyncio.sleep(3)
    assert chunk.processed == before < ITEMS - 1  # no progress while paused
    assert 0 < kept <= before + 1  # the heartbeat lags the work, never leads it

    listed = await cli(rig.settings, "activity", "list", chunk.handle.id, "--app", TICKETS_APP)
    assert listed.exit_code == 0, listed.output
    assert "process_items" in listed.stdout
    assert "db maintenance" in listed.stdout

    unpaused = as_json(await cli(rig.settings, "activity", "unpause", chunk.handle.id,
                                 stopped.activity_id, "-o", "json"))
    assert unpaused["action"] == "unpause"
    done = await finished(chunk)
    # The pause failed attempt 1 (ActivityPause); attempt 2 began after the last heartbeat.
    assert (done.attempt, done.resumed_at) == (2, kept)
    # Redone without a second effect: the valid items between the heartbeat and the pause.
    assert done.repeated == before - (kept - (1 if kept > ITEMS // 2 else 0))

    gone = await cli(rig.settings, "activity", "pause", chunk.handle.id)
    assert gone.exit_code == 1
    assert "waits for no activity" in gone.stderr


async def test_a_reset_activity_starts_again_at_attempt_one_from_the_first_item(
        rig: Rig) -> None:
    chunk = await started_and_working(rig)
    await cli(rig.settings, "activity", "pause", chunk.handle.id)
    stopped = await until(rig.settings, chunk, lambda a: a.state == "paused")
    assert stopped.attempt == 2  # the pause's failure took attempt 1
    done_before = chunk.processed

    reset = as_json(await cli(rig.settings, "activity", "reset", chunk.handle.id,
                              "--reset-heartbeat", "--app", TICKETS_APP, "-o", "json"))
    assert reset["action"] == "reset"
    assert reset["attempt"] == 1
    assert reset["state"] != "paused"  # a reset unpauses (no --keep-paused)

    done = await finished(chunk)
    assert (done.attempt, done.resumed_at) == (1, 0)
    assert done.repeated == done_before  # redone from the first item, none written twice


async def test_an_unknown_workflow_or_activity_is_not_found(rig: Rig) -> None:
    missing = await cli(rig.settings, "activity", "pause", f"nope-{uuid.uuid4()}")
    assert missing.exit_code == 1
    assert "no workflow" in missing.stderr

    chunk = await started_and_working(rig)
    wrong = await cli(rig.settings, "activity", "unpause", chunk.handle.id, "99")
    assert wrong.exit_code == 1
    assert "no pending activity '99'" in wrong.stderr
    assert "process_items" in wrong.stderr  # what it does wait for
    await finished(chunk)
