"""The tickets contract as pydantic models, one per ``.avsc`` file in ``schemas/``.

Each model names its schema in ``avro_name`` and its Kafka key (the ticket
id) in ``key``, as relayflow's ``Event`` and ``Outcome`` base classes expect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from relayflow import Event, Key, Outcome

__all__ = ["EVENT_TYPES", "TicketAnswered", "TicketExpired", "TicketOpened", "TicketResolved"]

class _KeyedByTicket:
    """Events about one ticket travel keyed by its id, so they stay in order."""

    if TYPE_CHECKING:
        # For type checkers only: a runtime annotation would make pydantic put the
        # field ahead of the subclass's own, breaking the .avsc field order.
        ticket_id: str

    @property
    def key(self) -> str:
        """Kafka message key: the ticket id."""
        return self.ticket_id


class TicketOpened(_KeyedByTicket, Event):
    """A customer opened a ticket; starts ``TicketWorkflow``.

    Attributes:
        ticket_id: Business key of the ticket.
        customer_id: Who asked.
        subject: What it is about.
        priority: ``LOW``, ``NORMAL`` or ``URGENT``.
        answer_within_seconds: The ticket expires without an answer by then.
    """

    avro_name: ClassVar[str] = "tickets.events.TicketOpened"

    ticket_id: Key
    customer_id: Key
    subject: str = Field(max_length=500)
    priority: Literal["LOW", "NORMAL", "URGENT"] = "NORMAL"
    answer_within_seconds: int = Field(default=86_400, gt=0, le=30 * 86_400)


class TicketAnswered(_KeyedByTicket, Event):
    """An agent answered; signals the ticket's workflow.

    Attributes:
        ticket_id: Business key of the ticket.
        answered_by: The agent who answered.
        answer: The answer's text.
    """

    avro_name: ClassVar[str] = "tickets.events.TicketAnswered"

    ticket_id: Key
    answered_by: Key
    answer: str = Field(default="", max_length=10_000)


class TicketResolved(_KeyedByTicket, Outcome):
    """The ticket was answered and is closed.

    Attributes:
        ticket_id: Business key of the ticket.
        assigned_agent: The agent the ticket was assigned to.
        answered_by: Who answered.
        waited_seconds: From opening to the answer (workflow time).
    """

    avro_name: ClassVar[str] = "tickets.events.TicketResolved"

    ticket_id: Key
    assigned_agent: str
    answered_by: str
    waited_seconds: int = Field(ge=0)


class TicketExpired(_KeyedByTicket, Outcome):
    """Nobody answered in time; the ticket is closed unanswered.

    Attributes:
        ticket_id: Business key of the ticket.
        assigned_agent: The agent the ticket was assigned to.
        waited_seconds: How long the workflow waited.
    """

    avro_name: ClassVar[str] = "tickets.events.TicketExpired"

    ticket_id: Key
    assigned_agent: str
    waited_seconds: int = Field(ge=0)


EVENT_TYPES: tuple[type[Event], ...] = (TicketOpened, TicketAnswered, TicketResolved,
                                        TicketExpired)
"""Every event of the tickets contract."""
