"""The worker dies (SIGKILL) in the middle of a chunk's heartbeating activity.

A batch of one 250-item chunk runs in a real ``relayflow worker`` whose items
take 40 ms each; the worker kills itself after its 150th valid item (failpoint
``activity.process-items.after-item``), about 6 s in. The SDK sends
heartbeats at most every 4 s (0.8 x the rig's 5 s heartbeat timeout), so the
last heartbeat Temporal kept is some items behind the work. Once the heartbeat
times out, Temporal retries the activity on a second worker: the retry must
start right after the last heartbeated item, redo only the items between
that heartbeat and the kill (finding each already in the store), and leave
every item's effect in the store exactly once.
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from temporalio.api.enums.v1 import TimeoutType

from relayflow.operate.activities import pending_activities
from relayflow.reference.activities.batches import ProcessItemsResult
from relayflow.reference.activities.store import open_store
from relayflow.reference.events import BatchRequested
from relayflow.reference.topics import BATCHES_REQUESTS
from relayflow.reference.workflows.batch import chunk_item_ids
from relayflow.runtime.bootstrap import connect_temporal
from tests.faults.rig import CHUNK_HEARTBEAT_TIMEOUT_S, Rig

pytestmark = [pytest.mark.timeout(420)]

ITEMS, KILLED_AFTER = 250, 150
SLOW_ITEMS = {"RELAYFLOW_BATCH_ITEM_WORK_SECONDS": "0.04"}
# The kill must come after the second heartbeat (the first, at item 0, is before any valid one).
assert KILLED_AFTER * 0.04 > 0.8 * CHUNK_HEARTBEAT_TIMEOUT_S + 1


async def test_worker_killed_mid_chunk_resumes_after_the_last_heartbeat(rig: Rig) -> None:
    request = BatchRequested(event_id=uuid4(), occurred_at=datetime.now(UTC),
                             batch_id=f"{rig.prefix}-batch", item_count=ITEMS, seed=7,
                             fail_every=97, chunk_size=ITEMS)
    invalid = {i for i in chunk_item_ids(request, 0) if i.startswith("bad-")}
    first = rig.service("worker", env=SLOW_ITEMS).start(
        f"activity.process-items.after-item@{KILLED_AFTER}")
    rig.bridge()
    await rig.produce(BATCHES_REQUESTS, [request])
    assert await first.died() == -signal.SIGKILL

    store = open_store(rig.settings)
    chunk_id = f"batch-{request.batch_id}-chunk-0"
    [dead] = await pending_activities(rig.settings, chunk_id, seconds=10)
    assert dead.activity_type == "process_items"
    # The killed attempt; or, when its heartbeat timed out already (as little as 1 s after
    # the kill), the retry it became, which no worker started yet (none polls).
    assert (dead.state, dead.attempt) == ("running", 1) or (
        (dead.state, dead.attempt) == ("scheduled", 2)
        and "heartbeat" in dead.last_failure.lower()), dead
    assert dead.heartbeat is not None
    kept = dead.heartbeat[0]["next_index"]  # items before it are done, as far as Temporal knows
    done_at_kill = store.processed_items(request.batch_id)
    assert done_at_kill == KILLED_AFTER
    valid_before_kept = kept - len([i for i in chunk_item_ids(request, 0)[:kept]
                                    if i in invalid])
    assert 0 < valid_before_kept < done_at_kill  # a heartbeat got through, and it lags the work

    rig.service("worker", env=SLOW_ITEMS).start()  # Temporal retries here after the timeout
    report = await rig.settled()
    assert report.ok, report.summary()
    assert report.open == [], report.summary()
    assert report.settled["BatchCompleted"] == 1, report.summary()

    # Every item done exactly once: one effect per valid item, one record per invalid one.
    assert store.processed_items(request.batch_id) == ITEMS - len(invalid)
    assert {item for item, _ in store.failed_items(request.batch_id)} == invalid

    client = await connect_temporal(rig.settings)
    handle = client.get_workflow_handle(chunk_id)
    events = [e async for e in handle.fetch_history_events()]
    [retry] = [e.activity_task_started_event_attributes for e in events
               if e.HasField("activity_task_started_event_attributes")
               and e.activity_task_started_event_attributes.attempt > 1]
    assert retry.attempt == 2
    assert retry.last_failure.timeout_failure_info.timeout_type == \
        TimeoutType.TIMEOUT_TYPE_HEARTBEAT  # the dead worker's heartbeat stopped
    completed = next(e.activity_task_completed_event_attributes for e in events
                     if e.HasField("activity_task_completed_event_attributes"))
    [result] = await client.data_converter.decode(completed.result.payloads,
                                                  [ProcessItemsResult])
    assert isinstance(result, ProcessItemsResult)
    assert (result.attempt, result.resumed_at) == (2, kept)  # right after the last heartbeat
    # Only the items between that heartbeat and the kill were done again, with no second effect.
    assert result.repeated == done_at_kill - valid_before_kept
    assert (result.succeeded, len(result.failures)) == (ITEMS - len(invalid), len(invalid))
