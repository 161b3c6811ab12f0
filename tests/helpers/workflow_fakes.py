"""Same-named stand-ins for relayflow's activities, and helpers that drive the workflows.

Shared by the workflow tests (``tests/unit``) and the history recorder
(``tests/histories/record.py``), so the histories stored for a release come
from the same fakes the tests use. A worker registers ``fakes.all()`` in place
of the real activities: same activity names, same argument and result
models, no I/O. Every fake records its calls in test-process memory.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError

from activities.endings import ClosedExecution, SweepInput, SweepResult
from activities.outcomes import PublishOutcomeInput, PublishOutcomeResult
from relayflow.reference.activities.approval_policy import (
    ApprovalKeys,
    ApprovalKeysRequest,
    ApprovalPolicy,
    ApprovalPolicyRequest,
)
from relayflow.reference.activities.batches import (
    BatchLimits,
    ItemFailure,
    ProcessItemInput,
    ProcessItemResult,
    ProcessItemsInput,
    ProcessItemsResult,
    RecordFailuresInput,
)
from relayflow.reference.activities.orders import (
    ChargePaymentInput,
    CompensationInput,
    CompensationResult,
    CreateShipmentInput,
    ReserveInventoryInput,
    StepResult,
)
from relayflow.reference.events import ApprovalDecided
from relayflow.reference.workflows.approval import ApprovalState, approval_id_for
from relayflow.reference.workflows.order_saga import OrderSaga
from schemas import Event, EventMeta, Inbound
from schemas.signatures import SigningKey
from tests.helpers.approver_keys import KEYS, signed
from tests.helpers.support import order_placed

__all__ = [
    "CLOSED_AT",
    "FakeBatchActivities",
    "FakeOrderActivities",
    "FakePublisher",
    "FakeSweep",
    "closed_order",
    "decision",
    "inbound",
    "wait_for_approval",
]

STEP_ERRORS = {"reserve_inventory": "OutOfStock", "charge_payment": "PaymentDeclined",
               "create_shipment": "ShipmentRejected"}
"""The business error each order step raises when told to fail."""


@dataclass
class _Outcomes:
    """The ``publish_outcome`` stand-in: keeps what would have gone to Kafka.

    Attributes:
        unencodable: Event types (Avro full names) it refuses as the real
            publisher refuses a type its codec does not know (``InvalidOutcome``).
    """

    calls: list[str] = field(default_factory=list)
    published: list[PublishOutcomeInput] = field(default_factory=list)
    unencodable: frozenset[str] = frozenset()

    def _publisher(self) -> Any:
        @activity.defn(name="publish_outcome")
        async def publish(request: PublishOutcomeInput) -> PublishOutcomeResult:
            self.calls.append("publish_outcome")
            if request.event_type in self.unencodable:
                raise ApplicationError(f"unknown event type {request.event_type}",
                                       type="InvalidOutcome", non_retryable=True)
            self.published.append(request)
            return PublishOutcomeResult(topic=request.topic, partition=0, offset=0,
                                        event_id=str(request.event["event_id"]))

        return publish

    def published_types(self) -> list[str]:
        """Short names of the published events, in order (``OrderCompleted``, ...)."""
        return [p.event_type.rsplit(".", 1)[1] for p in self.published]


@dataclass
class FakePublisher(_Outcomes):
    """Only ``publish_outcome``: for a workflow with no activities of its own."""

    def activities(self) -> list[Any]:
        """The activity to register."""
        return [self._publisher()]


@dataclass
class FakeOrderActivities(_Outcomes):
    """The order steps, compensations, policy and publisher of ``OrderSaga``.

    Attributes:
        fail_at: Step that raises its business error (not retried).
        block_at: Step that blocks: sets ``blocked`` and waits for ``release``
            (or for the worker to cancel it when it shuts down).
        policy: What ``approval_policy`` answers.
        policy_requests: What ``approval_policy`` was asked, in order.
        keys: What ``approval_keys`` answers (default: the session's keys, required).
        keys_asked: How often ``approval_keys`` was asked.
        done: Steps that took effect and were not undone.
        blocked: Set once the ``block_at`` step started.
        release: Set it to let the ``block_at`` step finish normally.
    """

    fail_at: str | None = None
    block_at: str | None = None
    policy: ApprovalPolicy = field(default_factory=lambda: ApprovalPolicy(
        threshold_cents=100_000, timeout_seconds=3600, escalation_timeout_seconds=7200,
        approver="approvers", escalation_approver="managers"))
    policy_requests: list[ApprovalPolicyRequest | None] = field(default_factory=list)
    keys: ApprovalKeys = KEYS
    keys_asked: int = 0
    done: set[str] = field(default_factory=set)
    blocked: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def _step(self, step: str, key: str) -> StepResult:
        self.calls.append(step)
        if step == self.fail_at:
            raise ApplicationError("refused", type=STEP_ERRORS[step], non_retryable=True)
        if step == self.block_at:
            self.blocked.set()
            await self.release.wait()
        self.done.add(step)
        return StepResult(id=key)

    def _undo(self, name: str, step: str) -> CompensationResult:
        self.calls.append(name)
        undone = step in self.done
        self.done.discard(step)
        return CompensationResult(undone=undone, state="undone" if undone else "absent")

    def all(self) -> Sequence[Any]:
        """Every activity ``OrderSaga`` calls, under its real name."""

        @activity.defn(name="reserve_inventory")
        async def reserve(request: ReserveInventoryInput) -> StepResult:
            return await self._step("reserve_inventory", request.idempotency_key)

        @activity.defn(name="charge_payment")
        async def charge(request: ChargePaymentInput) -> StepResult:
            return await self._step("charge_payment", request.idempotency_key)

        @activity.defn(name="create_shipment")
        async def ship(request: CreateShipmentInput) -> StepResult:
            return await self._step("create_shipment", request.idempotency_key)

        @activity.defn(name="release_inventory")
        async def release(request: CompensationInput) -> CompensationResult:
            return self._undo("release_inventory", "reserve_inventory")

        @activity.defn(name="refund_payment")
        async def refund(request: CompensationInput) -> CompensationResult:
            return self._undo("refund_payment", "charge_payment")

        @activity.defn(name="cancel_shipment")
        async def cancel(request: CompensationInput) -> CompensationResult:
            return self._undo("cancel_shipment", "create_shipment")

        @activity.defn(name="approval_policy")
        async def approval_policy(request: ApprovalPolicyRequest | None = None) -> ApprovalPolicy:
            self.policy_requests.append(request)
            return self.policy

        @activity.defn(name="approval_keys")
        async def approval_keys(request: ApprovalKeysRequest) -> ApprovalKeys:
            self.keys_asked += 1
            return self.keys

        return [reserve, charge, ship, release, refund, cancel, self._publisher(),
                approval_policy, approval_keys]


@dataclass
class FakeBatchActivities(_Outcomes):
    """The item, failure-record and publisher activities of ``ChunkWorkflow``/``BatchWorkflow``.

    Items whose id starts with ``bad-`` fail with the non-retryable ``InvalidItem``
    (``process_item``) or are listed as failures (``process_items``).

    Attributes:
        block_item: Item whose processing blocks: sets ``blocked`` and waits
            for ``release`` (or for the worker to cancel it when it shuts down).
        processed: Item ids processed, in order.
        failures: Recorded failures, item id to reason.
        blocked: Set once ``block_item`` started.
        release: Set it to let ``block_item`` finish normally.
        history_event_limit: What ``batch_limits`` answers (the worker's setting).
        limits_asked: How often ``batch_limits`` was called.
        chunks_fail: ``process_items`` fails every attempt (a retryable error).
        chunk_attempts: ``process_items`` attempts so far.
    """

    block_item: str | None = None
    history_event_limit: int = 2_000
    limits_asked: int = 0
    chunks_fail: bool = False
    chunk_attempts: int = 0
    processed: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    blocked: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def _item(self, item_id: str) -> None:
        if item_id.startswith("bad-"):
            raise ApplicationError("invalid", type="InvalidItem", non_retryable=True)
        if item_id == self.block_item:
            self.blocked.set()
            await self.release.wait()
        self.processed.append(item_id)

    def all(self) -> Sequence[Any]:
        """Every activity the batch workflows call, under its real name."""

        @activity.defn(name="process_item")
        async def process_item(request: ProcessItemInput) -> ProcessItemResult:
            await self._item(request.item_id)
            return ProcessItemResult(first_time=True)

        @activity.defn(name="process_items")
        async def process_items(request: ProcessItemsInput) -> ProcessItemsResult:
            self.chunk_attempts += 1
            if self.chunks_fail:
                raise ApplicationError("store unavailable", type="StoreDown")
            failures = []
            for item_id in request.item_ids:
                try:
                    await self._item(item_id)
                except ApplicationError as err:
                    failures.append(ItemFailure(item_id=item_id, reason=str(err)))
            return ProcessItemsResult(succeeded=len(request.item_ids) - len(failures),
                                      failures=failures)

        @activity.defn(name="record_failures")
        async def record_failures(request: RecordFailuresInput) -> int:
            self.failures.update({f.item_id: f.reason for f in request.failures})
            return len(request.failures)

        @activity.defn(name="batch_limits")
        async def batch_limits() -> BatchLimits:
            self.limits_asked += 1
            return BatchLimits(history_event_limit=self.history_event_limit)

        return [batch_limits, process_item, process_items, record_failures, self._publisher()]


def inbound(event: Event, *, correlation_id: str = "corr-1") -> Inbound[Any]:
    """The envelope the bridge hands a workflow or signal, parametrized by the event's class."""
    # As bridge.decoding does: Inbound[Event] would serialize only the base fields.
    envelope: Any = Inbound[type(event)]  # type: ignore[misc]
    built: Inbound[Any] = envelope(event=event, meta=EventMeta(
        event_type=event.avro_name, event_id=str(event.event_id),
        correlation_id=correlation_id))
    return built


def decision(order_id: str, verdict: Literal["APPROVED", "REJECTED"], *, by: str = "approvers/ann",
             event_id: uuid.UUID | None = None, approval_id: str | None = None,
             key: SigningKey | Literal["session"] | None = "session") -> ApprovalDecided:
    """An ``ApprovalDecided`` for the order's approval (or ``approval_id`` when given).

    Signed with ``key``: default the session's key that may sign for ``by``
    (``approver_keys.key_for``); None: unsigned.
    """
    unsigned = ApprovalDecided(
        event_id=event_id or uuid.uuid4(), occurred_at=datetime.now(UTC),
        approval_id=approval_id or approval_id_for(order_id), order_id=order_id,
        decision=verdict, decided_by=by)
    return unsigned if key is None else signed(unsigned, None if key == "session" else key)


async def wait_for_approval(handle: WorkflowHandle[Any, Any], *, escalated: bool = False,
                            ) -> ApprovalState:
    """Poll the ``approval`` query until the saga waits (time does not skip while polling).

    Bounded by 30 s of the test's own clock: a loaded machine answers queries slowly.
    """
    deadline = time.monotonic() + 30
    while True:
        state: ApprovalState = await handle.query(OrderSaga.approval)
        if state.status == "waiting" and state.escalated == escalated:
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"saga never waited: {state}")
        await asyncio.sleep(0.01)


CLOSED_AT = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)


def closed_order(status: str = "terminated", *, state: Any = None,
                 compensations: Sequence[str] = (), order_id: str | None = None,
                 **fields: Any) -> ClosedExecution:
    """What the ending sweep finds of a closed ``OrderSaga`` run (``run-1``)."""
    order = order_placed(order_id)
    return ClosedExecution(
        workflow_type="OrderSaga", workflow_id=f"order-{order.order_id}", run_id="run-1",
        status=status, closed_at=CLOSED_AT, reason="stuck", compensate="compensate_ended_order",
        input=inbound(order).model_dump(mode="json"), state=state,
        compensations=list(compensations), **fields)


@dataclass
class FakeSweep(_Outcomes):
    """The sweep's Temporal-reading activity and the order compensation, as fakes."""

    found: list[ClosedExecution] = field(default_factory=list)

    def all(self) -> list[Any]:
        @activity.defn(name="find_ended_executions")
        async def find(request: SweepInput) -> SweepResult:
            del request
            return SweepResult(executions=self.found)

        @activity.defn(name="compensate_ended_order")
        async def compensate(closed: ClosedExecution) -> list[str]:
            del closed
            self.calls.append("compensate_ended_order")
            return ["release_inventory"]

        return [find, compensate, self._publisher()]
