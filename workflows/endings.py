"""An event for every end: the ending sweep's workflows.

``relayflow.SweepEndings`` runs on a Temporal Schedule (the worker creates it,
``relayflow.runtime.endings``). Each run asks ``find_ended_executions`` for the
executions that closed terminated, timed out or failed without their terminal
event, and starts one ``relayflow.EndExecution`` per closed run, with the id
``ending_workflow_id(workflow id, run id)`` and a reuse policy that refuses
any second start, ever: a later sweep over the same window finds that id
taken and publishes nothing new. ``EndExecution`` runs the ending's
compensation activity (if any), has the application build the event, and
publishes it through ``publish_outcome`` (deterministic event id: a retried
publication is the same event).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.endings import (
        END_EXECUTION_WORKFLOW,
        ClosedExecution,
        EndingSweep,
        SweepInput,
        SweepResult,
        ending_workflow_id,
    )
    from activities.outcomes import PublishOutcomeInput
    from workflows.outcomes import PUBLISH_RETRY, publish_prepared_outcome
    from workflows.versioning import versioning_behavior

__all__ = ["SWEEP_ENDINGS_WORKFLOW", "EndExecution", "SweepEndings", "SweepSummary"]

SWEEP_ENDINGS_WORKFLOW = "relayflow.SweepEndings"
"""Type name of the sweep workflow the ending schedule starts."""

_SWEEP_TIMEOUT = timedelta(minutes=10)
"""One sweep lists, reads histories and queries: minutes at most, heartbeating per execution."""
_SWEEP_HEARTBEAT = timedelta(seconds=60)
_STEP_TIMEOUT = timedelta(seconds=30)
# The sweep runs again on schedule: a few attempts, then the next run takes over.
_SWEEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(
    seconds=10), maximum_attempts=3)
# A compensation must eventually happen: like the saga's, no attempt limit.
_COMPENSATION_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200),
                                  backoff_coefficient=2.0, maximum_interval=timedelta(seconds=30))


class SweepSummary(BaseModel):
    """What one sweep did.

    Attributes:
        started: ``EndExecution`` workflows started (one per closed run needing its event).
        already_ended: Closed runs handled by an earlier sweep.
    """

    started: list[str] = []
    already_ended: int = 0


# Both short runs: pinned on a versioned worker, each ends on the build it started on.
@workflow.defn(name=END_EXECUTION_WORKFLOW,
               versioning_behavior=versioning_behavior(VersioningBehavior.PINNED))
class EndExecution:
    """Publishes the terminal event of one closed execution (id ``ending_workflow_id``)."""

    @workflow.run
    async def run(self, closed: ClosedExecution) -> PublishOutcomeInput:
        """Compensate if the ending says so, build the event, publish it.

        Args:
            closed: The execution, as the sweep found it.

        Returns:
            What was published.
        """
        publication = closed.unfinished
        if publication is None:
            if closed.compensate:
                closed.compensations = await workflow.execute_activity(
                    closed.compensate, closed, result_type=list[str],
                    start_to_close_timeout=_STEP_TIMEOUT, retry_policy=_COMPENSATION_RETRY)
            publication = await workflow.execute_activity_method(
                EndingSweep.build_terminal_event, closed,
                start_to_close_timeout=_STEP_TIMEOUT, retry_policy=PUBLISH_RETRY)
        await publish_prepared_outcome(publication)
        return publication


@workflow.defn(name=SWEEP_ENDINGS_WORKFLOW,
               versioning_behavior=versioning_behavior(VersioningBehavior.PINNED))
class SweepEndings:
    """One sweep: an ``EndExecution`` for each closed run still without its terminal event."""

    @workflow.run
    async def run(self, request: SweepInput) -> SweepSummary:
        """Find the closed executions and start their ``EndExecution`` workflows.

        Args:
            request: The window and the most to handle in one sweep.
        """
        found: SweepResult = await workflow.execute_activity_method(
            EndingSweep.find_ended_executions, request,
            start_to_close_timeout=_SWEEP_TIMEOUT, heartbeat_timeout=_SWEEP_HEARTBEAT,
            retry_policy=_SWEEP_RETRY)
        summary = SweepSummary(already_ended=found.already_ended)
        for closed in found.executions:
            ending_id = ending_workflow_id(closed.workflow_id, closed.run_id)
            try:
                # Abandoned: the ending finishes on its own, whatever becomes of this sweep.
                await workflow.start_child_workflow(
                    EndExecution.run, closed, id=ending_id,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON)
            except WorkflowAlreadyStartedError:
                summary.already_ended += 1  # a sweep running at the same time took it
                continue
            summary.started.append(ending_id)
        return summary
