"""The tickets application: what ``relayflow run --app examples.tickets.app:APP`` runs."""

from __future__ import annotations

from pathlib import Path

from examples.tickets.activities import ticket_activities
from examples.tickets.events import EVENT_TYPES, TicketAnswered, TicketOpened
from examples.tickets.topics import TICKETS_EVENTS, TOPICS
from examples.tickets.workflows import ANSWERED_SIGNAL, TicketWorkflow
from relayflow import Action, Application, Route

__all__ = ["APP", "ROUTES", "SCHEMA_FOLDER"]

SCHEMA_FOLDER = Path(__file__).resolve().parent / "schemas"
"""The tickets ``.avsc`` files: the contract's source of truth."""

ROUTES = (
    #     topic           event type      action         workflow          workflow id
    Route(TICKETS_EVENTS, TicketOpened,   Action.START,  "TicketWorkflow", "ticket-{ticket_id}"),
    Route(TICKETS_EVENTS, TicketAnswered, Action.SIGNAL, "TicketWorkflow", "ticket-{ticket_id}",
          ANSWERED_SIGNAL),
)
"""The routing table: an opened ticket starts its workflow, an answer signals it."""

APP = Application(
    name="tickets",
    event_types=EVENT_TYPES,
    topics=TOPICS,
    routes=ROUTES,
    schema_folder=SCHEMA_FOLDER,
    workflows=(TicketWorkflow,),
    activities=ticket_activities,
)
"""The support-ticket application (``RELAYFLOW_APP=examples.tickets.app:APP``)."""
