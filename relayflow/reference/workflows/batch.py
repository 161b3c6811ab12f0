"""Bounded fan-out: ``BatchWorkflow`` runs a batch as a sliding window of ``ChunkWorkflow``s.

* Never one child per item: items are cut into chunks of ``chunk_size``; at
  most ``max_concurrent_children`` chunks run at once, and a new one starts
  as soon as any finishes (a sliding window, not waves).
* Children have deterministic ids ``batch-<id>-chunk-<n>``, so a chunk is
  never started twice for the same batch.
* Before the parent's history grows large (the server suggests it, or a hard
  event bound), it stops starting chunks, lets the running ones finish, and
  continues as new, carrying its counts, so no history grows without bound.
* Item failures are counted and reported (``BatchProgress``, then
  ``BatchCompleted`` with the failed ids), never lost.
* Cancelling the batch cancels the running chunks and reports what finished.
* A chunk's items run in one heartbeating activity (``process_items``): a
  retry resumes after the last heartbeated item, and operators can pause,
  unpause or reset it (``relayflow activity``). Chunks started before that
  (``workflow.patched``) keep one ``process_item`` activity per item.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, model_validator
from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ActivityError, CancelledError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from relayflow.reference.activities.batches import (
        BatchActivities,
        BatchLimits,
        ItemFailure,
        ProcessItemInput,
        ProcessItemsInput,
        ProcessItemsResult,
        RecordFailuresInput,
        item_key,
    )
    from relayflow.reference.events import BatchCompleted, BatchProgress, BatchRequested
    from relayflow.reference.timeouts import activity_timeouts
    from relayflow.reference.topics import BATCHES_OUTCOMES
    from schemas import Inbound
    from workflows.outcomes import PUBLISH_RETRY, outcome_event_id, publish_outcome
    from workflows.versioning import versioning_behavior

__all__ = [
    "HISTORY_EVENT_LIMIT",
    "BatchCarry",
    "BatchResult",
    "BatchRun",
    "BatchWorkflow",
    "ChunkInput",
    "ChunkResult",
    "ChunkWorkflow",
    "chunk_item_ids",
]

HISTORY_EVENT_LIMIT = 2_000
"""Continue as new past this many events, whatever the server suggests."""
MAX_LISTED_FAILURES = 1_000
_LIMITS_FROM_SETTINGS = "batch-limits-from-settings"
"""``workflow.patched`` id: first runs ask the ``batch_limits`` activity for their limit."""
_ITEMS_IN_ONE_ACTIVITY = "chunk-items-heartbeat"
"""``workflow.patched`` id: a chunk's items run in one heartbeating ``process_items``."""

ITEM_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10), maximum_attempts=3,
    non_retryable_error_types=["InvalidItem"],
)
CHUNK_START_TO_CLOSE = timedelta(hours=1)
"""Bound of one attempt at a whole chunk (up to 1,000 items); the heartbeat catches a dead one."""
CHUNK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30), maximum_attempts=10,
)
"""Invalid items never fail ``process_items`` (it lists them), so every failure it raises is
worth retrying from the last heartbeat; past the last attempt the chunk goes item by item."""


def chunk_item_ids(request: BatchRequested, chunk: int) -> list[str]:
    """Item ids of one chunk: a slice of the list, or generated from the seed."""
    start = chunk * request.chunk_size
    stop = min(start + request.chunk_size, request.total)
    if request.items:
        return list(request.items[start:stop])
    every = request.fail_every
    return [f"bad-{request.seed}-{i}" if every and i % every == 0 else f"item-{request.seed}-{i}"
            for i in range(start, stop)]


class ChunkInput(BaseModel):
    """Input of ``ChunkWorkflow``.

    Attributes:
        batch_id: The batch.
        batch_workflow_id: The parent's id (prefix of idempotency keys).
        chunk: Chunk number.
        item_ids: The chunk's items.
    """

    batch_id: str
    batch_workflow_id: str
    chunk: int
    item_ids: list[str]


