"""The tickets topics: events in, outcomes out (each input gets a ``.dlq`` from relayflow)."""

from __future__ import annotations

from examples.tickets.events import TicketAnswered, TicketExpired, TicketOpened, TicketResolved
from relayflow import Topic

__all__ = ["TICKETS_EVENTS", "TICKETS_OUTCOMES", "TOPICS"]

TICKETS_EVENTS = "tickets.events"
"""What customers and agents do: ``TicketOpened``, ``TicketAnswered``."""
TICKETS_OUTCOMES = "tickets.outcomes"
"""How tickets end: ``TicketResolved``, ``TicketExpired``."""

TOPICS: tuple[Topic, ...] = (
    Topic(TICKETS_EVENTS, 3, inbound=True,
          events=(TicketOpened.avro_name, TicketAnswered.avro_name)),
    Topic(TICKETS_OUTCOMES, 3, inbound=False,
          events=(TicketResolved.avro_name, TicketExpired.avro_name)),
)
"""The application's own topics."""
