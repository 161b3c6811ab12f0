"""The approvals inbox: what waits for a user's groups, and what became of it.

Pending approvals are read from the sagas themselves (``relayflow.reference.pending_approvals``,
their ``approval`` query); the order behind each (amount, lines) from the
saga's start event. Deciding is ``relayflow.operate.decide``'s, the same as
``relayflow decide``'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from relayflow.console.memory import remember
from relayflow.console.users import User
from relayflow.operate.decide import Person
from relayflow.reference.approvals import approval_status, order_id_of, workflow_id_of
from relayflow.reference.events import OrderPlaced
from relayflow.reference.pending_approvals import SagasUnanswered, pending_approvals
from relayflow.reference.workflows.approval import ApprovalState
from relayflow.reference.workflows.order_saga import OrderSaga
from schemas import Inbound

__all__ = [
    "QUERY_TIMEOUT",
    "SETTLE_SECONDS",
    "Approval",
    "Orders",
    "deciding_group",
    "inbox",
]

QUERY_TIMEOUT = timedelta(seconds=5)
"""A saga that does not answer a query by then has no worker: it is left out."""
SETTLE_SECONDS = 10.0
"""How long a decision's page watches the saga take it before saying it was sent."""


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
    """The group ``user`` decides as (``relayflow.operate.decide.Person.group``)."""
    return Person(user.name, user.groups).group(approval_status("", state))


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
