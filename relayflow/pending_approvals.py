"""Pending approvals, read from the running sagas themselves (their ``approval`` query)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio.client import Client
from temporalio.service import RPCError

from workflows.approval import ApprovalState
from workflows.order_saga import OrderSaga

__all__ = ["COLUMNS", "REFUSED_SHOWN", "PendingApproval", "pending_approvals", "visibility_string"]

COLUMNS = ("workflow", "approval id", "waiting for", "may decide", "escalated", "since (UTC)",
           "deadline (UTC)", "refused decisions")
"""Headings of ``PendingApproval.cells``, the table of ``relayflow approvals``."""
REFUSED_SHOWN = 3
"""Most recent refused decisions named in a row; older ones are only counted."""


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

        ``may decide`` is ``anyone`` for a saga started before the approver rule.
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
                ", ".join(state.approvers) or "anyone", "yes" if state.escalated else "no",
                _utc(state.waiting_since), _utc(state.deadline), refused_cell)


def visibility_string(value: str) -> str:
    """``value`` inside a single-quoted string of a visibility query."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _utc(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}" if moment else "-"


async def pending_approvals(client: Client, *, limit: int = 200, task_queue: str | None = None,
                            query_timeout: timedelta | None = None) -> list[PendingApproval]:
    """Running order sagas that wait for a decision, oldest first.

    Args:
        client: Connected client (pydantic data converter).
        limit: Most running sagas to look at.
        task_queue: Only sagas on this task queue (default: every one in the namespace).
        query_timeout: Give up on a saga that does not answer its query by then
            (no worker polls its task queue); default: the client's.

    Returns:
        Sagas whose approval status is ``waiting``.
    """
    query = "WorkflowType = 'OrderSaga' AND ExecutionStatus = 'Running'"
    if task_queue is not None:
        query += f" AND TaskQueue = '{visibility_string(task_queue)}'"
    ids = [w.id async for w in client.list_workflows(query, limit=limit)]

    async def ask(workflow_id: str) -> PendingApproval | None:
        try:
            state = await client.get_workflow_handle(workflow_id).query(
                OrderSaga.approval, rpc_timeout=query_timeout)
        except RPCError:
            return None  # finished between listing and asking
        return PendingApproval(workflow_id, state) if state.status == "waiting" else None

    found = [p for p in await asyncio.gather(*(ask(i) for i in ids)) if p is not None]
    latest = datetime.max.replace(tzinfo=UTC)
    return sorted(found, key=lambda p: p.state.waiting_since or latest)
