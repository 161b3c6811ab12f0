"""Stored ``CartEntity`` histories replay on today's carts code.

``tests/histories/carts/release-<release>/`` holds what deployed carts wrote
(``tests/histories/carts.py``): a cart that continued as new on Temporal's
suggestion and was checked out in its second run by a Workflow Update (and
the same update again), and a cart whose checkout was rejected and that was
then abandoned. Carts live for months: a change to ``CartEntity`` or
``EntityWorkflow`` that reorders, adds or drops a command without
``workflow.patched`` fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from examples.carts.workflows import CartEntity
from tests.histories import load_history, stored_histories
from tests.histories.carts import CARTS_HISTORIES

STORED = stored_histories(CARTS_HISTORIES)


def test_cart_histories_are_stored_with_a_continue_as_new_and_an_update() -> None:
    events = [e for path in STORED for e in load_history(path).events]
    assert any(e.HasField("workflow_execution_continued_as_new_event_attributes")
               for e in events)
    assert any(e.HasField("workflow_execution_update_completed_event_attributes")
               for e in events)
    assert {e.workflow_execution_started_event_attributes.workflow_type.name
            for e in events if e.HasField("workflow_execution_started_event_attributes")} == {
        "CartEntity"}


@pytest.mark.parametrize("path", STORED, ids=[str(p.relative_to(CARTS_HISTORIES)) for p in STORED])
async def test_stored_cart_history_replays(path: Path) -> None:
    replayer = Replayer(workflows=[CartEntity], data_converter=pydantic_data_converter)
    # Raises on non-determinism or any other workflow task failure during replay.
    result = await replayer.replay_workflow(load_history(path))
    assert result.replay_failure is None
