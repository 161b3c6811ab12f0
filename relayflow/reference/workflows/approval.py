"""The approval stage of the order saga: ask, wait, escalate once, then time out.

When an order's amount reaches the policy's threshold, the saga publishes
``ApprovalRequested`` and waits for an ``ApprovalDecided`` signal; after the
first wait it publishes ``ApprovalEscalated`` and waits for the escalation
approver; after the second it publishes ``ApprovalTimedOut`` and the order
fails. A decision may arrive before the saga asks (it is kept); a redelivered
one counts once, and one that cannot count is recorded with why.

Only the approvers the saga asked may decide (``may_decide``): the approver
from the first request on, the escalation approver once the request
escalated. A decision from anyone else is recorded in the ``approval`` query,
published as ``ApprovalDecisionRefused``, and the order keeps waiting. Sagas
that started before this rule (no ``approver-allowlist`` patch marker in
their history) keep counting any ``decided_by``, so their histories replay.

Sagas that started with the ``signed-decisions`` marker also require proof
(docs/security/approvals.md): a decision counts only when it is for this
saga's own order and approval id (else ``wrong-order``), is signed by a key
of the registry the ``approval_keys`` activity answers (``unsigned``,
``unknown-key``, ``key-not-valid``, ``bad-signature``), that key may sign for
its ``decided_by`` (``key-not-for-approver``), and ``decided_by`` was asked
(``not-an-approver``). The registry is asked for each time decisions are
screened, so it is in the history and a revoked key stops counting in
sagas already waiting. Sagas with only the approver rule keep it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from relayflow.reference.activities.approval_policy import (
        ApprovalKeys,
        ApprovalKeysRequest,
        ApprovalPolicy,
        ApprovalPolicyProvider,
        ApprovalPolicyRequest,
    )
    from relayflow.reference.decision_signatures import (
        BAD_SIGNATURE,
        KEY_NOT_VALID,
        UNKNOWN_KEY,
        UNSIGNED,
        may_decide,
        signature_problem,
    )
    from relayflow.reference.events import (
        ApprovalDecided,
        ApprovalDecisionRefused,
        ApprovalEscalated,
        ApprovalRequested,
        ApprovalTimedOut,
        OrderPlaced,
    )
    from relayflow.reference.topics import ORDERS_OUTCOMES
    from schemas import Inbound, Outcome
    from workflows.outcomes import outcome_event_id, publish_outcome

__all__ = [
    "APPROVAL_SIGNAL",
    "APPROVER_ALLOWLIST_PATCH",
    "NOT_AN_APPROVER",
    "SEEN_EVENT_IDS",
    "SIGNED_DECISIONS_PATCH",
    "WRONG_ORDER",
    "ApprovalRefused",
    "ApprovalStage",
    "ApprovalState",
    "RefusedDecision",
    "approval_id_for",
    "may_decide",
]

APPROVAL_SIGNAL = "approval_decided"
"""Name of the signal that carries an ``Inbound[ApprovalDecided]``."""
SEEN_EVENT_IDS = 1000
"""Signal event ids remembered for de-duplication (bounded: history stays small)."""
APPROVER_ALLOWLIST_PATCH = "approver-allowlist"
"""``workflow.patched`` id of the approver rule; sagas without its marker accept anyone."""
NOT_AN_APPROVER = "not-an-approver"
"""``ApprovalDecisionRefused.reason`` of a decision from someone the saga did not ask."""
SIGNED_DECISIONS_PATCH = "signed-decisions"
"""``workflow.patched`` id of the proof rule; sagas without its marker keep the approver rule."""
WRONG_ORDER = "wrong-order"
"""``ApprovalDecisionRefused.reason`` of a decision for another order or approval id."""
KEYS_TIMEOUT = timedelta(seconds=10)
"""Reading the registry takes microseconds; a worker that died is retried after this long."""
KEYS_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), backoff_coefficient=2.0,
                         maximum_interval=timedelta(seconds=30))
"""No attempt limit: a broken registry file must not fail orders; they wait, visibly."""


def approval_id_for(order_id: str) -> str:
    """The approval id of an order: known before the request, so early decisions match."""
    return f"approval-{order_id}"


class RefusedDecision(BaseModel):
    """A decision that did not count: its sender was not asked, or it is not proven.

    Attributes:
        event_id: The ``ApprovalDecided``'s event id.
        decided_by: Who sent it, as given.
        decision: ``APPROVED`` or ``REJECTED``.
        refused_at: When the saga refused it (workflow time).
        reason: Why, readable: who was asked instead, which key failed how.
        code: Why, machine-readable: ``ApprovalDecisionRefused.reason``.
        key_id: The key the decision named (None: unsigned).
        published: Whether its ``ApprovalDecisionRefused`` went out (False only
            when the publisher could not encode it, e.g. a worker of an older
            release took the activity).
    """

    event_id: str
    decided_by: str
    decision: str
    refused_at: datetime
    reason: str
    code: str = NOT_AN_APPROVER
    key_id: str | None = None
    published: bool = True


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
        approvers: Whose decision counts now (``may_decide``): the approver,
            and after escalation the escalation approver too.
        refused: Decisions that could not count (from someone not among
            ``approvers``, or unproven: see the module docs), in the order they
            were refused (each also published as ``ApprovalDecisionRefused``
            and listed in ``ignored``).
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
    approvers: list[str] = []
    refused: list[RefusedDecision] = []


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
        # Decisions received and not screened yet (approver rule on): only the stage
        # knows who was asked, and a decision may come before the saga asks.
        self._inbox: deque[Inbound[ApprovalDecided]] = deque()
        self._signed = False  # the proof rule (``SIGNED_DECISIONS_PATCH``), decided in run

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
            self._ignore(decision, why)
        elif workflow.patched(APPROVER_ALLOWLIST_PATCH):
            self._inbox.append(inbound)  # screened by the stage that waits (``_screen``)
        else:
            self._decision = decision  # release 0.1.0: anyone's decision counts

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
        # The threshold is the activity's answer for this currency: recorded, never recomputed.
        policy: ApprovalPolicy = await workflow.execute_activity_method(
            ApprovalPolicyProvider.approval_policy, ApprovalPolicyRequest(currency=order.currency),
            start_to_close_timeout=timedelta(seconds=10), retry_policy=retry,
        )
        approval = self.state
        approval.approval_id = approval_id_for(order.order_id)
        if order.amount_cents < policy.threshold_cents:
            approval.status = "not-required"
            self._drain("approval not-required")
            return
        approval.required = True
        allowlist = workflow.patched(APPROVER_ALLOWLIST_PATCH)
        # Only sagas with the approver rule take the proof rule: release 0.1.0's replay as such.
        self._signed = allowlist and workflow.patched(SIGNED_DECISIONS_PATCH)
        waiting()
        first = order.approval_timeout_seconds or policy.timeout_seconds
        second = order.approval_timeout_seconds or policy.escalation_timeout_seconds
        started = workflow.now()
        stages = ((policy.approver, first), (policy.escalation_approver, second))
        for stage, (approver, seconds) in enumerate(stages):
            approval.status, approval.approver = "waiting", approver
            approval.approvers = [a for a, _ in stages[:stage + 1]] if allowlist else []
            approval.waiting_since = workflow.now()
            approval.deadline = approval.waiting_since + timedelta(seconds=seconds)
            await publish_outcome(ORDERS_OUTCOMES, self._event(inbound, stage, policy),
                                  inbound.meta.traceparent)
            decided = (await self._wait_for_approver(inbound) if allowlist
                       else await self._wait_for_anyone(seconds))
            if not decided:
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
        self._drain("approval timed-out")
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

    async def _wait_for_anyone(self, seconds: int) -> bool:
        # Release 0.1.0's wait, command for command: its histories must replay.
        try:
            await workflow.wait_condition(lambda: self._decision is not None,
                                          timeout=timedelta(seconds=seconds))
        except TimeoutError:
            return False
        return True

    async def _wait_for_approver(self, order: Inbound[OrderPlaced]) -> bool:
        """Until an approver asked decides (True) or the stage's deadline passes (False)."""
        deadline = self.state.deadline
        assert deadline is not None
        while True:
            await self._screen(order)
            if self._decision is not None:
                return True
            left = deadline - workflow.now()
            if left <= timedelta(0):
                return False
            try:
                await workflow.wait_condition(lambda: bool(self._inbox), timeout=left)
            except TimeoutError:
                return False

    async def _screen(self, order: Inbound[OrderPlaced]) -> None:
        """Take the first decision that can count; refuse, record and publish others."""
        if not self._inbox:
            return
        keys: ApprovalKeys | None = None
        if self._signed:  # the registry of this round: in the history, so replay sees it
            keys = await workflow.execute_activity_method(
                ApprovalPolicyProvider.approval_keys,
                ApprovalKeysRequest(approval_id=self.state.approval_id),
                start_to_close_timeout=KEYS_TIMEOUT, retry_policy=KEYS_RETRY)
        while self._inbox:
            received = self._inbox.popleft()
            decision = received.event
            if self._decision is not None:
                self._ignore(decision, f"already decided by {self._decision.decided_by}")
                continue
            refusal = self._refusal(decision, order, keys)
            if refusal is None:
                self._decision = decision
                continue
            await self._refuse(received, order, *refusal)

    def _refusal(self, decision: ApprovalDecided, order: Inbound[OrderPlaced],
                 keys: ApprovalKeys | None) -> tuple[str, str] | None:
        """(reason, why) a decision cannot count, or None; ``keys``: the proof rule's."""
        approval = self.state
        if keys is not None:
            if (decision.order_id, decision.approval_id) != (order.event.order_id,
                                                             approval.approval_id):
                return WRONG_ORDER, (f"for order {decision.order_id} ({decision.approval_id}), "
                                     "not this one")
            if keys.required or decision.signature is not None or decision.key_id is not None:
                problem = signature_problem(decision, keys.registry, workflow.now())
                if problem is not None:
                    return problem, _proof_failure(problem, decision, keys)
        if may_decide(decision.decided_by, approval.approvers):
            return None
        return NOT_AN_APPROVER, f"not among the approvers asked ({', '.join(approval.approvers)})"

    async def _refuse(self, received: Inbound[ApprovalDecided], order: Inbound[OrderPlaced],
                      code: str, why: str) -> None:
        """Record a refusal in the query and publish it as ``ApprovalDecisionRefused``."""
        approval, decision = self.state, received.event
        self._ignore(decision, why)
        refusal = RefusedDecision(
            event_id=received.meta.event_id, decided_by=decision.decided_by,
            decision=decision.decision, refused_at=workflow.now(), reason=why, code=code,
            key_id=decision.key_id)
        approval.refused.append(refusal)
        # Under the proof rule the evidence is keyed by this saga's order, whatever it claims.
        order_id = order.event.order_id if self._signed else decision.order_id
        # The id follows the decision, so a redelivery beyond the seen ids republishes
        # the same event (subscribers drop it) rather than a second piece of evidence.
        step = f"approval-decision-refused/{received.meta.event_id}"
        try:
            await publish_outcome(ORDERS_OUTCOMES, ApprovalDecisionRefused(
                event_id=outcome_event_id(workflow.info().workflow_id, step),
                occurred_at=workflow.now(), correlation_id=order.meta.correlation_id,
                causation_id=received.meta.event_id, order_id=order_id,
                approval_id=approval.approval_id, decided_by=decision.decided_by,
                decision=decision.decision, reason=code,
                approvers=tuple(approval.approvers)), received.meta.traceparent)
        except ActivityError as error:
            if is_cancelled_exception(error):
                raise asyncio.CancelledError from error  # the order was cancelled
            # Publishing retries until it works, except for an event the publisher
            # cannot encode (a worker of an older release): the evidence stays in
            # the history and the query, and the order's fate must not hang on it.
            refusal.published = False
            workflow.logger.error("order %s: refused decision %s not published: %s",
                                  order_id, received.meta.event_id, error.cause)

    def _drain(self, why: str) -> None:
        """Decisions still unscreened when the approval ended without them did not count."""
        while self._inbox:
            self._ignore(self._inbox.popleft().event, why)

    def _ignore(self, decision: ApprovalDecided, why: str) -> None:
        note = f"{decision.decision} by {decision.decided_by} ignored: {why}"
        self.state.ignored.append(note)
        workflow.logger.warning("order %s: %s", decision.order_id, note)

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


def _proof_failure(problem: str, decision: ApprovalDecided, keys: ApprovalKeys) -> str:
    """The readable why of a ``signature_problem``."""
    key = decision.key_id
    if problem == UNSIGNED:
        return "unsigned: decisions must be signed by a registered approver key"
    if problem == UNKNOWN_KEY:
        return f"key {key} is not registered (unknown or revoked)"
    if problem == KEY_NOT_VALID:
        return f"key {key} is not valid now"
    if problem == BAD_SIGNATURE:
        return f"signature does not verify with key {key} (forged or altered)"
    found = keys.registry.find(key or "")
    acts_for = ", ".join(found.acts_for) if found else ""
    return f"key {key} may not sign for {decision.decided_by} (it acts for {acts_for})"
