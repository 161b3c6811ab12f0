"""Finding workflows that ended without their terminal event, and building that event.

A workflow that is terminated, hits its execution timeout or fails never runs
the code that publishes its outcome, so its subscribers would wait forever.
An application declares, per workflow type, an ``Ending``: which outcome
events end that workflow and how to build one for an execution that closed
without it. relayflow's ending sweep (``workflows.endings``) then:

1. lists the task queue's executions of those types that closed as
   terminated, timed out or failed within a recent window (a visibility
   query), leaving out those already handled (each handled one has an
   ``relayflow.EndExecution`` workflow of its own, with a deterministic id);
2. leaves out a run that a later run of the same workflow id replaced (a
   reset terminates the run it resets; a retry policy starts a new run);
3. reads each one's history: when a ``publish_outcome`` of one of its
   terminal events completed, there is nothing to do; when one was scheduled
   and did not complete (it may or may not have reached Kafka), that very
   publication is sent again (the same event id); otherwise the application's
   builder makes the event (``build_terminal_event``), after the ending's
   compensation activity, if any, ran.

The lists and reads happen here (activities do the I/O); the decisions and the
publishing happen in the workflows, through the ``publish_outcome`` activity.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.outcomes import PublishOutcomeInput
from schemas import Outcome

__all__ = [
    "END_EXECUTION_WORKFLOW",
    "ClosedExecution",
    "Ending",
    "EndingSweep",
    "SweepInput",
    "SweepResult",
    "ending_workflow_id",
    "sweep_query",
    "terminal_publications",
]

log = logging.getLogger(__name__)

END_EXECUTION_WORKFLOW = "relayflow.EndExecution"
"""Type name of the workflow that publishes one closed execution's terminal event."""

_STATUSES: Mapping[WorkflowExecutionStatus, str] = {
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
    WorkflowExecutionStatus.FAILED: "failed",
}
_VISIBILITY_STATUS = {"terminated": "Terminated", "timed_out": "TimedOut", "failed": "Failed"}


class ClosedExecution(BaseModel):
    """A workflow execution that closed without publishing its terminal event.

    Attributes:
        workflow_type: Its workflow type.
        workflow_id: Its workflow id.
        run_id: The run that closed (the last one of a continue-as-new chain).
        status: ``terminated``, ``timed_out`` or ``failed``.
        closed_at: When it closed.
        reason: The termination reason, ``execution timeout``, or the failure's message.
        input: That run's first argument as JSON (e.g. the bridge's ``Inbound``
            envelope, or what a continue-as-new passed), or None.
        state: The answer of the ending's query (``Ending.query``) as JSON, or
            None when it declares none or the query failed.
        unfinished: A terminal ``publish_outcome`` the run scheduled and never saw
            complete: it is published again as it is, instead of a built event.
        compensate: The ending's compensation activity (``Ending.compensate``).
        compensations: What that activity undid (set before the event is built).
    """

    model_config = ConfigDict(extra="forbid")

    workflow_type: str
    workflow_id: str
    run_id: str
    status: str
    closed_at: datetime
    reason: str = ""
    input: Any = None
    state: Any = None
    unfinished: PublishOutcomeInput | None = None
    compensate: str | None = None
    compensations: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Ending:
    """How a workflow type ends when it closed without publishing its terminal event.

    Attributes:
        workflow: The workflow type.
        topic: Its outcome topic, where the event goes.
        outcomes: The events that end it when it publishes them itself (e.g.
            ``OrderCompleted`` and ``OrderFailed``): an execution that published
            one is left alone.
        event: Builds the terminal event of a ``ClosedExecution``. Pure and
            deterministic: give it a deterministic id (``outcome_event_id``,
            ideally the one the workflow itself would use), so a publication
            retried after a crash is the same event.
        query: A query of the workflow to ask the closed execution (Temporal
            replays it), whose answer the builder gets as ``state``.
        compensate: Name of an activity of the application, registered by its
            activity factory, taking the ``ClosedExecution`` and returning the
            names of the compensations that undid something (idempotent: it
            may run more than once). It runs before the event is built.
    """

    workflow: str
    topic: str
    outcomes: Collection[type[Outcome]]
    event: Callable[[ClosedExecution], Outcome]
    query: str | None = None
    compensate: str | None = None

    def ends_with(self, event_type: str) -> bool:
        """Whether an event of ``event_type`` (Avro full name) is one of its terminal events."""
        return any(model.avro_name == event_type for model in self.outcomes)


