"""Routing as data: which event starts, signals, cancels or updates which workflow.

An application's table (relayflow's own: ``relayflow.reference.ROUTES``) is a
list of ``Route`` lines; adding a route is one line. Workflow ids come
from business keys (``order-{order_id}``), so a redelivered event addresses
the same workflow and duplicates are harmless. The table is validated when it
is built (at import), so a bad route fails at start-up, not on the first
matching record. An update route makes a request: its reply goes to a
reply topic the application declares (``schemas.replies``, ``bridge.updates``).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import cache

from schemas import Event

__all__ = ["DEFAULT_REPLY_WITHIN", "MAX_BATCH", "MAX_REPLY_WITHIN", "UPDATING", "Action", "IdReuse",
           "Route", "RouteTable"]

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
    UPDATE = "update"
    """A request: a Workflow Update of the running workflow, answered on a reply topic."""
    UPDATE_WITH_START = "update-with-start"
    """A request as for ``UPDATE``, starting the workflow first if it does not run yet."""


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
UPDATING = frozenset({Action.UPDATE, Action.UPDATE_WITH_START})
"""Actions that make a request: a Workflow Update whose result is replied on Kafka."""

DEFAULT_REPLY_WITHIN = timedelta(seconds=10)
"""How long a request's update may take by default before a ``timed-out`` reply."""
MAX_REPLY_WITHIN = timedelta(seconds=60)
"""The longest bound a route may set: an update in flight holds its key, and the commit of its
fetch, for that long; this keeps a fetch well inside the consumer's poll interval."""


@cache
def _template_fields(template: str) -> tuple[str, ...]:
    return tuple(name for _, name, _, _ in string.Formatter().parse(template) if name is not None)


class _Fields:
    """An event's fields by name, for ``str.format_map`` (no dict built per call)."""

    __slots__ = ("_event",)

    def __init__(self, event: Event) -> None:
        self._event = event

    def __getitem__(self, name: str) -> object:
        return getattr(self._event, name)


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
        update: Workflow Update name, for ``UPDATE`` and ``UPDATE_WITH_START`` only.
        reply_topic: Where the request's reply goes unless its ``reply-to``
            header names another declared reply topic; update routes only.
        reply_within: Bound on one request, from sending the update to its
            result: past it the reply is ``timed-out`` (at most ``MAX_REPLY_WITHIN``).
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
    update: str | None = None
    reply_topic: str | None = None
    reply_within: timedelta = DEFAULT_REPLY_WITHIN
    id_reuse: IdReuse = IdReuse.NEVER
    batch: int | None = None

    def id_for(self, event: Event) -> str:
        """The workflow id this event addresses.

        Args:
            event: An instance of ``event_type``.
        """
        # Each field the template names is read from the event as format_map asks for it.
        return self.workflow_id.format_map(_Fields(event))

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
        requests = self.action in UPDATING
        if requests != bool(self.update) or requests != bool(self.reply_topic):
            must = "must" if requests else "must not"
            found.append(f"{name}: a {self.action} route {must} name an update and a reply topic")
        if requests and not timedelta(0) < self.reply_within <= MAX_REPLY_WITHIN:
            found.append(f"{name}: reply_within {self.reply_within} is not within "
                         f"(0, {MAX_REPLY_WITHIN}]")
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
        reply_topics: The application's reply topics, each with the event
            types (Avro full names) its replies may be; an update route's reply
            topic must be one, and a ``reply-to`` header may name no other.

    Raises:
        ValueError: Listing every problem: a template names a field the event
            lacks, a signal route has no signal (or another route has one), a
            topic is unknown, an update route's reply topic is not a reply
            topic, or two routes claim one event type on one topic.
    """

    def __init__(self, routes: Iterable[Route], *,
                 known_topics: Iterable[str] | None = None,
                 reply_topics: Mapping[str, Iterable[str]] | None = None) -> None:
        allowed = None if known_topics is None else set(known_topics)
        self._replies = {topic: frozenset(events) for topic, events in (reply_topics or {}).items()}
        self._routes: dict[tuple[str, str], Route] = {}
        problems: list[str] = []
        for route in routes:
            problems.extend(route.problems())
            if allowed is not None and route.topic not in allowed:
                problems.append(f"{route.event_type.__name__}: unknown input topic {route.topic!r}")
            if route.reply_topic is not None and route.reply_topic not in self._replies:
                problems.append(f"{route.event_type.__name__}: reply topic {route.reply_topic!r} "
                                "is not a declared reply topic")
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
    def reply_topics(self) -> Mapping[str, frozenset[str]]:
        """Declared reply topics, each with the event types its replies may be."""
        return self._replies

    @property
    def routes(self) -> Mapping[tuple[str, str], Route]:
        """Every route by (topic, event type)."""
        return self._routes
