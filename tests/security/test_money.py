"""Attacks on the reference app's money rules, through the real bridge and worker.

Before: any three capital letters were a currency, and one threshold judged
every amount whatever its currency (100 000 minor units: 1 000 EUR, or ¥100 000
that is a tenth of it). Here the worker runs with
``RELAYFLOW_APPROVAL_THRESHOLDS=JPY=15000000`` (EUR keeps
``RELAYFLOW_APPROVAL_THRESHOLD_CENTS``); an order in a made-up currency is
sent by a producer that does not validate (Avro has only a string for it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from relayflow.config.settings import Settings
from relayflow.reference.events import (
    ApprovalRequested,
    OrderCancelled,
    OrderCompleted,
    OrderFailed,
    OrderPlaced,
)
from relayflow.reference.settings import ReferenceSettings
from relayflow.reference.topics import ORDERS_EVENTS, ORDERS_OUTCOMES
from relayflow.runtime.bootstrap import connect_temporal
from relayflow.testing.kafka import AppKafka
from tests.helpers.support import order_placed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

JPY_THRESHOLD = 15_000_000


@pytest.fixture(scope="module")
def _jpy_threshold() -> Iterator[None]:
    """The worker of this module reads its thresholds from the environment when it starts."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RELAYFLOW_APPROVAL_THRESHOLDS", f"JPY={JPY_THRESHOLD}")
        yield


@pytest.fixture(scope="module")
def system(_jpy_threshold: None, relayflow_system: Settings) -> Settings:
    """Bridge and worker in this process, started with the JPY threshold."""
    return relayflow_system


def _order(currency: str, amount: int) -> OrderPlaced:
    return order_placed(sku=f"SKU-SEC-{uuid.uuid4().hex[:8]}", quantity=1,
                        unit_price_cents=amount, currency=currency)


def _outcome_types(kafka: AppKafka, order: OrderPlaced) -> list[str | None]:
    return [r.event_type for r in kafka.arrived
            if r.topic == ORDERS_OUTCOMES and r.key == order.order_id.encode()]


async def test_an_order_in_an_unknown_currency_is_dead_lettered_and_starts_nothing(
        system: Settings, relayflow_kafka: AppKafka) -> None:
    order = _order("EUR", 5_000).model_copy(update={"currency": "ABC"})  # not validated
    await relayflow_kafka.send(order)
    dead = await relayflow_kafka.wait_for_dead_letter(ORDERS_EVENTS, key=order.order_id,
                                                      timeout=60)
    assert dead.reason == "invalid-event"
    assert "currency" in dead.error
    assert "'ABC' is not an ISO 4217 currency code" in dead.error
    # Nothing changed: no saga for the order, and no outcome.
    client = await connect_temporal(system)
    with pytest.raises(RPCError) as missing:
        await client.get_workflow_handle(f"order-{order.order_id}").describe()
    assert missing.value.status is RPCStatusCode.NOT_FOUND
    # A valid order sent after it completes: the partition moved on.
    after = _order("EUR", 5_000)
    await relayflow_kafka.send(after)
    await relayflow_kafka.wait_for(OrderCompleted, key=after.order_id, timeout=60)
    assert _outcome_types(relayflow_kafka, order) == []


async def test_a_yen_amount_is_judged_by_the_yen_threshold(
        system: Settings, relayflow_kafka: AppKafka) -> None:
    eur_threshold = ReferenceSettings().approval_threshold_cents
    # Above the EUR threshold (the old rule asked for approval), far below the yen one,
    # and within the reference card limit.
    small_in_yen = _order("JPY", 4 * eur_threshold)
    big_in_yen = _order("JPY", JPY_THRESHOLD)
    # No threshold for USD: every order in it needs approval, however small.
    tiny_in_dollars = _order("USD", 100)
    for order in (small_in_yen, big_in_yen, tiny_in_dollars):
        await relayflow_kafka.send(order)

    await relayflow_kafka.wait_for(OrderCompleted, key=small_in_yen.order_id, timeout=60)
    assert ApprovalRequested.avro_name not in _outcome_types(relayflow_kafka, small_in_yen)
    for waiting in (big_in_yen, tiny_in_dollars):
        asked = await relayflow_kafka.wait_for(ApprovalRequested, key=waiting.order_id,
                                               timeout=60)
        assert asked.amount_cents == waiting.amount_cents
        assert asked.currency == waiting.currency
        await relayflow_kafka.send(OrderCancelled(
            event_id=uuid.uuid4(), occurred_at=waiting.occurred_at,
            order_id=waiting.order_id, reason="test done"))
        await relayflow_kafka.wait_for(OrderFailed, key=waiting.order_id, timeout=60)
    client = await connect_temporal(system)
    saga = client.get_workflow_handle(f"order-{small_in_yen.order_id}")
    assert (await saga.describe()).status is WorkflowExecutionStatus.COMPLETED
