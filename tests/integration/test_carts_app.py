"""The carts example on a real Kafka + Temporal, through the pytest plugin's fixtures only.

Changes go in as records, checkouts are answered on ``carts.replies``, the
order lands on ``orders.events`` for the order saga, and an idle cart ends.
The console's status page, served for this application, shows a cart.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from examples.carts.app import APP
from examples.carts.events import (
    CartAbandoned,
    CartCheckedOut,
    CheckoutRejected,
    CheckoutRequested,
    ItemAdded,
    ItemRemoved,
    OrderPlaced,
)
from examples.carts.topics import CARTS_OUTCOMES, CARTS_REPLIES, ORDERS_EVENTS
from relayflow.application import Application
from relayflow.config.settings import Settings
from relayflow.testing import AppKafka
from schemas.headers import CAUSATION_ID, CORRELATION_ID
from schemas.replies import RequestFailed
from tests.integration.console.rig import (
    assert_strict_csp,
    serving,
    shown_as_text,
    signed_in,
    text,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

CARTS_APP = "examples.carts.app:APP"


@pytest.fixture(scope="module")
def relayflow_app() -> Application:
    return APP


def new_cart() -> str:
    return f"K-{uuid.uuid4().hex[:8]}"


def added(cart: str, sku: str, quantity: int, *, abandon_after: int = 3600) -> ItemAdded:
    return ItemAdded(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), cart_id=cart,
                     customer_id="c-9", sku=sku, quantity=quantity, unit_price_cents=250,
                     abandon_after_seconds=abandon_after)


def removed(cart: str, sku: str, quantity: int) -> ItemRemoved:
    return ItemRemoved(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), cart_id=cart,
                       sku=sku, quantity=quantity)


def checkout(cart: str) -> CheckoutRequested:
    return CheckoutRequested(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), cart_id=cart)


async def test_a_checkout_replies_and_hands_the_order_to_the_saga(
        relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    cart = new_cart()
    for change in (added(cart, "tea", 2), added(cart, "mug", 1), removed(cart, "tea", 1)):
        await relayflow_kafka.send(change)
    request = checkout(cart)
    await relayflow_kafka.send(request, correlation_id="web-7")

    checked = await relayflow_kafka.wait_for(CartCheckedOut, key=cart)
    order = await relayflow_kafka.wait_for(OrderPlaced, key=checked.order_id)

    assert (checked.units, checked.amount_cents) == (2, 500)
    assert (checked.correlation_id, checked.causation_id) == ("web-7", str(request.event_id))
    assert (order.customer_id, order.amount_cents) == ("c-9", 500)
    assert sorted((line.sku, line.quantity) for line in order.items) == [("mug", 1), ("tea", 1)]
    records = {r.topic for r in relayflow_kafka.arrived if r.key == cart.encode()}
    assert CARTS_REPLIES in records
    [placed] = [r for r in relayflow_kafka.arrived if r.topic == ORDERS_EVENTS
                and r.key == checked.order_id.encode()]
    assert placed.event_type == OrderPlaced.avro_name

    # A second checkout of the same cart is a business rejection: a reply, not a dead letter.
    await relayflow_kafka.send(checkout(cart))
    again = await relayflow_kafka.wait_for(CheckoutRejected, key=cart)
    assert (again.reason, again.order_id) == ("ALREADY_CHECKED_OUT", checked.order_id)


async def test_an_empty_cart_is_rejected(relayflow_system: Settings,
                                         relayflow_kafka: AppKafka) -> None:
    cart = new_cart()
    await relayflow_kafka.send(added(cart, "tea", 1))
    await relayflow_kafka.send(removed(cart, "tea", 3))
    request = checkout(cart)
    await relayflow_kafka.send(request)

    rejected = await relayflow_kafka.wait_for(CheckoutRejected, key=cart)

    assert rejected.reason == "EMPTY"
    [reply] = [r for r in relayflow_kafka.arrived if r.key == cart.encode()]
    assert (reply.topic, reply.header(CAUSATION_ID)) == (CARTS_REPLIES, str(request.event_id))
    assert reply.header(CORRELATION_ID) == str(request.event_id)


async def test_an_idle_cart_is_abandoned_and_comes_back_with_its_next_item(
        relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    cart = new_cart()
    await relayflow_kafka.send(added(cart, "tea", 3, abandon_after=2))

    abandoned = await relayflow_kafka.wait_for(CartAbandoned, key=cart)

    assert (abandoned.units, abandoned.amount_cents, abandoned.customer_id) == (3, 750, "c-9")
    [record] = [r for r in relayflow_kafka.arrived if r.key == cart.encode()]
    assert record.topic == CARTS_OUTCOMES
    # The ended cart's id is reused (IdReuse.AFTER_CLOSE): a fresh, empty cart starts.
    await relayflow_kafka.send(added(cart, "mug", 1))
    await relayflow_kafka.send(checkout(cart))
    checked = await relayflow_kafka.wait_for(CartCheckedOut, key=cart)
    assert (checked.units, checked.amount_cents) == (1, 250)


async def test_a_checkout_of_a_cart_never_filled_is_answered_by_relayflow(
        relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    cart = new_cart()
    await relayflow_kafka.send(checkout(cart))
    failed = await relayflow_kafka.wait_for(RequestFailed, key=cart)
    assert failed.reason == "workflow-not-found"


async def test_the_console_shows_a_carts_state_to_operators(
        relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    """The console's status page, for this application: the cart's state, escaped, its reply."""
    cart, odd = new_cart(), "<script>alert('sku')</script>"
    await relayflow_kafka.send(added(cart, odd, 2))
    await relayflow_kafka.send(added(cart, "mug", 1))
    await relayflow_kafka.send(checkout(cart))
    checked = await relayflow_kafka.wait_for(CartCheckedOut, key=cart)

    async with serving(relayflow_system, app=CARTS_APP) as console:
        async with signed_in(console, "olga") as (client, _):
            answer = await client.get("/status", params={"key": cart})
            missing = await client.get("/status", params={"key": new_cart()})
            odd_key = await client.get("/status", params={"key": "K\n1"})
        async with signed_in(console, "ann") as (client, _):
            refused = await client.get("/status", params={"key": cart})

    assert answer.status_code == 200, answer.text
    assert_strict_csp(answer)
    assert answer.headers["cache-control"] == "no-store"
    shown = text(answer)
    assert f"CartEntity cart-{cart}: running" in shown
    assert "entity-state" in shown
    assert f'"order_id": "{checked.order_id}"' in shown  # the state the cart's query answers
    shown_as_text(answer, odd)  # a line's sku, as text
    assert "CartCheckedOut" in shown  # its reply on carts.replies, an outcome with its key
    assert f"/workflows/cart-{cart}/" in answer.text  # the Temporal UI link
    assert missing.status_code == 200
    assert f"no workflow for '{missing.url.params['key']}'" in text(missing)
    assert odd_key.status_code == 400
    assert refused.status_code == 403
