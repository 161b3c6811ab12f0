"""Batches as the console shows them: running and finished, their counts, their failed items.

The list comes from Temporal's visibility (``BatchWorkflow`` executions, one
line per batch: runs that continued as new are left out), the counts from
the running batch's ``progress`` query or the finished one's result, the
size from the request it started with, and failed items from the store, a
page at a time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.service import RPCError

from relayflow.console.memory import remember
from relayflow.reference.activities.store import Store
from relayflow.reference.console.inbox import QUERY_TIMEOUT
from relayflow.reference.pending_approvals import visibility_string
from relayflow.reference.workflows.batch import BatchResult, BatchRun, BatchWorkflow

__all__ = ["FAILURES_PAGE", "Batch", "BatchSizes", "FailurePage", "batch_id_of", "failures_page",
           "list_batches"]

FAILURES_PAGE = 50
"""Failed items per page."""
_LISTED = 50
"""Batches listed, newest first."""


def batch_id_of(workflow_id: str) -> str:
    """The batch id of a batch workflow id."""
    return workflow_id.removeprefix("batch-")


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch.

    Attributes:
        batch_id: The batch.
        status: ``RUNNING``, ``COMPLETED``, ``CANCELED``, ``FAILED`` ...
        total: Items in the batch (0 if unknown).
        succeeded: Items processed so far.
        failed: Items failed so far.
        runs: Workflow runs so far (continue-as-new).
    """

    batch_id: str
    status: str
    total: int
    succeeded: int
    failed: int
    runs: int

    @property
    def done(self) -> int:
        """Items finished, either way."""
        return self.succeeded + self.failed

    @property
    def percent(self) -> int:
        """Share of items finished, 0-100 (100 once completed)."""
        if self.status == "COMPLETED":
            return 100
        return min(100, self.done * 100 // self.total) if self.total else 0


class BatchSizes:
    """Batch sizes, read once per run from the request it started with.

    Args:
        client: Connected Temporal client.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._known: dict[str, int] = {}

    async def get(self, execution: WorkflowExecution) -> int:
        """Items in the batch this execution runs."""
        if execution.run_id in self._known:
            return self._known[execution.run_id]
        handle = self._client.get_workflow_handle(execution.id, run_id=execution.run_id)
        async for event in handle.fetch_history_events():
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [run] = await self._client.data_converter.decode(list(payloads), [BatchRun])
            remember(self._known, execution.run_id, run.inbound.event.total)
            break
        return self._known.get(execution.run_id, 0)


async def list_batches(client: Client, sizes: BatchSizes, task_queue: str) -> list[Batch]:
    """The newest batches on ``task_queue``, running and finished."""
    query = ("WorkflowType = 'BatchWorkflow' AND ExecutionStatus != 'ContinuedAsNew' "
             f"AND TaskQueue = '{visibility_string(task_queue)}'")
    executions = [e async for e in client.list_workflows(query, limit=_LISTED)]
    found = await asyncio.gather(*(_batch(client, sizes, e) for e in executions))
    return list(found)


async def _batch(client: Client, sizes: BatchSizes, execution: WorkflowExecution) -> Batch:
    handle = client.get_workflow_handle_for(BatchWorkflow.run, execution.id,
                                            run_id=execution.run_id)
    status = execution.status.name if execution.status else "UNKNOWN"
    try:
        total = await sizes.get(execution)
        if execution.status == WorkflowExecutionStatus.COMPLETED:
            result: BatchResult = await handle.result()
            return Batch(batch_id_of(execution.id), status, total, result.succeeded,
                         result.failed, result.runs)
        carry = await handle.query(BatchWorkflow.progress, rpc_timeout=QUERY_TIMEOUT)
    except (RPCError, ValueError):
        return Batch(batch_id_of(execution.id), status, 0, 0, 0, 0)
    return Batch(batch_id_of(execution.id), status, total, carry.succeeded, carry.failed,
                 carry.runs)


@dataclass(frozen=True, slots=True)
class FailurePage:
    """A page of a batch's failed items.

    Attributes:
        items: (item id, reason) of this page.
        page: The page number, from 1.
        pages: How many pages there are (at least 1).
        total: Failed items in all.
    """

    items: list[tuple[str, str]]
    page: int
    pages: int
    total: int


def failures_page(store: Store, batch_id: str, page: int) -> FailurePage:
    """Page ``page`` (from 1) of the batch's failed items, as the store keeps them."""
    total = store.failed_count(batch_id)
    pages = max(1, -(-total // FAILURES_PAGE))
    page = min(max(page, 1), pages)
    items = store.failed_items(batch_id, limit=FAILURES_PAGE, offset=(page - 1) * FAILURES_PAGE)
    return FailurePage(items, page, pages, total)
