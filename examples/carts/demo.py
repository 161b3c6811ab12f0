"""The carts' demo (the application's ``Demo`` extension): three carts, three endings.

Run beside the reference application by ``make demo`` (``relayflow demo
--with examples.carts.app:APP``), on its own task queue and consumer group:

* a cart filled and checked out: its ``CartCheckedOut`` reply, then how the
  order it handed to the order saga on ``orders.events`` ended, read on the
  saga's ``orders.outcomes`` (the reference application's topic: the two
  applications meet only on Kafka);
* a cart left alone for a few seconds: ``CartAbandoned``;
* a cart emptied before its checkout: ``CheckoutRejected`` (``EMPTY``).

It sends the contract's records with relayflow's own Kafka clients, reads
each cart's answers by key (``relayflow.read_key``, as ``relayflow
status`` does) and prints a line per answer, so it runs beside another
demo's live table.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from examples.carts.events import (
    CartAbandoned,
    CartCheckedOut,
    CheckoutRejected,
    CheckoutRequested,
    ItemAdded,
    ItemRemoved,
)
from examples.carts.topics import CARTS_EVENTS, CARTS_OUTCOMES, CARTS_REPLIES
from relayflow import (
    Event,
    EventCodec,
    Settings,
    StoredRecord,
    event_codec,
    kafka_clients,
    load_application,
    read_key,
    send_event,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from relayflow import KafkaClients

__all__ = ["ABANDON_AFTER_SECONDS", "ORDERS_OUTCOMES", "CartStory", "CartsDemo", "said",
           "stories"]

ORDERS_OUTCOMES = "orders.outcomes"
"""The order saga's outcomes (the reference application's topic), keyed by order id."""
ORDER_ENDINGS = ("OrderCompleted", "OrderFailed")
"""How an order ends (the last part of the ``event-type`` header)."""
ABANDON_AFTER_SECONDS = 3
"""The abandoned cart's idle time: short, so the demo sees it end."""
_KEPT_SECONDS = 600
"""The other carts' idle time: they outlive the demo."""
_POLL_SECONDS = 1.0
"""Between two reads of a cart's answers."""


@dataclass
class CartStory:
    """One cart of the demo: what is sent, what must come back.

    Attributes:
        label: What it shows.
        cart_id: Its key (unique per run).
        sends: The records, in order.
        answer: The carts event it ends with.
        expected: That answer as shown (``CheckoutRejected:EMPTY``), and after a
            checkout how the saga ends the order (``CartCheckedOut → OrderCompleted``).
        observed: What came back, in the same form.
    """

    label: str
    cart_id: str
    sends: list[Event]
    answer: type[CartCheckedOut | CartAbandoned | CheckoutRejected]
    expected: str
    observed: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """Everything expected came back."""
        return " → ".join(self.observed) == self.expected


def _added(cart_id: str, sku: str, quantity: int, price: int, idle: int) -> ItemAdded:
    return ItemAdded(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), cart_id=cart_id,
                     customer_id="customer-7", sku=sku, quantity=quantity,
                     unit_price_cents=price, abandon_after_seconds=idle)


def stories(run_id: str) -> list[CartStory]:
    """The demo's carts, with ids unique to this run."""
    now = datetime.now(UTC)
    bought, left, emptied = (f"{run_id}-{name}" for name in ("bought", "left", "emptied"))
    return [
        CartStory("filled, checked out: the order saga takes it", bought, [
            _added(bought, "SKU-TEA", 2, 450, _KEPT_SECONDS),
            _added(bought, "SKU-MUG", 1, 899, _KEPT_SECONDS),
            CheckoutRequested(event_id=uuid.uuid4(), occurred_at=now, cart_id=bought),
        ], CartCheckedOut, "CartCheckedOut → OrderCompleted"),
        CartStory(f"left alone for {ABANDON_AFTER_SECONDS} s", left, [
            _added(left, "SKU-TEA", 1, 450, ABANDON_AFTER_SECONDS),
        ], CartAbandoned, "CartAbandoned"),
        CartStory("emptied, then checked out: rejected", emptied, [
            _added(emptied, "SKU-MUG", 1, 899, _KEPT_SECONDS),
            ItemRemoved(event_id=uuid.uuid4(), occurred_at=now, cart_id=emptied,
                        sku="SKU-MUG", quantity=1),
            CheckoutRequested(event_id=uuid.uuid4(), occurred_at=now, cart_id=emptied),
        ], CheckoutRejected, "CheckoutRejected:EMPTY"),
    ]