class SweepInput(BaseModel):
    """Input of the ending sweep (``relayflow.SweepEndings`` and ``find_ended_executions``).

    Attributes:
        window_seconds: Look at executions closed this long ago at most.
        limit: Handle at most this many in one sweep (the next one takes the rest).
    """

    window_seconds: int = Field(default=6 * 3600, gt=0)
    limit: int = Field(default=200, gt=0)


class SweepResult(BaseModel):
    """What a sweep found.

    Attributes:
        executions: Closed executions that need their terminal event.
        already_ended: Executions in the window that were handled before.
    """

    executions: list[ClosedExecution] = Field(default_factory=list)
    already_ended: int = 0


def ending_workflow_id(workflow_id: str, run_id: str) -> str:
    """Id of the ``relayflow.EndExecution`` workflow of one closed run: one per run, ever."""
    return f"relayflow-ending/{workflow_id}/{run_id}"


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sweep_query(task_queue: str, workflow_types: Iterable[str], since: datetime) -> str:
    """The visibility query of executions that closed abnormally since ``since``.

    Args:
        task_queue: Only executions of this task queue (the worker's).
        workflow_types: Only these types (those with an ``Ending``).
        since: Lower bound of their close time.
    """
    statuses = ", ".join(_quoted(s) for s in _VISIBILITY_STATUS.values())
    types = ", ".join(_quoted(t) for t in sorted(workflow_types))
    return (f"ExecutionStatus IN ({statuses}) AND WorkflowType IN ({types}) "
            f"AND TaskQueue = {_quoted(task_queue)} AND CloseTime > {_quoted(_instant(since))}")


def terminal_publications(events: Sequence[HistoryEvent],
                          publications: Mapping[int, PublishOutcomeInput],
                          ending: Ending) -> tuple[bool, PublishOutcomeInput | None]:
    """What a closed run's history says about its terminal event.

    Args:
        events: The run's history.
        publications: Input of each ``publish_outcome`` it scheduled, by the
            scheduled event's id.
        ending: Its workflow type's ending (which events are terminal).

    Returns:
        Whether a terminal event's publication completed, and else the last
        terminal publication scheduled without completing (None if none was):
        it may have reached Kafka, so it is the one to send again, unchanged.
    """
    terminal = {event_id: publication for event_id, publication in publications.items()
                if ending.ends_with(publication.event_type)}
    completed = {event.activity_task_completed_event_attributes.scheduled_event_id
                 for event in events
                 if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED}
    if completed & terminal.keys():
        return True, None
    return False, terminal[max(terminal)] if terminal else None


def _close_reason(event: HistoryEvent) -> str:
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
        return event.workflow_execution_terminated_event_attributes.reason
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
        return event.workflow_execution_failed_event_attributes.failure.message
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
        return "execution timeout"
    return ""


