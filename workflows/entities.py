"""Entity workflows: one long-lived workflow per business key, fed by a Kafka stream.

The seed's actor pattern: every key is an entity (a cart, an account, a
counter), every record a change to it. An application subclasses
``EntityWorkflow`` with its state (a pydantic model) and a pure ``apply``;
the base does the rest:

* It takes its events from one signal, ``ENTITY_SIGNAL``, whose argument is
  an ``InboundBatch`` (a route with ``batch``): the bridge sends the
  consecutive records of one key in one fetch as one signal.
* Each event is applied once: the base remembers the ids of the last
  ``EntityOptions.remember`` events it applied and drops a redelivery. That
  memory travels with the state across continue-as-new (``EntityCarry``),
  so a record redelivered after the switch is still dropped.
* It continues as new when Temporal suggests it, when its history passes
  ``max_history_events`` / ``max_history_bytes``, or when the run has taken
  ``max_signals`` signals (Temporal refuses a run's 10,001st signal by
  default), and only once every signal and update handler has finished
  (``workflow.all_handlers_finished``). Events are applied inside the signal
  handler, synchronously, so an event is either in the state that is carried
  over or, arriving after the switch was decided, delivered to the next run:
  Temporal refuses to close a run that has unhandled signals, and the SDK
  replays the task with them applied first.
* The ``ENTITY_QUERY`` query answers with the current state (``EntityView``).
* After ``idle`` without an event it calls ``on_idle`` (publish an outcome
  there, with ``publish_outcome``) and ends. An event that arrives while
  ``on_idle`` runs keeps the entity alive: it continues as new and expires
  again later. With the route's ``IdReuse.AFTER_CLOSE`` the key's next event
  after the end starts a fresh entity.

Determinism: ``apply`` must be a pure function of the state and the event (no
I/O, no clock but ``workflow.now()``); side effects belong in the run loop or
in activities.
"""

from __future__ import annotations

import sys
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas import Event, EventMeta, Inbound
    from workflows.outcomes import outcome_event_id

__all__ = [
    "ENTITY_QUERY",
    "ENTITY_SIGNAL",
    "EntityCarry",
    "EntityEnd",
    "EntityOptions",
    "EntityView",
    "EntityWorkflow",
]

ENTITY_SIGNAL = "entity-events"
"""The signal an entity takes its events from; its route names it and sets ``batch``."""
ENTITY_QUERY = "entity-state"
"""The query that answers with the entity's state (an ``EntityView``)."""