def said(answer: Event) -> str:
    """An answer as the table shows it: its type, and a rejection's reason."""
    name = type(answer).__name__
    return f"{name}:{answer.reason}" if isinstance(answer, CheckoutRejected) else name


def _short(event_type: str) -> str:
    return event_type.rsplit(".", 1)[-1]


@dataclass
class _Reading:
    """Where the demo reads answers: its Kafka, its codec, since when, until when."""

    kafka: KafkaClients
    codec: EventCodec
    since_ms: int
    deadline: float

    async def first(self, topics: Sequence[str], key: str,
                    matches: Callable[[StoredRecord], bool]) -> StoredRecord | None:
        """The first record with ``key`` on ``topics`` that ``matches``; None by the deadline."""
        while time.monotonic() < self.deadline:
            for record in await read_key(self.kafka, topics, key.encode(),
                                         since_ms=self.since_ms):
                if matches(record):
                    return record
            await asyncio.sleep(_POLL_SECONDS)
        return None


async def _follow(story: CartStory, reading: _Reading, console: Console) -> None:
    """Wait for the story's answers, printing each as it comes."""
    found = await reading.first((CARTS_REPLIES, CARTS_OUTCOMES), story.cart_id,
                                lambda r: r.event_type == story.answer.avro_name)
    if found is not None and found.value is not None:
        await reading.codec.prepare_decode(found.value)  # its schema, with a registry
        answer = reading.codec.decode(found.value, found.event_type or None)
        story.observed.append(said(answer))
        console.print(f"cart {story.cart_id}: {said(answer)}")
        if isinstance(answer, CartCheckedOut):
            order = answer.order_id
            ended = await reading.first((ORDERS_OUTCOMES,), order,
                                        lambda r: _short(r.event_type) in ORDER_ENDINGS)
            if ended is not None:
                story.observed.append(_short(ended.event_type))
                console.print(f"cart {story.cart_id}: its order {order} ({answer.units} units, "
                              f"{answer.amount_cents} cents): {story.observed[-1]} on "
                              f"{ORDERS_OUTCOMES}")
    if not story.done:  # the table says what is missing
        console.print(f"cart {story.cart_id}: [red]no further answer in time[/red]")


def _table(carts: list[CartStory]) -> Table:
    table = Table(title="carts demo: replies on carts.replies, endings on carts.outcomes, "
                        f"orders on {ORDERS_OUTCOMES}")
    for column in ("cart", "story", "expected", "observed"):
        table.add_column(column)
    for story in carts:
        style = "green" if story.done else "red"
        table.add_row(story.cart_id, story.label, story.expected,
                      f"[{style}]{' → '.join(story.observed) or 'nothing'}[/{style}]")
    return table


class CartsDemo:
    """The carts application's ``Demo``: a cart checked out, one abandoned, one rejected."""

    async def run(self, settings: Settings, *, wait_seconds: float, console: Console) -> bool:
        """Send the carts' changes and checkouts, show each answer and the order's end.

        Args:
            settings: Where Kafka is; the carts' bridge and worker (and the order
                saga's, for the hand-over) run against it.
            wait_seconds: How long to wait for every answer.
            console: Where to print.

        Returns:
            True when every cart ended as expected.
        """
        carts = stories(secrets.token_hex(3))
        # The carts application as these settings name it (``beside`` sets it when run with
        # another), not imported here: it lists this demo.
        codec = event_codec(settings, load_application(settings.app))
        kafka = kafka_clients(settings)
        reading = _Reading(kafka, codec, int(time.time() * 1000) - 1000,
                           time.monotonic() + wait_seconds)
        async with kafka.started_producer() as producer:
            for story in carts:
                for event in story.sends:
                    await send_event(producer, codec, event, CARTS_EVENTS)
        await asyncio.gather(*(_follow(story, reading, console) for story in carts))
        console.print(_table(carts))
        return all(story.done for story in carts)
