"""Stored histories of every release replay on today's workflow code.

``tests/histories/release-<version>/`` holds the histories a release's
workflows wrote (``tests/histories/record.py``). Workflows of that release
may still be running when the new code is deployed; the new worker must
replay their histories command for command. A change that reorders, adds or
drops a command without ``workflow.patched``, or no longer decodes a stored
input, fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from relayflow.reference.workflows.batch import BatchWorkflow, ChunkWorkflow
from relayflow.reference.workflows.order_saga import OrderSaga
from tests.helpers.workflow_env import start_workflow_environment
from tests.histories import HISTORIES, load_history, stored_histories
from tests.histories.record import (
    Recorder,
    batch_cancelled,
    batch_continued_as_new,
    batch_with_failures,
    order_approved,
    order_duplicate_decisions,
    order_early_decision,
    order_escalated_approved,
    order_refused_decisions,
    order_rejected,
    order_unproven_decisions,
)
from workflows.endings import EndExecution, SweepEndings

STORED = stored_histories()
WORKFLOWS = [OrderSaga, BatchWorkflow, ChunkWorkflow, SweepEndings, EndExecution]
"""Every workflow the reference worker runs: the application's and the ending sweep's."""


def test_histories_are_stored() -> None:
    assert STORED, f"no stored histories under {HISTORIES}/*/: record them (see its README.md)"


def test_every_workflow_type_has_stored_histories() -> None:
    """A workflow type without a stored history would have its changes replayed against nothing."""
    stored = {load_history(path).events[0].workflow_execution_started_event_attributes
              .workflow_type.name for path in STORED}
    assert stored == {workflow.__temporal_workflow_definition.name  # type: ignore[attr-defined]
                      for workflow in WORKFLOWS}


@pytest.mark.parametrize("path", STORED, ids=[str(p.relative_to(HISTORIES)) for p in STORED])
async def test_stored_history_replays(path: Path) -> None:
    await _replays(load_history(path))


async def test_todays_approval_histories_replay(request: pytest.FixtureRequest,
                                                tmp_path: Path) -> None:
    """Today's rules (``workflow.patched``: approvers asked, proof) replay what they wrote."""
    async with await start_workflow_environment(request.config) as env:
        recorder = Recorder(env, tmp_path)
        for scenario in (order_approved, order_rejected, order_escalated_approved,
                         order_early_decision, order_duplicate_decisions,
                         order_refused_decisions, order_unproven_decisions):
            await scenario(recorder)
    assert len(recorder.written) == 7
    for path in recorder.written:
        history = load_history(path)
        assert any(e.HasField("marker_recorded_event_attributes") for e in history.events)
        await _replays(history)


async def test_todays_batch_histories_replay(request: pytest.FixtureRequest,
                                             tmp_path: Path) -> None:
    """Chunks in one heartbeating activity (``workflow.patched``) replay what they wrote."""
    async with await start_workflow_environment(request.config) as env:
        recorder = Recorder(env, tmp_path)
        for scenario in (batch_with_failures, batch_continued_as_new, batch_cancelled):
            await scenario(recorder)
    chunks = [path for path in recorder.written if "-chunk-" in path.name]
    assert len(chunks) == 12
    for path in recorder.written:
        history = load_history(path)
        if path in chunks:
            scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name
                         for e in history.events
                         if e.HasField("activity_task_scheduled_event_attributes")]
            assert scheduled[0] == "process_items", path.name
            assert "process_item" not in scheduled, path.name
        await _replays(history)


async def _replays(history: WorkflowHistory) -> None:
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    # Raises on non-determinism or any other workflow task failure during replay.
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None
