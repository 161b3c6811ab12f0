"""Batch item processing: a chunk's items in one heartbeating activity, each item once.

``process_items`` walks a chunk's items in order and heartbeats its progress
(``ItemsProgress``) after each one; Temporal keeps the last heartbeat it
received, and a retry (the worker died, the heartbeat timed out, an operator
paused and unpaused it) reads it from ``activity.info().heartbeat_details``
and resumes after the last heartbeated item. The SDK throttles heartbeats, so
the stored progress may lag a few items behind the work: each item's effect is
keyed (``<batch workflow id>/<item id>``, the key ``process_item`` has always
used), so an item redone by a retry has no second effect.

Failure hook: an item id starting with ``bad-`` is invalid and fails for good:
``process_items`` lists it among the chunk's failures and goes on;
``process_item`` (the one-item activity of release 0.1.0's chunks) raises the
non-retryable ``InvalidItem``. Every other failure is retried by the caller's policy.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.metrics import BATCH_DONE, BATCH_FAILED, WorkerMetrics
from relayflow.reference.activities.store import Store

__all__ = ["INVALID_PREFIX", "BatchActivities", "BatchLimits", "ItemFailure", "ItemsProgress",
           "ProcessItemInput", "ProcessItemResult", "ProcessItemsInput", "ProcessItemsResult",
           "RecordFailuresInput", "item_key"]

INVALID_PREFIX = "bad-"
_log = logging.getLogger(__name__)


def item_key(batch_workflow_id: str, item_id: str) -> str:
    """The idempotency key of one item's effect, whichever activity processes it."""
    return f"{batch_workflow_id}/{item_id}"


class ProcessItemInput(BaseModel):
    """Input of ``process_item``.

    Attributes:
        idempotency_key: ``<batch workflow id>/<item id>``.
        batch_id: The batch.
        item_id: The item.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    idempotency_key: str
    batch_id: str
    item_id: str


class ProcessItemResult(BaseModel):
    """Result of ``process_item``.

    Attributes:
        first_time: False when a retry found the item already processed.
    """

    first_time: bool


class ItemFailure(BaseModel):
    """One item that failed after its retries.

    Attributes:
        item_id: The item.
        reason: The last error's message.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    item_id: str
    reason: str


class ProcessItemsInput(BaseModel):
    """Input of ``process_items``.

    Attributes:
        batch_workflow_id: The batch workflow's id; item ``i``'s idempotency
            key is ``item_key(batch_workflow_id, i)``.
        batch_id: The batch.
        item_ids: The chunk's items, in the order they are processed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_workflow_id: str
    batch_id: str
    item_ids: list[str]


class ItemsProgress(BaseModel):
    """What ``process_items`` heartbeats: how far the chunk got.

    Attributes:
        next_index: Items before this index are done (processed or failed).
        succeeded: Items processed so far.
        failures: Invalid items met so far.
    """

    model_config = ConfigDict(extra="forbid")

    next_index: int = 0
    succeeded: int = 0
    failures: list[ItemFailure] = []


class ProcessItemsResult(BaseModel):
    """Result of ``process_items``.

    Attributes:
        succeeded: Items processed (by this attempt or an earlier one).
        failures: Invalid items, in item order.
        attempt: The attempt that finished the chunk.
        resumed_at: Index of the first item this attempt processed: after the
            last heartbeated item of the attempt before, 0 on a first attempt.
        repeated: Items this attempt found already done: work past the last
            heartbeat Temporal received, redone with no second effect.
    """

    succeeded: int
    failures: list[ItemFailure]
    attempt: int = 1
    resumed_at: int = 0
    repeated: int = 0


class RecordFailuresInput(BaseModel):
    """Input of ``record_failures``; idempotent by (batch id, item id).

    Attributes:
        batch_id: The batch.
        chunk: The chunk the items belong to.
        failures: The failed items.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_id: str
    chunk: int
    failures: list[ItemFailure]


