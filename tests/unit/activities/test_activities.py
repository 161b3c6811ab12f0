"""The real activities, run in Temporal's ``ActivityEnvironment`` on a real (temporary) store.

Only the Kafka producer is a fake (``tests.helpers.fakes.FakeProducer``, our
``activities.outcomes.Producer``). Business refusals must reach Temporal as
non-retryable ``ApplicationError``s whose ``type`` the workflows' retry
policies name, and every step and compensation must be safe to run twice.
"""

from __future__ import annotations

import dataclasses
import random
import re
import sqlite3
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

from activities.claim_check import store_value, stored_value
from activities.outcomes import (
    OUTCOME_TOO_LARGE,
    OutcomePublisher,
    PublishOutcomeInput,
    PublishOutcomeResult,
)
from relayflow.kafka.reads import StoredRecord
from relayflow.operate.records import shown
from relayflow.reference.activities import store as store_module
from relayflow.reference.activities.approval_policy import (
    ApprovalPolicy,
    ApprovalPolicyProvider,
    ApprovalPolicyRequest,
    ApprovalRules,
)
from relayflow.reference.activities.batches import (
    BatchActivities,
    ItemFailure,
    ItemsProgress,
    ProcessItemInput,
    ProcessItemResult,
    ProcessItemsInput,
    RecordFailuresInput,
)
from relayflow.reference.activities.orders import (
    BUSINESS_ERRORS,
    ChargePaymentInput,
    CompensationInput,
    CompensationResult,
    CreateShipmentInput,
    OrderActivities,
    ReserveInventoryInput,
    StepResult,
)
from relayflow.reference.activities.store import DEFAULT_STOCK, VOID, Store
from relayflow.reference.events import OrderCompleted, OrderFailed, OrderLine
from relayflow.reference.topics import ORDERS_OUTCOMES
from relayflow.temporal.claim_check import FileBlobStore
from schemas.codec import SINGLE_OBJECT_MARKER
from schemas.framing import to_record
from schemas.headers import AVRO_CONTENT_TYPE, ClaimCheckReference
from tests.helpers.fakes import FakeProducer
from tests.helpers.support import CODEC, NOW

CARD_LIMIT = 10_000
WF = "order-A-1"
RESERVE, CHARGE, SHIP = f"{WF}/reserve_inventory", f"{WF}/charge_payment", f"{WF}/create_shipment"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store.db", card_limit_cents=CARD_LIMIT)


@pytest.fixture
def orders(store: Store) -> OrderActivities:
    return OrderActivities(store)


@pytest.fixture
def env() -> ActivityEnvironment:
    return ActivityEnvironment()


def refusal(env: ActivityEnvironment, activity: Callable[[Any], Any], request: Any,
            ) -> ApplicationError:
    """The ``ApplicationError`` the activity raised for ``request``."""
    with pytest.raises(ApplicationError) as raised:
        env.run(activity, request)
    return raised.value


def reserve(*lines: tuple[str, int], key: str = RESERVE) -> ReserveInventoryInput:
    return ReserveInventoryInput(idempotency_key=key, order_id="A-1", items=tuple(
        OrderLine(sku=sku, quantity=quantity, unit_price_cents=100) for sku, quantity in lines))


def charge(amount_cents: int, key: str = CHARGE) -> ChargePaymentInput:
    return ChargePaymentInput(idempotency_key=key, order_id="A-1", amount_cents=amount_cents,
                              currency="EUR")


def ship(country: str, key: str = SHIP) -> CreateShipmentInput:
    return CreateShipmentInput(idempotency_key=key, order_id="A-1", country=country)


def undo(key: str) -> CompensationInput:
    return CompensationInput(idempotency_key=key, order_id="A-1")


# ---------------------------------------------------------------- reserve_inventory


def test_reserve_inventory_takes_every_line_and_returns_the_key(
        env: ActivityEnvironment, orders: OrderActivities, store: Store) -> None:
    result = env.run(orders.reserve_inventory, reserve(("SKU-TEA", 2), ("SKU-MUG", 1)))
    assert result == StepResult(id=RESERVE)
    assert (store.available("SKU-TEA"), store.available("SKU-MUG")) == (
        DEFAULT_STOCK - 2, DEFAULT_STOCK - 1)
    [row] = store.rows("reservations")
    assert (row["key"], row["order_id"], row["status"], row["lines"]) == (
        RESERVE, "A-1", "reserved", "SKU-TEA:2;SKU-MUG:1")


