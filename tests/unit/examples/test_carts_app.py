"""The carts example (``examples.carts``): a valid Application, its contract, its entity.

The cart runs in Temporal's time-skipping server with a same-named fake of
``publish_outcome``; its checkout is a real Workflow Update.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bridge.routes import Action
from examples.carts.app import APP, SCHEMA_FOLDER
from examples.carts.events import (
    EVENT_TYPES,
    CartAbandoned,
    CartCheckedOut,
    CheckoutRejected,
    CheckoutRequested,
    ItemAdded,
    ItemRemoved,
    OrderLine,
    OrderPlaced,
)
from examples.carts.topics import CARTS_EVENTS, CARTS_OUTCOMES, CARTS_REPLIES, ORDERS_EVENTS
from examples.carts.workflows import CHECKOUT_UPDATE, CartEntity
from relayflow import (
    ENTITY_QUERY,
    ENTITY_SIGNAL,
    EntityEnd,
    EntityView,
    IdReuse,
    Reply,
)
from relayflow.operate.status import queries_of
from relayflow.reference.app import APP as REFERENCE_APP
from relayflow.reference.events import SCHEMA_FOLDER as REFERENCE_SCHEMAS
from relayflow.reference.events import OrderPlaced as SagaOrderPlaced
from schemas import Event
from schemas.envelope import InboundBatch
from schemas.replies import RequestFailed
from tests.helpers.short_run_cart import ShortRunCart
from tests.helpers.workflow_env import start_time_skipping_environment
from tests.helpers.workflow_fakes import FakePublisher, inbound

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def added(cart: str, sku: str = "tea", quantity: int = 2, *, price: int = 450,
          abandon_after: int = 3600) -> ItemAdded:
    return ItemAdded(event_id=uuid.uuid4(), occurred_at=NOW, cart_id=cart, customer_id="c-7",
                     sku=sku, quantity=quantity, unit_price_cents=price,
                     abandon_after_seconds=abandon_after)


def removed(cart: str, sku: str = "tea", quantity: int = 1) -> ItemRemoved:
    return ItemRemoved(event_id=uuid.uuid4(), occurred_at=NOW, cart_id=cart, sku=sku,
                       quantity=quantity)


def checkout(cart: str) -> CheckoutRequested:
    return CheckoutRequested(event_id=uuid.uuid4(), occurred_at=NOW, cart_id=cart)


def changes(*events: ItemAdded | ItemRemoved) -> InboundBatch[Any]:
    """What the bridge signals for consecutive changes of one cart."""
    return InboundBatch[Any](events=[inbound(event) for event in events])


def test_the_carts_app_is_consistent() -> None:
    assert APP.problems() == []
    assert APP.input_topics == (CARTS_EVENTS,)
    table = APP.route_table()
    for change in (ItemAdded, ItemRemoved):
        route = table.lookup(CARTS_EVENTS, change.avro_name)
        assert route is not None
        assert (route.action, route.signal, route.id_reuse) == (
            Action.SIGNAL_WITH_START, ENTITY_SIGNAL, IdReuse.AFTER_CLOSE)
    update = table.lookup(CARTS_EVENTS, CheckoutRequested.avro_name)
    assert update is not None
    assert (update.action, update.update, update.reply_topic) == (
        Action.UPDATE, CHECKOUT_UPDATE, CARTS_REPLIES)
    assert update.id_for(checkout("K-1")) == "cart-K-1"


def test_the_order_placed_contract_is_the_reference_apps_own() -> None:
    # The carts produce the order saga's input: the very schema its owner publishes.
    ours = SCHEMA_FOLDER / "OrderPlaced.avsc"
    assert ours.read_bytes() == (Path(REFERENCE_SCHEMAS) / "OrderPlaced.avsc").read_bytes()
    # And what the carts' model of it writes, the saga's own model reads.
    placed = OrderPlaced(event_id=uuid.uuid4(), occurred_at=NOW, order_id="K-1-abc",
                         customer_id="c-7", amount_cents=900,
                         items=(OrderLine(sku="tea", quantity=2, unit_price_cents=450),))
    theirs = REFERENCE_APP.codec().decode(APP.codec().encode(placed))
    assert isinstance(theirs, SagaOrderPlaced)
    assert theirs.model_dump() == placed.model_dump()


@pytest.mark.parametrize("event", [
    added("K-1"), removed("K-1"), checkout("K-1"),
    CartCheckedOut(event_id=uuid.uuid4(), occurred_at=NOW, correlation_id="c", causation_id="e",
                   cart_id="K-1", order_id="K-1-abc", units=3, amount_cents=1350),
    CheckoutRejected(event_id=uuid.uuid4(), occurred_at=NOW, correlation_id="c",
                     causation_id="e", cart_id="K-1", reason="EMPTY"),
    CartAbandoned(event_id=uuid.uuid4(), occurred_at=NOW, correlation_id="c", causation_id="e",
                  cart_id="K-1", customer_id="c-7", units=1, amount_cents=450),
], ids=lambda e: type(e).__name__)
def test_every_carts_event_round_trips_through_the_apps_codec(event: Event) -> None:
    codec = APP.codec()
    assert set(codec.event_types) == {*(model.avro_name for model in EVENT_TYPES),
                                      RequestFailed.avro_name}
    assert codec.decode(codec.encode(event)) == event
    assert event.key == "K-1"


class Cart:
    """One cart on a time-skipping worker, with what it published."""

    def __init__(self, env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any],
                 publisher: FakePublisher) -> None:
        self.env, self.handle, self.publisher = env, handle, publisher

    async def change(self, *events: ItemAdded | ItemRemoved) -> None:
        await self.handle.signal(ENTITY_SIGNAL, changes(*events))

    async def checkout(self, request: CheckoutRequested) -> Event:
        # As the bridge: the update id is the request's event id.
        answer = await self.handle.execute_update(CHECKOUT_UPDATE, inbound(request),
                                                  id=str(request.event_id), result_type=Reply)
        return APP.codec().event_types[answer.event_type].model_validate(answer.event)

    async def view(self) -> EntityView:
        view: EntityView = await self.handle.query(ENTITY_QUERY, result_type=EntityView)
        return view

    def published(self, topic: str) -> list[dict[str, Any]]:
        return [p.event for p in self.publisher.published if p.topic == topic]


@pytest.fixture(scope="module")
async def workflow_env() -> AsyncIterator[WorkflowEnvironment]:
    """An environment of this module's own: carts left idle (abandonment timers) after
    their workers stop would hold a shared environment's virtual clock."""
    async with await start_time_skipping_environment() as env:
        yield env


