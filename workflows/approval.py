"""The approval stage of the order saga: ask, wait, escalate once, then time out.

When an order's amount reaches the policy's threshold, the saga publishes
``ApprovalRequested`` and waits for an ``ApprovalDecided`` signal; after the
first wait it publishes ``ApprovalEscalated`` and waits for the escalation
approver; after the second it publishes ``ApprovalTimedOut`` and the order
fails. A decision may arrive before the saga asks (it is kept); a redelivered
one counts once, and one that cannot count is recorded with why.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.approval_policy import ApprovalPolicy, ApprovalPolicyProvider
    from schemas import (
        ApprovalDecided,
        ApprovalEscalated,
        ApprovalRequested,
        ApprovalTimedOut,
        Inbound,
        OrderPlaced,
        Outcome,
    )
    from schemas.topics import ORDERS_OUTCOMES
    from workflows.outcomes import outcome_event_id, publish_outcome

__all__ = [
    "APPROVAL_SIGNAL",
    "SEEN_EVENT_IDS",
    "ApprovalRefused",
    "ApprovalStage",
    "ApprovalState",
    "approval_id_for",
]

APPROVAL_SIGNAL = "approval_decided"
"""Name of the signal that carries an ``Inbound[ApprovalDecided]``."""
SEEN_EVENT_IDS = 1000
"""Signal event ids remembered for de-duplication (bounded: history stays small)."""


def approval_id_for(order_id: str) -> str:
    """The approval id of an order: known before the request, so early decisions match."""
    return f"approval-{order_id}"


class ApprovalState(BaseModel):
    """Answer of the ``approval`` query.

    Attributes:
        required: Whether this order needs approval at all.
        approval_id: Id to quote in ``ApprovalDecided``.
        status: ``not-required``, ``pending`` (not asked yet), ``waiting``,
            ``approved``, ``rejected`` or ``timed-out``.
        approver: Who must decide now.
        waiting_since: When the current wait began.
        deadline: When the current wait ends.
        escalated: Whether the request escalated.
        decided_by: Who decided, once decided.
        ignored: Decisions that did not count, with why.
    """

    required: bool = False
    approval_id: str = ""
    status: str = "pending"
    approver: str = ""
    waiting_since: datetime | None = None
    deadline: datetime | None = None
    escalated: bool = False
    decided_by: str = ""
    ignored: list[str] = []


class ApprovalRefused(Exception):
    """The order was not approved.

    Attributes:
        reason: ``rejected`` or ``approval_timed_out``.
        error: Who rejected it and why, or how long nobody decided.
    """

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(error)
        self.reason, self.error = reason, error


class ApprovalStage:
    """One order's approval: its state (the saga's ``approval`` query) and its decision."""

    def __init__(self) -> None:
        self.state = ApprovalState()
        self._decision: ApprovalDecided | None = None
        self._seen: deque[str] = deque(maxlen=SEEN_EVENT_IDS)

    def receive(self, inbound: Inbound[ApprovalDecided]) -> None:
        """Take a decision (the saga's signal handler); it counts once, if it can count."""
        event_id = inbound.meta.event_id
        if event_id in self._seen:
            return  # a redelivered signal: one effect only
        self._seen.append(event_id)
        decision = inbound.event
        expected = approval_id_for(decision.order_id)
        why = ""
        if decision.approval_id != expected:
            why = f"unknown approval id {decision.approval_id}"
        elif self._decision is not None:
            why = f"already decided by {self._decision.decided_by}"
        elif self.state.status in {"not-required", "timed-out"}:
            why = f"approval {self.state.status}"
        if why:
            note = f"{decision.decision} by {decision.decided_by} ignored: {why}"
            self.state.ignored.append(note)
            workflow.logger.warning("order %s: %s", decision.order_id, note)
            return
        self._decision = decision

    async def run(self, inbound: Inbound[OrderPlaced], *, waiting: Callable[[], None],
                  retry: RetryPolicy) -> None:
        """Ask for approval when the policy says so; return once approved.

        Args:
            inbound: The order and its delivery metadata (ids for the outcomes).
            waiting: Called once approval turns out to be required.
            retry: Retry policy of the policy activity.

        Raises:
            ApprovalRefused: Rejected, or nobody decided in time.
        """
        order = inbound.event
        policy: ApprovalPolicy = await workflow.execute_activity_method(
            ApprovalPolicyProvider.approval_policy, start_to_close_timeout=timedelta(seconds=10),
            retry_policy=retry,
        )
        approval = self.state
        approval.approval_id = approval_id_for(order.order_id)
        if order.amount_cents < policy.threshold_cents:
            approval.status = "not-required"
            return
        approval.required = True
        waiting()
        first = order.approval_timeout_seconds or policy.timeout_seconds
        second = order.approval_timeout_seconds or policy.escalation_timeout_seconds
        started = workflow.now()
        stages = ((policy.approver, first), (policy.escalation_approver, second))
        for stage, (approver, seconds) in enumerate(stages):
            approval.status, approval.approver = "waiting", approver
            approval.waiting_since = workflow.now()
            approval.deadline = approval.waiting_since + timedelta(seconds=seconds)
            await publish_outcome(ORDERS_OUTCOMES, self._event(inbound, stage, policy),
                                  inbound.meta.traceparent)
            try:
                await workflow.wait_condition(lambda: self._decision is not None,
                                              timeout=timedelta(seconds=seconds))
            except TimeoutError:
                continue
            decision = self._decision
            assert decision is not None
            approval.decided_by = decision.decided_by
            if decision.decision == "APPROVED":
                approval.status = "approved"
                return
            approval.status = "rejected"
            comment = f": {decision.comment}" if decision.comment else ""
            raise ApprovalRefused("rejected", f"rejected by {decision.decided_by}{comment}")
        approval.status = "timed-out"
        waited = int((workflow.now() - started).total_seconds())
        await publish_outcome(ORDERS_OUTCOMES, ApprovalTimedOut(
            event_id=outcome_event_id(workflow.info().workflow_id, "approval-timed-out"),
            occurred_at=workflow.now(), correlation_id=inbound.meta.correlation_id,
            causation_id=inbound.meta.event_id, order_id=order.order_id,
            approval_id=approval.approval_id, waited_seconds=waited,
            last_approver=approval.approver), inbound.meta.traceparent)
        raise ApprovalRefused("approval_timed_out",
                              f"no decision from {policy.approver} or "
                              f"{policy.escalation_approver} within {waited}s")

    def _event(self, inbound: Inbound[OrderPlaced], stage: int,
               policy: ApprovalPolicy) -> Outcome:
        order, approval = inbound.event, self.state
        assert approval.deadline is not None
        common: dict[str, Any] = {
            "occurred_at": workflow.now(), "correlation_id": inbound.meta.correlation_id,
            "causation_id": inbound.meta.event_id, "order_id": order.order_id,
            "approval_id": approval.approval_id, "deadline": approval.deadline,
        }
        wid = workflow.info().workflow_id
        if stage == 0:
            return ApprovalRequested.model_validate(common | {
                "event_id": outcome_event_id(wid, "approval-requested"),
                "amount_cents": order.amount_cents, "currency": order.currency,
                "approver": approval.approver})
        approval.escalated = True
        return ApprovalEscalated.model_validate(common | {
            "event_id": outcome_event_id(wid, "approval-escalated"),
            "previous_approver": policy.approver, "approver": approval.approver})
