"""``relayflow endings sweep``: run the ending sweep now, for the configured application.

The worker's schedule sweeps every ``endings_sweep_seconds``
(``relayflow.runtime.endings``). An operator who cannot wait (after an
outage longer than the sweep's window, say, or to see an ending published
now) starts one sweep by hand: a ``relayflow.SweepEndings`` run on the
application's task queue, with the settings' window or a longer one, whose
summary (the ``relayflow.EndExecution`` workflows it started, the closed
runs handled before) is waited for. It is started directly rather than by
triggering the schedule: a trigger says nothing of what it did, is dropped
while a scheduled sweep runs (the schedule skips overlaps), and keeps the
schedule's window. Already handled runs are skipped, so a sweep is safe to
repeat, also beside the scheduled ones.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from temporalio.client import WorkflowFailureError

from activities.endings import SweepInput
from relayflow.application import Application, load_application
from relayflow.config.settings import Settings
from relayflow.operate.deadlines import (
    BadInput,
    NotFound,
    Unanswered,
    connected_temporal,
    temporal_answers,
)
from relayflow.operate.errors import OperatorError
from relayflow.runtime.endings import ending_schedule_id, sweep_execution_timeout
from workflows.endings import SWEEP_ENDINGS_WORKFLOW, SweepSummary

__all__ = ["SweepFailed", "SweepNow", "sweep_endings_now"]


class SweepFailed(OperatorError):
    """The sweep ran and failed; Temporal's words are the message."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class SweepNow:
    """One sweep started by hand, and what it did.

    Attributes:
        workflow_id: The sweep's workflow id (``relayflow-endings-<task queue>-now-<uuid>``).
        window_seconds: How far back it looked.
        summary: The endings it started and the closed runs handled before.
    """

    workflow_id: str
    window_seconds: int
    summary: SweepSummary

    def as_line(self) -> str:
        """One line for people."""
        return (f"sweep {self.workflow_id} looked back {self.window_seconds} s: "
                f"{len(self.summary.started)} ending(s) started, "
                f"{self.summary.already_ended} closed run(s) handled before")

    def as_json(self) -> dict[str, object]:
        """For ``--output json``."""
        return {"workflow_id": self.workflow_id, "window_seconds": self.window_seconds,
                "started": self.summary.started, "already_ended": self.summary.already_ended}


async def sweep_endings_now(settings: Settings, *, seconds: float,
                            window_seconds: int | None = None,
                            app: Application | None = None) -> SweepNow:
    """Run one ending sweep now on the application's task queue and wait for its summary.

    Args:
        settings: Where Temporal is, the task queue, the default window.
        seconds: Bound of the start and of the wait for a worker to run the sweep.
        window_seconds: Look back this far (default: ``endings_window_seconds``).
        app: The application (default: the configured one).

    Raises:
        NotFound: The application declares no endings: there is nothing to sweep.
        BadInput: ``window_seconds`` is not positive.
        SweepFailed: The sweep failed.
        relayflow.operate.deadlines.Unanswered: Temporal did not answer, or no
            worker ran the sweep in time (it stays queued and runs when one polls).
    """
    app = app or load_application(settings.app)
    if not app.endings:
        raise NotFound(f"application {app.name!r} declares no endings: nothing to sweep")
    window = settings.endings_window_seconds if window_seconds is None else window_seconds
    if window <= 0:
        raise BadInput(f"--window-seconds must be positive, not {window}")
    client = await connected_temporal(settings, seconds)
    workflow_id = f"{ending_schedule_id(settings.task_queue)}-now-{uuid.uuid4().hex[:12]}"
    async with temporal_answers(settings, seconds):
        handle = await client.start_workflow(
            SWEEP_ENDINGS_WORKFLOW, SweepInput(window_seconds=window), id=workflow_id,
            task_queue=settings.task_queue, result_type=SweepSummary,
            execution_timeout=sweep_execution_timeout(settings))
    try:
        # Only a worker runs the sweep: silence here is the worker's, not Temporal's.
        async with asyncio.timeout(seconds):
            summary = await handle.result()
    except TimeoutError:
        raise Unanswered(f"a worker of {app.name} (task queue {settings.task_queue!r})",
                         f"did not run sweep {workflow_id} within {seconds:g} s: is one "
                         "running? The sweep stays queued and runs when one polls") from None
    except WorkflowFailureError as failed:
        raise SweepFailed(f"sweep {workflow_id} failed: {failed.cause or failed}") from None
    return SweepNow(workflow_id, window, summary)
