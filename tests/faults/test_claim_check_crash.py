"""A bridge killed between storing a claim-check blob and starting the workflow that uses it.

The blob is durable before the process dies (written whole, then renamed); the
record was not committed, so a new bridge gets it again, stores the same bytes
under the same digest (nothing new), and starts the workflow with a reference
to that blob. Nothing is dead-lettered.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from relayflow.reference.events import BatchRequested
from relayflow.reference.topics import BATCHES_REQUESTS
from relayflow.runtime.bootstrap import connect_temporal
from relayflow.temporal.claim_check import FileBlobStore
from tests.faults.rig import Rig

pytestmark = [pytest.mark.timeout(300)]


async def test_bridge_killed_after_storing_a_blob(rig: Rig, tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path / "claim-check")
    env = {"RELAYFLOW_CLAIM_CHECK_DIR": str(blobs.root)}
    batch_id = f"{rig.prefix}-large"
    event = BatchRequested(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                           batch_id=batch_id, items=("item-" + "\x01" * 400_000,))
    first = rig.bridge(failpoints="claim-check.after-store@1", env=env)
    await rig.produce(BATCHES_REQUESTS, [event])
    assert await first.died() == -signal.SIGKILL
    stored = sorted(name for name, _ in blobs.list("blobs"))
    assert len(stored) == 1, "the blob was not on disk when the bridge died"

    client = await connect_temporal(rig.settings)
    workflow_id = f"batch-{batch_id}"
    assert not [w async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'")]

    rig.bridge(env=env)  # the uncommitted record comes again
    for _ in range(180):
        if [w async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'")]:
            break
        await asyncio.sleep(0.5)
    else:
        pytest.fail("the redelivered record started no workflow")
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    [argument] = history.events[0].workflow_execution_started_event_attributes.input.payloads
    assert stored[0].removeprefix("blobs/") in argument.data.decode()
    # Content-addressed: the redelivery stored nothing new.
    assert sorted(name for name, _ in blobs.list("blobs")) == stored
    await client.get_workflow_handle(workflow_id).terminate("fault test done")
