"""Markup in real data, on the real stack: the console shows it as text, never runs it.

Whoever may produce to an input topic chooses a record's key and headers, and
an order's customer and SKUs: text that an operator or an approver later reads
in the console. Here that text is markup (a script element, quotes that would
end an attribute, an image with an error handler). The bridge dead-letters one
such record, and the saga of one such order asks for approval; the operator's
dead-letter pages (the console's own templates) and the approver's inbox (the
reference application's) show the markup as text: escaped in the HTML, no
script but the console's own files, no event handler attribute.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from relayflow.config.settings import Settings
from relayflow.reference.events import ApprovalRequested
from relayflow.reference.settings import ReferenceSettings
from relayflow.reference.topics import ORDERS_EVENTS
from relayflow.testing.kafka import AppKafka
from tests.helpers.support import order_placed
from tests.integration.console.rig import Console, serving, shown_as_text, signed_in

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MARKUP = """<script>alert("xss")</script>"'><img src=x onerror=alert(1)>"""


@pytest.fixture(scope="module")
async def console(relayflow_system: Settings) -> AsyncIterator[Console]:
    async with serving(relayflow_system) as served:
        yield served


async def test_markup_in_a_dead_letters_key_and_headers_is_shown_as_text(
        console: Console, relayflow_kafka: AppKafka) -> None:
    key = f"o-{uuid.uuid4().hex[:8]}{MARKUP}"
    await relayflow_kafka.send_bytes(ORDERS_EVENTS, b"not avro", key=key,
                                     headers=[("x-note", MARKUP.encode())])
    dead = await relayflow_kafka.wait_for_dead_letter(ORDERS_EVENTS, key=key)
    async with signed_in(console, "olga") as (client, _):
        listed = await client.get("/dead-letters", params={"topic": ORDERS_EVENTS})
        assert listed.status_code == 200
        shown_as_text(listed, key)
        letter = await client.get(f"/dead-letters/{dead.topic}/{dead.partition}/{dead.offset}")
        assert letter.status_code == 200
        shown_as_text(letter, key)
        shown_as_text(letter, MARKUP)  # the x-note header's value
        # A filter value comes back in the form (and in a link an attacker could send).
        filtered = await client.get("/dead-letters", params={"topic": ORDERS_EVENTS,
                                                             "reason": MARKUP})
        assert filtered.status_code == 200
        shown_as_text(filtered, MARKUP)


async def test_markup_in_an_order_is_shown_as_text_to_its_approver(
        console: Console, relayflow_kafka: AppKafka) -> None:
    sku = f"SKU-{uuid.uuid4().hex[:8]}{MARKUP}"  # a SKU of its own: stock never runs out
    order = order_placed(sku=sku, quantity=1,
                         unit_price_cents=ReferenceSettings().approval_threshold_cents)
    order = order.model_copy(update={"customer_id": f"c-{MARKUP}"})
    await relayflow_kafka.send(order)
    await relayflow_kafka.wait_for(ApprovalRequested, key=order.order_id)
    async with signed_in(console, "ann") as (client, _):
        inbox = await client.get("/approvals")
        assert inbox.status_code == 200
        assert order.order_id in inbox.text
        shown_as_text(inbox, order.customer_id)
        shown_as_text(inbox, sku)
