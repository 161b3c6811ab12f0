"""OrderSaga in Temporal's time-skipping test server, activities replaced by same-named fakes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from relayflow.reference.activities.approval_policy import ApprovalKeys, ApprovalPolicyRequest
from relayflow.reference.events import OrderPlaced
from relayflow.reference.timeouts import ActivityTimeouts, use_activity_timeouts
from relayflow.reference.workflows.approval import (
    APPROVAL_SIGNAL,
    ApprovalState,
    approval_id_for,
    may_decide,
)
from relayflow.reference.workflows.order_saga import OrderSaga, OrderSagaResult
from schemas.signatures import KeyRegistry, SigningKey
from tests.helpers import approver_keys
from tests.helpers.approver_keys import MALLORY
from tests.helpers.support import order_placed
from tests.helpers.workflow_env import start_workflow_environment
from tests.helpers.workflow_fakes import FakeOrderActivities, decision, inbound, wait_for_approval
from workflows.outcomes import outcome_event_id

STEPS = ("reserve_inventory", "charge_payment", "create_shipment")


@dataclass
class Harness:
    env: WorkflowEnvironment
    fakes: FakeOrderActivities
    task_queue: str

    async def start(self, order: OrderPlaced) -> WorkflowHandle[Any, Any]:
        return await self.env.client.start_workflow(
            OrderSaga.run, inbound(order), id=f"order-{order.order_id}",
            task_queue=self.task_queue)

    async def decide(self, handle: WorkflowHandle[Any, Any], order_id: str,
                     verdict: Literal["APPROVED", "REJECTED"], *, by: str = "approvers/ann",
                     event_id: uuid.UUID | None = None, approval_id: str | None = None,
                     key: SigningKey | Literal["session"] | None = "session") -> None:
        event = decision(order_id, verdict, by=by, event_id=event_id, approval_id=approval_id,
                         key=key)
        await handle.signal(APPROVAL_SIGNAL, inbound(event))

    def published_types(self) -> list[str]:
        return self.fakes.published_types()


@pytest.fixture
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    # A test server of its own: skipped time must not leak between tests.
    fakes = FakeOrderActivities(**getattr(request, "param", {}))
    task_queue = f"tq-{uuid.uuid4()}"
    async with (
        await start_workflow_environment(request.config) as env,
        Worker(env.client, task_queue=task_queue, workflows=[OrderSaga],
               activities=fakes.all()),
    ):
        yield Harness(env, fakes, task_queue)


async def test_success_runs_every_step_and_publishes_completed(harness: Harness) -> None:
    order = order_placed()
    result: OrderSagaResult = await (await harness.start(order)).result()

    assert harness.fakes.calls == [*STEPS, "publish_outcome"]
    assert result.outcome == "OrderCompleted"
    [published] = harness.fakes.published
    assert published.event_type == "relayflow.orders.OrderCompleted"
    assert published.event["correlation_id"] == "corr-1"
    assert published.event["causation_id"] == str(order.event_id)
    assert published.event["event_id"] == str(outcome_event_id(f"order-{order.order_id}",
                                                                "completed"))


@pytest.mark.parametrize(
    ("harness", "calls", "reason", "compensations"),
    [
        ({"fail_at": "reserve_inventory"},
         ["reserve_inventory", "release_inventory"], "out_of_stock", []),
        ({"fail_at": "charge_payment"},
         ["reserve_inventory", "charge_payment", "refund_payment", "release_inventory"],
         "payment_declined", ["release_inventory"]),
        ({"fail_at": "create_shipment"},
         [*STEPS, "cancel_shipment", "refund_payment", "release_inventory"],
         "shipment_failed", ["refund_payment", "release_inventory"]),
    ],
    indirect=["harness"],
    ids=STEPS,
)
async def test_failure_compensates_in_reverse_order(
    harness: Harness, calls: list[str], reason: str, compensations: list[str]
) -> None:
    result: OrderSagaResult = await (await harness.start(order_placed())).result()

    # Each compensation was registered before its step, so the failed step's own
    # undo runs too (a no-op here): the step might have taken effect before failing.
    assert harness.fakes.calls == [*calls, "publish_outcome"]
    assert (result.outcome, result.reason, result.compensations) == (
        "OrderFailed", reason, compensations)
    [published] = harness.fakes.published
    assert published.event["reason"] == reason
    assert published.event["failed_step"] == harness.fakes.fail_at
    assert published.event["compensations"] == compensations


@pytest.mark.parametrize("harness", [{"fail_at": "reserve_inventory"}], indirect=True)
async def test_business_refusal_is_not_retried(harness: Harness) -> None:
    await (await harness.start(order_placed())).result()
    assert harness.fakes.calls.count("reserve_inventory") == 1


@pytest.mark.parametrize("harness", [{"block_at": "create_shipment"}], indirect=True)
async def test_cancellation_compensates_and_reports_cancelled(harness: Harness) -> None:
    handle = await harness.start(order_placed())
    await asyncio.wait_for(harness.fakes.blocked.wait(), timeout=30)
    await handle.cancel()

    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert isinstance(info.value.cause, CancelledError)
    assert harness.fakes.calls == [*STEPS, "cancel_shipment", "refund_payment",
                                   "release_inventory", "publish_outcome"]
    [published] = harness.fakes.published
    assert published.event["reason"] == "cancelled"
    assert published.event["compensations"] == ["refund_payment", "release_inventory"]


BIG = 2_000  # 2,000 units x 100 cents = 200,000 cents, above the 100,000 threshold


def big_order(**kwargs: Any) -> OrderPlaced:
    return order_placed(quantity=BIG, unit_price_cents=100, **kwargs)


async def test_small_order_needs_no_approval(harness: Harness) -> None:
    handle = await harness.start(order_placed())
    await handle.result()
    assert harness.published_types() == ["OrderCompleted"]
    assert (await handle.query(OrderSaga.approval)).status == "not-required"


async def test_the_policy_is_asked_for_the_orders_currency(harness: Harness) -> None:
    handle = await harness.start(order_placed(currency="JPY"))
    await handle.result()
    assert harness.fakes.policy_requests == [ApprovalPolicyRequest(currency="JPY")]


async def test_approved_order_completes(harness: Harness) -> None:
    order = big_order()
    handle = await harness.start(order)
    state = await wait_for_approval(handle)
    assert (state.approver, state.approval_id) == ("approvers", approval_id_for(order.order_id))
    assert state.waiting_since is not None
    assert state.deadline == state.waiting_since + timedelta(seconds=3600)
    await harness.decide(handle, order.order_id, "APPROVED")

    result: OrderSagaResult = await handle.result()
    assert result.outcome == "OrderCompleted"
    assert harness.published_types() == ["ApprovalRequested", "OrderCompleted"]
    requested = harness.fakes.published[0].event
    assert (requested["approver"], requested["amount_cents"]) == ("approvers", BIG * 100)
    # Payment only after approval was asked for and given.
    assert harness.fakes.calls == ["reserve_inventory", "publish_outcome", "charge_payment",
                                   "create_shipment", "publish_outcome"]


async def test_rejected_order_compensates_and_fails(harness: Harness) -> None:
    order = big_order()
    handle = await harness.start(order)
    await wait_for_approval(handle)
    await harness.decide(handle, order.order_id, "REJECTED", by="approvers/bob")

    result: OrderSagaResult = await handle.result()
    assert (result.reason, result.compensations) == ("rejected", ["release_inventory"])
    assert "charge_payment" not in harness.fakes.calls
    failed = harness.fakes.published[-1].event
    assert failed["failed_step"] == "approval"
    assert "bob" in failed["error"]


async def escalated_order(harness: Harness) -> tuple[OrderPlaced, WorkflowHandle[Any, Any],
                                                ApprovalState]:
    """A big order whose approval was escalated (its first deadline passed unanswered)."""
    order = big_order()
    handle = await harness.start(order)
    await wait_for_approval(handle)
    await harness.env.sleep(3601)
    return order, handle, await wait_for_approval(handle, escalated=True)


async def test_escalates_then_approved(harness: Harness) -> None:
    order, handle, state = await escalated_order(harness)
    assert state.approver == "managers"
    await harness.decide(handle, order.order_id, "APPROVED", by="managers/boss")

    assert (await handle.result()).outcome == "OrderCompleted"
    assert harness.published_types() == ["ApprovalRequested", "ApprovalEscalated",
                                         "OrderCompleted"]
    escalation = harness.fakes.published[1].event
    assert (escalation["previous_approver"], escalation["approver"]) == ("approvers", "managers")


async def test_no_decision_times_out_after_escalation(harness: Harness) -> None:
    handle = await harness.start(big_order())
    result: OrderSagaResult = await handle.result()  # the test server skips both waits

    assert (result.reason, result.compensations) == ("approval_timed_out", ["release_inventory"])
    assert harness.published_types() == ["ApprovalRequested", "ApprovalEscalated",
                                         "ApprovalTimedOut", "OrderFailed"]
    assert harness.fakes.published[2].event["waited_seconds"] == 3600 + 7200
    assert (await handle.query(OrderSaga.approval)).status == "timed-out"


async def test_timeout_from_the_event_overrides_settings(harness: Harness) -> None:
    handle = await harness.start(big_order(approval_timeout_seconds=60))
    await handle.result()
    assert harness.fakes.published[2].event["waited_seconds"] == 120


@pytest.mark.parametrize("harness", [{"block_at": "reserve_inventory"}], indirect=True)
async def test_decision_before_the_saga_asks_is_kept(harness: Harness) -> None:
    order = big_order()
    handle = await harness.start(order)
    await asyncio.wait_for(harness.fakes.blocked.wait(), timeout=30)
    # reserve_inventory runs and cannot finish before release: the saga has not asked yet.
    await harness.decide(handle, order.order_id, "APPROVED")
    assert (await handle.query(OrderSaga.status)).step == "reserve_inventory"
    assert (await handle.query(OrderSaga.approval)).status == "pending"
    assert harness.fakes.published == []

    harness.fakes.release.set()
    assert (await handle.result()).outcome == "OrderCompleted"

    state = await handle.query(OrderSaga.approval)
    assert (state.status, state.decided_by, state.escalated) == ("approved", "approvers/ann", False)
    # It still asks, then finds the decision already there and goes on.
    assert harness.published_types() == ["ApprovalRequested", "OrderCompleted"]
    assert harness.fakes.calls == ["reserve_inventory", "publish_outcome", "charge_payment",
                                   "create_shipment", "publish_outcome"]
    history = await handle.fetch_history()
    kinds = [event.event_type for event in history.events]
    # The signal is in the history before the first activity (reserve_inventory) completed...
    assert (kinds.index(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
            < kinds.index(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED))
    # ...and the saga never waited for it: no timer fired, done before the first deadline.
    assert EventType.EVENT_TYPE_TIMER_FIRED not in kinds
    requested, completed = (published.event for published in harness.fakes.published)
    assert (datetime.fromisoformat(completed["occurred_at"])
            < datetime.fromisoformat(requested["deadline"]))


async def test_duplicate_and_conflicting_decisions_have_one_effect(harness: Harness) -> None:
    order = big_order()
    handle = await harness.start(order)
    await wait_for_approval(handle)
    event_id = uuid.uuid4()
    await harness.decide(handle, order.order_id, "APPROVED", event_id=event_id)
    await harness.decide(handle, order.order_id, "APPROVED", event_id=event_id)  # redelivery
    await harness.decide(handle, order.order_id, "REJECTED", by="eve")  # too late
    await harness.decide(handle, order.order_id, "REJECTED", approval_id="approval-other")

    assert (await handle.result()).outcome == "OrderCompleted"
    ignored = (await handle.query(OrderSaga.approval)).ignored
    # Both are ignored, in either order: signals that land in one activation are
    # screened after the unknown approval id is already turned away.
    assert len(ignored) == 2
    assert sum("eve" in note and "already decided by approvers/ann" in note
               for note in ignored) == 1, ignored
    assert sum("unknown approval id approval-other" in note for note in ignored) == 1, ignored


# ---------------------------------------------------------------- who may decide

@pytest.mark.parametrize(
    ("decided_by", "approvers", "counts"),
    [
        ("approvers", ["approvers"], True),
        ("approvers/ann", ["approvers"], True),
        ("approvers/ann/x", ["approvers"], True),  # everything after the first "/" is the person
        ("managers/boss", ["approvers", "managers"], True),
        ("approvers/", ["approvers"], False),  # no person
        ("approversX", ["approvers"], False),
        ("Approvers/ann", ["approvers"], False),  # case matters
        (" approvers", ["approvers"], False),  # nothing is trimmed
        ("mallory", ["approvers"], False),
        ("managers/boss", ["approvers"], False),  # asked only after escalation
        ("approvers", [], False),
    ],
)
def test_who_may_decide(decided_by: str, approvers: list[str], counts: bool) -> None:
    assert may_decide(decided_by, approvers) is counts


async def refused_after(handle: WorkflowHandle[Any, Any], count: int) -> ApprovalState:
    """Poll the ``approval`` query until ``count`` decisions were refused (time stands still)."""
    for _ in range(3000):  # a busy machine may take a while; time skips only on result()
        state: ApprovalState = await handle.query(OrderSaga.approval)
        if len(state.refused) >= count:
            return state
        await asyncio.sleep(0.01)
    raise AssertionError(f"never refused {count}: {state}")


@pytest.mark.parametrize("by", ["approvers", "approvers/ann"])
async def test_the_approver_asked_decides(harness: Harness, by: str) -> None:
    order = big_order()
    handle = await harness.start(order)
    assert (await wait_for_approval(handle)).approvers == ["approvers"]
    await harness.decide(handle, order.order_id, "APPROVED", by=by)

    assert (await handle.result()).outcome == "OrderCompleted"
    state = await handle.query(OrderSaga.approval)
    assert (state.status, state.decided_by, state.refused) == ("approved", by, [])
    assert harness.published_types() == ["ApprovalRequested", "OrderCompleted"]


async def test_a_wrong_approver_is_refused_published_and_the_order_keeps_waiting(
    harness: Harness,
) -> None:
    order = big_order()
    handle = await harness.start(order)
    await wait_for_approval(handle)
    wrong = uuid.uuid4()
    await harness.decide(handle, order.order_id, "APPROVED", by="mallory", event_id=wrong)
    await harness.decide(handle, order.order_id, "APPROVED", by="mallory", event_id=wrong)
    # The escalation approver was not asked yet: not counted either.
    await harness.decide(handle, order.order_id, "REJECTED", by="managers/boss")

    state = await refused_after(handle, 2)
    assert (state.status, state.decided_by, state.escalated) == ("waiting", "", False)
    assert [(r.decided_by, r.decision) for r in state.refused] == [
        ("mallory", "APPROVED"), ("managers/boss", "REJECTED")]
    assert state.refused[0].event_id == str(wrong)
    assert "not among the approvers asked (approvers)" in state.refused[0].reason
    assert len(state.ignored) == 2  # the redelivery was dropped silently, as ever
    assert "APPROVED by mallory ignored: not among the approvers asked" in state.ignored[0]
    assert "charge_payment" not in harness.fakes.calls

    await harness.decide(handle, order.order_id, "APPROVED", by="approvers/ann")
    assert (await handle.result()).outcome == "OrderCompleted"
    state = await handle.query(OrderSaga.approval)
    assert (state.status, state.decided_by, len(state.refused)) == (
        "approved", "approvers/ann", 2)
    # Evidence on orders.outcomes, once per refused decision (the redelivery is not
    # evidence); no escalation: the right approver decided within the first wait.
    assert harness.published_types() == ["ApprovalRequested", "ApprovalDecisionRefused",
                                         "ApprovalDecisionRefused", "OrderCompleted"]
    evidence = harness.fakes.published[1]
    assert evidence.topic == "orders.outcomes"
    assert evidence.event["event_id"] == str(outcome_event_id(
        f"order-{order.order_id}", f"approval-decision-refused/{wrong}"))
    assert (evidence.event["causation_id"], evidence.event["correlation_id"]) == (
        str(wrong), "corr-1")
    assert (evidence.event["decided_by"], evidence.event["decision"]) == ("mallory", "APPROVED")
    assert (evidence.event["reason"], evidence.event["approvers"]) == (
        "not-an-approver", ["approvers"])
    assert evidence.event["approval_id"] == approval_id_for(order.order_id)


async def test_a_refused_decision_does_not_move_the_deadline(harness: Harness) -> None:
    order = big_order()
    handle = await harness.start(order)
    first = await wait_for_approval(handle)
    await harness.env.sleep(1800)
    await harness.decide(handle, order.order_id, "APPROVED", by="mallory")
    await refused_after(handle, 1)
    # Past the first deadline counted from the request; a wait restarted by the
    # refused decision would end only 3600 s after it.
    await harness.env.sleep(1801)

    escalated = await wait_for_approval(handle, escalated=True)
    assert first.deadline is not None
    assert escalated.waiting_since is not None
    assert escalated.waiting_since - first.deadline < timedelta(minutes=1)
    assert escalated.approvers == ["approvers", "managers"]


async def test_after_escalation_the_escalation_approver_decides(harness: Harness) -> None:
    order, handle, _ = await escalated_order(harness)
    await harness.decide(handle, order.order_id, "APPROVED", by="mallory")
    await refused_after(handle, 1)
    await harness.decide(handle, order.order_id, "REJECTED", by="managers")

    result: OrderSagaResult = await handle.result()
    assert (result.outcome, result.reason) == ("OrderFailed", "rejected")
    assert harness.published_types() == ["ApprovalRequested", "ApprovalEscalated",
                                         "ApprovalDecisionRefused", "OrderFailed"]
    assert harness.fakes.published[2].event["approvers"] == ["approvers", "managers"]
    assert "managers" in harness.fakes.published[-1].event["error"]


async def test_after_escalation_the_first_approver_may_still_decide(harness: Harness) -> None:
    order, handle, _ = await escalated_order(harness)
    await harness.decide(handle, order.order_id, "APPROVED", by="approvers/ann")

    assert (await handle.result()).outcome == "OrderCompleted"
    assert (await handle.query(OrderSaga.approval)).decided_by == "approvers/ann"


@pytest.mark.parametrize("harness", [{"block_at": "reserve_inventory"}], indirect=True)
async def test_an_early_decision_by_a_wrong_approver_is_refused_once_the_saga_asks(
    harness: Harness,
) -> None:
    order = big_order()
    handle = await harness.start(order)
    await asyncio.wait_for(harness.fakes.blocked.wait(), timeout=30)
    await harness.decide(handle, order.order_id, "APPROVED", by="mallory")
    assert (await handle.query(OrderSaga.approval)).refused == []  # nobody asked yet

    harness.fakes.release.set()
    state = await refused_after(handle, 1)
    assert (state.status, state.refused[0].decided_by) == ("waiting", "mallory")
    await harness.decide(handle, order.order_id, "APPROVED")
    assert (await handle.result()).outcome == "OrderCompleted"
    assert harness.published_types() == ["ApprovalRequested", "ApprovalDecisionRefused",
                                         "OrderCompleted"]


async def test_a_duplicate_of_the_deciding_decision_is_harmless(harness: Harness) -> None:
    order = big_order()
    handle = await harness.start(order)
    await wait_for_approval(handle)
    event_id = uuid.uuid4()
    for _ in range(3):
        await harness.decide(handle, order.order_id, "REJECTED", by="approvers/bob",
                             event_id=event_id)

    result: OrderSagaResult = await handle.result()
    assert (result.outcome, result.reason) == ("OrderFailed", "rejected")
    state = await handle.query(OrderSaga.approval)
    assert (state.decided_by, state.ignored, state.refused) == ("approvers/bob", [], [])
    assert harness.published_types() == ["ApprovalRequested", "OrderFailed"]


@pytest.mark.parametrize(
    "harness", [{"unencodable": frozenset({"relayflow.orders.ApprovalDecisionRefused"})}],
    indirect=True)
async def test_evidence_that_cannot_be_published_leaves_the_order_waiting(
    harness: Harness,
) -> None:
    # A worker of an older release does not know the event type and refuses it for good.
    order = big_order()
    handle = await harness.start(order)
    await wait_for_approval(handle)
    await harness.decide(handle, order.order_id, "APPROVED", by="mallory")
    await refused_after(handle, 1)
    await harness.decide(handle, order.order_id, "APPROVED")

    assert (await handle.result()).outcome == "OrderCompleted"
    [refusal] = (await handle.query(OrderSaga.approval)).refused
    assert (refusal.decided_by, refusal.published) == ("mallory", False)
    assert harness.published_types() == ["ApprovalRequested", "OrderCompleted"]


# Proof (the signed-decisions rule): a decision counts only when signed by a registered key
# that may act for its decided_by, for this saga's own order and approval.

async def test_an_unproven_decision_is_refused_for_why_and_the_order_keeps_waiting(
    harness: Harness,
) -> None:
    order = big_order()
    handle = await harness.start(order)
    await wait_for_approval(handle)
    forged = decision(order.order_id, "APPROVED", by="approvers/ann", key=MALLORY)
    altered = decision(order.order_id, "REJECTED").model_copy(update={"decision": "APPROVED"})
    for event in (decision(order.order_id, "APPROVED", key=None),  # unsigned
                  forged,  # mallory's own key, claiming ann: may not sign for her
                  altered,  # ann's genuine rejection turned into an approval
                  decision(order.order_id, "APPROVED", key=SigningKey.generate("nobody"))):
        await handle.signal(APPROVAL_SIGNAL, inbound(event))

    state = await refused_after(handle, 4)
    assert (state.status, state.decided_by) == ("waiting", "")
    assert [(r.code, r.key_id) for r in state.refused] == [
        ("unsigned", None), ("key-not-for-approver", "test-mallory"),
        ("bad-signature", "test-operator"), ("unknown-key", "nobody")]
    assert "key test-mallory may not sign for approvers/ann" in state.refused[1].reason
    assert "charge_payment" not in harness.fakes.calls
    evidence = [p.event for p in harness.fakes.published[1:]]
    assert [(e["reason"], e["decided_by"], e["order_id"]) for e in evidence] == [
        ("unsigned", "approvers/ann", order.order_id),
        ("key-not-for-approver", "approvers/ann", order.order_id),
        ("bad-signature", "approvers/ann", order.order_id),
        ("unknown-key", "approvers/ann", order.order_id)]

    await harness.decide(handle, order.order_id, "APPROVED")
    assert (await handle.result()).outcome == "OrderCompleted"
    assert (await handle.query(OrderSaga.approval)).decided_by == "approvers/ann"
    assert harness.fakes.keys_asked >= 2  # the registry is asked again for each screening


async def test_a_genuine_decision_for_another_order_does_not_decide_this_one(
    harness: Harness,
) -> None:
    order, other = big_order(), big_order()
    handle = await harness.start(order)
    await wait_for_approval(handle)
    # Signed, by an approver asked, for order `other`: delivered to this saga's signal.
    for_other = decision(other.order_id, "APPROVED")
    await handle.signal(APPROVAL_SIGNAL, inbound(for_other))

    state = await refused_after(handle, 1)
    assert (state.status, state.refused[0].code) == ("waiting", "wrong-order")
    assert f"for order {other.order_id}" in state.refused[0].reason
    refused = harness.fakes.published[1].event
    assert (refused["reason"], refused["order_id"], refused["approval_id"]) == (
        "wrong-order", order.order_id, approval_id_for(order.order_id))

    await harness.decide(handle, order.order_id, "REJECTED")
    assert (await handle.result()).reason == "rejected"


async def test_a_key_revoked_while_the_saga_waits_no_longer_counts(harness: Harness) -> None:
    order = big_order()
    handle = await harness.start(order)
    await wait_for_approval(handle)
    harness.fakes.keys = ApprovalKeys(registry=KeyRegistry(keys=tuple(
        k for k in approver_keys.REGISTRY.keys if k.key_id != "test-operator")))
    await harness.decide(handle, order.order_id, "APPROVED")
    state = await refused_after(handle, 1)
    assert (state.status, state.refused[0].code) == ("waiting", "unknown-key")
    await harness.decide(handle, order.order_id, "APPROVED", key=approver_keys.CONSOLE)
    assert (await handle.result()).outcome == "OrderCompleted"


@pytest.mark.parametrize("harness", [{"keys": approver_keys.KEYS.model_copy(
    update={"required": False})}], indirect=True)
async def test_with_signatures_off_an_unsigned_decision_by_an_approver_counts(
    harness: Harness,
) -> None:
    order = big_order()
    handle = await harness.start(order)
    await wait_for_approval(handle)
    # Signed ones are still verified: a forged signature is refused even so.
    forged = decision(order.order_id, "APPROVED", by="approvers/ann", key=MALLORY)
    await handle.signal(APPROVAL_SIGNAL, inbound(forged))
    assert (await refused_after(handle, 1)).refused[0].code == "key-not-for-approver"
    await harness.decide(handle, order.order_id, "APPROVED", key=None)
    assert (await handle.result()).outcome == "OrderCompleted"


@pytest.fixture
def short_steps() -> Iterator[timedelta]:
    """This process's sagas schedule their steps with a 3 s timeout (the fault rig's)."""
    use_activity_timeouts(ActivityTimeouts(order_step=timedelta(seconds=3)))
    yield timedelta(seconds=3)
    use_activity_timeouts(ActivityTimeouts())


@pytest.mark.parametrize("harness", [{"fail_at": "create_shipment"}], indirect=True)
async def test_steps_and_compensations_are_scheduled_with_the_workers_step_timeout(
        short_steps: timedelta, harness: Harness) -> None:
    handle = await harness.start(order_placed())
    await handle.result()
    scheduled = {e.activity_task_scheduled_event_attributes.activity_type.name:
                 e.activity_task_scheduled_event_attributes.start_to_close_timeout.ToTimedelta()
                 for e in (await handle.fetch_history()).events
                 if e.HasField("activity_task_scheduled_event_attributes")}
    undone = ("cancel_shipment", "refund_payment", "release_inventory")
    assert {name: scheduled[name] for name in (*STEPS, *undone)} == dict.fromkeys(
        (*STEPS, *undone), short_steps)