class BatchLimits(BaseModel):
    """How large a batch workflow's history may grow, from settings.

    Reaches the workflow through an activity, so a settings change never
    changes what a running batch already decided (the value is in its history).

    Attributes:
        history_event_limit: Continue as new past this many history events.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    history_event_limit: int


class BatchActivities:
    """Batch activities bound to one store.

    Args:
        store: Records processed items by key.
        history_event_limit: What ``batch_limits`` answers.
        metrics: Counts items done and failed, each once (the store knows which are new).
        item_work_seconds: Time each item takes, on top of its store write (a stand-in
            for real work, so demos and tests can watch a chunk progress).
    """

    def __init__(self, store: Store, *, history_event_limit: int = 2_000,
                 metrics: WorkerMetrics | None = None, item_work_seconds: float = 0.0) -> None:
        self._store = store
        self._work_seconds = item_work_seconds
        self._items = (metrics or WorkerMetrics()).batch_items
        self._limits = BatchLimits(history_event_limit=history_event_limit)

    @activity.defn(name="batch_limits")
    async def batch_limits(self) -> BatchLimits:
        """The configured limits of a batch workflow's history."""
        return self._limits

    @activity.defn(name="process_item")
    def process_item(self, request: ProcessItemInput) -> ProcessItemResult:
        """Process one item, once; invalid items fail with ``InvalidItem``."""
        if request.item_id.startswith(INVALID_PREFIX):
            raise ApplicationError(f"{request.item_id} is invalid", type="InvalidItem",
                                   non_retryable=True)
        return ProcessItemResult(first_time=self._store_item(
            request.batch_id, request.item_id, request.idempotency_key))

    @activity.defn(name="process_items")
    def process_items(self, request: ProcessItemsInput) -> ProcessItemsResult:
        """Process a chunk's items in order, heartbeating progress; resume after the last heartbeat.

        Invalid items are listed in the result, not raised; any other error
        fails the attempt, and the retry resumes where the last heartbeat left.
        """
        info = activity.info()
        progress = _last_progress(info.heartbeat_details)
        resumed_at, repeated = progress.next_index, 0
        if info.attempt > 1:
            _log.info("chunk of batch %s: attempt %d resumes at item %d of %d",
                      request.batch_id, info.attempt, resumed_at, len(request.item_ids))
        for index in range(resumed_at, len(request.item_ids)):
            item_id = request.item_ids[index]
            if item_id.startswith(INVALID_PREFIX):
                progress.failures.append(ItemFailure(item_id=item_id,
                                                     reason=f"{item_id} is invalid"))
            else:
                if self._work_seconds:
                    time.sleep(self._work_seconds)
                progress.succeeded += 1
                if not self._store_item(request.batch_id, item_id,
                                        item_key(request.batch_workflow_id, item_id)):
                    # Done by the attempt before, past the last heartbeat Temporal kept.
                    repeated += 1
                # A failpoint: a fault test may kill the process here (the repository's failpoints).
                sys.audit("relayflow.failpoint", "activity.process-items.after-item")
            progress.next_index = index + 1
            activity.heartbeat(progress)
        return ProcessItemsResult(succeeded=progress.succeeded, failures=progress.failures,
                                  attempt=info.attempt, resumed_at=resumed_at, repeated=repeated)

    def _store_item(self, batch_id: str, item_id: str, key: str) -> bool:
        """Record one item's effect once; True when this call made it."""
        # The store's transaction is shielded from a cancel raised into this thread
        # (``Store._tx``); this shield keeps the count with the write it counts.
        with activity.shield_thread_cancel_exception():
            first = self._store.process_item(key, batch_id, item_id)
            if first:
                self._items.labels(BATCH_DONE).inc()
        return first

    @activity.defn(name="record_failures")
    def record_failures(self, request: RecordFailuresInput) -> int:
        """Keep a chunk's failed items in the store, the full list ``BatchCompleted`` points to."""
        new = self._store.record_failures(
            request.batch_id, request.chunk,
            [(failure.item_id, failure.reason) for failure in request.failures])
        self._items.labels(BATCH_FAILED).inc(new)
        return new

    def all(self) -> list[Callable[..., Any]]:
        """Every batch activity, for worker registration."""
        return [self.batch_limits, self.process_item, self.process_items, self.record_failures]


def _last_progress(details: Sequence[Any]) -> ItemsProgress:
    """The progress of the last heartbeat Temporal kept, or none yet (a first attempt)."""
    if not details:
        return ItemsProgress()
    # Heartbeat details come back as the payload's plain JSON, not as the model.
    return ItemsProgress.model_validate(details[0])
