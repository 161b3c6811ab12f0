"""``relayflow activity`` on a server without the activity API refuses with one clear line.

Temporal's time-skipping test server (the Java one) does not implement
``PauseActivity``, ``UnpauseActivity`` or ``ResetActivity``: it stands in for
a server older than 1.27. The pending activity is a reference chunk's, on a
task queue whose worker runs workflows only, so it stays scheduled. The real
dev server's answers are tested in ``tests/integration/test_activity_operations.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from relayflow.config.settings import Settings
from relayflow.operate.activities import (
    Unsupported,
    pause_activity,
    pending_activities,
    reset_activity,
    unpause_activity,
)
from relayflow.reference.workflows.batch import ChunkInput, ChunkWorkflow
from tests.helpers.support import cli
from tests.helpers.workflow_env import start_time_skipping_environment


@pytest.fixture(scope="module")
async def workflow_env() -> AsyncIterator[WorkflowEnvironment]:
    """An environment of this module's own: the test server keeps its virtual clock
    still while an activity is scheduled, even once its workflow was terminated, so
    a shared environment's timers (other modules' tests) would never fire."""
    async with await start_time_skipping_environment() as env:
        yield env


@pytest.fixture
async def waiting(workflow_env: WorkflowEnvironment) -> AsyncIterator[tuple[Settings, str]]:
    """Settings of the test server and a chunk whose ``process_items`` no worker runs."""
    task_queue = f"tq-{uuid.uuid4()}"
    workflow_id = f"batch-b-{uuid.uuid4().hex[:6]}-chunk-0"
    async with Worker(workflow_env.client, task_queue=task_queue, workflows=[ChunkWorkflow]):
        await workflow_env.client.start_workflow(
            ChunkWorkflow.run, ChunkInput(batch_id="b", batch_workflow_id="batch-b", chunk=0,
                                          item_ids=["i-1"]),
            id=workflow_id, task_queue=task_queue)
        settings = Settings(
            temporal_address=workflow_env.client.service_client.config.target_host,
            temporal_namespace=workflow_env.client.namespace)
        for _ in range(100):  # until its first workflow task scheduled the activity
            if await pending_activities(settings, workflow_id, seconds=10):
                break
            await asyncio.sleep(0.05)
        yield settings, workflow_id


async def test_a_server_without_the_activity_api_is_named_and_nothing_changes(
        waiting: tuple[Settings, str]) -> None:
    settings, workflow_id = waiting
    [before] = await pending_activities(settings, workflow_id, seconds=10)
    assert (before.activity_type, before.state, before.attempt) == ("process_items",
                                                                   "scheduled", 1)
    for action in (pause_activity(settings, workflow_id, reason="r", seconds=10),
                   unpause_activity(settings, workflow_id, seconds=10),
                   reset_activity(settings, workflow_id, reset_heartbeat=True, seconds=10)):
        with pytest.raises(Unsupported, match=r"does not support (pause|unpause|reset) of an "
                                              r"activity \(UNIMPLEMENTED.*Nothing was changed"):
            await action
    assert await pending_activities(settings, workflow_id, seconds=10) == [before]

    refused = await cli(settings, "activity", "pause", workflow_id)
    assert refused.exit_code == 1
    assert refused.stderr.startswith("relayflow: Temporal at ")
    assert "does not support pause of an activity" in refused.stderr
