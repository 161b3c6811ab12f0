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
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.histories import HISTORIES, load_history, stored_histories
from workflows.batch import BatchWorkflow, ChunkWorkflow
from workflows.order_saga import OrderSaga

STORED = stored_histories()


def test_histories_are_stored() -> None:
    assert STORED, f"no stored histories under {HISTORIES}/*/: record them (see its README.md)"


@pytest.mark.parametrize("path", STORED, ids=[str(p.relative_to(HISTORIES)) for p in STORED])
async def test_stored_history_replays(path: Path) -> None:
    replayer = Replayer(workflows=[OrderSaga, BatchWorkflow, ChunkWorkflow],
                        data_converter=pydantic_data_converter)
    # Raises on non-determinism or any other workflow task failure during replay.
    result = await replayer.replay_workflow(load_history(path))
    assert result.replay_failure is None