class ChunkResult(BaseModel):
    """What one chunk did.

    Attributes:
        chunk: Chunk number.
        succeeded: Items processed.
        failed_item_ids: Items that failed after their retries.
    """

    chunk: int
    succeeded: int
    failed_item_ids: list[str]


class BatchCarry(BaseModel):
    """Progress carried across continue-as-new.

    Attributes:
        next_chunk: First chunk not started yet.
        chunks_done: Chunks finished.
        succeeded: Items processed.
        failed: Items failed.
        failed_item_ids: The first failed ids.
        runs: Runs so far (1 + continue-as-new count).
        progress_sent: ``BatchProgress`` events published so far.
        history_event_limit: Continue as new past this many history events.
        max_listed_failures: Failed ids events list at most (the store has all).
    """

    next_chunk: int = 0
    chunks_done: int = 0
    succeeded: int = 0
    failed: int = 0
    failed_item_ids: list[str] = []
    runs: int = 1
    progress_sent: int = 0
    history_event_limit: int = HISTORY_EVENT_LIMIT
    max_listed_failures: int = MAX_LISTED_FAILURES


class BatchRun(BaseModel):
    """The one argument of ``BatchWorkflow``: the bridge's envelope plus carried progress.

    The bridge starts the workflow with a plain ``Inbound[BatchRequested]``,
    which validates as a ``BatchRun`` without ``carry``; continue-as-new passes
    the envelope with the progress so far. One argument, not two: Temporal
    drops type hints when the argument count differs from the signature's.

    Attributes:
        inbound: The request and its delivery metadata, as the bridge sent them.
        carry: Progress of earlier runs of this batch; None on the first run.
    """

    inbound: Inbound[BatchRequested]
    carry: BatchCarry | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_envelope(cls, data: Any) -> Any:
        # The bridge's envelope ({event, meta}), and runs of release 0.1.0 that
        # continued as new with {event, meta, carry}: both put the envelope in place.
        if isinstance(data, dict) and "event" in data and "inbound" not in data:
            rest = dict(data)
            carry = rest.pop("carry", None)
            return {"inbound": rest, "carry": carry}
        return data


class BatchResult(BaseModel):
    """How the batch ended.

    Attributes:
        succeeded: Items processed.
        failed: Items failed.
        cancelled: Whether it was cancelled.
        runs: Workflow runs it took.
    """

    succeeded: int
    failed: int
    cancelled: bool
    runs: int


# Pinned: a chunk lives minutes; it ends with the activity code it started with.
@workflow.defn(name="ChunkWorkflow",
               versioning_behavior=versioning_behavior(VersioningBehavior.PINNED))
