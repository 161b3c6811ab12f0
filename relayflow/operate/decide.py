"""``relayflow decide``: answer an order's pending approval with an ``ApprovalDecided`` on Kafka.

The saga itself says whether it waits and for whom (its ``approval`` query,
as ``relayflow approvals`` asks it); a decision is only sent when it waits
and the person deciding is one it counts (``may_decide``), so a typo never
becomes a refused decision. The decision travels like any producer's: the
contract record on ``approvals.decisions`` (``relayflow.kafka.sends``), the
order's correlation id, caused by the ``ApprovalRequested`` (or
``ApprovalEscalated``) it answers; the bridge signals the saga.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import ValidationError
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from relayflow.config.settings import Settings
from relayflow.kafka.sends import input_topic_for
from relayflow.operate.deadlines import (
    BadInput,
    NotFound,
    connected_temporal,
    query_worker,
    temporal_answers,
)
from relayflow.operate.send import Sent, send, validation_lines
from relayflow.reference.app import APP, ROUTES
from relayflow.reference.events import ApprovalDecided, OrderPlaced
from relayflow.reference.workflows.approval import approval_id_for, may_decide
from relayflow.reference.workflows.order_saga import OrderSaga
from schemas import Inbound
from workflows.outcomes import outcome_event_id

__all__ = ["DECISIONS", "Decision", "decide", "decision_event"]

Decision = Literal["approve", "reject"]
DECISIONS: dict[str, Literal["APPROVED", "REJECTED"]] = {"approve": "APPROVED",
                                                         "reject": "REJECTED"}
"""The command's words and the event's values."""

_ROUTE = ROUTES.routes[(input_topic_for(APP, ApprovalDecided), ApprovalDecided.avro_name)]


@dataclass(frozen=True, slots=True)
class _Saga:
    handle: WorkflowHandle[OrderSaga, object]
    task_queue: str


def decision_event(order_id: str, decision: Decision, by: str,
                   comment: str | None) -> ApprovalDecided:
    """The ``ApprovalDecided`` for ``order_id`` (validated).

    Raises:
        BadInput: ``by`` or ``comment`` break the model (empty, too long).
    """
    try:
        return ApprovalDecided(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                               approval_id=approval_id_for(order_id), order_id=order_id,
                               decision=DECISIONS[decision], decided_by=by, comment=comment)
    except ValidationError as error:
        raise BadInput("not a valid ApprovalDecided:\n  "
                       + "\n  ".join(validation_lines(error))) from None


async def _running_saga(client: Client, order_id: str) -> _Saga:
    workflow_id = _ROUTE.id_from(order_id=order_id)
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(f"no order {order_id!r}: no workflow {workflow_id}") from None
        raise
    if described.status != WorkflowExecutionStatus.RUNNING:
        state = (described.status or WorkflowExecutionStatus.RUNNING).name.lower()
        raise NotFound(f"order {order_id!r} has no pending approval: its saga {workflow_id} "
                       f"is {state}")
    handle = client.get_workflow_handle_for(OrderSaga.run, workflow_id,
                                            run_id=described.run_id)
    return _Saga(handle, described.task_queue)


async def _correlation_id(client: Client, handle: WorkflowHandle[OrderSaga, object]) -> str:
    """The order's correlation id, from the saga's input (the first history event)."""
    async for event in handle.fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        [inbound] = await client.data_converter.decode(payloads, [Inbound[OrderPlaced]])
        return str(inbound.meta.correlation_id)
    return ""


async def decide(settings: Settings, order_id: str, decision: Decision, *, by: str,
                 comment: str | None = None, seconds: float) -> Sent:
    """Send the decision on ``order_id``'s pending approval.

    Args:
        settings: Where Kafka and Temporal are.
        order_id: The order.
        decision: ``approve`` or ``reject``.
        by: Who decides (``decided_by``): an approver the saga asked, or ``<approver>/<person>``.
        comment: Free text for the outcome.
        seconds: Bound of each call.

    Returns:
        The decision and where it landed.

    Raises:
        NotFound: No such order, or it waits for no decision.
        BadInput: ``by`` may not decide it, or the event is not valid.
        relayflow.operate.deadlines.Unanswered: Temporal, a worker or Kafka did not answer.
    """
    event = decision_event(order_id, decision, by, comment)  # bad input: nothing connects
    client = await connected_temporal(settings, seconds)
    async with temporal_answers(settings, seconds):
        saga = await _running_saga(client, order_id)
    state = await query_worker(saga.handle, OrderSaga.approval, seconds,
                               task_queue=saga.task_queue)
    if state.status != "waiting":
        raise NotFound(f"order {order_id!r} has no pending approval (approval "
                       f"{state.status}{f' by {state.decided_by}' if state.decided_by else ''})")
    if state.approvers and not may_decide(by, state.approvers):
        raise BadInput(f"{by!r} may not decide order {order_id!r}: it counts decisions by "
                       f"{' or '.join(state.approvers)} (or <approver>/<person>)")
    async with temporal_answers(settings, seconds):
        correlation_id = await _correlation_id(client, saga.handle)
    asked = outcome_event_id(saga.handle.id,
                             "approval-escalated" if state.escalated else "approval-requested")
    return await send(settings, APP, event, input_topic_for(APP, ApprovalDecided),
                      seconds=seconds, correlation_id=correlation_id or None,
                      causation_id=str(asked))
