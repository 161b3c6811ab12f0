"""Pending approvals, read from the running sagas themselves (their ``approval`` query)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.service import RPCError

from relayflow.operate.approvals import PendingUnanswered
from relayflow.operate.deadlines import Unanswered, query_worker
from relayflow.reference.workflows.approval import ApprovalState
from relayflow.reference.workflows.order_saga import OrderSaga

__all__ = ["COLUMNS", "REFUSED_SHOWN", "PendingApproval", "SagasUnanswered", "pending_approvals",
           "visibility_string"]

COLUMNS = ("workflow", "approval id", "waiting for", "may decide", "escalated", "since (UTC)",
           "deadline (UTC)", "refused decisions")
"""Headings of ``PendingApproval.cells``, the table of ``relayflow approvals``."""
REFUSED_SHOWN = 3
"""Most recent refused decisions named in a row; older ones are only counted."""
_SILENT_SHOWN = 3
"""Sagas named in the message about those whose query no worker answered."""


@dataclass(frozen=True, slots=True)
class PendingApproval:
    """An order waiting for a person.

    Attributes:
        workflow_id: The saga's workflow id.
        state: What the saga answers to its ``approval`` query.
    """

    workflow_id: str
    state: ApprovalState

    def cells(self) -> tuple[str, ...]:
        """One row of ``relayflow approvals`` (``COLUMNS``), times in UTC.

        ``may decide`` names the approver asked even for a saga started before the
        approver rule (which would count anyone's decision): the tools send only
        the decisions of whoever the saga asked (``relayflow.operate.decide``).
        ``refused decisions`` counts the decisions from someone not asked and
        names the latest ``REFUSED_SHOWN`` as ``decided_by (DECISION)``.
        """
        state = self.state
        refused = state.refused
        if refused:
            named = ", ".join(f"{r.decided_by} ({r.decision})" for r in refused[-REFUSED_SHOWN:])
            older = "..., " if len(refused) > REFUSED_SHOWN else ""
            refused_cell = f"{len(refused)}: {older}{named}"
        else:
            refused_cell = "-"
        return (self.workflow_id, state.approval_id, state.approver,
                ", ".join(state.approvers) or state.approver, "yes" if state.escalated else "no",
                _utc(state.waiting_since), _utc(state.deadline), refused_cell)

    def as_json(self) -> dict[str, object]:
        """The workflow id and the whole ``approval`` answer (``relayflow approvals -o json``)."""
        return {"workflow_id": self.workflow_id, **self.state.model_dump(mode="json")}


def visibility_string(value: str) -> str:
    """``value`` inside a single-quoted string of a visibility query."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _utc(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}" if moment else "-"


class SagasUnanswered(PendingUnanswered):
    """No worker answered the ``approval`` query of some running sagas.

    Attributes:
        workflow_ids: The sagas that did not answer.
        answered: The pending approvals of the sagas that did.
    """

    def __init__(self, workflow_ids: list[str], running: int, seconds: float,
                 answered: list[PendingApproval]) -> None:
        shown = ", ".join(workflow_ids[:_SILENT_SHOWN]) + (
            ", ..." if len(workflow_ids) > _SILENT_SHOWN else "")
        super().__init__("a worker", f"did not answer the 'approval' query of "
                                     f"{len(workflow_ids)} of {running} running saga(s) "
                                     f"({shown}) within {seconds:g} s: is a worker running?",
                         workflow_ids, answered)
        self.answered: list[PendingApproval] = answered


async def pending_approvals(client: Client, *, limit: int = 200, seconds: float | None = None,
                            task_queue: str | None = None) -> list[PendingApproval]:
    """Running order sagas that wait for a decision, oldest first.

    Args:
        client: Connected client (pydantic data converter).
        limit: Most running sagas to look at.
        seconds: Bound of each saga's query (asked all at once); None: the server's.
        task_queue: Only sagas on this task queue (one deployment's, whose
            workers answer); None: every task queue of the namespace.

    Returns:
        Sagas whose approval status is ``waiting``.

    Raises:
        SagasUnanswered: With ``seconds``, some sagas' queries found no worker.
    """
    query = "WorkflowType = 'OrderSaga' AND ExecutionStatus = 'Running'"
    if task_queue is not None:
        query += f" AND TaskQueue = '{visibility_string(task_queue)}'"
    ids = [w.id async for w in client.list_workflows(query, limit=limit)]
    silent: list[str] = []

    async def ask(workflow_id: str) -> PendingApproval | None:
        handle = client.get_workflow_handle(workflow_id)
        try:
            state = (await handle.query(OrderSaga.approval) if seconds is None
                     else await query_worker(handle, OrderSaga.approval, seconds))
        except RPCError:
            return None  # finished between listing and asking
        except Unanswered:
            silent.append(workflow_id)
            return None
        return PendingApproval(workflow_id, state) if state.status == "waiting" else None

    found = [p for p in await asyncio.gather(*(ask(i) for i in ids)) if p is not None]
    latest = datetime.max.replace(tzinfo=UTC)
    found.sort(key=lambda p: p.state.waiting_since or latest)
    if silent:
        raise SagasUnanswered(sorted(silent), len(ids), seconds or 0.0, found)
    return found