class ChunkWorkflow:
    """Processes the items of one chunk in one heartbeating activity, each item once."""

    @workflow.run
    async def run(self, request: ChunkInput) -> ChunkResult:
        """Process every item; failures are collected, not raised."""
        failures = (await self._in_one_activity(request)
                    if workflow.patched(_ITEMS_IN_ONE_ACTIVITY) else None)
        if failures is None:
            failures = await self._item_by_item(request)
        if failures:
            # The full list lives in the store; events carry only the first ids.
            await workflow.execute_activity_method(
                BatchActivities.record_failures,
                RecordFailuresInput(batch_id=request.batch_id, chunk=request.chunk,
                                    failures=failures),
                start_to_close_timeout=timedelta(seconds=30), retry_policy=PUBLISH_RETRY)
        return ChunkResult(chunk=request.chunk,
                           succeeded=len(request.item_ids) - len(failures),
                           failed_item_ids=[failure.item_id for failure in failures])

    @staticmethod
    async def _in_one_activity(request: ChunkInput) -> list[ItemFailure] | None:
        """The chunk's failures from one heartbeating activity; None when it gave up."""
        try:
            done: ProcessItemsResult = await workflow.execute_activity_method(
                BatchActivities.process_items,
                ProcessItemsInput(batch_workflow_id=request.batch_workflow_id,
                                  batch_id=request.batch_id, item_ids=request.item_ids),
                start_to_close_timeout=CHUNK_START_TO_CLOSE,
                heartbeat_timeout=activity_timeouts().chunk_heartbeat, retry_policy=CHUNK_RETRY)
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                raise
            # Out of attempts: each item's own activity says what became of it (the
            # same keys, so the items already done are not done again).
            workflow.logger.warning("chunk %s: process_items gave up (%s); item by item",
                                    request.chunk, err.cause or err)
            return None
        return done.failures

    @staticmethod
    async def _item_by_item(request: ChunkInput) -> list[ItemFailure]:
        """Release 0.1.0's way: one ``process_item`` activity per item, all at once."""

        async def one(item_id: str) -> ItemFailure | None:
            try:
                await workflow.execute_activity_method(
                    BatchActivities.process_item,
                    ProcessItemInput(idempotency_key=item_key(request.batch_workflow_id, item_id),
                                     batch_id=request.batch_id, item_id=item_id),
                    start_to_close_timeout=timedelta(seconds=30), retry_policy=ITEM_RETRY)
            except ActivityError as err:
                return ItemFailure(item_id=item_id, reason=str(err.cause or err))
            return None

        outcomes = await asyncio.gather(*(one(item) for item in request.item_ids))
        return [failure for failure in outcomes if failure is not None]


# Auto-upgrade: a batch continues as new for as long as it has chunks, so it
# moves to each new build; a change to it needs workflow.patched (replay tests).
@workflow.defn(name="BatchWorkflow",
               versioning_behavior=versioning_behavior(VersioningBehavior.AUTO_UPGRADE))