def test_out_of_stock_is_a_non_retryable_refusal_and_reserves_nothing(
        env: ActivityEnvironment, orders: OrderActivities, store: Store) -> None:
    error = refusal(env, orders.reserve_inventory, reserve(("SKU-TEA", 2), ("OOS-KETTLE", 1)))
    assert (error.type, error.non_retryable) == ("OutOfStock", True)
    assert error.message == "OOS-KETTLE: 1 wanted, 0 available"
    assert isinstance(error.__cause__, store_module.OutOfStock)
    assert store.available("SKU-TEA") is None  # the line before it was rolled back too
    assert store.rows("reservations") == []


def test_out_of_stock_once_earlier_orders_took_every_unit(
        env: ActivityEnvironment, orders: OrderActivities, store: Store) -> None:
    env.run(orders.reserve_inventory, reserve(("SKU-TEA", DEFAULT_STOCK), key="order-A/r"))
    error = refusal(env, orders.reserve_inventory, reserve(("SKU-TEA", 1), key="order-B/r"))
    assert (error.type, error.non_retryable) == ("OutOfStock", True)
    assert error.message == "SKU-TEA: 1 wanted, 0 available"
    assert store.available("SKU-TEA") == 0
    assert [row["key"] for row in store.rows("reservations")] == ["order-A/r"]


def test_reserve_twice_with_one_key_has_one_effect(
        env: ActivityEnvironment, orders: OrderActivities, store: Store) -> None:
    first = env.run(orders.reserve_inventory, reserve(("SKU-TEA", 3)))
    again = env.run(orders.reserve_inventory, reserve(("SKU-TEA", 3)))
    assert first == again == StepResult(id=RESERVE)
    assert len(store.rows("reservations")) == 1
    assert store.available("SKU-TEA") == DEFAULT_STOCK - 3


# ---------------------------------------------------------------- charge_payment


def test_charge_up_to_the_card_limit_is_captured(
        env: ActivityEnvironment, orders: OrderActivities, store: Store) -> None:
    assert env.run(orders.charge_payment, charge(CARD_LIMIT)) == StepResult(id=CHARGE)
    [row] = store.rows("payments")
    assert (row["key"], row["order_id"], row["status"], row["amount_cents"], row["currency"]) == (
        CHARGE, "A-1", "charged", CARD_LIMIT, "EUR")


def test_charge_above_the_card_limit_is_declined_for_good(
        env: ActivityEnvironment, orders: OrderActivities, store: Store) -> None:
    error = refusal(env, orders.charge_payment, charge(CARD_LIMIT + 1))
    assert (error.type, error.non_retryable) == ("PaymentDeclined", True)
    assert error.message == "10001 EUR is above the card limit 10000"
    assert store.rows("payments") == []
    # A retry with the same key is declined again: the refusal left nothing behind.
    assert refusal(env, orders.charge_payment, charge(CARD_LIMIT + 1)).type == "PaymentDeclined"


def test_charge_twice_with_one_key_charges_once(
        env: ActivityEnvironment, orders: OrderActivities, store: Store) -> None:
    first = env.run(orders.charge_payment, charge(2500))
    again = env.run(orders.charge_payment, charge(2500))
    assert first == again == StepResult(id=CHARGE)
    assert [(row["key"], row["amount_cents"]) for row in store.rows("payments")] == [
        (CHARGE, 2500)]


# ---------------------------------------------------------------- create_shipment


def test_create_shipment_records_the_destination(
        env: ActivityEnvironment, orders: OrderActivities, store: Store) -> None:
    assert env.run(orders.create_shipment, ship("DE")) == StepResult(id=SHIP)
    [row] = store.rows("shipments")
    assert (row["key"], row["order_id"], row["status"], row["country"]) == (
        SHIP, "A-1", "created", "DE")


