"""The console's activities page on the real stack: an operator pauses and unpauses a chunk.

The chunk (``tests.helpers.chunks``) runs on a worker of this process; the
console runs ``relayflow.operate.activities``, the code behind ``relayflow
activity``, so a pause from the console stops the chunk at its next
heartbeat and an unpause resumes it from there. Only operators see the page,
and its forms refuse what is not confirmed or not this session's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relayflow.console.sessions import CSRF_FIELD
from tests.helpers.chunks import ChunkRig, chunk_rig, finished, started_and_working, until
from tests.integration.console.rig import Console, signed_in, text

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture
async def rig(console: Console, tmp_path: Path) -> AsyncIterator[ChunkRig]:
    async with chunk_rig(console.settings, tmp_path) as made:
        yield made


async def test_an_operator_pauses_and_unpauses_a_chunk_from_the_console(
        console: Console, rig: ChunkRig) -> None:
    chunk = await started_and_working(rig)
    workflow_id = chunk.handle.id
    async with signed_in(console, "olga") as (client, token):
        listed = await client.get("/activities", params={"workflow": workflow_id})
        assert listed.status_code == 200
        assert "process_items" in text(listed)
        asked = await client.get("/activities/pause",
                                 params={"workflow": workflow_id, "activity": "1"})
        assert f"Pause activity 1 of {workflow_id}?" in text(asked)

        form = {CSRF_FIELD: token, "workflow": workflow_id, "activity": "1"}
        unconfirmed = await client.post("/activities/pause", data=form)
        assert unconfirmed.status_code == 400
        assert "Not confirmed" in text(unconfirmed)
        forged = await client.post("/activities/pause",
                                   data=form | {CSRF_FIELD: "forged", "confirm": "yes"})
        assert forged.status_code == 403
        assert (await client.post("/activities/cancel", data=form | {"confirm": "yes"})
                ).status_code == 404
        assert (await until(rig.settings, chunk, lambda _: True)).state == "running"

        paused = await client.post("/activities/pause", data=form | {"confirm": "yes"})
        assert paused.status_code == 200
        assert f"pause sent for activity 1 (process_items) of {workflow_id}" in text(paused)
        stopped = await until(rig.settings, chunk, lambda a: a.state == "paused")
        assert stopped.paused_by.endswith(": paused by olga in the console")
        assert stopped.heartbeat is not None
        shown = text(await client.get("/activities", params={"workflow": workflow_id}))
        assert "paused by olga in the console" in shown
        assert '"next_index"' in shown  # the last heartbeat: the chunk's progress

        unpaused = await client.post("/activities/unpause", data=form | {"confirm": "yes"})
        assert unpaused.status_code == 200
        done = await finished(chunk)
        assert (done.attempt, done.resumed_at) == (2, stopped.heartbeat[0]["next_index"])

        gone = await client.get("/activities", params={"workflow": "no-such-workflow"})
        assert "no workflow 'no-such-workflow'" in text(gone)
        late = await client.post("/activities/reset", data=form | {"confirm": "yes"})
        assert late.status_code == 200
        assert f"{workflow_id} has no pending activity '1'" in text(late)

    async with signed_in(console, "ann") as (client, _):  # an approver, not an operator
        assert (await client.get("/activities", params={"workflow": workflow_id})
                ).status_code == 403