class BatchWorkflow:
    """One batch; workflow id ``batch-<batch_id>``."""

    def __init__(self) -> None:
        self._carry = BatchCarry()

    @workflow.query(name="progress")
    def progress(self) -> BatchCarry:
        """Counts so far."""
        return self._carry.model_copy()

    @workflow.run
    async def run(self, batch: BatchRun) -> BatchResult:
        """Run the batch (or continue it after continue-as-new).

        Args:
            batch: The request, its delivery metadata and any carried progress.
        """
        inbound = batch.inbound
        request = inbound.event
        state = self._carry = batch.carry or await self._first_carry()
        chunks_total = -(-request.total // request.chunk_size)
        running: dict[int, asyncio.Task[ChunkResult]] = {}
        try:
            await self._window(inbound, chunks_total, running)
        except asyncio.CancelledError:
            await self._drain_cancelled(running)
            await self._finish(inbound, chunks_total, cancelled=True)
            raise
        if state.next_chunk < chunks_total:
            state.runs += 1
            workflow.continue_as_new(BatchRun(inbound=inbound, carry=state))
        await self._finish(inbound, chunks_total, cancelled=False)
        return BatchResult(succeeded=state.succeeded, failed=state.failed, cancelled=False,
                           runs=state.runs)

    @staticmethod
    async def _first_carry() -> BatchCarry:
        """Progress of a first run, with the history limit from the worker's settings."""
        # Batches started before the limit came from settings never asked for it.
        if not workflow.patched(_LIMITS_FROM_SETTINGS):
            return BatchCarry()
        limits: BatchLimits = await workflow.execute_activity_method(
            BatchActivities.batch_limits, start_to_close_timeout=timedelta(seconds=10),
            retry_policy=PUBLISH_RETRY)
        return BatchCarry(history_event_limit=limits.history_event_limit)

    async def _window(self, inbound: Inbound[BatchRequested], chunks_total: int,
                      running: dict[int, asyncio.Task[ChunkResult]]) -> None:
        """Keep up to N chunks running; stop starting new ones when history grows large."""
        request, state = inbound.event, self._carry
        while state.next_chunk < chunks_total or running:
            wind_down = self._history_is_large()
            while (not wind_down and state.next_chunk < chunks_total
                   and len(running) < request.max_concurrent_children):
                running[state.next_chunk] = asyncio.create_task(
                    self._chunk(inbound, state.next_chunk))
                state.next_chunk += 1
            if not running:
                return  # winding down with nothing in flight: continue as new
            done, _ = await workflow.wait(running.values(), return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                result = task.result()
                del running[result.chunk]
                self._count(result)
                if state.chunks_done % request.progress_every_chunks == 0:
                    await self._report(inbound, chunks_total)

    async def _drain_cancelled(self, running: dict[int, asyncio.Task[ChunkResult]]) -> None:
        """Cancel running chunks; count those that finished anyway."""
        for task in running.values():
            task.cancel()
        for task in running.values():
            # A chunk cancelled part-way is in neither count: only finished chunks report.
            with contextlib.suppress(asyncio.CancelledError, ChildWorkflowError):
                self._count(await task)

    def _history_is_large(self) -> bool:
        info = workflow.info()
        return (info.is_continue_as_new_suggested()
                or info.get_current_history_length() > self._carry.history_event_limit)

    async def _chunk(self, inbound: Inbound[BatchRequested], chunk: int) -> ChunkResult:
        wid = workflow.info().workflow_id
        return await workflow.execute_child_workflow(
            ChunkWorkflow.run,
            ChunkInput(batch_id=inbound.event.batch_id, batch_workflow_id=wid, chunk=chunk,
                       item_ids=chunk_item_ids(inbound.event, chunk)),
            id=f"{wid}-chunk-{chunk}",
        )

    def _count(self, result: ChunkResult) -> None:
        state = self._carry
        state.chunks_done += 1
        state.succeeded += result.succeeded
        state.failed += len(result.failed_item_ids)
        room = state.max_listed_failures - len(state.failed_item_ids)
        state.failed_item_ids.extend(result.failed_item_ids[:max(room, 0)])

    def _counts(self, inbound: Inbound[BatchRequested], chunks_total: int,
                step: str) -> dict[str, object]:
        state = self._carry
        return {
            "event_id": outcome_event_id(workflow.info().workflow_id, step),
            "occurred_at": workflow.now(), "correlation_id": inbound.meta.correlation_id,
            "causation_id": inbound.meta.event_id, "batch_id": inbound.event.batch_id,
            "total": inbound.event.total, "succeeded": state.succeeded, "failed": state.failed,
            "chunks_done": state.chunks_done, "chunks_total": chunks_total,
        }

    async def _report(self, inbound: Inbound[BatchRequested], chunks_total: int) -> None:
        self._carry.progress_sent += 1
        step = f"progress-{self._carry.progress_sent}"
        await _publish(BatchProgress.model_validate(self._counts(inbound, chunks_total, step)),
                       inbound)

    async def _finish(self, inbound: Inbound[BatchRequested], chunks_total: int, *,
                      cancelled: bool) -> None:
        state = self._carry
        fields = self._counts(inbound, chunks_total, "completed") | {
            "failed_item_ids": state.failed_item_ids,
            "failed_items_truncated": state.failed > len(state.failed_item_ids),
            "failed_items_ref": f"store:batch_failures/{inbound.event.batch_id}"
            if state.failed else "",
            "cancelled": cancelled,
            # The activity's input, not a command: replays of earlier runs still match.
            "reason": "cancelled" if cancelled else None,
        }
        await _publish(BatchCompleted.model_validate(fields), inbound)


async def _publish(event: BatchProgress, inbound: Inbound[BatchRequested]) -> None:
    await publish_outcome(BATCHES_OUTCOMES, event, inbound.meta.traceparent,
                          attempt_timeout=timedelta(seconds=30))
