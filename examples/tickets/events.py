"""The tickets contract as pydantic models, one per ``.avsc`` file in ``schemas/``.

Each model names its schema in ``avro_name`` and the field that is its Kafka
key (the ticket id) in ``key_field``, as relayflow's ``Event`` and ``Outcome``
base classes expect.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from relayflow import Event, Key, Outcome

__all__ = ["EVENT_TYPES", "TicketAnswered", "TicketExpired", "TicketOpened", "TicketResolved"]


class TicketOpened(Event):
    """A customer opened a ticket; starts ``TicketWorkflow``.

    Attributes:
        ticket_id: Business key of the ticket.
        customer_id: Who asked.
        subject: What it is about.
        priority: ``LOW``, ``NORMAL`` or ``URGENT``.
        answer_within_seconds: The ticket expires without an answer by then.
    """

    avro_name: ClassVar[str] = "tickets.events.TicketOpened"
    key_field = "ticket_id"

    ticket_id: Key
    customer_id: Key
    subject: str = Field(max_length=500)
    priority: Literal["LOW", "NORMAL", "URGENT"] = "NORMAL"
    answer_within_seconds: int = Field(default=86_400, gt=0, le=30 * 86_400)


class TicketAnswered(Event):
    """An agent answered; signals the ticket's workflow.

    Attributes:
        ticket_id: Business key of the ticket.
        answered_by: The agent who answered.
        answer: The answer's text.
    """

    avro_name: ClassVar[str] = "tickets.events.TicketAnswered"
    key_field = "ticket_id"

    ticket_id: Key
    answered_by: Key
    answer: str = Field(default="", max_length=10_000)


class TicketResolved(Outcome):
    """The ticket was answered and is closed.

    Attributes:
        ticket_id: Business key of the ticket.
        assigned_agent: The agent the ticket was assigned to.
        answered_by: Who answered.
        waited_seconds: From opening to the answer (workflow time).
    """

    avro_name: ClassVar[str] = "tickets.events.TicketResolved"
    key_field = "ticket_id"

    ticket_id: Key
    assigned_agent: str
    answered_by: str
    waited_seconds: int = Field(ge=0)


class TicketExpired(Outcome):
    """Nobody answered in time; the ticket is closed unanswered.

    Attributes:
        ticket_id: Business key of the ticket.
        assigned_agent: The agent the ticket was assigned to.
        waited_seconds: How long the workflow waited.
    """

    avro_name: ClassVar[str] = "tickets.events.TicketExpired"
    key_field = "ticket_id"

    ticket_id: Key
    assigned_agent: str
    waited_seconds: int = Field(ge=0)


EVENT_TYPES: tuple[type[Event], ...] = (TicketOpened, TicketAnswered, TicketResolved,
                                        TicketExpired)
"""Every event of the tickets contract."""
