"""``relayflow verify``'s rules catch each violation they name (the fault tests rely on them).

The rules run on synthetic topic contents, workflow runs and a real store
file, so each broken invariant can be staged on purpose.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus

from examples.tickets.app import APP as TICKETS
from examples.tickets.events import TicketAnswered, TicketExpired, TicketOpened, TicketResolved
from examples.tickets.topics import TICKETS_EVENTS, TICKETS_OUTCOMES
from relayflow.config.settings import Settings
from relayflow.kafka.reads import StoredRecord
from relayflow.operate.verify import VerifyChecks, VerifyReport, evaluate
from relayflow.reference.activities.store import Store
from relayflow.reference.app import APP
from relayflow.reference.checks import ReferenceChecks
from relayflow.reference.events import (
    BatchCompleted,
    BatchProgress,
    BatchRequested,
    OrderCompleted,
    OrderFailed,
)
from relayflow.reference.topics import BATCHES_OUTCOMES, ORDERS_EVENTS, ORDERS_OUTCOMES
from schemas import Event
from schemas.framing import to_record
from schemas.headers import DLQ_REASON, DLQ_SOURCE_OFFSET, DLQ_SOURCE_PARTITION, DLQ_SOURCE_TOPIC
from schemas.topics import dlq_topic
from tests.helpers.support import order_placed

CODEC = APP.codec()
TICKETS_CODEC = TICKETS.codec()
DONE = WorkflowExecutionStatus.COMPLETED
RUNNING = WorkflowExecutionStatus.RUNNING
CONTINUED = WorkflowExecutionStatus.CONTINUED_AS_NEW


def stored(event: Event | None, topic: str, offset: int, *, key: bytes = b"k",
           headers: tuple[tuple[str, bytes], ...] = ()) -> StoredRecord:
    codec = TICKETS_CODEC if topic.startswith("tickets.") else CODEC
    value = b"junk" if event is None else to_record(event, codec).value
    return StoredRecord(topic, 0, offset, key, value, headers)


def completed(order_id: str, event_id: uuid.UUID | None = None) -> OrderCompleted:
    return OrderCompleted(event_id=event_id or uuid.uuid4(), occurred_at=datetime.now(UTC),
                          correlation_id="c", causation_id="c", order_id=order_id,
                          amount_cents=100, currency="EUR", reservation_id="r",
                          payment_id="p", shipment_id="s")


def failed(order_id: str) -> OrderFailed:
    return OrderFailed(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), correlation_id="c",
                       causation_id="c", order_id=order_id, reason="shipment_failed")


def check(inputs: list[StoredRecord], outcomes: list[StoredRecord],
          runs: dict[str, list[WorkflowExecutionStatus]], store: Store,
          dead: tuple[StoredRecord, ...] = ()) -> VerifyReport:
    return evaluate(APP, [*inputs, *outcomes, *dead], runs, Settings(),
                    checks=ReferenceChecks(store))


def rules(report: VerifyReport) -> list[str]:
    return sorted(v.rule for v in report.violations)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store.db", card_limit_cents=10**9)


def test_a_clean_run_has_no_violations(store: Store) -> None:
    order = order_placed("A")
    store.charge("order-A/charge", "A", 100, "EUR")
    store.create_shipment("order-A/ship", "A", "DE")
    report = check([stored(order, ORDERS_EVENTS, 0)],
                   [stored(completed("A"), ORDERS_OUTCOMES, 0)], {"order-A": [DONE]}, store)
    assert report.ok, report.summary()
    assert (report.workflows, report.settled) == ({"OrderSaga": 1}, {"OrderCompleted": 1})


def test_an_undecodable_record_not_on_the_dlq_is_lost(store: Store) -> None:
    report = check([stored(None, ORDERS_EVENTS, 7)], [], {}, store)
    assert rules(report) == ["lost"]


def test_an_undecodable_record_on_the_dlq_is_accounted_for(store: Store) -> None:
    dlq = stored(None, dlq_topic(ORDERS_EVENTS), 0, headers=(
        (DLQ_REASON, b"truncated"), (DLQ_SOURCE_TOPIC, ORDERS_EVENTS.encode()),
        (DLQ_SOURCE_PARTITION, b"0"), (DLQ_SOURCE_OFFSET, b"7")))
    report = check([stored(None, ORDERS_EVENTS, 7)], [], {}, store, dead=(dlq,))
    assert report.ok
    assert report.dead_lettered == 1


def test_missing_and_doubled_outcomes_and_two_runs(store: Store) -> None:
    store.charge("order-C/charge", "C", 100, "EUR")  # C itself is settled
    store.create_shipment("order-C/ship", "C", "DE")
    inputs = [stored(order_placed(o), ORDERS_EVENTS, n) for n, o in enumerate("ABC")]
    outcomes = [stored(completed("B"), ORDERS_OUTCOMES, 0),
                stored(failed("B"), ORDERS_OUTCOMES, 1),
                stored(completed("C"), ORDERS_OUTCOMES, 2)]
    runs = {"order-A": [DONE], "order-B": [DONE], "order-C": [DONE, DONE]}
    report = check(inputs, outcomes, runs, store)
    assert sorted((v.rule, v.subject) for v in report.violations) == [
        ("no-outcome", "order-A"), ("two-outcomes", "order-B"), ("two-runs", "order-C")]


def test_the_same_outcome_published_twice_counts_once(store: Store) -> None:
    same = uuid.uuid4()
    store.charge("order-A/charge", "A", 100, "EUR")
    store.create_shipment("order-A/ship", "A", "DE")
    report = check([stored(order_placed("A"), ORDERS_EVENTS, 0)],
                   [stored(completed("A", same), ORDERS_OUTCOMES, n) for n in range(2)],
                   {"order-A": [DONE]}, store)
    assert report.ok, report.summary()
    assert report.duplicate_publishes == 1


def test_a_running_workflow_is_open_even_with_its_outcome_out(store: Store) -> None:
    report = check([stored(order_placed("A"), ORDERS_EVENTS, 0)],
                   [stored(completed("A"), ORDERS_OUTCOMES, 0)], {"order-A": [RUNNING]},
                   store)
    assert report.ok
    assert report.open == ["order-A"]


def test_store_rules(store: Store) -> None:
    # A: failed but still charged. B: completed without a shipment. C: charged twice.
    # D: a shipment without a charge.
    store.charge("order-A/charge", "A", 100, "EUR")
    store.charge("order-B/charge", "B", 100, "EUR")
    store.charge("order-C/charge", "C", 100, "EUR")
    store.charge("order-C2/charge", "C", 100, "EUR")
    store.create_shipment("order-C/ship", "C", "DE")
    store.create_shipment("order-D/ship", "D", "DE")
    inputs = [stored(order_placed(o), ORDERS_EVENTS, n) for n, o in enumerate("ABCD")]
    outcomes = [stored(failed("A"), ORDERS_OUTCOMES, 0),
                stored(completed("B"), ORDERS_OUTCOMES, 1),
                stored(completed("C"), ORDERS_OUTCOMES, 2),
                stored(failed("D"), ORDERS_OUTCOMES, 3)]
    runs = {f"order-{o}": [DONE] for o in "ABCD"}
    report = check(inputs, outcomes, runs, store)
    found = sorted((v.rule, v.subject) for v in report.violations)
    assert found == [("charge-not-settled", "A"), ("charge-not-settled", "B"),
                     ("charge-not-settled", "D"), ("shipment-without-charge", "D"),
                     ("two-charges", "C")]


def test_a_refunded_charge_of_a_failed_order_is_settled(store: Store) -> None:
    store.charge("order-A/charge", "A", 100, "EUR")
    store.refund("order-A/charge")
    report = check([stored(order_placed("A"), ORDERS_EVENTS, 0)],
                   [stored(failed("A"), ORDERS_OUTCOMES, 0)], {"order-A": [DONE]}, store)
    assert report.ok, report.summary()


def test_runs_continued_as_new_are_one_run_and_progress_is_not_an_outcome(store: Store) -> None:
    # The reference's VerifyChecks name what ends a batch: BatchProgress along the way does not.
    request = BatchRequested(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                             batch_id="B", item_count=10)
    progress: dict[str, object] = {"event_id": uuid.uuid4(), "occurred_at": datetime.now(UTC),
                "correlation_id": "c", "causation_id": "c", "batch_id": "B", "total": 10,
                "succeeded": 5, "failed": 0, "chunks_done": 1, "chunks_total": 2}
    report = check([stored(request, "batches.requests", 0)],
                   [stored(BatchProgress.model_validate(progress), BATCHES_OUTCOMES, 0),
                    stored(BatchCompleted.model_validate(
                        {**progress, "event_id": uuid.uuid4(), "succeeded": 10,
                         "chunks_done": 2}), BATCHES_OUTCOMES, 1)],
                   {"batch-B": [CONTINUED, CONTINUED, DONE]}, store)
    assert report.ok, report.summary()
    assert report.settled == {"BatchCompleted": 1}


def test_the_reference_supplies_its_checks() -> None:
    assert isinstance(APP.extension(VerifyChecks), ReferenceChecks)
    assert TICKETS.extension(VerifyChecks) is None


def opened(ticket_id: str) -> TicketOpened:
    return TicketOpened(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                        ticket_id=ticket_id, customer_id="c-1", subject="printer on fire",
                        answer_within_seconds=60)


def answered(ticket_id: str) -> TicketAnswered:
    return TicketAnswered(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                          ticket_id=ticket_id, answered_by="agent-7", answer="unplug it")


def resolved(ticket_id: str) -> TicketResolved:
    return TicketResolved(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                          correlation_id="c", causation_id="c", ticket_id=ticket_id,
                          assigned_agent="agent-7", answered_by="agent-7", waited_seconds=1)


def expired(ticket_id: str) -> TicketExpired:
    return TicketExpired(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                         correlation_id="c", causation_id="c", ticket_id=ticket_id,
                         assigned_agent="agent-7", waited_seconds=60)


def test_any_application_is_checked_by_its_routes_and_outcome_topics() -> None:
    # The tickets app has no VerifyChecks: its routes say which workflow each input
    # addresses, and every event of its outcome topic ends a ticket.
    inputs = [stored(opened("T1"), TICKETS_EVENTS, 0), stored(answered("T1"), TICKETS_EVENTS, 1),
              stored(opened("T2"), TICKETS_EVENTS, 2), stored(opened("T3"), TICKETS_EVENTS, 3),
              stored(opened("T4"), TICKETS_EVENTS, 4), stored(None, TICKETS_EVENTS, 5)]
    outcomes = [stored(resolved("T1"), TICKETS_OUTCOMES, 0),
                stored(expired("T2"), TICKETS_OUTCOMES, 1),
                stored(resolved("T2"), TICKETS_OUTCOMES, 2)]
    runs = {"ticket-T1": [DONE], "ticket-T2": [DONE], "ticket-T3": [DONE],
            "ticket-T4": [RUNNING]}
    report = evaluate(TICKETS, [*inputs, *outcomes], runs, Settings(), codec=TICKETS_CODEC)
    assert sorted((v.rule, v.subject) for v in report.violations) == [
        ("lost", f"{TICKETS_EVENTS}/0/5"), ("no-outcome", "ticket-T3"),
        ("two-outcomes", "ticket-T2")]
    assert report.workflows == {"TicketWorkflow": 4}
    assert report.settled == {"TicketResolved": 1}
    assert report.open == ["ticket-T4"]
    assert report.as_json()["ok"] is False
    assert report.as_json()["violations"][0].keys() == {"rule", "subject", "detail"}
