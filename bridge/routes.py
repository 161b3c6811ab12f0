"""Routing as data: which event starts, signals or cancels which workflow.

Read the table at the bottom; adding a route is one line. Workflow ids come
from business keys (``order-{order_id}``), so a redelivered event addresses
the same workflow and duplicates are harmless.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from relayflow.topics import ORDERS_EVENTS
from schemas import Event, OrderCancelled, OrderPlaced

__all__ = ["ROUTES", "Action", "Route", "RouteTable"]


class Action(StrEnum):
    """What the bridge asks Temporal to do with an event."""

    START = "start"
    """Start the workflow; an already running or finished one counts as done."""
    SIGNAL = "signal"
    """Signal a running workflow."""
    SIGNAL_WITH_START = "signal-with-start"
    """Signal the workflow, starting it first if it does not run yet."""
    CANCEL = "cancel"
    """Request cancellation; the workflow compensates and reports."""


@dataclass(frozen=True, slots=True)
class Route:
    """One line of the routing table.

    Attributes:
        topic: Input topic the event arrives on.
        event: Event model (its Avro full name is the ``event-type``).
        action: What to do.
        workflow: Workflow type name (the bridge never imports workflow code).
        workflow_id: Template formatted with the event's fields.
        signal: Signal name for ``SIGNAL`` and ``SIGNAL_WITH_START``.
    """

    topic: str
    event: type[Event]
    action: Action
    workflow: str
    workflow_id: str
    signal: str | None = None

    def id_for(self, event: Event) -> str:
        """The workflow id this event addresses."""
        return self.workflow_id.format_map(event.model_dump())


class RouteTable:
    """Validated routes, looked up by (topic, event type).

    Args:
        routes: The table; checked on construction so a bad route fails at
            start-up, not on the first matching record.

    Raises:
        ValueError: A template names a field the event lacks, a signal route
            has no signal, or two routes claim the same event on one topic.
    """

    def __init__(self, routes: Iterable[Route]) -> None:
        self._routes: dict[tuple[str, str], Route] = {}
        for route in routes:
            fields = {name for _, name, _, _ in string.Formatter().parse(route.workflow_id) if name}
            unknown = fields - set(route.event.model_fields)
            if unknown:
                raise ValueError(f"{route.workflow_id!r}: {route.event.__name__} has no {unknown}")
            signals = route.action in {Action.SIGNAL, Action.SIGNAL_WITH_START}
            if signals != (route.signal is not None):
                raise ValueError(f"{route.event.__name__}: signal name required iff signalling")
            key = (route.topic, route.event.avro_name)
            if key in self._routes:
                raise ValueError(f"two routes for {key}")
            self._routes[key] = route

    def lookup(self, topic: str, event_type: str) -> Route | None:
        """The route for an event type on a topic, or None."""
        return self._routes.get((topic, event_type))

    @property
    def topics(self) -> list[str]:
        """Input topics, in table order."""
        return list(dict.fromkeys(topic for topic, _ in self._routes))

    @property
    def routes(self) -> Mapping[tuple[str, str], Route]:
        """Every route by (topic, event type)."""
        return self._routes


ROUTES = RouteTable([
    Route(ORDERS_EVENTS, OrderPlaced, Action.START, "OrderSaga", "order-{order_id}"),
    Route(ORDERS_EVENTS, OrderCancelled, Action.CANCEL, "OrderSaga", "order-{order_id}"),
])
"""relayflow's routes."""
