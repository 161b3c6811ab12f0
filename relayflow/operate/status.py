"""``relayflow status``: where an order or batch stands, from Temporal and the outcome topics.

For an id, every workflow the application's routes would start for it
(``order-<id>``, ``batch-<id>``) that exists is shown: its state, its steps
(activities, signals and child workflows, read from the history, so a
finished workflow needs no worker), what its queries answer while it runs
(the queries without arguments its class, one of the application's
workflows, defines; an application's ``StatusQueries`` extension chooses
and orders them: the reference's asks ``OrderSaga``'s ``status``, then
``approval``), the activities it and its running child workflows wait for
(attempt, last heartbeat and its details decoded with the application's data
converter: how far a long activity got), the outcome events with its key
on the application's outcome topics, and a link to it in the Temporal UI.

Whatever did not answer (a worker for the queries, Kafka for the outcomes)
is listed in ``StatusReport.unanswered``; the rest is still shown.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

from pydantic import BaseModel
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from bridge.routes import Action, Route
from relayflow.application import Application, load_application
from relayflow.config.settings import Settings
from relayflow.kafka.reads import read_key
from relayflow.operate.activities import PendingActivity, pending_of
from relayflow.operate.deadlines import (
    NotFound,
    Unanswered,
    connected_temporal,
    kafka_answers,
    query_worker,
    temporal_answers,
)
from relayflow.operate.records import ShownRecord, shown
from relayflow.runtime.bootstrap import event_codec
from relayflow.runtime.clients import blob_store, kafka_clients

__all__ = [
    "StatusQueries",
    "StatusReport",
    "Step",
    "WorkflowState",
    "queries_of",
    "status",
    "steps_of",
    "ui_link",
    "workflow_ids",
]

Query = tuple[str, Callable[..., Any]]
"""A query's name and its method."""


@runtime_checkable
class StatusQueries(Protocol):
    """Which queries ``relayflow status`` asks running workflows (an ``Application`` extension).

    Without it, every query without arguments of the workflow's class is asked.
    """

    @property
    def status_queries(self) -> Mapping[str, Sequence[str]]:
        """Workflow type → the names of the queries to ask, in order."""
        ...

_CHILDREN_ASKED = 20
"""Running child workflows whose pending activities are shown (a batch runs a few at a time)."""
_OUTCOMES_SINCE = timedelta(minutes=1)
"""Outcome records are looked for from this long before the workflow started (clock skew)."""

_E = EventType
_ACTIVITY_ENDS = {
    _E.EVENT_TYPE_ACTIVITY_TASK_STARTED: ("activity_task_started_event_attributes", "running"),
    _E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: ("activity_task_completed_event_attributes",
                                            "completed"),
    _E.EVENT_TYPE_ACTIVITY_TASK_FAILED: ("activity_task_failed_event_attributes", "failed"),
    _E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: ("activity_task_timed_out_event_attributes",
                                            "timed-out"),
    _E.EVENT_TYPE_ACTIVITY_TASK_CANCELED: ("activity_task_canceled_event_attributes",
                                           "cancelled"),
}
_CHILD_ENDS = {
    _E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED: (
        "child_workflow_execution_started_event_attributes", "running"),
    _E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED: (
        "start_child_workflow_execution_failed_event_attributes", "not started"),
    _E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED: (
        "child_workflow_execution_completed_event_attributes", "completed"),
    _E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED: (
        "child_workflow_execution_failed_event_attributes", "failed"),
    _E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED: (
        "child_workflow_execution_canceled_event_attributes", "cancelled"),
    _E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT: (
        "child_workflow_execution_timed_out_event_attributes", "timed-out"),
    _E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED: (
        "child_workflow_execution_terminated_event_attributes", "terminated"),
}


@dataclass
class Step:
    """One step of a workflow, as its history tells it.

    Attributes:
        kind: ``activity``, ``signal``, ``children`` (child workflows of one
            type, counted), ``cancel-requested`` or ``continued-as-new``.
        name: Activity type, signal name or child workflow type.
        state: ``scheduled``, ``running``, ``completed``, ``failed``, ...;
            for ``children`` the count in each state.
        detail: The failure message of a failed step.
    """

    kind: str
    name: str
    state: str
    detail: str = ""

    def as_json(self) -> dict[str, str]:
        """The step as a JSON object."""
        return {"kind": self.kind, "name": self.name, "state": self.state, "detail": self.detail}


_MARKS: dict[int, Callable[[HistoryEvent], Step]] = {
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: lambda e: Step(
        "signal", e.workflow_execution_signaled_event_attributes.signal_name, "received"),
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED: lambda _: Step(
        "cancel-requested", "cancel", "received"),
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: lambda _: Step(
        "continued-as-new", "continue-as-new", "done"),
}


