"""The tickets activities: the only code of the example that does (pretend) I/O."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from relayflow import WorkerResources

__all__ = ["AGENTS", "AgentAssignment", "AssignAgentInput", "TicketDesk", "ticket_activities"]

AGENTS: tuple[str, ...] = ("ada", "grace", "linus")
"""The support team; the first one is on call for urgent tickets."""


class AssignAgentInput(BaseModel):
    """Input of ``assign_agent``.

    Attributes:
        idempotency_key: The same key always gets the same agent (a retry or a
            replayed workflow does not assign twice).
        ticket_id: The ticket.
        priority: ``LOW``, ``NORMAL`` or ``URGENT`` (urgent goes to whoever is on call).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    idempotency_key: str = Field(min_length=1)
    ticket_id: str
    priority: str = "NORMAL"


class AgentAssignment(BaseModel):
    """Result of ``assign_agent``.

    Attributes:
        ticket_id: The ticket.
        agent: Who handles it.
    """

    ticket_id: str
    agent: str


class TicketDesk:
    """Assigns tickets to agents, round robin; remembers each assignment by idempotency key.

    An in-memory desk: a real one would keep assignments in the team's database.

    Args:
        agents: The team; the first one takes urgent tickets.
    """

    def __init__(self, agents: Sequence[str] = AGENTS) -> None:
        self._agents = tuple(agents)
        self._assigned: dict[str, AgentAssignment] = {}
        self._lock = asyncio.Lock()

    @activity.defn(name="assign_agent")
    async def assign_agent(self, request: AssignAgentInput) -> AgentAssignment:
        """Assign an agent to a ticket, once per idempotency key.

        Raises:
            ApplicationError: ``InvalidTicket`` (not retryable) when the request
                cannot be served at all.
        """
        if not request.ticket_id or not self._agents:
            raise ApplicationError(f"cannot assign ticket {request.ticket_id!r}",
                                   type="InvalidTicket", non_retryable=True)
        async with self._lock:
            done = self._assigned.get(request.idempotency_key)
            if done is None:
                agent = self._agents[0] if request.priority == "URGENT" \
                    else self._agents[len(self._assigned) % len(self._agents)]
                done = self._assigned[request.idempotency_key] = AgentAssignment(
                    ticket_id=request.ticket_id, agent=agent)
            return done


def ticket_activities(resources: WorkerResources) -> Sequence[Callable[..., Any]]:
    """The tickets application's activity factory (``Application.activities``)."""
    del resources  # the desk needs no settings; publish_outcome is registered by relayflow
    return [TicketDesk().assign_agent]