class EndingSweep:
    """The sweep's activities, for one application on one task queue.

    Args:
        client: The worker's Temporal client (its data converter decodes payloads).
        task_queue: The worker's task queue: only its executions are swept.
        endings: The application's endings.
    """

    def __init__(self, client: Client, task_queue: str, endings: Sequence[Ending]) -> None:
        self._client = client
        self._task_queue = task_queue
        self._endings = {ending.workflow: ending for ending in endings}

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of the sweep, for explicit registration on a worker."""
        return [self.find_ended_executions, self.build_terminal_event]

    @activity.defn(name="find_ended_executions")
    async def find_ended_executions(self, request: SweepInput) -> SweepResult:
        """Executions closed abnormally within the window that still need their terminal event."""
        since = datetime.now(UTC) - timedelta(seconds=request.window_seconds)
        handled = {execution.id async for execution in self._client.list_workflows(
            f"WorkflowType = {_quoted(END_EXECUTION_WORKFLOW)} "
            f"AND TaskQueue = {_quoted(self._task_queue)} "
            f"AND StartTime > {_quoted(_instant(since))}")}
        result = SweepResult()
        async for execution in self._client.list_workflows(
                sweep_query(self._task_queue, self._endings, since)):
            if ending_workflow_id(execution.id, execution.run_id) in handled:
                result.already_ended += 1
                continue
            activity.heartbeat(execution.id)
            try:
                closed = await self._closed(execution)
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise  # transient: the sweep's retry, or the next sweep, reads it again
                log.warning("ending sweep: %s is gone (%s)", execution.id, error.message)
                continue
            if closed is not None:
                result.executions.append(closed)
                if len(result.executions) >= request.limit:
                    break
        return result

    async def _closed(self, execution: WorkflowExecution) -> ClosedExecution | None:
        """The closed execution, or None when it published its terminal event itself.

        None too when a later run of its workflow id exists: a reset or the
        workflow's own retry policy closed this run and carried on in that one,
        which publishes the outcome.
        """
        ending = self._endings[execution.workflow_type]
        latest = await self._client.get_workflow_handle(execution.id).describe()
        if latest.run_id != execution.run_id:
            return None
        handle = self._client.get_workflow_handle(execution.id, run_id=execution.run_id)
        history = await handle.fetch_history()
        events = history.events
        started = events[0].workflow_execution_started_event_attributes
        inputs = await self._client.data_converter.decode(started.input.payloads)
        publications = {
            event.event_id: found for event in events
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and event.activity_task_scheduled_event_attributes.activity_type.name
            == "publish_outcome"
            and (found := await self._publication(
                event.activity_task_scheduled_event_attributes.input.payloads)) is not None}
        published, unfinished = terminal_publications(events, publications, ending)
        if published:
            return None  # it ended itself: its terminal event is out
        return ClosedExecution(
            workflow_type=execution.workflow_type, workflow_id=execution.id,
            run_id=execution.run_id,
            status=_STATUSES.get(execution.status or WorkflowExecutionStatus.FAILED, "failed"),
            closed_at=execution.close_time or events[-1].event_time.ToDatetime(UTC),
            reason=_close_reason(events[-1]), input=inputs[0] if inputs else None,
            state=await self._state(execution, ending.query),
            unfinished=unfinished, compensate=ending.compensate)

    async def _publication(self, payloads: Sequence[Any]) -> PublishOutcomeInput | None:
        values = await self._client.data_converter.decode(payloads)
        try:
            return PublishOutcomeInput.model_validate(values[0] if values else None)
        except ValidationError:
            return None  # not a publication relayflow's publisher would take

    async def _state(self, execution: WorkflowExecution, query: str | None) -> Any:
        if query is None:
            return None
        handle = self._client.get_workflow_handle(execution.id, run_id=execution.run_id)
        try:
            return await handle.query(query, rpc_timeout=timedelta(seconds=10))
        except Exception as error:  # noqa: BLE001 - a query that cannot answer leaves state empty
            log.warning("ending sweep: query %s of %s failed: %s", query, execution.id, error)
            return None

    @activity.defn(name="build_terminal_event")
    async def build_terminal_event(self, closed: ClosedExecution) -> PublishOutcomeInput:
        """The terminal event of a closed execution, built by its application's ``Ending``.

        Async although it does no I/O: a builder is quick, and an application's
        worker need not have a thread pool for it.
        """
        ending = self._endings.get(closed.workflow_type)
        if ending is None:
            raise ApplicationError(f"no ending for workflow type {closed.workflow_type}",
                                   type="InvalidOutcome", non_retryable=True)
        try:
            event = ending.event(closed)
        except (ValueError, ValidationError) as error:
            raise ApplicationError(f"{closed.workflow_id}: cannot build its terminal event: "
                                   f"{error}", type="InvalidOutcome", non_retryable=True) from error
        return PublishOutcomeInput(topic=ending.topic, event_type=event.avro_name,
                                   event=event.model_dump(mode="json"))
