"""The carts topics: changes and requests in, replies and outcomes out, orders handed over."""

from __future__ import annotations

from examples.carts.events import (
    CartAbandoned,
    CartCheckedOut,
    CheckoutRejected,
    CheckoutRequested,
    ItemAdded,
    ItemRemoved,
    OrderPlaced,
)
from relayflow import Topic

__all__ = ["CARTS_EVENTS", "CARTS_OUTCOMES", "CARTS_REPLIES", "ORDERS_EVENTS", "TOPICS"]

ORDERS_EVENTS = "orders.events"
"""The order saga's input topic (the reference application's): ``OrderPlaced``."""
CARTS_EVENTS = "carts.events"
"""``ItemAdded``, ``ItemRemoved`` and ``CheckoutRequested``: one topic, so a checkout
comes after every change of its cart (per-key order)."""
CARTS_REPLIES = "carts.replies"
"""Answers to ``CheckoutRequested``: ``CartCheckedOut``, ``CheckoutRejected``."""
CARTS_OUTCOMES = "carts.outcomes"
"""How carts end without a checkout: ``CartAbandoned``."""

TOPICS: tuple[Topic, ...] = (
    Topic(CARTS_EVENTS, 3, inbound=True, events=(
        ItemAdded.avro_name, ItemRemoved.avro_name, CheckoutRequested.avro_name)),
    Topic(CARTS_REPLIES, 3, inbound=False, replies=True, events=(
        CartCheckedOut.avro_name, CheckoutRejected.avro_name)),
    Topic(CARTS_OUTCOMES, 3, inbound=False, events=(CartAbandoned.avro_name,)),
    # The order saga's input, owned by the reference application: the carts only write to it.
    Topic(ORDERS_EVENTS, 6, inbound=False, events=(OrderPlaced.avro_name,)),
)
"""The application's topics."""
