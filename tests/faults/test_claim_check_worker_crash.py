"""A worker killed between storing a claim-check blob and using it.

A batch request with one large item makes its workflow start a chunk child whose
input (2.4 MB as JSON) the worker stores as a blob while completing the
workflow task; the worker dies right after the blob is stored
(``claim-check.after-store``), before the task completes, so no history refers
to it. A new worker replays the task and stores the input again: with payload
encryption on it is new ciphertext (a fresh nonce), so the first blob is an
orphan. The batch finishes with every item once, one chunk child, one
``BatchCompleted``; the sweep then removes every blob, the orphan included.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus

from relayflow.reference.activities.store import open_store
from relayflow.reference.events import BatchCompleted, BatchRequested
from relayflow.reference.topics import BATCHES_OUTCOMES, BATCHES_REQUESTS
from relayflow.runtime.bootstrap import connect_temporal
from relayflow.temporal.claim_check import FileBlobStore, sweep
from tests.faults.rig import Rig
from tests.helpers.support import cli

pytestmark = [pytest.mark.timeout(300)]


async def test_worker_killed_after_storing_a_blob(rig: Rig, tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path / "claim-check")
    key = base64.b64encode(bytes(range(32))).decode()
    env = {"RELAYFLOW_CLAIM_CHECK_DIR": str(blobs.root),
           "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS": f"k1:{key}",
           "RELAYFLOW_CLAIM_CHECK_SWEEP_SECONDS": "0"}
    batch_id = f"{rig.prefix}-large-out"
    items = ("item-" + "\x01" * 400_000, "item-2")
    event = BatchRequested(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                           batch_id=batch_id, items=items)
    rig.bridge(env=env)
    first = rig.worker(failpoints="claim-check.after-store@1", env=env)
    await rig.produce(BATCHES_REQUESTS, [event])
    assert await first.died() == -signal.SIGKILL
    # The bridge's blob (the start) and the worker's (the child's input), both whole.
    assert len(list(blobs.list("blobs"))) == 2

    rig.worker(env=env)  # replays the task the dead worker did not complete
    client = await connect_temporal(rig.settings)
    handle = client.get_workflow_handle(f"batch-{batch_id}")
    for _ in range(240):
        if (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED:
            break
        await asyncio.sleep(0.5)
    else:
        pytest.fail("the batch did not finish after the worker's restart")

    # Nothing lost, nothing twice: each item once, one chunk child, one BatchCompleted.
    assert open_store(rig.settings).processed_items(batch_id) == len(items)
    chunks = [w async for w in client.list_workflows(f"WorkflowId = '{handle.id}-chunk-0'")]
    assert len(chunks) == 1
    tailed = await cli(rig.settings, "tail", BATCHES_OUTCOMES, "--key", batch_id,
                       "--output", "json", **env)
    assert tailed.exit_code == 0, tailed.output
    outcomes = [json.loads(line) for line in tailed.stdout.splitlines() if line.strip()]
    [completed] = [o["event"] for o in outcomes if o["event_type"] == BatchCompleted.avro_name]
    assert (completed["succeeded"], completed["failed"]) == (len(items), 0)

    # The re-stored input is new ciphertext: one blob more than the histories use.
    assert len(list(blobs.list("blobs"))) >= 4
    await asyncio.sleep(1)
    report = await sweep(client, blobs, timedelta(seconds=0.5))
    assert report.blobs >= 4
    assert list(blobs.list("blobs")) == []
    assert list(blobs.list("refs")) == []
