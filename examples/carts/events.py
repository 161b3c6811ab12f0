"""The carts contract as pydantic models, one per ``.avsc`` file in ``schemas/``.

``OrderPlaced`` is not the carts' own: it is the order saga's input
(``relayflow.orders.OrderPlaced``), which a checkout publishes on
``orders.events``. The carts keep their own model of it, as any producer of
another team's contract does (no import of the reference app: they share the
Kafka contract only); ``schemas/OrderPlaced.avsc`` links to the owner's file,
and the application's contract check holds the model to it.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from relayflow import Event, Key, Outcome, Record

__all__ = ["EVENT_TYPES", "CartAbandoned", "CartCheckedOut", "CheckoutRejected",
           "CheckoutRequested", "ItemAdded", "ItemRemoved", "OrderLine", "OrderPlaced"]


class ItemAdded(Event):
    """Units of an item put in the cart; starts the cart's entity on first use.

    Attributes:
        cart_id: Business key of the cart.
        customer_id: Whose cart it is.
        sku: The item.
        quantity: Units added.
        unit_price_cents: Price of one unit in minor units.
        abandon_after_seconds: The cart is abandoned after this long without a change
            (the cart's first ``ItemAdded`` sets it).
    """

    avro_name: ClassVar[str] = "carts.events.ItemAdded"
    key_field = "cart_id"  # one partition per cart: a checkout sees every change before it

    cart_id: Key
    customer_id: Key
    sku: Key
    quantity: int = Field(gt=0, le=1000)
    unit_price_cents: int = Field(ge=0)
    abandon_after_seconds: int = Field(default=86_400, gt=0, le=90 * 86_400)


class ItemRemoved(Event):
    """Units of an item taken out of the cart.

    Attributes:
        cart_id: Business key of the cart.
        sku: The item.
        quantity: Units removed; more than the cart holds empties the line.
    """

    avro_name: ClassVar[str] = "carts.events.ItemRemoved"
    key_field = "cart_id"

    cart_id: Key
    sku: Key
    quantity: int = Field(gt=0, le=1000)


class CheckoutRequested(Event):
    """A request to check the cart out, answered on ``carts.replies``.

    Attributes:
        cart_id: Business key of the cart.
        currency: ISO 4217 code of the order.
        shipping_country: ISO 3166-1 alpha-2 destination.
    """

    avro_name: ClassVar[str] = "carts.events.CheckoutRequested"
    key_field = "cart_id"

    cart_id: Key
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    shipping_country: str = Field(default="DE", pattern=r"^[A-Z]{2}$")


class CartCheckedOut(Outcome):
    """Reply: the cart was checked out and its ``OrderPlaced`` is on ``orders.events``.

    Attributes:
        cart_id: Business key of the cart.
        order_id: The order placed.
        units: Units ordered.
        amount_cents: The order's total.
    """

    avro_name: ClassVar[str] = "carts.events.CartCheckedOut"
    key_field = "cart_id"

    cart_id: Key
    order_id: Key
    units: int = Field(ge=0)
    amount_cents: int = Field(ge=0)


class CheckoutRejected(Outcome):
    """Reply: the cart cannot be checked out; nothing changed.

    Attributes:
        cart_id: Business key of the cart.
        reason: ``EMPTY`` or ``ALREADY_CHECKED_OUT``.
        order_id: For ``ALREADY_CHECKED_OUT``, the order placed before.
    """

    avro_name: ClassVar[str] = "carts.events.CheckoutRejected"
    key_field = "cart_id"

    cart_id: Key
    reason: Literal["EMPTY", "ALREADY_CHECKED_OUT"]
    order_id: str = ""


class CartAbandoned(Outcome):
    """A cart that was not checked out was left alone for its idle time and ended.

    Attributes:
        cart_id: Business key of the cart.
        customer_id: Whose cart it was.
        units: Units left in it.
        amount_cents: What they were worth.
    """

    avro_name: ClassVar[str] = "carts.events.CartAbandoned"
    key_field = "cart_id"

    cart_id: Key
    customer_id: str
    units: int = Field(ge=0)
    amount_cents: int = Field(ge=0)


class OrderLine(Record):
    """One line of an ``OrderPlaced``.

    Attributes:
        sku: Stock keeping unit.
        quantity: Units ordered.
        unit_price_cents: Price of one unit in minor units.
    """

    sku: Key
    quantity: int = Field(gt=0, le=1_000_000)
    unit_price_cents: int = Field(ge=0)


class OrderPlaced(Event):
    """The order saga's input, as the carts publish it on ``orders.events``.

    Attributes:
        order_id: Business key of the order (and of the record).
        customer_id: Who ordered.
        items: The order lines.
        amount_cents: Total in minor units, the sum of the lines.
        currency: ISO 4217 code.
        shipping_country: ISO 3166-1 alpha-2 destination.
        approval_timeout_seconds: Not set by the carts (the saga's default applies).
    """

    avro_name: ClassVar[str] = "relayflow.orders.OrderPlaced"
    key_field = "order_id"  # as the saga's contract says

    order_id: Key
    customer_id: Key
    items: tuple[OrderLine, ...] = Field(min_length=1, max_length=1000)
    amount_cents: int = Field(ge=0)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    shipping_country: str = Field(default="DE", pattern=r"^[A-Z]{2}$")
    approval_timeout_seconds: int | None = None


EVENT_TYPES: tuple[type[Event], ...] = (ItemAdded, ItemRemoved, CheckoutRequested, CartCheckedOut,
                                        CheckoutRejected, CartAbandoned, OrderPlaced)
"""Every event of the carts contract, and the ``OrderPlaced`` it hands orders over with."""