@pytest.fixture
async def cart(workflow_env: WorkflowEnvironment) -> AsyncIterator[Cart]:
    """A cart started by its first ``ItemAdded`` (2 x tea at 450), abandoned after 600 s."""
    publisher = FakePublisher()
    queue, cart_id = f"carts-{uuid.uuid4().hex[:8]}", f"K-{uuid.uuid4().hex[:6]}"
    async with Worker(workflow_env.client, task_queue=queue, workflows=[CartEntity],
                      activities=publisher.activities()):
        handle = await workflow_env.client.start_workflow(
            CartEntity.run, id=f"cart-{cart_id}", task_queue=queue, start_signal=ENTITY_SIGNAL,
            start_signal_args=[changes(added(cart_id, abandon_after=600))])
        yield Cart(workflow_env, handle, publisher)
        # A cart left running would hold the shared server's time skipping once its
        # timer fires with no worker to take the task.
        with contextlib.suppress(RPCError):
            await handle.terminate("test over")


def cart_id(cart: Cart) -> str:
    return cart.handle.id.removeprefix("cart-")


async def test_a_checkout_places_the_order_and_replies_checked_out(cart: Cart) -> None:
    key = cart_id(cart)
    await cart.change(added(key, "mug", 1, price=1200), added(key, "tea", 3), removed(key))
    request = checkout(key)

    answer = await cart.checkout(request)

    assert isinstance(answer, CartCheckedOut)
    # tea: 2 + 3 - 1 = 4 x 450, mug: 1 x 1200
    assert (answer.units, answer.amount_cents) == (5, 4 * 450 + 1200)
    assert answer.causation_id == str(request.event_id)
    [order] = [OrderPlaced.model_validate(e) for e in cart.published(ORDERS_EVENTS)]
    assert (order.order_id, order.customer_id, order.amount_cents) == (
        answer.order_id, "c-7", answer.amount_cents)
    assert [(line.sku, line.quantity) for line in order.items] == [("mug", 1), ("tea", 4)]
    # The same request again (a redelivery) is answered the same, with no second order.
    assert await cart.checkout(request) == answer
    assert len(cart.published(ORDERS_EVENTS)) == 1
    # Another checkout is refused, and later changes are not applied.
    again = await cart.checkout(checkout(key))
    assert isinstance(again, CheckoutRejected)
    assert (again.reason, again.order_id) == ("ALREADY_CHECKED_OUT", answer.order_id)
    await cart.change(added(key, "jam"))
    view = await cart.view()
    assert (view.state["ignored"], set(view.state["lines"])) == (1, {"mug", "tea"})


