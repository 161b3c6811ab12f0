"""Turning a routed event into a Temporal command, and classifying what went wrong.

Every failure is either *transient* (Temporal unreachable or overloaded: retry
later, commit nothing) or *permanent* (the command can never succeed: the
record goes to the dead-letter topic with the reason).
"""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from bridge.routes import Action, Route
from schemas import Event, Inbound

__all__ = ["PermanentFailure", "TemporalCommands", "TransientFailure", "classify_rpc_error"]


class TransientFailure(Exception):
    """Retrying later may succeed (Temporal or Kafka unavailable, overloaded)."""


class PermanentFailure(Exception):
    """The record can never be processed; it goes to the dead-letter topic.

    Attributes:
        reason: Short machine-readable reason (``dlq-reason`` header).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


_TRANSIENT = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.ABORTED,
    RPCStatusCode.INTERNAL,
    RPCStatusCode.UNKNOWN,
    RPCStatusCode.CANCELLED,
}


def classify_rpc_error(error: RPCError, route: Route) -> Exception:
    """Map a Temporal RPC error to ``TransientFailure`` or ``PermanentFailure``."""
    if error.status in _TRANSIENT:
        return TransientFailure(f"{error.status.name}: {error.message}")
    if error.status == RPCStatusCode.NOT_FOUND:
        closed = "completed" in error.message or "closed" in error.message
        reason = "target-closed" if closed else "target-not-found"
        return PermanentFailure(reason, f"{route.action} {route.workflow}: {error.message}")
    return PermanentFailure("rejected", f"{error.status.name}: {error.message}")


class TemporalCommands:
    """Executes routed events against Temporal.

    Args:
        client: Connected client (pydantic data converter).
        task_queue: Task queue new workflows start on.
    """

    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue

    async def execute(self, route: Route, inbound: Inbound[Event]) -> str:
        """Send the command and return once Temporal acknowledged it.

        Returns:
            What happened: ``started``, ``already-started``, ``signalled``,
            ``cancel-requested``.

        Raises:
            TransientFailure: Try again later.
            PermanentFailure: Dead-letter the record.
        """
        workflow_id = route.id_for(inbound.event)
        try:
            return await self._send(route, workflow_id, inbound)
        except RPCError as error:
            raise classify_rpc_error(error, route) from error
        except RuntimeError as error:
            # The SDK's core raises plain RuntimeError when it cannot connect at all.
            raise TransientFailure(str(error)) from error

    async def _send(self, route: Route, workflow_id: str, inbound: Inbound[Event]) -> str:
        if route.action is Action.START:
            try:
                await self._client.start_workflow(
                    route.workflow, inbound, id=workflow_id, task_queue=self._task_queue,
                    # Running: attach to it. Closed: never run the same business key twice.
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                )
            except WorkflowAlreadyStartedError:
                return "already-started"
            return "started"
        if route.action is Action.SIGNAL_WITH_START:
            assert route.signal is not None
            await self._client.start_workflow(
                route.workflow, inbound, id=workflow_id, task_queue=self._task_queue,
                start_signal=route.signal, start_signal_args=[inbound],
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
            return "signalled"
        handle: WorkflowHandle[object, object] = self._client.get_workflow_handle(workflow_id)
        if route.action is Action.SIGNAL:
            assert route.signal is not None
            await handle.signal(route.signal, inbound)
            return "signalled"
        await handle.cancel()
        return "cancel-requested"
