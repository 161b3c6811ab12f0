"""The approvals inbox: what waits for a user's groups, and sending their decision.

Pending approvals are read from the sagas themselves (``relayflow.reference.pending_approvals``,
their ``approval`` query); the order behind each (amount, lines) from the
saga's start event. A decision is an ``ApprovalDecided`` on
``approvals.decisions``, encoded and framed like every other producer's
(``schemas.framing.to_record`` with the settings' codec), so the saga applies
the same rules to it as to any decision: duplicates count once, a late or
second decision is ignored, only an approver it asked decides.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from relayflow.console.users import User
from relayflow.reference.events import ApprovalDecided, OrderPlaced
from relayflow.reference.pending_approvals import SagasUnanswered, pending_approvals
from relayflow.reference.topics import APPROVALS_DECISIONS
from relayflow.reference.workflows.approval import ApprovalState
from relayflow.reference.workflows.order_saga import OrderSaga
from schemas import Inbound
from schemas.codec import AvroCodec
from schemas.framing import to_record
from workflows.outcomes import outcome_event_id

__all__ = [
    "DECISIONS",
    "QUERY_TIMEOUT",
    "Approval",
    "BadDecision",
    "DecisionResult",
    "Orders",
    "decide",
    "deciding_group",
    "inbox",
    "order_id_of",
    "remember",
    "workflow_id_of",
]

T = TypeVar("T")

DECISIONS = ("APPROVED", "REJECTED")
"""What a decision may be."""
QUERY_TIMEOUT = timedelta(seconds=5)
"""A saga that does not answer a query by then has no worker: it is left out."""
_SETTLE_SECONDS = 10.0
"""How long ``decide`` watches the saga take the decision before saying it was sent."""


_REMEMBERED = 10_000
"""Most entries a cache of the console keeps (the oldest go first)."""


def remember(cache: dict[str, T], key: str, value: T) -> None:
    """Keep ``value`` in ``cache``, forgetting the oldest entry when it is full."""
    if len(cache) >= _REMEMBERED:
        cache.pop(next(iter(cache)))
    cache[key] = value


def workflow_id_of(order_id: str) -> str:
    """The saga's workflow id."""
    return f"order-{order_id}"


def order_id_of(workflow_id: str) -> str:
    """The order id of a saga's workflow id."""
    return workflow_id.removeprefix("order-")


class BadDecision(ValueError):
    """The decision cannot be sent as given (a malformed field); nothing was sent."""


