"""Routing as data: which event starts, signals or cancels which workflow.

An application's table (relayflow's own: ``relayflow.reference.ROUTES``) is a
list of ``Route`` lines; adding a route is one line. Workflow ids come
from business keys (``order-{order_id}``), so a redelivered event addresses
the same workflow and duplicates are harmless. The table is validated when it
is built (at import), so a bad route fails at start-up, not on the first
matching record.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from schemas import Event

__all__ = ["MAX_BATCH", "Action", "IdReuse", "Route", "RouteTable"]

MAX_BATCH = 1_000
"""Most records one batched signal may carry (``Route.batch``)."""


class Action(StrEnum):
    """What the bridge asks Temporal to do with an event."""

    START = "start"
    """Start the workflow; a running one is attached to, a closed one counts as done."""
    SIGNAL = "signal"
    """Signal the running workflow; a missing or closed one is a dead-letter matter."""
    SIGNAL_WITH_START = "signal-with-start"
    """Signal the workflow, starting it first if it does not run yet."""
    CANCEL = "cancel"
    """Request cancellation; the workflow compensates and reports."""


class IdReuse(StrEnum):
    """Whether a route may start a workflow again for a key whose workflow has closed.

    A *running* workflow with the id is always attached to (START) or signalled
    (SIGNAL_WITH_START), whatever the route says (``USE_EXISTING``).
    """

    NEVER = "never"
    """A key's workflow runs once, ever (``REJECT_DUPLICATE``): sagas, approvals, batches."""
    AFTER_CLOSE = "after-close"
    """A closed workflow may be started again (``ALLOW_DUPLICATE``): entities that expire
    and come back with their key's next event."""
    AFTER_FAILURE = "after-failure"
    """Only a workflow that failed, was cancelled, terminated or timed out may be started
    again (``ALLOW_DUPLICATE_FAILED_ONLY``)."""


_SIGNALLING = frozenset({Action.SIGNAL, Action.SIGNAL_WITH_START})


@cache
def _template_fields(template: str) -> tuple[str, ...]:
    return tuple(name for _, name, _, _ in string.Formatter().parse(template) if name is not None)


@dataclass(frozen=True, slots=True)
class Route:
    """One line of the routing table.

    Attributes:
        topic: Input topic the event arrives on.
        event_type: Event model; its Avro full name is the ``event-type`` header.
        action: What to ask Temporal.
        workflow: Workflow type name (the bridge never imports workflow code).
        workflow_id: Template formatted with the event's fields, e.g.
            ``order-{order_id}``; plain field names only.
        signal: Signal name, for ``SIGNAL`` and ``SIGNAL_WITH_START`` only.
        id_reuse: Whether a closed workflow of the key may be started again
            (``IdReuse.NEVER`` unless the route says otherwise).
        batch: None: one signal per record, its argument an ``Inbound``. A
            number (signal routes only, at most ``MAX_BATCH``): consecutive
            records of one key in one fetch that take this route go as *one*
            signal of up to that many events, its argument an ``InboundBatch``;
            a SIGNAL_WITH_START then starts the workflow with no argument (the
            events all come with the signal). Entity workflows
            (``relayflow.EntityWorkflow``) take their events this way.
    """

    topic: str
    event_type: type[Event]
    action: Action
    workflow: str
    workflow_id: str
    signal: str | None = None
    id_reuse: IdReuse = IdReuse.NEVER
    batch: int | None = None

    def id_for(self, event: Event) -> str:
        """The workflow id this event addresses.

        Args:
            event: An instance of ``event_type``.
        """
        fields = _template_fields(self.workflow_id)
        return self.workflow_id.format_map({name: getattr(event, name) for name in fields})

    def id_from(self, **fields: object) -> str:
        """The workflow id for these field values (tools that know the key, not the event).

        Args:
            **fields: A value for every field the id template names.
        """
        return self.workflow_id.format_map(fields)

    def problems(self) -> list[str]:
        """What is wrong with this route on its own (empty when it is valid)."""
        found: list[str] = []
        name = self.event_type.__name__
        fields = _template_fields(self.workflow_id)
        if not fields:
            found.append(f"{name}: id template {self.workflow_id!r} names no field, "
                         "so every event would address one workflow")
        unknown = sorted(set(fields) - set(self.event_type.model_fields))
        if unknown:
            found.append(f"{name}: id template {self.workflow_id!r} names unknown fields {unknown}")
        if not self.workflow:
            found.append(f"{name}: no workflow type")
        if (self.action in _SIGNALLING) != bool(self.signal):
            must = "must" if self.action in _SIGNALLING else "must not"
            found.append(f"{name}: a {self.action} route {must} name a signal")
        if self.batch is not None and (self.action not in _SIGNALLING
                                       or not 1 <= self.batch <= MAX_BATCH):
            found.append(f"{name}: batch {self.batch} needs a signal route and 1..{MAX_BATCH}")
        return found


class RouteTable:
    """Validated routes, looked up by (topic, event type).

    Args:
        routes: The table, in reading order.
        known_topics: Topics routes may name (the application's input
            topics), so a typo cannot silently consume nothing; None allows any.

    Raises:
        ValueError: Listing every problem: a template names a field the event
            lacks, a signal route has no signal (or another route has one), a
            topic is unknown, or two routes claim one event type on one topic.
    """

    def __init__(self, routes: Iterable[Route], *,
                 known_topics: Iterable[str] | None = None) -> None:
        allowed = None if known_topics is None else set(known_topics)
        self._routes: dict[tuple[str, str], Route] = {}
        problems: list[str] = []
        for route in routes:
            problems.extend(route.problems())
            if allowed is not None and route.topic not in allowed:
                problems.append(f"{route.event_type.__name__}: unknown input topic {route.topic!r}")
            key = (route.topic, route.event_type.avro_name)
            if key in self._routes:
                problems.append(f"two routes for {route.event_type.__name__} on {route.topic}")
            self._routes[key] = route
        if problems:
            raise ValueError("invalid routing table:\n  " + "\n  ".join(problems))

    def lookup(self, topic: str, event_type: str) -> Route | None:
        """The route for an event type (Avro full name) on a topic, or None."""
        return self._routes.get((topic, event_type))

    @property
    def topics(self) -> list[str]:
        """Input topics, in table order."""
        return list(dict.fromkeys(topic for topic, _ in self._routes))

    @property
    def routes(self) -> Mapping[tuple[str, str], Route]:
        """Every route by (topic, event type)."""
        return self._routes
