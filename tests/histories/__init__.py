"""Stored workflow histories, one folder per release, replayed by the replay test.

(``tests/unit/relayflow/reference/test_replay.py``.)

A file is one workflow run's history as ``WorkflowHistory.to_json()`` writes
it. Its name is the workflow id, plus ``.run-<n>`` when the workflow continued
as new (``batch-x.run-2.json``): the test server leaves the workflow id out of
the history, and replay needs it (child ids and idempotency keys derive from it).
A ``/`` of a workflow id (the ending sweep's ``relayflow-ending/<id>/<run>``)
is written ``%2F`` (and ``%`` itself ``%25``).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, unquote

from temporalio.client import WorkflowHistory

__all__ = [
    "HISTORIES",
    "history_file_name",
    "load_history",
    "stored_histories",
    "workflow_id_of",
]

HISTORIES = Path(__file__).resolve().parent
"""The folder holding ``release-<version>/`` folders."""


def history_file_name(workflow_id: str, run: int | None = None) -> str:
    """File name of a history: ``<workflow id>[.run-<n>].json``.

    Args:
        workflow_id: The workflow id; must not contain a dot.
        run: Run number (1 = first) when the workflow has several runs.
    """
    if "." in workflow_id:
        raise ValueError(f"workflow id {workflow_id!r} has a dot: the file name would be ambiguous")
    suffix = f".run-{run}" if run is not None else ""
    return f"{quote(workflow_id, safe='')}{suffix}.json"


def workflow_id_of(path: Path) -> str:
    """The workflow id a history file was recorded under (its name up to the first dot)."""
    return unquote(path.name.split(".", 1)[0])


def stored_histories(root: Path = HISTORIES) -> list[Path]:
    """Every stored history of every release under ``root`` (an application's own), sorted."""
    return sorted(root.glob("*/*.json"))


def load_history(path: Path) -> WorkflowHistory:
    """A stored history, with the workflow id its file name gives."""
    return WorkflowHistory.from_json(workflow_id_of(path), path.read_text(encoding="utf-8"))