class Orders:
    """The order each saga was started with, read once from its history and kept.

    Args:
        client: Connected Temporal client (decrypts when payload encryption is on).
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._known: dict[str, Inbound[OrderPlaced]] = {}

    async def get(self, workflow_id: str) -> Inbound[OrderPlaced] | None:
        """The ``OrderPlaced`` envelope that started the saga, or None when there is none."""
        if workflow_id in self._known:
            return self._known[workflow_id]
        try:
            async for event in self._client.get_workflow_handle(
                    workflow_id).fetch_history_events():
                started = event.workflow_execution_started_event_attributes
                [inbound] = await self._client.data_converter.decode(
                    started.input.payloads, [Inbound[OrderPlaced]])
                remember(self._known, workflow_id, inbound)
                return inbound  # type: ignore[no-any-return]
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        return None


@dataclass(frozen=True, slots=True)
class Approval:
    """An approval as the inbox shows it.

    Attributes:
        order_id: The order.
        state: The saga's ``approval`` query.
        order: The order itself (None if its history could not be read).
    """

    order_id: str
    state: ApprovalState
    order: OrderPlaced | None

    @property
    def addressed(self) -> frozenset[str]:
        """The groups whose decision counts now (sagas from before the rule: the approver)."""
        return frozenset(self.state.approvers or [self.state.approver])


def deciding_group(user: User, state: ApprovalState) -> str | None:
    """The group ``user`` decides as: the approver asked now if theirs, else an earlier one."""
    asked = state.approvers or [state.approver]
    if state.approver in user.groups:
        return state.approver
    return next((g for g in asked if g in user.groups), None)


async def inbox(client: Client, orders: Orders, user: User, shown: Iterable[str] = (), *,
                task_queue: str | None = None) -> tuple[list[Approval], list[Approval]]:
    """The approvals waiting for ``user``'s groups, and what became of those shown before.

    Args:
        client: Connected Temporal client.
        orders: Reads each order once.
        user: The signed-in user.
        shown: Order ids the page showed as waiting; those no longer waiting
            for the user come back in the second list (decided, timed out).
        task_queue: Only sagas on this task queue (the deployment's).

    Returns:
        (waiting for the user, oldest first; closed since the page showed them).
    """
    try:
        pending = await pending_approvals(client, task_queue=task_queue,
                                          seconds=QUERY_TIMEOUT.total_seconds())
    except SagasUnanswered as unanswered:  # no worker answers for some: show the others
        pending = unanswered.answered
    waiting = [Approval(order_id_of(p.workflow_id), p.state, None) for p in pending]
    mine = [a for a in waiting if deciding_group(user, a.state) is not None]
    still = {a.order_id for a in mine}
    gone = [order_id for order_id in dict.fromkeys(shown) if order_id not in still]
    closed = [a for a in await asyncio.gather(*(_approval(client, o) for o in gone))
              if a is not None and a.state.required]
    return await _with_orders(orders, mine), await _with_orders(orders, closed)


async def _with_orders(orders: Orders, approvals: list[Approval]) -> list[Approval]:
    found = await asyncio.gather(*(orders.get(workflow_id_of(a.order_id)) for a in approvals))
    return [Approval(a.order_id, a.state, inbound.event if inbound else None)
            for a, inbound in zip(approvals, found, strict=True)]


async def _approval(client: Client, order_id: str) -> Approval | None:
    try:
        state = await client.get_workflow_handle(workflow_id_of(order_id)).query(
            OrderSaga.approval, rpc_timeout=QUERY_TIMEOUT)
    except RPCError:
        return None  # no such saga
    return Approval(order_id, state, None)


@dataclass(frozen=True, slots=True)
class DecisionResult:
    """What became of a decision.

    Attributes:
        outcome: ``counted`` (the saga took it), ``sent`` (on Kafka, not taken
            yet), ``already-decided``, ``timed-out``, ``not-waiting`` (nothing
            was sent for these three), ``ignored`` (sent, the saga ignored it:
            someone decided first), ``unknown-order`` or ``not-yours`` (nothing sent).
        message: What to tell the user.
        state: The saga's approval state afterwards, when known.
    """

    outcome: str
    message: str
    state: ApprovalState | None = None


def _closed(state: ApprovalState) -> DecisionResult | None:
    """Why nothing can be decided now, or None while the saga waits."""
    if state.status in {"approved", "rejected"}:
        return DecisionResult("already-decided", f"Already {state.status} by "
                              f"{state.decided_by}: nothing was sent.", state)
    if state.status == "timed-out":
        return DecisionResult("timed-out", "Too late: nobody decided before the deadline "
                              f"({state.deadline:%Y-%m-%d %H:%M:%S} UTC) and the order failed; "
                              "nothing was sent.", state)
    if state.status != "waiting":
        return DecisionResult("not-waiting", f"This order is not waiting for a decision "
                              f"(approval {state.status}): nothing was sent.", state)
    return None


async def decide(client: Client, producer: AIOKafkaProducer, codec: AvroCodec, orders: Orders,
                 user: User, *, order_id: str, decision: str, comment: str,
                 event_id: uuid.UUID) -> DecisionResult:
    """Send ``user``'s decision on an order, if it can still count, and see what it did.

    The saga is asked first: a decision it can no longer take (decided,
    timed out) or that is not the user's to make is not sent. Otherwise the
    decision goes to ``approvals.decisions`` with ``decided_by`` =
    ``<group>/<user>``, and the saga is watched for a while to tell whether it
    counted. ``event_id`` comes from the form, so the same form sent twice is
    one decision to the saga.

    Raises:
        BadDecision: ``decision`` or ``comment`` is malformed.
    """
    if decision not in DECISIONS:
        raise BadDecision(f"decision must be APPROVED or REJECTED, not {decision[:40]!r}")
    if not all(c.isprintable() or c in "\r\n\t" for c in comment):
        raise BadDecision("comment: control characters are not allowed")
    handle = client.get_workflow_handle(workflow_id_of(order_id))
    try:
        state = await handle.query(OrderSaga.approval, rpc_timeout=QUERY_TIMEOUT)
    except RPCError:
        return DecisionResult("unknown-order", f"There is no order {order_id!r}.")
    group = deciding_group(user, state)
    if group is None:
        return DecisionResult("not-yours", f"{user.name} is not among the approvers of order "
                              f"{order_id} ({', '.join(state.approvers) or state.approver}): "
                              "nothing was sent.", state)
    closed = _closed(state)
    if closed is not None:
        return closed
    try:
        event = ApprovalDecided(
            event_id=event_id, occurred_at=datetime.now(UTC), approval_id=state.approval_id,
            order_id=order_id, decision=decision,  # type: ignore[arg-type]  # checked above
            decided_by=f"{group}/{user.name}", comment=comment.strip() or None)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                             for e in error.errors(include_url=False, include_input=False))
        raise BadDecision(problems) from None
    inbound = await orders.get(handle.id)
    answered = "approval-escalated" if state.escalated else "approval-requested"
    record = to_record(event, codec,
                       correlation_id=inbound.meta.correlation_id if inbound else None,
                       causation_id=str(outcome_event_id(handle.id, answered)))
    await producer.send_and_wait(APPROVALS_DECISIONS, record.value, key=record.key,
                                 headers=record.headers)
    return await _settled(client, order_id, event)


async def _settled(client: Client, order_id: str, event: ApprovalDecided) -> DecisionResult:
    """Watch the saga take (or ignore) the decision just sent, for a while."""
    handle = client.get_workflow_handle(workflow_id_of(order_id))
    mark = f"{event.decision} by {event.decided_by} ignored"
    state: ApprovalState | None = None
    try:
        async with asyncio.timeout(_SETTLE_SECONDS):
            while True:
                state = await handle.query(OrderSaga.approval, rpc_timeout=QUERY_TIMEOUT)
                if state.status != "waiting" and state.decided_by == event.decided_by:
                    return DecisionResult("counted", f"{event.decision.capitalize()} as "
                                          f"{event.decided_by}.", state)
                if any(note.startswith(mark) for note in state.ignored) or (
                        state.status != "waiting"):
                    before = (f"{state.status} by {state.decided_by}" if state.decided_by
                              else state.status)
                    return DecisionResult("ignored", f"Too late: the approval was {before} "
                                          "before your decision arrived, which the order "
                                          "ignored.", state)
                await asyncio.sleep(0.2)
    except TimeoutError:
        pass
    return DecisionResult("sent", f"{event.decision.capitalize()} sent as {event.decided_by}; "
                          "the order has not taken it yet (this page will show it).", state)