async def test_an_empty_cart_is_rejected_and_nothing_is_ordered(cart: Cart) -> None:
    key = cart_id(cart)
    await cart.change(removed(key, quantity=5))

    answer = await cart.checkout(checkout(key))

    assert isinstance(answer, CheckoutRejected)
    assert (answer.reason, answer.order_id) == ("EMPTY", "")
    assert cart.published(ORDERS_EVENTS) == []
    assert (await cart.view()).state["order_id"] == ""


async def test_an_idle_cart_is_abandoned_after_its_own_idle_time(cart: Cart) -> None:
    key = cart_id(cart)
    await cart.change(added(key, "mug", 1, price=1200, abandon_after=7200))  # the first counts

    end = EntityEnd.model_validate(await cart.handle.result())

    assert end.state["abandon_after_seconds"] == 600
    [abandoned] = [CartAbandoned.model_validate(e) for e in cart.published(CARTS_OUTCOMES)]
    assert (abandoned.units, abandoned.amount_cents) == (3, 2 * 450 + 1200)
    assert abandoned.cart_id == key
    description = await cart.handle.describe()
    assert description.close_time is not None
    assert description.start_time is not None
    lived = description.close_time - description.start_time
    assert timedelta(seconds=600) <= lived < timedelta(seconds=3600)


async def test_a_checked_out_cart_ends_without_being_abandoned(cart: Cart) -> None:
    assert isinstance(await cart.checkout(checkout(cart_id(cart))), CartCheckedOut)
    await cart.handle.result()
    assert cart.published(CARTS_OUTCOMES) == []



async def test_a_checkout_in_the_first_task_sees_the_changes_signalled_with_the_start(
        workflow_env: WorkflowEnvironment) -> None:
    publisher, queue = FakePublisher(), f"carts-{uuid.uuid4().hex[:8]}"
    key = f"K-{uuid.uuid4().hex[:6]}"
    handle = await workflow_env.client.start_workflow(
        CartEntity.run, id=f"cart-{key}", task_queue=queue, start_signal=ENTITY_SIGNAL,
        start_signal_args=[changes(added(key))])
    request = checkout(key)
    # Sent before any worker runs: the start's signal and the update share the first task.
    asking = asyncio.create_task(handle.execute_update(
        CHECKOUT_UPDATE, inbound(request), id=str(request.event_id), result_type=Reply))
    await asyncio.sleep(0.5)
    async with Worker(workflow_env.client, task_queue=queue, workflows=[CartEntity],
                      activities=publisher.activities()):
        answer = await asking
        await handle.terminate("test over")
    assert answer.event_type == CartCheckedOut.avro_name
    assert CartCheckedOut.model_validate(answer.event).units == 2


async def test_a_checkout_redelivered_after_continue_as_new_places_no_second_order(
        workflow_env: WorkflowEnvironment) -> None:
    publisher, queue = FakePublisher(), f"carts-{uuid.uuid4().hex[:8]}"
    key = f"K-{uuid.uuid4().hex[:6]}"
    async with Worker(workflow_env.client, task_queue=queue, workflows=[ShortRunCart],
                      activities=publisher.activities()):
        handle = await workflow_env.client.start_workflow(
            ShortRunCart.run, id=f"cart-{key}", task_queue=queue, start_signal=ENTITY_SIGNAL,
            start_signal_args=[changes(added(key))])
        cart = Cart(workflow_env, handle, publisher)
        request = checkout(key)
        first = await cart.checkout(request)
        await cart.change(added(key, "jam"))  # the signal limit: the next run takes over
        later = workflow_env.client.get_workflow_handle(handle.id)
        for _ in range(100):  # until the next run is there (bounded)
            if (await later.describe()).run_id != handle.result_run_id:
                break
            await asyncio.sleep(0.1)
        again = await Cart(workflow_env, later, publisher).checkout(request)
        await later.terminate("test over")
    assert isinstance(first, CartCheckedOut)
    assert again == first  # Temporal's update dedup does not cross runs: the cart's does
    assert len(cart.published(ORDERS_EVENTS)) == 1


def test_relayflow_status_asks_the_cart_for_its_state() -> None:
    assert {t: [name for name, _ in q] for t, q in queries_of(APP).items()} == {
        "CartEntity": [ENTITY_QUERY]}