@pytest.mark.parametrize("country", ["XX", "AQ"])
def test_a_country_without_carrier_rejects_the_shipment_for_good(
        env: ActivityEnvironment, orders: OrderActivities, store: Store, country: str) -> None:
    error = refusal(env, orders.create_shipment, ship(country))
    assert (error.type, error.non_retryable) == ("ShipmentRejected", True)
    assert error.message == f"no carrier ships to {country}"
    assert store.rows("shipments") == []


def test_create_shipment_twice_with_one_key_ships_once(
        env: ActivityEnvironment, orders: OrderActivities, store: Store) -> None:
    first = env.run(orders.create_shipment, ship("DE"))
    again = env.run(orders.create_shipment, ship("DE"))
    assert first == again == StepResult(id=SHIP)
    assert len(store.rows("shipments")) == 1


@pytest.mark.parametrize(("step", "request_"), [
    ("reserve_inventory", reserve(("OOS-KETTLE", 1))),
    ("charge_payment", charge(CARD_LIMIT + 1)),
    ("create_shipment", ship("XX")),
])
def test_every_refusal_is_a_type_the_saga_does_not_retry(
        env: ActivityEnvironment, orders: OrderActivities, step: str, request_: Any) -> None:
    error = refusal(env, getattr(orders, step), request_)
    assert error.type in BUSINESS_ERRORS
    assert error.non_retryable


# ---------------------------------------------------------------- compensations


def test_each_compensation_undoes_its_step_once(
        env: ActivityEnvironment, orders: OrderActivities, store: Store) -> None:
    env.run(orders.reserve_inventory, reserve(("SKU-TEA", 2)))
    env.run(orders.charge_payment, charge(2500))
    env.run(orders.create_shipment, ship("DE"))

    done = [env.run(orders.cancel_shipment, undo(SHIP)),
            env.run(orders.refund_payment, undo(CHARGE)),
            env.run(orders.release_inventory, undo(RESERVE))]
    assert done == [CompensationResult(undone=True, state="cancelled"),
                    CompensationResult(undone=True, state="refunded"),
                    CompensationResult(undone=True, state="released")]
    assert store.available("SKU-TEA") == DEFAULT_STOCK
    assert [row["status"] for table in ("reservations", "payments", "shipments")
            for row in store.rows(table)] == ["released", "refunded", "cancelled"]

    again = [env.run(orders.cancel_shipment, undo(SHIP)),
             env.run(orders.refund_payment, undo(CHARGE)),
             env.run(orders.release_inventory, undo(RESERVE))]
    assert again == [CompensationResult(undone=False, state="cancelled"),
                     CompensationResult(undone=False, state="refunded"),
                     CompensationResult(undone=False, state="released")]
    assert store.available("SKU-TEA") == DEFAULT_STOCK  # not given back twice


@pytest.mark.parametrize(("compensation", "key"), [
    ("release_inventory", RESERVE), ("refund_payment", CHARGE), ("cancel_shipment", SHIP)])
def test_a_compensation_for_a_step_that_never_ran_is_a_no_op(
        env: ActivityEnvironment, orders: OrderActivities, store: Store, compensation: str,
        key: str) -> None:
    result = env.run(getattr(orders, compensation), undo(key))
    assert result == CompensationResult(undone=False, state="absent")
    # The key is voided, nothing else: a late step must not take effect after it.
    rows = [row for t in ("reservations", "payments", "shipments") for row in store.rows(t)]
    assert [(row["key"], row["status"]) for row in rows] == [(key, VOID)]
    assert env.run(getattr(orders, compensation), undo(key)) == result  # and again: the same


