"""The counters workflow: one update with a validator, answered on a reply topic."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from relayflow import Inbound, Reply, reply, reply_id
    from tests.helpers.counters.events import (
        AddToCounter,
        CounterAdded,
        CounterClosed,
        CounterOpened,
        OpenAndAdd,
    )

__all__ = ["UNLUCKY", "CounterWorkflow"]

UNLUCKY = 13
"""An amount the handler accepts, then fails on (a ``failed`` reply)."""


@workflow.defn(name="CounterWorkflow")
class CounterWorkflow:
    """Adds what requests ask for until it is closed; each request gets the new total."""

    def __init__(self) -> None:
        self.total = 0
        self.applied = 0
        self.closed = False

    @workflow.run
    async def run(self, inbound: Inbound[CounterOpened | OpenAndAdd]) -> int:
        """Wait to be closed, then for the requests in flight; return the total."""
        del inbound
        await workflow.wait_condition(lambda: self.closed)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.total

    @workflow.signal(name="close")
    def close(self, inbound: Inbound[CounterClosed]) -> None:
        """Close the counter."""
        del inbound
        self.closed = True

    @workflow.query(name="total")
    def current(self) -> int:
        """The total so far."""
        return self.total

    @workflow.update(name="add")
    async def add(self, request: Inbound[AddToCounter]) -> Reply:
        """Add the request's amount; reply with the new total."""
        return await self._add(request)

    @add.validator
    def check_add(self, request: Inbound[AddToCounter]) -> None:
        """Refuse what the counter cannot take (a ``rejected`` reply)."""
        self._check(request)

    @workflow.update(name="open_and_add")
    async def open_and_add(self, request: Inbound[OpenAndAdd]) -> Reply:
        """As ``add``, for update-with-start."""
        return await self._add(request)

    @open_and_add.validator
    def check_open_and_add(self, request: Inbound[OpenAndAdd]) -> None:
        """As ``check_add``."""
        self._check(request)

    def _check(self, request: Inbound[AddToCounter] | Inbound[OpenAndAdd]) -> None:
        if request.event.amount <= 0:
            raise ApplicationError(f"amount {request.event.amount} is not positive",
                                   type="NotPositive")
        if self.closed:
            raise ApplicationError("the counter is closing", type="Closed")

    async def _add(self, request: Inbound[AddToCounter] | Inbound[OpenAndAdd]) -> Reply:
        event = request.event
        if event.hold_seconds:
            await workflow.sleep(timedelta(seconds=event.hold_seconds))
        if event.amount == UNLUCKY:
            raise ApplicationError("thirteen is unlucky", type="Unlucky")
        self.total += event.amount
        self.applied += 1
        return reply(CounterAdded(
            event_id=reply_id(request, CounterAdded), occurred_at=workflow.now(),
            correlation_id=request.meta.correlation_id, causation_id=request.meta.event_id,
            counter_id=event.counter_id, amount=event.amount, total=self.total,
            applied=self.applied))