class _Steps:
    """Steps read off history events, one event at a time."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self._activities: dict[int, Step] = {}  # scheduled event id -> step
        self._children: dict[str, dict[int, str]] = {}  # type -> initiated event id -> state

    def take(self, event: HistoryEvent) -> None:
        kind = event.event_type
        if kind == _E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            step = Step("activity",
                        event.activity_task_scheduled_event_attributes.activity_type.name,
                        "scheduled")
            self._activities[event.event_id] = step
            self.steps.append(step)
        elif kind in _ACTIVITY_ENDS:
            attributes_name, state = _ACTIVITY_ENDS[kind]
            attributes = getattr(event, attributes_name)
            found = self._activities.get(attributes.scheduled_event_id)
            if found is not None:
                found.state = state
                if kind == _E.EVENT_TYPE_ACTIVITY_TASK_FAILED:
                    found.detail = attributes.failure.message
        elif kind == _E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            self._child(event.start_child_workflow_execution_initiated_event_attributes
                        .workflow_type.name, event.event_id, "starting")
        elif kind in _CHILD_ENDS:
            attributes_name, state = _CHILD_ENDS[kind]
            attributes = getattr(event, attributes_name)
            self._child(attributes.workflow_type.name, attributes.initiated_event_id, state)
        elif kind in _MARKS:
            self.steps.append(_MARKS[kind](event))

    def _child(self, child_type: str, initiated: int, state: str) -> None:
        if child_type not in self._children:
            self._children[child_type] = {}
            self.steps.append(Step("children", child_type, ""))
        self._children[child_type][initiated] = state

    def done(self) -> list[Step]:
        for step in self.steps:
            if step.kind == "children":
                states = list(self._children[step.name].values())
                step.state = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))
        return self.steps


def steps_of(events: Iterable[HistoryEvent]) -> list[Step]:
    """The steps of one run's history, in the order they began; child workflows counted by type."""
    steps = _Steps()
    for event in events:
        steps.take(event)
    return steps.done()


@dataclass
class WorkflowState:
    """One workflow of the subject.

    Attributes:
        workflow_id: Its id.
        run_id: The latest run.
        workflow_type: Its type.
        status: ``running``, ``completed``, ``failed``, ``canceled``,
            ``terminated``, ``continued_as_new`` or ``timed_out``.
        task_queue: Where its tasks go.
        started_at: When the run started.
        closed_at: When it closed (None while running).
        steps: From the history.
        queries: Query name -> answer (running workflows whose worker answered).
        activities: What it and its running child workflows (the first
            ``_CHILDREN_ASKED``) wait for: attempt, last heartbeat and its details.
        outcomes: Records with the subject's key on the outcome topics since it started.
        ui_url: The run in the Temporal UI.
    """

    workflow_id: str
    run_id: str
    workflow_type: str
    status: str
    task_queue: str
    started_at: datetime
    closed_at: datetime | None
    steps: list[Step] = field(default_factory=list)
    queries: dict[str, Any] = field(default_factory=dict)
    activities: list[PendingActivity] = field(default_factory=list)
    outcomes: list[ShownRecord] = field(default_factory=list)
    ui_url: str = ""

    def as_json(self) -> dict[str, Any]:
        """The workflow's state as a JSON object."""
        return {
            "workflow_id": self.workflow_id, "run_id": self.run_id,
            "workflow_type": self.workflow_type, "status": self.status,
            "task_queue": self.task_queue, "started_at": self.started_at.isoformat(),
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "steps": [s.as_json() for s in self.steps], "queries": self.queries,
            "activities": [a.as_json() for a in self.activities],
            "outcomes": [o.as_json() for o in self.outcomes], "ui_url": self.ui_url,
        }


@dataclass
class StatusReport:
    """What ``status`` found for one id.

    Attributes:
        subject: The order or batch id asked about.
        workflows: Its workflows.
        unanswered: What did not answer, one line each (the rest is shown without it).
    """

    subject: str
    workflows: list[WorkflowState] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The report as a JSON object."""
        return {"subject": self.subject, "workflows": [w.as_json() for w in self.workflows],
                "unanswered": self.unanswered}


def _keyed_by_one_field(route: Route) -> str | None:
    fields = route.event_type.model_fields
    names = [name for name in fields if f"{{{name}}}" in route.workflow_id]
    return names[0] if len(names) == 1 else None


def workflow_ids(app: Application, subject: str) -> list[str]:
    """The ids of the workflows ``app``'s routes start for ``subject`` (``order-<id>``, ...)."""
    found = [route.id_from(**{name: subject}) for route in app.routes
             if route.action in {Action.START, Action.SIGNAL_WITH_START, Action.UPDATE_WITH_START}
             and (name := _keyed_by_one_field(route)) is not None]
    return list(dict.fromkeys(found))