@pytest.mark.parametrize(("step", "request_", "compensation", "key", "table"), [
    ("reserve_inventory", reserve(("SKU-TEA", 3)), "release_inventory", RESERVE, "reservations"),
    ("charge_payment", charge(100), "refund_payment", CHARGE, "payments"),
    ("create_shipment", ship("DE"), "cancel_shipment", SHIP, "shipments"),
], ids=["reserve", "charge", "ship"])
def test_a_step_arriving_after_its_compensation_has_no_effect(
        env: ActivityEnvironment, orders: OrderActivities, store: Store, step: str,
        request_: Any, compensation: str, key: str, table: str) -> None:
    # The saga was cancelled (or gave up on a timed-out attempt) while the step still ran:
    # its compensation found nothing, then the step's own write came late.
    env.run(getattr(orders, compensation), undo(key))
    env.run(getattr(orders, step), request_)
    assert [(row["key"], row["status"]) for row in store.rows(table)] == [(key, VOID)]
    assert store.available("SKU-TEA") in {None, DEFAULT_STOCK}  # no unit taken


def test_compensating_a_refused_step_finds_nothing_to_undo(
        env: ActivityEnvironment, orders: OrderActivities, store: Store) -> None:
    env.run(orders.reserve_inventory, reserve(("SKU-TEA", 5), key="order-B/r"))  # someone else's
    refusal(env, orders.reserve_inventory, reserve(("SKU-TEA", 1), ("OOS-KETTLE", 1)))
    refusal(env, orders.charge_payment, charge(CARD_LIMIT + 1))
    refusal(env, orders.create_shipment, ship("XX"))
    absent = CompensationResult(undone=False, state="absent")
    assert env.run(orders.release_inventory, undo(RESERVE)) == absent
    assert env.run(orders.refund_payment, undo(CHARGE)) == absent
    assert env.run(orders.cancel_shipment, undo(SHIP)) == absent
    assert store.available("SKU-TEA") == DEFAULT_STOCK - 5  # the other order's units stay out


def test_a_compensation_only_touches_its_own_key(
        env: ActivityEnvironment, orders: OrderActivities, store: Store) -> None:
    env.run(orders.charge_payment, charge(100, key="order-A/charge_payment"))
    env.run(orders.charge_payment, charge(200, key="order-B/charge_payment"))
    env.run(orders.refund_payment, undo("order-A/charge_payment"))
    assert {row["key"]: row["status"] for row in store.rows("payments")} == {
        "order-A/charge_payment": "refunded", "order-B/charge_payment": "charged"}


# ---------------------------------------------------------------- publish_outcome


def completed(**changes: Any) -> OrderCompleted:
    fields: dict[str, Any] = {
        "event_id": uuid.UUID("5f0c6a43-7a8e-4d3c-9d0e-2f6f4f1f0a01"), "occurred_at": NOW,
        "correlation_id": "corr-1", "causation_id": "cause-1", "order_id": "A-1",
        "amount_cents": 2500, "currency": "EUR", "reservation_id": RESERVE,
        "payment_id": CHARGE, "shipment_id": SHIP}
    return OrderCompleted(**{**fields, **changes})


def publish(event: dict[str, Any], *, event_type: str = OrderCompleted.avro_name,
            traceparent: str = TRACEPARENT) -> PublishOutcomeInput:
    # As the workflow sends it: the event dumped to JSON-compatible data.
    return PublishOutcomeInput(topic=ORDERS_OUTCOMES, event_type=event_type, event=event,
                               traceparent=traceparent)


async def test_an_outcome_becomes_one_contract_record(env: ActivityEnvironment) -> None:
    producer = FakeProducer()
    event = completed()
    result = await env.run(OutcomePublisher(producer, CODEC).publish_outcome,
                           publish(event.model_dump(mode="json")))
    assert result == PublishOutcomeResult(topic=ORDERS_OUTCOMES, partition=0, offset=0,
                                          event_id="5f0c6a43-7a8e-4d3c-9d0e-2f6f4f1f0a01")
    [sent] = producer.sent
    assert (sent["topic"], sent["key"], sent["partition"]) == (ORDERS_OUTCOMES, b"A-1", None)
    assert sent["value"][:2] == SINGLE_OBJECT_MARKER
    assert CODEC.decode(sent["value"]) == event
    assert sent["headers"] == [
        ("event-type", b"relayflow.orders.OrderCompleted"),
        ("event-id", b"5f0c6a43-7a8e-4d3c-9d0e-2f6f4f1f0a01"),
        ("correlation-id", b"corr-1"),
        ("causation-id", b"cause-1"),
        ("traceparent", TRACEPARENT.encode()),
        ("content-type", AVRO_CONTENT_TYPE.encode()),
    ]


