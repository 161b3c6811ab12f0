"""Batch item processing: one idempotent activity per item.

Failure hook: an item id starting with ``bad-`` is invalid and fails for good
(non-retryable); every other failure is retried by the caller's policy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.metrics import BATCH_DONE, BATCH_FAILED, WorkerMetrics
from relayflow.reference.activities.store import Store

__all__ = ["INVALID_PREFIX", "BatchActivities", "BatchLimits", "ItemFailure",
           "ProcessItemInput", "ProcessItemResult", "RecordFailuresInput"]

INVALID_PREFIX = "bad-"


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
    """

    def __init__(self, store: Store, *, history_event_limit: int = 2_000,
                 metrics: WorkerMetrics | None = None) -> None:
        self._store = store
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
        first = self._store.process_item(request.idempotency_key, request.batch_id,
                                         request.item_id)
        if first:
            self._items.labels(BATCH_DONE).inc()
        return ProcessItemResult(first_time=first)

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
        return [self.batch_limits, self.process_item, self.record_failures]