def queries_of(app: Application) -> dict[str, tuple[Query, ...]]:
    """The queries ``status`` asks a running workflow, by workflow type.

    Every named query without arguments of each workflow class ``app`` registers
    (workflows run elsewhere are not asked), or those of them its
    ``StatusQueries`` extension names, in its order.
    """
    chosen = app.extension(StatusQueries)
    found: dict[str, tuple[Query, ...]] = {}
    for workflow_class in app.workflows:
        # The SDK keeps a class's queries in its (private) workflow definition.
        definition = workflow._Definition.must_from_class(workflow_class)  # noqa: SLF001
        if definition.name is None:
            continue  # a dynamic workflow: no type to ask by
        asked = {name: query.fn for name, query in definition.queries.items()
                 if name and len(inspect.signature(query.fn).parameters) == int(query.is_method)}
        names = asked if chosen is None else chosen.status_queries.get(definition.name, ())
        found[definition.name] = tuple((name, asked[name]) for name in names if name in asked)
    return found


def ui_link(settings: Settings, workflow_id: str, run_id: str) -> str:
    """The run's history in the Temporal UI (``temporal_ui_url``)."""
    return (f"{settings.temporal_ui_url}/namespaces/{quote(settings.temporal_namespace, safe='')}"
            f"/workflows/{quote(workflow_id, safe='')}/{run_id}/history")


async def _described(client: Client, workflow_id: str) -> WorkflowExecutionDescription | None:
    try:
        return await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


def _answer(result: Any) -> Any:
    return result.model_dump(mode="json") if isinstance(result, BaseModel) else result


async def _ask(client: Client, state: WorkflowState, queries: Iterable[Query],
               seconds: float) -> None:
    handle = client.get_workflow_handle(state.workflow_id, run_id=state.run_id)
    for name, query in queries:
        answer = await query_worker(handle, query, seconds, task_queue=state.task_queue)
        state.queries[name] = _answer(answer)


async def _waited_for(client: Client, described: WorkflowExecutionDescription,
                      ) -> list[PendingActivity]:
    """The run's pending activities, then those of its running children (one level)."""
    found = await pending_of(client, described)
    for child in described.raw_description.pending_children[:_CHILDREN_ASKED]:
        handle = client.get_workflow_handle(child.workflow_id, run_id=child.run_id or None)
        try:
            found += await pending_of(client, await handle.describe())
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise  # a child that closed meanwhile waits for nothing
    return found


async def status(settings: Settings, subject: str, *, seconds: float,
                 app: Application | None = None) -> StatusReport:
    """Where ``subject`` (a business id: an order's, a ticket's) stands.

    Args:
        settings: Where Kafka and Temporal are.
        subject: The business id.
        seconds: Bound of each call (Temporal, a query, Kafka).
        app: The application whose routes, workflows and topics to use
            (default: the configured one, ``settings.app``).

    Raises:
        NotFound: No workflow for ``subject``.
        relayflow.operate.deadlines.Unanswered: Temporal did not answer.
    """
    app = app or load_application(settings.app)
    queries = queries_of(app)
    client = await connected_temporal(settings, seconds)
    report = StatusReport(subject)
    ids = workflow_ids(app, subject)
    for workflow_id in ids:
        async with temporal_answers(settings, seconds):
            described = await _described(client, workflow_id)
            if described is None:
                continue
            handle = client.get_workflow_handle(workflow_id, run_id=described.run_id)
            steps = steps_of([e async for e in handle.fetch_history_events()])
            waited_for = await _waited_for(client, described)
        state = WorkflowState(
            workflow_id, described.run_id, described.workflow_type,
            (described.status or WorkflowExecutionStatus.RUNNING).name.lower(),
            described.task_queue, described.start_time, described.close_time, steps,
            activities=waited_for, ui_url=ui_link(settings, workflow_id, described.run_id))
        report.workflows.append(state)
        if described.status == WorkflowExecutionStatus.RUNNING:
            try:
                await _ask(client, state, queries.get(state.workflow_type, ()), seconds)
            except Unanswered as silent:
                report.unanswered.append(str(silent))
        try:
            async with kafka_answers(settings, seconds):
                since = described.start_time - _OUTCOMES_SINCE
                codec, blobs = event_codec(settings, app), blob_store(settings)
                state.outcomes = [await shown(r, codec, blobs) for r in await read_key(
                    kafka_clients(settings), [t.name for t in app.topics if not t.inbound],
                    subject.encode(),
                    since_ms=int(since.timestamp() * 1000))]
        except Unanswered as silent:
            report.unanswered.append(str(silent))
    if not report.workflows:
        raise NotFound(f"no workflow for {subject!r} (looked for {', '.join(ids) or 'nothing'}: "
                       f"the routes of {app.name} start none for it)")
    return report
