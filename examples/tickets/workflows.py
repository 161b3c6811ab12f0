"""``TicketWorkflow``: assign an agent, wait for the answer, resolve or expire.

Deterministic code only: the agent comes from an activity, the deadline is a
workflow timer (``wait_condition`` with a timeout), and outcomes go out
through relayflow's ``publish_outcome`` with ids derived from the workflow id.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from examples.tickets.activities import AssignAgentInput, TicketDesk
    from examples.tickets.events import TicketAnswered, TicketExpired, TicketOpened, TicketResolved
    from examples.tickets.topics import TICKETS_OUTCOMES
    from relayflow import Inbound, outcome_event_id, publish_outcome

__all__ = ["ANSWERED_SIGNAL", "TicketResult", "TicketWorkflow"]

ANSWERED_SIGNAL = "answered"
"""Name of the signal that carries an ``Inbound[TicketAnswered]``."""

ASSIGN_TIMEOUT = timedelta(seconds=10)
"""One assignment attempt."""
ASSIGN_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=10,
    non_retryable_error_types=["InvalidTicket"],
)
"""Transient failures are retried; a ticket that can never be assigned is not."""


class TicketResult(BaseModel):
    """How the ticket ended.

    Attributes:
        outcome: ``TicketResolved`` or ``TicketExpired``.
        assigned_agent: The agent it was assigned to.
        outcome_event_id: Id of the published outcome event.
    """

    outcome: str
    assigned_agent: str
    outcome_event_id: str


@workflow.defn(name="TicketWorkflow")
class TicketWorkflow:
    """One ticket; workflow id ``ticket-<ticket_id>``."""

    def __init__(self) -> None:
        self._answer: Inbound[TicketAnswered] | None = None

    @workflow.signal(name=ANSWERED_SIGNAL)
    def answered(self, inbound: Inbound[TicketAnswered]) -> None:
        """An agent's answer; the first one counts, a redelivered or later one is ignored."""
        if self._answer is None:
            self._answer = inbound

    @workflow.run
    async def run(self, inbound: Inbound[TicketOpened]) -> TicketResult:
        """Handle one ticket from ``TicketOpened`` to its outcome.

        Args:
            inbound: The event and its delivery metadata.

        Returns:
            How it ended; the outcome was also published to ``tickets.outcomes``.
        """
        ticket = inbound.event
        workflow_id = workflow.info().workflow_id
        opened = workflow.now()
        assignment = await workflow.execute_activity_method(
            TicketDesk.assign_agent,
            AssignAgentInput(idempotency_key=f"{workflow_id}/assign_agent",
                             ticket_id=ticket.ticket_id, priority=ticket.priority),
            start_to_close_timeout=ASSIGN_TIMEOUT,
            retry_policy=ASSIGN_RETRY,
        )
        try:
            await workflow.wait_condition(lambda: self._answer is not None,
                                          timeout=timedelta(seconds=ticket.answer_within_seconds))
        except TimeoutError:
            event_id = outcome_event_id(workflow_id, "expired")
            await publish_outcome(TICKETS_OUTCOMES, TicketExpired(
                event_id=event_id, occurred_at=workflow.now(),
                correlation_id=inbound.meta.correlation_id, causation_id=inbound.meta.event_id,
                ticket_id=ticket.ticket_id, assigned_agent=assignment.agent,
                waited_seconds=int((workflow.now() - opened).total_seconds()),
            ), inbound.meta.traceparent)
            return TicketResult(outcome="TicketExpired", assigned_agent=assignment.agent,
                                outcome_event_id=str(event_id))
        answer = self._answer
        assert answer is not None  # the condition above
        event_id = outcome_event_id(workflow_id, "resolved")
        await publish_outcome(TICKETS_OUTCOMES, TicketResolved(
            event_id=event_id, occurred_at=workflow.now(),
            correlation_id=inbound.meta.correlation_id, causation_id=answer.meta.event_id,
            ticket_id=ticket.ticket_id, assigned_agent=assignment.agent,
            answered_by=answer.event.answered_by,
            waited_seconds=int((workflow.now() - opened).total_seconds()),
        ), answer.meta.traceparent or inbound.meta.traceparent)
        return TicketResult(outcome="TicketResolved", assigned_agent=assignment.agent,
                            outcome_event_id=str(event_id))