async def test_an_outcome_without_trace_context_starts_one(env: ActivityEnvironment) -> None:
    producer = FakeProducer()
    await env.run(OutcomePublisher(producer, CODEC).publish_outcome,
                  publish(completed().model_dump(mode="json"), traceparent=""))
    traceparent = dict(producer.sent[0]["headers"])["traceparent"]
    assert re.fullmatch(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-01", traceparent)


async def test_an_unknown_event_type_is_an_invalid_outcome_and_nothing_is_sent(
        env: ActivityEnvironment) -> None:
    producer = FakeProducer()
    with pytest.raises(ApplicationError) as raised:
        await env.run(OutcomePublisher(producer, CODEC).publish_outcome,
                      publish(completed().model_dump(mode="json"),
                              event_type="relayflow.orders.OrderShipped"))
    assert (raised.value.type, raised.value.non_retryable) == ("InvalidOutcome", True)
    assert raised.value.message == "unknown event type relayflow.orders.OrderShipped"
    assert producer.sent == []


@pytest.mark.parametrize("broken", [
    {"amount_cents": -1},  # below the model's bound
    {"order_id": ""},  # an empty key
    {"occurred_at": "2026-11-25T12:00:00"},  # no time zone
    {"surprise": 1},  # a field the contract does not have
    {"shipment_id": None},  # a required field missing its value
], ids=["negative-amount", "empty-key", "naive-time", "extra-field", "null-field"])
async def test_an_event_failing_validation_is_an_invalid_outcome_and_nothing_is_sent(
        env: ActivityEnvironment, broken: dict[str, Any]) -> None:
    producer = FakeProducer()
    event = {**completed().model_dump(mode="json"), **broken}
    with pytest.raises(ApplicationError) as raised:
        await env.run(OutcomePublisher(producer, CODEC).publish_outcome, publish(event))
    assert (raised.value.type, raised.value.non_retryable) == ("InvalidOutcome", True)
    assert raised.value.message.startswith("relayflow.orders.OrderCompleted: ")
    assert producer.sent == []


async def test_a_missing_field_is_an_invalid_outcome(env: ActivityEnvironment) -> None:
    producer = FakeProducer()
    event = completed().model_dump(mode="json")
    del event["correlation_id"]
    with pytest.raises(ApplicationError) as raised:
        await env.run(OutcomePublisher(producer, CODEC).publish_outcome, publish(event))
    assert (raised.value.type, raised.value.non_retryable) == ("InvalidOutcome", True)
    assert "correlation_id" in raised.value.message
    assert producer.sent == []


async def test_a_producer_failure_propagates_for_temporal_to_retry(
        env: ActivityEnvironment) -> None:
    producer = FakeProducer(failures=1)
    publisher = OutcomePublisher(producer, CODEC)
    request = publish(completed().model_dump(mode="json"))
    with pytest.raises(KafkaTimeoutError) as raised:
        await env.run(publisher.publish_outcome, request)
    # Not an ApplicationError, so not marked non-retryable: the retry policy applies.
    assert not isinstance(raised.value, ApplicationError)
    assert producer.sent == []
    # The retry sends the same event: same event id, so subscribers can drop a duplicate.
    result = await env.run(publisher.publish_outcome, request)
    assert result.event_id == "5f0c6a43-7a8e-4d3c-9d0e-2f6f4f1f0a01"
    assert [dict(sent["headers"])["event-id"] for sent in producer.sent] == [
        b"5f0c6a43-7a8e-4d3c-9d0e-2f6f4f1f0a01"]


# ---------------------------------------------------------------- outcomes by claim check


def large_failure(size: int = 10_000) -> OrderFailed:
    return OrderFailed(event_id=uuid.UUID("5f0c6a43-7a8e-4d3c-9d0e-2f6f4f1f0a02"),
                       occurred_at=NOW, correlation_id="corr-1", causation_id="cause-1",
                       order_id="A-1", reason="payment_declined", error="x" * size)


def failure_request(event: OrderFailed) -> PublishOutcomeInput:
    return publish(event.model_dump(mode="json"), event_type=OrderFailed.avro_name)


async def test_an_outcome_too_large_for_its_topic_goes_by_claim_check(
        env: ActivityEnvironment, tmp_path: Path) -> None:
    producer = FakeProducer(max_bytes=2048)  # the topic's max.message.bytes
    blobs = FileBlobStore(tmp_path)
    event = large_failure()
    await env.run(OutcomePublisher(producer, CODEC, blobs=blobs).publish_outcome,
                  failure_request(event))
    assert producer.refused == 1  # tried whole first
    [sent] = producer.sent
    assert (sent["key"], sent["value"]) == (b"A-1", b"")  # empty, never a tombstone (None)
    headers = dict(sent["headers"])
    assert headers["event-id"] == b"5f0c6a43-7a8e-4d3c-9d0e-2f6f4f1f0a02"
    assert headers["content-type"] == AVRO_CONTENT_TYPE.encode()
    reference = ClaimCheckReference.from_kafka(sent["headers"])
    assert reference is not None
    assert reference.key == f"outcomes/{reference.sha256}"
    assert reference.content_type == AVRO_CONTENT_TYPE
    assert CODEC.decode(stored_value(blobs, reference)) == event
    assert reference.size > 10_000


async def test_an_outcome_too_large_without_a_store_fails_loudly_and_is_retried(
        env: ActivityEnvironment) -> None:
    producer = FakeProducer(max_bytes=2048)
    with pytest.raises(ApplicationError) as raised:
        await env.run(OutcomePublisher(producer, CODEC).publish_outcome,
                      failure_request(large_failure()))
    # Retried, not dropped: a store configured, or the topic's limit raised, lets it through.
    assert (raised.value.type, raised.value.non_retryable) == (OUTCOME_TOO_LARGE, False)
    assert "refused by orders.outcomes" in raised.value.message
    assert "RELAYFLOW_CLAIM_CHECK_DIR" in raised.value.message
    assert producer.sent == []


async def test_an_outcome_over_the_threshold_goes_by_claim_check_once(
        env: ActivityEnvironment, tmp_path: Path) -> None:
    producer = FakeProducer()
    blobs = FileBlobStore(tmp_path)
    publisher = OutcomePublisher(producer, CODEC, blobs=blobs, claim_check_bytes=5000)
    small = large_failure(size=10)
    await env.run(publisher.publish_outcome, failure_request(small))
    request = failure_request(large_failure())
    await env.run(publisher.publish_outcome, request)
    await env.run(publisher.publish_outcome, request)  # a retried publication
    assert producer.refused == 0  # not tried whole
    small_sent, *large_sent = producer.sent
    assert CODEC.decode(small_sent["value"]) == small
    assert [sent["value"] for sent in large_sent] == [b"", b""]
    # Content-addressed: the same event stored once.
    assert len([name for name, _ in blobs.list("outcomes")]) == 1


async def test_a_record_by_claim_check_is_shown_with_its_stored_event(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    event = large_failure()
    record = to_record(event, CODEC)
    reference = store_value(blobs, record.value, AVRO_CONTENT_TYPE)
    stored = StoredRecord(ORDERS_OUTCOMES, 0, 3, record.key, b"",
                          (*record.headers, *reference.to_kafka()))
    found = await shown(stored, CODEC, blobs)
    assert (found.event, found.claim_check) == (event, reference)
    assert found.as_json()["claim_check"]["key"] == reference.key
    elsewhere = await shown(stored, CODEC, FileBlobStore(tmp_path / "other"))
    assert elsewhere.event is None
    assert "not in the store" in elsewhere.problem
    unconfigured = await shown(stored, CODEC)
    assert "no store configured" in unconfigured.problem
    blobs.put(reference.key.replace(reference.sha256, "0" * 64), b"x")
    forged = dataclasses.replace(stored, headers=(
        *record.headers, *dataclasses.replace(reference, sha256="0" * 64,
                                              key=f"outcomes/{'0' * 64}").to_kafka()))
    assert "does not match" in (await shown(forged, CODEC, blobs)).problem


# ---------------------------------------------------------------- batches


def item(item_id: str, batch_id: str = "b1") -> ProcessItemInput:
    return ProcessItemInput(idempotency_key=f"batch-{batch_id}/{item_id}", batch_id=batch_id,
                            item_id=item_id)


def test_process_item_records_an_item_once(env: ActivityEnvironment, store: Store) -> None:
    batches = BatchActivities(store)
    assert env.run(batches.process_item, item("i-1")) == ProcessItemResult(first_time=True)
    assert env.run(batches.process_item, item("i-1")) == ProcessItemResult(first_time=False)
    assert env.run(batches.process_item, item("i-2")) == ProcessItemResult(first_time=True)
    assert env.run(batches.process_item, item("i-1", "b2")) == ProcessItemResult(first_time=True)
    assert (store.processed_items("b1"), store.processed_items("b2")) == (2, 1)


def test_an_invalid_item_fails_for_good_and_is_not_recorded(
        env: ActivityEnvironment, store: Store) -> None:
    batches = BatchActivities(store)
    with pytest.raises(ApplicationError) as raised:
        env.run(batches.process_item, item("bad-7"))
    assert (raised.value.type, raised.value.non_retryable) == ("InvalidItem", True)
    assert raised.value.message == "bad-7 is invalid"
    assert store.processed_items("b1") == 0


def test_only_the_prefix_makes_an_item_invalid(env: ActivityEnvironment, store: Store) -> None:
    batches = BatchActivities(store)
    assert env.run(batches.process_item, item("i-bad-7")) == ProcessItemResult(first_time=True)
    assert store.processed_items("b1") == 1


def test_record_failures_keeps_each_failed_item_once(
        env: ActivityEnvironment, store: Store) -> None:
    batches = BatchActivities(store)

    def failures(chunk: int, *items: tuple[str, str]) -> RecordFailuresInput:
        return RecordFailuresInput(batch_id="b1", chunk=chunk, failures=[
            ItemFailure(item_id=item_id, reason=reason) for item_id, reason in items])

    assert env.run(batches.record_failures,
                   failures(1, ("bad-3", "bad-3 is invalid"), ("i-4", "timeout"))) == 2
    assert env.run(batches.record_failures, failures(1, ("bad-3", "bad-3 is invalid"))) == 0
    assert env.run(batches.record_failures, failures(0, ("bad-1", "bad-1 is invalid"))) == 1
    assert env.run(batches.record_failures, failures(2)) == 0
    assert store.failed_items("b1") == [("bad-1", "bad-1 is invalid"),
                                        ("bad-3", "bad-3 is invalid"), ("i-4", "timeout")]


class WorkerDied(Exception):
    """Stands in for the SIGKILL of the fault test (``tests/faults/test_heartbeats.py``)."""


def test_process_items_resumes_after_the_last_heartbeat_and_does_each_item_once(
        env: ActivityEnvironment, store: Store) -> None:
    batches = BatchActivities(store)
    items = ["i-0", "bad-1", *(f"i-{n}" for n in range(2, 10))]
    request = ProcessItemsInput(batch_workflow_id="batch-b1", batch_id="b1", item_ids=items)
    beats: list[ItemsProgress] = []

    def beat(progress: ItemsProgress) -> None:
        beats.append(progress.model_copy(deep=True))
        if progress.next_index == 7:
            raise WorkerDied  # after its 7th item, before the 8th

    env.on_heartbeat = beat
    with pytest.raises(WorkerDied):
        env.run(batches.process_items, request)
    assert [b.next_index for b in beats] == list(range(1, 8))  # a heartbeat per item
    assert beats[-1].failures == [ItemFailure(item_id="bad-1", reason="bad-1 is invalid")]

    # The SDK throttles heartbeats: the last one Temporal kept lags the work (4 of 7 items).
    kept = beats[3].model_dump(mode="json")  # as the retry's info carries it: plain JSON
    env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=[kept])
    env.on_heartbeat = lambda *_: None
    result = env.run(batches.process_items, request)
    assert (result.attempt, result.resumed_at, result.repeated) == (2, 4, 3)
    assert (result.succeeded, result.failures) == (9, beats[-1].failures)
    # Each valid item's effect once: items 4-6 were done twice, written once (their keys).
    assert store.processed_items("b1") == 9


def _cancel_at_random_moments(store: Store, run: Callable[[int], Callable[[], Any]],
                              writing: Callable[[int], bool]) -> None:
    """Cancel 40 threaded activities while they write, then check the store is not locked.

    The SDK stops a paused or cancelled threaded activity by raising into its thread
    between any two bytecodes. Raised inside the store's transaction, the thread's
    connection kept SQLite's write lock and the next attempt waited out the busy timeout.
    ``run(trial)`` is the activity call of a trial, ``writing(trial)`` says it has written.
    """
    probe = sqlite3.connect(store.path, timeout=0.0, isolation_level=None)
    with ThreadPoolExecutor(1) as pool:  # one thread, kept: as a worker's activity executor
        for trial in range(40):
            env = ActivityEnvironment()
            running = pool.submit(env.run, run(trial))
            while not writing(trial):
                time.sleep(0.001)
            time.sleep(random.uniform(0, 0.01))
            env.cancel()
            with pytest.raises(CancelledError):
                running.result(timeout=30)
            probe.execute("BEGIN IMMEDIATE")  # raises "database is locked" if it was kept
            probe.execute("ROLLBACK")
    probe.close()


def test_a_cancel_raised_into_process_items_thread_never_leaves_the_store_locked(
        store: Store) -> None:
    batches = BatchActivities(store)  # a chunk spends its time writing items
    _cancel_at_random_moments(
        store,
        lambda trial: lambda: batches.process_items(ProcessItemsInput(
            batch_workflow_id=f"batch-c{trial}", batch_id=f"c{trial}",
            item_ids=[f"i-{n}" for n in range(100_000)])),
        lambda trial: store.processed_items(f"c{trial}") >= 5)


def test_a_cancel_raised_into_any_threaded_store_write_never_leaves_the_store_locked(
        store: Store) -> None:
    # Not only the batches' items: every transaction of the store (here reservations, as
    # the order saga's steps make them) is shielded, whatever activity runs it.
    written: dict[int, int] = {}

    def reserving(trial: int) -> Callable[[], Any]:
        def reserve_until_cancelled() -> None:
            for n in range(1_000_000):
                store.reserve(f"r{trial}-{n}", f"o{trial}-{n}", [("sku-1", 1)])
                written[trial] = n + 1
                activity.heartbeat()  # where a real activity learns of its cancel
        return reserve_until_cancelled

    _cancel_at_random_moments(store, reserving, lambda trial: written.get(trial, 0) >= 5)


# ---------------------------------------------------------------- approvals


RULES = ApprovalRules(thresholds_cents={"EUR": 100_000, "JPY": 15_000_000},
                      timeout_seconds=3600, escalation_timeout_seconds=7200,
                      approver="approvers", escalation_approver="managers")


@pytest.mark.parametrize(("currency", "threshold"), [
    ("EUR", 100_000), ("JPY", 15_000_000),
    # No threshold for USD: every USD order needs approval (the stricter choice).
    ("USD", 0),
    # Asked by a workflow of release 0.1.0, which names no currency: the strictest too.
    (None, 0),
])
async def test_approval_policy_answers_the_threshold_of_the_orders_currency(
        env: ActivityEnvironment, currency: str | None, threshold: int) -> None:
    request = None if currency is None else ApprovalPolicyRequest(currency=currency)
    served = await env.run(ApprovalPolicyProvider(RULES).approval_policy, request)
    assert served == ApprovalPolicy(threshold_cents=threshold, timeout_seconds=3600,
                                    escalation_timeout_seconds=7200, approver="approvers",
                                    escalation_approver="managers", currency=currency)


def test_an_amount_is_judged_in_its_own_currency_never_converted() -> None:
    big_in_yen = 1_000_000  # far above EUR's threshold, far below JPY's
    assert big_in_yen < RULES.policy_for("JPY").threshold_cents
    assert big_in_yen >= RULES.policy_for("EUR").threshold_cents
    assert RULES.policy_for("CHF").threshold_cents == 0

