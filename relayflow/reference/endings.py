"""How the reference workflows end when they closed without their outcome.

* ``OrderSaga`` terminated, timed out or failed: ``OrderFailed`` with reason
  ``terminated``, ``timed_out`` or ``workflow_failed``, after
  ``compensate_ended_order`` undid what its steps did (the reservation is
  released, a payment refunded, a shipment cancelled; each a no-op when
  there is nothing to undo, and voiding the step's key, so a step still
  running when the saga was terminated takes no effect when it lands). Its
  event id is the saga's own ``failed`` id: a subscriber sees one failure of
  the order however it came about.
* ``BatchWorkflow``: ``BatchCompleted`` with ``cancelled=true``, ``reason``
  ``terminated``, ``timed_out`` or ``workflow_failed`` (a real cancellation
  says ``cancelled``), and the counts its ``progress`` query gives for the
  closed run (Temporal replays it).
"""

from __future__ import annotations

from activities.endings import ClosedExecution, Ending
from relayflow.reference.events import (
    BatchCompleted,
    OrderCompleted,
    OrderFailed,
    OrderPlaced,
)
from relayflow.reference.topics import BATCHES_OUTCOMES, ORDERS_OUTCOMES
from relayflow.reference.workflows.batch import BatchCarry, BatchRun
from relayflow.reference.workflows.order_saga import SagaStatus
from schemas import Inbound
from workflows.outcomes import outcome_event_id

__all__ = ["ENDED_BATCH_REASONS", "ENDED_ORDER_REASONS", "REFERENCE_ENDINGS", "batch_ended",
           "order_ended", "order_of"]

ENDED_ORDER_REASONS = {"terminated": "terminated", "timed_out": "timed_out",
                       "failed": "workflow_failed"}
"""``OrderFailed.reason`` by how the saga's execution closed."""
ENDED_BATCH_REASONS = ENDED_ORDER_REASONS
"""``BatchCompleted.reason`` by how the batch's execution closed (the same words)."""


def order_of(closed: ClosedExecution) -> Inbound[OrderPlaced]:
    """The ``OrderPlaced`` (with its delivery metadata) a closed saga was started with."""
    return Inbound[OrderPlaced].model_validate(closed.input)


def order_ended(closed: ClosedExecution) -> OrderFailed:
    """``OrderFailed`` of a saga that closed without its outcome."""
    inbound = order_of(closed)
    status = SagaStatus.model_validate(closed.state) if closed.state is not None else None
    where = f" while {status.step}" if status is not None else ""
    why = f": {closed.reason}" if closed.reason else ""
    earlier = status.compensations if status is not None else []
    return OrderFailed(
        event_id=outcome_event_id(closed.workflow_id, "failed"), occurred_at=closed.closed_at,
        correlation_id=inbound.meta.correlation_id, causation_id=inbound.meta.event_id,
        order_id=inbound.event.order_id, reason=ENDED_ORDER_REASONS[closed.status],
        error=f"order saga {closed.status}{where}{why}"[:1000],
        compensations=(*earlier, *closed.compensations),
    )


def batch_ended(closed: ClosedExecution) -> BatchCompleted:
    """``BatchCompleted`` (cancelled, saying how it closed) of a batch without its outcome."""
    run = BatchRun.model_validate(closed.input)
    carry = (BatchCarry.model_validate(closed.state) if closed.state is not None
             else run.carry or BatchCarry())
    inbound, request = run.inbound, run.inbound.event
    return BatchCompleted(
        event_id=outcome_event_id(closed.workflow_id, "completed"),
        occurred_at=closed.closed_at, correlation_id=inbound.meta.correlation_id,
        causation_id=inbound.meta.event_id, batch_id=request.batch_id, total=request.total,
        succeeded=carry.succeeded, failed=carry.failed, chunks_done=carry.chunks_done,
        chunks_total=-(-request.total // request.chunk_size),
        failed_item_ids=tuple(carry.failed_item_ids),
        failed_items_truncated=carry.failed > len(carry.failed_item_ids),
        failed_items_ref=f"store:batch_failures/{request.batch_id}" if carry.failed else "",
        cancelled=True, reason=ENDED_BATCH_REASONS[closed.status],
    )


REFERENCE_ENDINGS = (
    Ending("OrderSaga", ORDERS_OUTCOMES, (OrderCompleted, OrderFailed), order_ended,
           query="status", compensate="compensate_ended_order"),
    Ending("BatchWorkflow", BATCHES_OUTCOMES, (BatchCompleted,), batch_ended, query="progress"),
)
"""The reference application's endings."""
