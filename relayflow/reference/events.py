"""The reference application's events: orders, approvals and batches.

Pydantic models that mirror the ``.avsc`` files of ``avro/`` one to one (the
files are the source of truth); validation goes beyond what Avro can express
(positive quantities, totals that add up), so a record that is valid Avro but
nonsense is rejected before it reaches a workflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from relayflow.reference.currencies import is_currency
from schemas.models import Event, Key, Outcome, Record, UtcDatetime

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_FOLDER",
    "ApprovalDecided",
    "ApprovalDecisionRefused",
    "ApprovalEscalated",
    "ApprovalRequested",
    "ApprovalTimedOut",
    "BatchCancelled",
    "BatchCompleted",
    "BatchProgress",
    "BatchRequested",
    "OrderCancelled",
    "OrderCompleted",
    "OrderFailed",
    "OrderLine",
    "OrderPlaced",
]

SCHEMA_FOLDER = Path(__file__).resolve().parent / "avro"
"""The reference ``.avsc`` files (and ``history/``, every published version)."""


class OrderLine(Record):
    """One line of an order.

    Attributes:
        sku: Stock keeping unit.
        quantity: Units ordered, at least one.
        unit_price_cents: Price of one unit in minor units.
    """

    sku: Key
    quantity: int = Field(gt=0, le=1_000_000)
    unit_price_cents: int = Field(ge=0)


class OrderPlaced(Event):
    """A customer placed an order; starts ``OrderSaga``.

    Attributes:
        order_id: Business key of the order.
        customer_id: Who ordered.
        items: The order lines, at least one.
        amount_cents: Total in minor units; must equal the sum of the lines.
        currency: ISO 4217 code; a code not on the list (``relayflow.reference.currencies``)
            fails validation, so the record is dead-lettered as ``invalid-event``.
        shipping_country: ISO 3166-1 alpha-2 destination.
        approval_timeout_seconds: Overrides the configured wait of each
            approval stage for this order.
    """

    avro_name: ClassVar[str] = "relayflow.orders.OrderPlaced"
    key_field = "order_id"

    order_id: Key
    customer_id: Key
    items: tuple[OrderLine, ...] = Field(min_length=1, max_length=1000)
    amount_cents: int = Field(ge=0)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    shipping_country: str = Field(default="DE", pattern=r"^[A-Z]{2}$")
    approval_timeout_seconds: int | None = Field(default=None, gt=0, le=365 * 24 * 3600)

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, code: str) -> str:
        if not is_currency(code):
            raise ValueError(f"{code!r} is not an ISO 4217 currency code")
        return code

    @model_validator(mode="after")
    def _total_matches_lines(self) -> OrderPlaced:
        total = sum(line.quantity * line.unit_price_cents for line in self.items)
        if total != self.amount_cents:
            raise ValueError(f"amount_cents {self.amount_cents} != sum of lines {total}")
        return self


class OrderCancelled(Event):
    """An order was cancelled; cancels its saga.

    Attributes:
        order_id: Business key of the order.
        reason: Free text, may be empty.
    """

    avro_name: ClassVar[str] = "relayflow.orders.OrderCancelled"
    key_field = "order_id"

    order_id: Key
    reason: str = Field(default="", max_length=2000)


class ApprovalDecided(Event):
    """A person decided on an order that needed approval.

    Attributes:
        approval_id: Id from the ``ApprovalRequested`` being answered.
        order_id: Business key of the order.
        decision: ``APPROVED`` or ``REJECTED``.
        decided_by: Who decided.
        comment: Optional free text.
        key_id: The registered key that signed the decision (None: unsigned).
        signature: Ed25519 signature of the decision's canonical message
            (``relayflow.reference.decision_signatures``); None: unsigned.
    """

    # Bytes travel as base64 inside Temporal's JSON payloads (never as raw text).
    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    avro_name: ClassVar[str] = "relayflow.approvals.ApprovalDecided"
    key_field = "order_id"

    approval_id: Key
    order_id: Key
    decision: Literal["APPROVED", "REJECTED"]
    decided_by: Key
    comment: str | None = Field(default=None, max_length=2000)
    key_id: Key | None = None
    signature: bytes | None = Field(default=None, max_length=64)


class OrderCompleted(Outcome):
    """The order saga finished successfully.

    Attributes:
        order_id: Business key of the order.
        amount_cents: Amount captured.
        currency: ISO 4217 code.
        reservation_id: Inventory reservation.
        payment_id: Captured payment.
        shipment_id: Created shipment.
    """

    avro_name: ClassVar[str] = "relayflow.orders.OrderCompleted"
    key_field = "order_id"

    order_id: Key
    amount_cents: int = Field(ge=0)
    currency: str
    reservation_id: str
    payment_id: str
    shipment_id: str


class OrderFailed(Outcome):
    """The order saga gave up after compensating every step that ran.

    Attributes:
        order_id: Business key of the order.
        reason: Machine-readable reason (``out_of_stock``, ``payment_declined``,
            ``shipment_failed``, ``cancelled``, ...; ``terminated``, ``timed_out``
            or ``workflow_failed`` from the ending sweep).
        failed_step: Step that failed, or ``None`` when cancelled or ended by the sweep.
        error: Human-readable detail.
        compensations: Compensations that ran, in the order they ran.
    """

    avro_name: ClassVar[str] = "relayflow.orders.OrderFailed"
    key_field = "order_id"

    order_id: Key
    reason: str
    failed_step: str | None = None
    error: str = ""
    compensations: tuple[str, ...] = ()



class _ApprovalOutcome(Outcome):
    key_field = "order_id"

    order_id: Key
    approval_id: Key


class ApprovalRequested(_ApprovalOutcome):
    """An order needs a person's approval before payment.

    Attributes:
        order_id: Business key of the order.
        approval_id: Quote it in ``ApprovalDecided``.
        amount_cents: Amount to approve.
        currency: ISO 4217 code.
        approver: Who must decide.
        deadline: When the request escalates.
    """

    avro_name: ClassVar[str] = "relayflow.orders.ApprovalRequested"

    amount_cents: int = Field(ge=0)
    currency: str
    approver: str
    deadline: UtcDatetime


class ApprovalEscalated(_ApprovalOutcome):
    """Nobody decided in time; the request moved on.

    Attributes:
        order_id: Business key of the order.
        approval_id: Same id as the request.
        previous_approver: Who did not decide.
        approver: Who must decide now.
        deadline: When the order fails with ``approval_timed_out``.
    """

    avro_name: ClassVar[str] = "relayflow.orders.ApprovalEscalated"

    previous_approver: str
    approver: str
    deadline: UtcDatetime


class ApprovalTimedOut(_ApprovalOutcome):
    """Nobody decided after escalation; the order fails.

    Attributes:
        order_id: Business key of the order.
        approval_id: Same id as the request.
        waited_seconds: Time from request to giving up.
        last_approver: Who was asked last.
    """

    avro_name: ClassVar[str] = "relayflow.orders.ApprovalTimedOut"

    waited_seconds: int = Field(ge=0)
    last_approver: str


class ApprovalDecisionRefused(_ApprovalOutcome):
    """An ``ApprovalDecided`` that could not count (not asked, unproven); the order keeps waiting.

    Attributes:
        order_id: Business key of the order.
        approval_id: Same id as the request.
        decided_by: As the refused decision gave it.
        decision: ``APPROVED`` or ``REJECTED``, as the refused decision gave it.
        reason: Machine-readable: ``not-an-approver``, ``wrong-order``,
            ``unsigned``, ``unknown-key``, ``key-not-valid``, ``bad-signature`` or
            ``key-not-for-approver`` (``workflows.approval``).
        approvers: The approvers asked so far; a ``decided_by`` of one of them
            (or ``<approver>/<person>``) counts.
    """

    avro_name: ClassVar[str] = "relayflow.orders.ApprovalDecisionRefused"

    decided_by: str
    decision: str
    reason: str
    approvers: tuple[str, ...]


class BatchRequested(Event):
    """Process a batch of items in bounded chunks of child workflows.

    Attributes:
        batch_id: Business key of the batch.
        items: Item ids; empty for a generated batch.
        item_count: Size of a generated batch (ids ``item-<seed>-<i>``).
        seed: Seed of generated item ids.
        fail_every: Generated batches only: every n-th item is invalid.
        chunk_size: Items per child workflow.
        max_concurrent_children: Children running at once (a sliding window).
        progress_every_chunks: ``BatchProgress`` after this many finished chunks.
    """

    avro_name: ClassVar[str] = "relayflow.batches.BatchRequested"
    key_field = "batch_id"

    batch_id: Key
    items: tuple[str, ...] = Field(default=(), max_length=10_000)
    item_count: int = Field(default=0, ge=0, le=10_000_000)
    seed: int = 0
    fail_every: int = Field(default=0, ge=0)
    chunk_size: int = Field(default=100, gt=0, le=1000)
    max_concurrent_children: int = Field(default=4, gt=0, le=100)
    progress_every_chunks: int = Field(default=5, gt=0)

    @model_validator(mode="after")
    def _items_or_count(self) -> BatchRequested:
        if bool(self.items) == bool(self.item_count):
            raise ValueError("give either items or item_count, not both or neither")
        return self

    @property
    def total(self) -> int:
        """Number of items in the batch."""
        return len(self.items) or self.item_count


class BatchCancelled(Event):
    """Stop a batch.

    Attributes:
        batch_id: Business key of the batch.
        reason: Free text.
    """

    avro_name: ClassVar[str] = "relayflow.batches.BatchCancelled"
    key_field = "batch_id"

    batch_id: Key
    reason: str = Field(default="", max_length=2000)


class BatchProgress(Outcome):
    """Where a running batch stands.

    Attributes:
        batch_id: Business key of the batch.
        total: Items in the batch.
        succeeded: Items processed.
        failed: Items that failed for good.
        chunks_done: Chunks finished.
        chunks_total: Chunks in the batch.
    """

    avro_name: ClassVar[str] = "relayflow.batches.BatchProgress"
    key_field = "batch_id"

    batch_id: Key
    total: int = Field(ge=0)
    succeeded: int = Field(ge=0)
    failed: int = Field(ge=0)
    chunks_done: int = Field(ge=0)
    chunks_total: int = Field(ge=0)


class BatchCompleted(BatchProgress):
    """A batch ended.

    Attributes:
        failed_item_ids: Failed items, at most the first 1000.
        failed_items_truncated: More failed than listed.
        failed_items_ref: Where the full list of failed items is kept
            (``store:batch_failures/<batch_id>``); empty when none failed.
        cancelled: The batch ended before its last item; unprocessed items are in
            neither count.
        reason: Why it ended early: ``cancelled`` (a ``BatchCancelled``), or from
            the ending sweep ``terminated``, ``timed_out`` or ``workflow_failed``;
            None when it ran to the end (and in records written before the field).
    """

    avro_name: ClassVar[str] = "relayflow.batches.BatchCompleted"

    failed_item_ids: tuple[str, ...] = ()
    failed_items_truncated: bool = False
    failed_items_ref: str = ""
    cancelled: bool = False
    reason: str | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    model.avro_name: model
    for model in (
        OrderPlaced, OrderCancelled, ApprovalDecided, OrderCompleted, OrderFailed,
        ApprovalRequested, ApprovalEscalated, ApprovalTimedOut, ApprovalDecisionRefused,
        BatchRequested, BatchCancelled, BatchProgress, BatchCompleted,
    )
}
"""Every reference event model by its Avro full name (the ``event-type`` header)."""