StateT = TypeVar("StateT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class EntityOptions:
    """When an entity continues as new, how much it remembers, when it expires.

    Attributes:
        idle: Without an event for this long, the entity calls ``on_idle`` and ends.
        max_history_events: Continue as new once the run's history has this
            many events (Temporal fails a run at 51,200 and suggests a switch
            on its own, later than this default).
        max_history_bytes: Continue as new once the run's history is this large.
        max_signals: Continue as new once the run has taken this many signals
            (the server refuses more than 10,000 per run by default).
        remember: How many recent event ids are remembered to drop redeliveries.
    """

    idle: timedelta = timedelta(days=30)
    max_history_events: int = 10_000
    max_history_bytes: int = 10 * 1024 * 1024
    max_signals: int = 5_000
    remember: int = 5_000


class EntityCarry(BaseModel):
    """What one run hands the next at continue-as-new (the run's argument; None for the first).

    Attributes:
        state: The entity's state, as JSON.
        seen: Ids of the most recent events applied, oldest first.
        applied: Events applied over the entity's life.
        runs: Runs before this one.
        last_event_at: When the last event was applied (the idle clock).
        last_meta: Metadata of the last event applied (for outcomes' causation).
    """

    state: dict[str, Any]
    seen: list[str] = Field(default_factory=list)
    applied: int = 0
    runs: int = 0
    last_event_at: datetime | None = None
    last_meta: EventMeta | None = None


class EntityView(BaseModel):
    """What the ``ENTITY_QUERY`` query answers.

    Attributes:
        state: The entity's state, as JSON.
        applied: Events applied over the entity's life (duplicates not counted).
        duplicates: Redelivered events dropped by this run.
        runs: Runs before this one (continue-as-new count).
        remembered: Event ids held to drop redeliveries.
    """

    state: dict[str, Any]
    applied: int
    duplicates: int
    runs: int
    remembered: int


class EntityEnd(BaseModel):
    """An entity's result when it ends (idle).

    Attributes:
        state: The final state, as JSON.
        applied: Events applied over the entity's life.
        runs: Runs it took, this one included.
    """

    state: dict[str, Any]
    applied: int
    runs: int


class EntityWorkflow(Generic[StateT]):
    """Base of an entity workflow; see the module docstring for what it guarantees.

    A subclass is decorated with ``@workflow.defn``, sets ``event_types`` (and
    ``options`` if the defaults do not fit), implements ``initial_state``,
    ``load_state`` and ``apply``, may override ``on_idle``, and defines its run
    method on itself (Temporal requires that) as::

        @workflow.run
        async def run(self, carried: EntityCarry | None = None) -> EntityEnd:
            return await self.live(carried)

    Attributes:
        event_types: Every event type the entity's routes deliver.
        options: Continue-as-new, dedup and idle settings.
    """

    event_types: ClassVar[tuple[type[Event], ...]] = ()
    options: ClassVar[EntityOptions] = EntityOptions()

    def __init__(self) -> None:
        self._models = {event.avro_name: Inbound[event] for event in self.event_types}  # type: ignore[valid-type]
        self._state: StateT = self.initial_state()
        self._seen: deque[str] = deque(maxlen=self.options.remember)
        self._seen_ids: set[str] = set()
        self._applied = 0
        self._duplicates = 0
        self._signals = 0
        self._runs = 0
        self._last_event_at: datetime | None = None
        self._last_meta: EventMeta | None = None
        # Signals of the run's first task may be handled before ``live`` restores the
        # carried state: they wait here, or the restore would overwrite their effect.
        self._early: list[Inbound[Event]] | None = []

    # What a subclass supplies.

    def initial_state(self) -> StateT:
        """The state of a new entity."""
        raise NotImplementedError

    def load_state(self, data: dict[str, Any]) -> StateT:
        """The state from its JSON form (as carried across continue-as-new)."""
        raise NotImplementedError

    def apply(self, state: StateT, event: Event, meta: EventMeta) -> StateT:
        """The state after one event: pure and deterministic, called once per event id."""
        raise NotImplementedError

    def idle_after(self) -> timedelta:
        """How long the entity waits for its next event before it ends: ``options.idle``.

        Override to make it depend on the state (deterministically); it is read again
        after every event.
        """
        return self.options.idle

    async def on_idle(self, state: StateT) -> None:
        """Called once the entity has been idle for ``options.idle``, before it ends.

        Publish the entity's outcome here (``publish_outcome``, with
        ``expiry_event_id`` as its event id). The default does nothing.
        """

    # What a subclass uses.

    @property
    def state(self) -> StateT:
        """The current state."""
        return self._state

    @property
    def last_meta(self) -> EventMeta | None:
        """Metadata of the last event applied (correlation and causation of an outcome)."""
        return self._last_meta

    async def restored(self) -> None:
        """Wait until the run holds its full state; an update handler of yours awaits it first.

        In a run's first task Temporal may hand an update to its handler before
        ``live`` has restored the carried state and applied the events signalled
        with the start: without this wait the handler would see an empty entity.
        """
        await workflow.wait_condition(lambda: self._early is None)

    def expiry_event_id(self) -> uuid.UUID:
        """A deterministic event id for the outcome ``on_idle`` publishes (one per run)."""
        info = workflow.info()
        return outcome_event_id(info.workflow_id, f"idle/{info.run_id}")

    # The machinery.

    @workflow.signal(name=ENTITY_SIGNAL)
    def receive(self, batch: dict[str, Any]) -> None:
        """Apply a batch of events (an ``InboundBatch`` as JSON), each id once."""
        self._signals += 1
        events = [self._decoded(item) for item in batch["events"]]
        if self._early is not None:
            self._early.extend(events)
            return
        self._apply_all(events)

    @workflow.query(name=ENTITY_QUERY)
    def view(self) -> EntityView:
        """The entity's state and counters."""
        return EntityView(state=self._state.model_dump(mode="json"), applied=self._applied,
                          duplicates=self._duplicates, runs=self._runs,
                          remembered=len(self._seen))

    async def live(self, carried: EntityCarry | None) -> EntityEnd:
        """Run the entity until it has been idle long enough; continue as new when due.

        Args:
            carried: What the previous run handed over; None for a new entity.
        """
        if carried is not None:
            self._restore(carried)
        if self._last_event_at is None:
            self._last_event_at = workflow.now()
        early, self._early = self._early or [], None
        self._apply_all(early)
        while True:
            remaining = (self._last_event_at + self.idle_after() - workflow.now()).total_seconds()
            if remaining > 0:
                try:
                    await workflow.wait_condition(self._due_to_continue, timeout=remaining)
                except TimeoutError:
                    continue  # the idle clock may have moved on meanwhile: look again
                await self._continue_as_new()
            # Idle. Events that came while handlers finished keep it alive.
            applied = self._applied
            await workflow.wait_condition(workflow.all_handlers_finished)
            if self._applied != applied:
                continue
            await self.on_idle(self._state)
            await workflow.wait_condition(workflow.all_handlers_finished)
            if self._applied != applied:
                await self._continue_as_new()  # revived while its expiry went out
            return EntityEnd(state=self._state.model_dump(mode="json"), applied=self._applied,
                             runs=self._runs + 1)

    def _due_to_continue(self) -> bool:
        info, options = workflow.info(), self.options
        return (info.is_continue_as_new_suggested()
                or info.get_current_history_length() >= options.max_history_events
                or info.get_current_history_size() >= options.max_history_bytes
                or self._signals >= options.max_signals)

    async def _continue_as_new(self) -> None:
        # Handlers still running (an update awaiting an activity) would be cut off.
        await workflow.wait_condition(workflow.all_handlers_finished)
        if not workflow.unsafe.is_replaying():
            # A failpoint: a fault test may kill the worker here (the repository's failpoints).
            sys.audit("relayflow.failpoint", "entity.before-continue-as-new")
        workflow.continue_as_new(self._carry())

    def _carry(self) -> EntityCarry:
        return EntityCarry(state=self._state.model_dump(mode="json"), seen=list(self._seen),
                           applied=self._applied, runs=self._runs + 1,
                           last_event_at=self._last_event_at, last_meta=self._last_meta)

    def _restore(self, carried: EntityCarry) -> None:
        self._state = self.load_state(carried.state)
        self._seen.extend(carried.seen)
        self._seen_ids = set(self._seen)
        self._applied, self._runs = carried.applied, carried.runs
        self._last_event_at, self._last_meta = carried.last_event_at, carried.last_meta

    def _decoded(self, item: dict[str, Any]) -> Inbound[Event]:
        event_type = item["meta"]["event_type"]
        model = self._models.get(event_type)
        if model is None:
            # Failing the task (not the workflow) holds the entity until a build
            # that knows the type is deployed; skipping would lose the event.
            raise RuntimeError(f"{type(self).__name__} has no event type {event_type}")
        inbound: Inbound[Event] = model.model_validate(item)
        return inbound

    def _apply_all(self, events: Iterable[Inbound[Event]]) -> None:
        for inbound in events:
            event_id = inbound.meta.event_id
            if event_id in self._seen_ids:
                self._duplicates += 1
                continue
            if len(self._seen) == self._seen.maxlen:
                self._seen_ids.discard(self._seen[0])
            self._seen.append(event_id)
            self._seen_ids.add(event_id)
            self._state = self.apply(self._state, inbound.event, inbound.meta)
            self._applied += 1
            self._last_event_at = workflow.now()
            self._last_meta = inbound.meta
