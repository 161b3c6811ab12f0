"""Order saga activities: each step and its compensation, backed by the store.

Every activity takes an ``idempotency_key`` (workflow id + step), so a retry
or a redelivered workflow task has one effect. Business refusals become
non-retryable ``ApplicationError``s whose ``type`` names the reason.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.endings import ClosedExecution
from relayflow.reference.activities.store import BusinessRuleViolation, Store, Undo
from relayflow.reference.events import OrderLine, OrderPlaced
from schemas import Inbound

__all__ = [
    "BUSINESS_ERRORS",
    "ChargePaymentInput",
    "CompensationInput",
    "CompensationResult",
    "CreateShipmentInput",
    "OrderActivities",
    "ReserveInventoryInput",
    "StepResult",
]

BUSINESS_ERRORS = ("OutOfStock", "PaymentDeclined", "ShipmentRejected", "InvalidOrder")
"""``ApplicationError`` types that retrying cannot fix."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReserveInventoryInput(_Model):
    """Input of ``reserve_inventory``.

    Attributes:
        idempotency_key: ``<workflow id>/reserve_inventory``.
        order_id: Order the units are for.
        items: Lines to reserve, all or nothing.
    """

    idempotency_key: str
    order_id: str
    items: tuple[OrderLine, ...]


class ChargePaymentInput(_Model):
    """Input of ``charge_payment``.

    Attributes:
        idempotency_key: ``<workflow id>/charge_payment``.
        order_id: Order being paid.
        amount_cents: Amount in minor units.
        currency: ISO 4217 code.
    """

    idempotency_key: str
    order_id: str
    amount_cents: int
    currency: str


class CreateShipmentInput(_Model):
    """Input of ``create_shipment``.

    Attributes:
        idempotency_key: ``<workflow id>/create_shipment``.
        order_id: Order being shipped.
        country: ISO 3166-1 alpha-2 destination.
    """

    idempotency_key: str
    order_id: str
    country: str


class StepResult(_Model):
    """Result of a saga step.

    Attributes:
        id: Id of what the step created (reservation, payment, shipment).
    """

    id: str


class CompensationInput(_Model):
    """Input of every compensation.

    Attributes:
        idempotency_key: Key of the step being undone.
        order_id: For logs.
    """

    idempotency_key: str
    order_id: str


class CompensationResult(_Model):
    """What a compensation did.

    Attributes:
        undone: True when it reversed an effect; False when there was nothing
            (left) to undo.
        state: Status of the record afterwards, or ``absent``.
    """

    undone: bool
    state: str


def _refused(error: BusinessRuleViolation) -> ApplicationError:
    return ApplicationError(str(error), type=type(error).__name__, non_retryable=True)


class OrderActivities:
    """The order saga's activities, bound to one store.

    They are synchronous (SQLite is blocking I/O) and run on the worker's
    activity thread pool.

    Args:
        store: Where inventory, payments and shipments live.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    @activity.defn(name="reserve_inventory")
    def reserve_inventory(self, request: ReserveInventoryInput) -> StepResult:
        """Reserve every line of the order, or fail with ``OutOfStock``."""
        lines = [(line.sku, line.quantity) for line in request.items]
        try:
            return StepResult(id=self._store.reserve(request.idempotency_key, request.order_id,
                                                     lines))
        except BusinessRuleViolation as error:
            raise _refused(error) from error

    @activity.defn(name="release_inventory")
    def release_inventory(self, request: CompensationInput) -> CompensationResult:
        """Give reserved units back; a no-op when nothing is reserved."""
        undo = self._store.release(request.idempotency_key, request.order_id)
        return CompensationResult(undone=undo.undone, state=undo.state)

    @activity.defn(name="charge_payment")
    def charge_payment(self, request: ChargePaymentInput) -> StepResult:
        """Capture the payment, or fail with ``PaymentDeclined``."""
        try:
            charged = self._store.charge(request.idempotency_key, request.order_id,
                                         request.amount_cents, request.currency)
        except BusinessRuleViolation as error:
            raise _refused(error) from error
        # A failpoint: a fault test may kill the process here (the repository\'s failpoints).
        sys.audit("relayflow.failpoint", "activity.charge-payment.after-store")
        return StepResult(id=charged)

    @activity.defn(name="refund_payment")
    def refund_payment(self, request: CompensationInput) -> CompensationResult:
        """Refund the payment; a no-op when nothing was charged or it was refunded."""
        undo = self._store.refund(request.idempotency_key, request.order_id)
        # A failpoint: a fault test may kill the process here (the repository\'s failpoints).
        sys.audit("relayflow.failpoint", "activity.refund-payment.after-store")
        return CompensationResult(undone=undo.undone, state=undo.state)

    @activity.defn(name="create_shipment")
    def create_shipment(self, request: CreateShipmentInput) -> StepResult:
        """Create the shipment, or fail with ``ShipmentRejected``."""
        try:
            return StepResult(id=self._store.create_shipment(
                request.idempotency_key, request.order_id, request.country))
        except BusinessRuleViolation as error:
            raise _refused(error) from error

    @activity.defn(name="cancel_shipment")
    def cancel_shipment(self, request: CompensationInput) -> CompensationResult:
        """Cancel the shipment; a no-op when none was created."""
        undo = self._store.cancel_shipment(request.idempotency_key, request.order_id)
        return CompensationResult(undone=undo.undone, state=undo.state)

    @activity.defn(name="compensate_ended_order")
    def compensate_ended_order(self, closed: ClosedExecution) -> list[str]:
        """Undo every step of a saga that closed without its outcome (the ending sweep's).

        The saga's own compensations, in its reverse order, with its step keys:
        each is a no-op when there is nothing (left) to undo, and voids the key,
        so a step still in flight when the saga was terminated takes no effect.

        Returns:
            The compensations that undid something, in the order they ran.
        """
        order_id = Inbound[OrderPlaced].model_validate(closed.input).event.order_id
        undos: tuple[tuple[str, str, Callable[[str, str], Undo]], ...] = (
            ("cancel_shipment", "create_shipment", self._store.cancel_shipment),
            ("refund_payment", "charge_payment", self._store.refund),
            ("release_inventory", "reserve_inventory", self._store.release),
        )
        return [name for name, step, undo in undos
                if undo(f"{closed.workflow_id}/{step}", order_id).undone]

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of this class, for explicit registration on a worker."""
        return [self.reserve_inventory, self.release_inventory, self.charge_payment,
                self.refund_payment, self.create_shipment, self.cancel_shipment,
                self.compensate_ended_order]
