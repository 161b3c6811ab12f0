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
import uuid
from collections.abc import AsyncIterator

import pytest

from relayflow.config.settings import Settings
from tests.helpers.chunks import (
    ITEMS,
    WORK_SECONDS,
    ChunkRig,
    chunk_rig,
    finished,
    started_and_working,
    until,
)
from tests.helpers.support import as_json, cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

TICKETS_APP = "examples.tickets.app:APP"
"""Another application: the commands serve any, they only speak to Temporal."""


@pytest.fixture(scope="module")
async def rig(stack: Settings, tmp_path_factory: pytest.TempPathFactory,
              ) -> AsyncIterator[ChunkRig]:
    """One worker for the module's chunks: each test starts chunks of its own (own ids)."""
    async with chunk_rig(stack, tmp_path_factory.mktemp("chunks")) as made:
        yield made


async def test_a_paused_activity_stops_and_an_unpaused_one_resumes_from_its_heartbeat(
        rig: ChunkRig) -> None:
    chunk = await started_and_working(rig)
    paused = as_json(await cli(rig.settings, "activity", "pause", chunk.handle.id,
                               "--reason", "db maintenance", "-o", "json"))
    assert paused["action"] == "pause"
    assert paused["activity_type"] == "process_items"
    assert paused["state"] in {"pause-requested", "paused"}

    # It stops at its next heartbeat (the rig's worker sends one at least every second).
    stopped = await until(rig.settings, chunk, lambda a: a.state == "paused")
    assert stopped.paused_by.endswith(": db maintenance")
    assert stopped.heartbeat is not None
    kept = stopped.heartbeat[0]["next_index"]
    before = chunk.processed
    await asyncio.sleep(75 * WORK_SECONDS)  # the time 75 more items would take
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
        rig: ChunkRig) -> None:
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


async def test_an_unknown_workflow_or_activity_is_not_found(rig: ChunkRig) -> None:
    missing = await cli(rig.settings, "activity", "pause", f"nope-{uuid.uuid4()}")
    assert missing.exit_code == 1
    assert "no workflow" in missing.stderr

    chunk = await started_and_working(rig)
    wrong = await cli(rig.settings, "activity", "unpause", chunk.handle.id, "99")
    assert wrong.exit_code == 1
    assert "no pending activity '99'" in wrong.stderr
    assert "process_items" in wrong.stderr  # what it does wait for
    await finished(chunk)


async def test_status_shows_how_far_a_running_batchs_chunk_got(rig: ChunkRig) -> None:
    """``relayflow status`` of a batch: its chunk's activity, attempt and decoded heartbeat."""
    chunk = await started_and_working(rig, await rig.batch())
    beat = await until(rig.settings, chunk, lambda a: a.heartbeat is not None)
    try:
        report = as_json(await cli(rig.settings, "status", chunk.batch_id, "-o", "json"))
        [batch] = report["workflows"]
        assert batch["workflow_id"] == f"batch-{chunk.batch_id}"
        [waited] = batch["activities"]  # the batch's own wait is its child: the chunk's
        assert (waited["workflow_id"], waited["activity_type"], waited["attempt"]) == (
            chunk.handle.id, "process_items", 1)
        assert waited["last_heartbeat_at"] is not None
        assert 0 < waited["heartbeat"][0]["next_index"] <= chunk.processed + 1
        assert beat.heartbeat is not None
        assert waited["heartbeat"][0]["next_index"] >= beat.heartbeat[0]["next_index"]

        shown = await cli(rig.settings, "status", chunk.batch_id)
        assert "waiting for activities" in shown.stdout
        assert "process_items" in shown.stdout
        assert "next_index" in shown.stdout
    finally:
        await rig.client.get_workflow_handle(f"batch-{chunk.batch_id}").terminate("test over")
