"""The carts application: what ``relayflow run --app examples.carts.app:APP`` runs."""

from __future__ import annotations

from pathlib import Path

from examples.carts.demo import CartsDemo
from examples.carts.events import EVENT_TYPES, CheckoutRequested, ItemAdded, ItemRemoved
from examples.carts.topics import CARTS_EVENTS, CARTS_REPLIES, TOPICS
from examples.carts.workflows import CHECKOUT_UPDATE, CartEntity
from relayflow import ENTITY_SIGNAL, Action, Application, IdReuse, Route

__all__ = ["APP", "ROUTES", "SCHEMA_FOLDER"]

SCHEMA_FOLDER = Path(__file__).resolve().parent / "schemas"
"""The carts ``.avsc`` files (``OrderPlaced.avsc`` links to the reference app's)."""

_CART, _ID = "CartEntity", "cart-{cart_id}"

ROUTES = (
    # Changes start the cart on first use (again after it ended), consecutive ones in one signal.
    Route(CARTS_EVENTS, ItemAdded, Action.SIGNAL_WITH_START, _CART, _ID, ENTITY_SIGNAL,
          id_reuse=IdReuse.AFTER_CLOSE, batch=100),
    Route(CARTS_EVENTS, ItemRemoved, Action.SIGNAL_WITH_START, _CART, _ID, ENTITY_SIGNAL,
          id_reuse=IdReuse.AFTER_CLOSE, batch=100),
    # A checkout asks a running cart; no cart (never filled, or ended) is `workflow-not-found`
    # or `workflow-closed`, relayflow's own replies.
    Route(CARTS_EVENTS, CheckoutRequested, Action.UPDATE, _CART, _ID, update=CHECKOUT_UPDATE,
          reply_topic=CARTS_REPLIES),
)
"""The routing table."""

APP = Application(
    name="carts",
    event_types=EVENT_TYPES,
    topics=TOPICS,
    routes=ROUTES,
    schema_folder=SCHEMA_FOLDER,
    workflows=(CartEntity,),
    extensions=(CartsDemo(),),
)
"""The shopping-cart application (``RELAYFLOW_APP=examples.carts.app:APP``)."""
