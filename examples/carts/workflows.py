"""``CartEntity``: one entity workflow per cart (``relayflow.EntityWorkflow``).

``ItemAdded`` / ``ItemRemoved`` arrive as entity signals and change the
state; the ``checkout`` update answers ``CheckoutRequested``. A checkout
publishes the order as an ``OrderPlaced`` on ``orders.events`` (the order
saga's own input, so the two applications share only the Kafka contract) and
then replies ``CartCheckedOut``; a cart that cannot be checked out gets a
``CheckoutRejected`` reply. A cart left alone for its ``abandon_after_seconds``
ends, with ``CartAbandoned`` unless it was checked out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from examples.carts.events import (
        CartAbandoned,
        CartCheckedOut,
        CheckoutRejected,
        CheckoutRequested,
        ItemAdded,
        ItemRemoved,
        OrderLine,
        OrderPlaced,
    )
    from examples.carts.topics import CARTS_OUTCOMES, ORDERS_EVENTS
    from relayflow import (
        EntityCarry,
        EntityEnd,
        EntityOptions,
        EntityWorkflow,
        Event,
        EventMeta,
        Inbound,
        Reply,
        outcome_event_id,
        publish_outcome,
        reply,
        reply_id,
    )

__all__ = ["CHECKOUT_UPDATE", "Cart", "CartEntity", "CartLine", "cart_workflow_id"]

CHECKOUT_UPDATE = "checkout"
"""The update ``CheckoutRequested`` is routed to."""


def cart_workflow_id(cart_id: str) -> str:
    """The cart's workflow id (the routes' ``cart-{cart_id}``)."""
    return f"cart-{cart_id}"


class CartLine(BaseModel):
    """Units of one item in the cart.

    Attributes:
        quantity: Units.
        unit_price_cents: Price of one unit (the last ``ItemAdded``'s).
    """

    quantity: int
    unit_price_cents: int


class Cart(BaseModel):
    """A cart's state (what ``relayflow status`` shows under ``entity-state``).

    Attributes:
        customer_id: Whose cart it is.
        lines: Item (sku) → its line; a line with no units left is dropped.
        abandon_after_seconds: Idle time before the cart ends (the first ``ItemAdded``'s).
        order_id: The order a checkout placed; empty until then.
        checkout_request: Event id of the ``CheckoutRequested`` that placed it.
        checked_out_at: When (workflow time): the same request is answered identically.
        ignored: Changes that came after the checkout (not applied).
        abandoned: ``CartAbandoned`` was published; the next change starts an empty cart.
    """

    customer_id: str = ""
    lines: dict[str, CartLine] = {}
    abandon_after_seconds: int = 86_400
    order_id: str = ""
    checkout_request: str = ""
    checked_out_at: datetime | None = None
    ignored: int = 0
    abandoned: bool = False

    @property
    def units(self) -> int:
        """Units in the cart."""
        return sum(line.quantity for line in self.lines.values())

    @property
    def amount_cents(self) -> int:
        """What they are worth."""
        return sum(line.quantity * line.unit_price_cents for line in self.lines.values())


@workflow.defn(name="CartEntity")
class CartEntity(EntityWorkflow[Cart]):
    """One cart; workflow id ``cart-<cart_id>``, recreated on first use after it ended."""

    event_types = (ItemAdded, ItemRemoved)
    options = EntityOptions(idle=timedelta(days=1))

    def initial_state(self) -> Cart:
        """An empty cart."""
        return Cart()

    def load_state(self, data: dict[str, Any]) -> Cart:
        """The cart carried across continue-as-new."""
        return Cart.model_validate(data)

    def apply(self, state: Cart, event: Event, meta: EventMeta) -> Cart:  # noqa: ARG002
        """Add or remove units; once checked out, count the change as ignored."""
        if state.abandoned:  # revived while CartAbandoned went out: a fresh cart, as after close
            state = self.initial_state()
        if state.order_id:  # checked out: the order is placed, the cart no longer changes
            return state.model_copy(update={"ignored": state.ignored + 1})
        lines = dict(state.lines)
        if isinstance(event, ItemAdded):
            held = lines.get(event.sku)
            lines[event.sku] = CartLine(quantity=event.quantity + (held.quantity if held else 0),
                                        unit_price_cents=event.unit_price_cents)
            # The first change sets the idle time: the entity's idle timer is running already
            # when a later one arrives, and it is not woken by events.
            idle = state.abandon_after_seconds if state.customer_id else event.abandon_after_seconds
            return state.model_copy(update={"lines": lines, "customer_id": event.customer_id,
                                            "abandon_after_seconds": idle})
        assert isinstance(event, ItemRemoved)
        held = lines.pop(event.sku, None)
        if held is not None and held.quantity > event.quantity:
            lines[event.sku] = held.model_copy(update={"quantity": held.quantity - event.quantity})
        return state.model_copy(update={"lines": lines})

    def idle_after(self) -> timedelta:
        """The first ``ItemAdded``'s ``abandon_after_seconds``."""
        return timedelta(seconds=self.state.abandon_after_seconds)

    @workflow.update(name=CHECKOUT_UPDATE)
    async def checkout(self, request: Inbound[CheckoutRequested]) -> Reply:
        """Place the cart's order and answer ``CartCheckedOut``, or answer ``CheckoutRejected``.

        A business rejection is a reply of the carts contract, decided here rather
        than in a validator: a validator's refusal is answered with relayflow's
        generic ``RequestFailed`` and leaves no trace in the history. The same
        request again (a redelivery, also after continue-as-new) is answered with
        the same ``CartCheckedOut``, and places no second order.
        """
        await self.restored()  # the changes signalled with the start are applied first
        state, meta = self.state, request.meta
        if state.order_id and state.checkout_request != meta.event_id:
            return self._rejected(request, "ALREADY_CHECKED_OUT", state.order_id)
        if not state.order_id:
            if not state.units or state.abandoned:
                return self._rejected(request, "EMPTY")
            # Decided before the publish is awaited: a change arriving meanwhile is not ordered.
            state.order_id = f"{request.event.cart_id}-{meta.event_id[:8]}"
            state.checkout_request = meta.event_id
            state.checked_out_at = workflow.now().astimezone(UTC)
            await self._place_order(state, request)
        # Else the same request again, in a later run (runs wait for their handlers, so its
        # order went out): answered as the first time, with no second OrderPlaced.
        return reply(CartCheckedOut(
            event_id=reply_id(request, CartCheckedOut), occurred_at=self._checked_out_at(),
            correlation_id=meta.correlation_id, causation_id=meta.event_id,
            cart_id=request.event.cart_id, order_id=state.order_id, units=state.units,
            amount_cents=state.amount_cents))

    async def _place_order(self, state: Cart, request: Inbound[CheckoutRequested]) -> None:
        meta, checkout = request.meta, request.event
        order = OrderPlaced(
            event_id=outcome_event_id(workflow.info().workflow_id, f"order/{meta.event_id}"),
            occurred_at=self._checked_out_at(), order_id=state.order_id,
            customer_id=state.customer_id, amount_cents=state.amount_cents,
            currency=checkout.currency, shipping_country=checkout.shipping_country,
            items=tuple(OrderLine(sku=sku, quantity=line.quantity,
                                  unit_price_cents=line.unit_price_cents)
                        for sku, line in sorted(state.lines.items())))
        # The saga's input event, not an Outcome: it starts a flow of its own.
        await publish_outcome(ORDERS_EVENTS, order, meta.traceparent)

    def _checked_out_at(self) -> datetime:
        return self.state.checked_out_at or workflow.now()  # set with order_id

    def _rejected(self, request: Inbound[CheckoutRequested],
                  reason: str, order_id: str = "") -> Reply:
        meta = request.meta
        return reply(CheckoutRejected.model_validate({
            "event_id": reply_id(request, CheckoutRejected), "occurred_at": workflow.now(),
            "correlation_id": meta.correlation_id, "causation_id": meta.event_id,
            "cart_id": request.event.cart_id, "reason": reason, "order_id": order_id}))

    async def on_idle(self, state: Cart) -> None:
        """Publish ``CartAbandoned`` unless the cart was checked out."""
        if state.order_id:
            return  # checked out: its end is the order's
        meta, workflow_id = self.last_meta, workflow.info().workflow_id
        abandoned = CartAbandoned(
            event_id=self.expiry_event_id(), occurred_at=workflow.now().astimezone(UTC),
            correlation_id=meta.correlation_id if meta else workflow_id,
            causation_id=meta.event_id if meta else "",
            cart_id=workflow_id.removeprefix("cart-"), customer_id=state.customer_id,
            units=state.units, amount_cents=state.amount_cents)
        # Marked before the publish: a change arriving meanwhile revives the run (EntityWorkflow)
        # and must start an empty cart, not add to the abandoned one.
        state.abandoned = True
        await publish_outcome(CARTS_OUTCOMES, abandoned, meta.traceparent if meta else "")

    @workflow.run
    async def run(self, carried: EntityCarry | None = None) -> EntityEnd:
        """Live until idle; see ``EntityWorkflow.live``."""
        return await self.live(carried)
