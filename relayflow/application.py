"""An application: what a team plugs into relayflow's bridge and worker.

relayflow runs applications. Each one declares, as data:

* its event types (pydantic models, each mirroring an ``.avsc`` file in its
  schema folder: the files are the source of truth);
* its topics (inputs and outputs with partition counts; each input gets a
  ``<topic>.dlq``, and the bridge's parked-keys topic is added);
* its routes (which event on which topic starts, signals or cancels which
  workflow, with which id);
* its workflows, and a factory for its activities (given the settings and
  the outcome publisher, which relayflow registers for every application);
* its endings: per workflow type, the terminal event to publish for an
  execution that was terminated, timed out or failed without publishing one
  (``Ending``; relayflow's ending sweep publishes it, ``docs/terminal-events.md``).

``relayflow bridge``, ``relayflow worker`` and ``relayflow run`` take
``--app module:attribute`` (or ``RELAYFLOW_APP``); relayflow's own orders,
approvals and batches are the application ``relayflow.reference:APP``.

Features that only some applications have (an approvals inbox, pages of
their own in the console, a demo) are *extensions*: objects the application
lists in ``extensions`` and the framework finds by the protocol it needs
(``Application.extension``). The framework defines each protocol where it
uses it; a command or page whose extension the configured application lacks
says so in one line.

An application is checked when it is built: every route names a workflow it
registers (or declares as run elsewhere) with the signal the route sends,
every routed event type is one of its event types, and every route reads one
of its input topics; every event model agrees with its ``.avsc`` file field by
field (``schemas.agreement``: names, order, types, defaults, namespace). A
mistake fails at start-up, not on the first record.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from temporalio import workflow

from activities.endings import Ending
from activities.metrics import WorkerMetrics
from activities.outcomes import OutcomePublisher
from bridge.routes import UPDATING, Action, Route, RouteTable
from relayflow.config.settings import Settings
from schemas import Event
from schemas.agreement import contract_disagreements
from schemas.codec import SchemaRegistry, load_schemas
from schemas.formats import FormatCodec, SchemaFormat, SubjectNameStrategy, format_of
from schemas.replies import RequestFailed
from schemas.topics import Topic, with_dead_letters

__all__ = ["ActivityFactory", "Application", "Ending", "WorkerResources", "load_application"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class WorkerResources:
    """What an application's activity factory gets from the worker.

    Attributes:
        settings: relayflow's settings (an application may read its own too).
        publisher: The outcome publisher; its ``publish_outcome`` activity is
            registered by relayflow already.
        metrics: The worker's metrics, served on its ``/metrics``; an
            application may register metrics of its own on ``metrics.registry``.
    """

    settings: Settings
    publisher: OutcomePublisher
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)


ActivityFactory = Callable[[WorkerResources], Sequence[Callable[..., Any]]]
"""Builds an application's activity callables (bound methods or functions)."""


def _no_activities(resources: WorkerResources) -> Sequence[Callable[..., Any]]:
    del resources
    return ()


def _definition(workflow_class: type) -> Any:
    # The SDK keeps a class's workflow definition (name, signals) in a private type;
    # reading it is the only way to check routes against what a worker registers.
    return workflow._Definition.must_from_class(workflow_class)  # noqa: SLF001


@dataclass(frozen=True)
class Application:
    """Event types, topics, routes, workflows and activities of one application.

    Building one checks it (``problems``) and raises ``ValueError`` listing every
    problem, including each event model field that disagrees with its ``.avsc``.

    Attributes:
        name: Short name, for logs.
        event_types: Every event model the application reads or writes.
        topics: Its input and output topics (inputs have ``inbound=True``).
        routes: The routing table's lines.
        workflows: Workflow classes the worker registers.
        activities: Builds the activities the worker registers.
        schema_folder: Folder of the ``.avsc`` files (and ``history/`` of
            published versions).
        external_workflows: Workflows that routes address but another worker
            runs (possibly in another language): type name → signal names.
        extensions: Objects giving the application's own features to the
            framework's tools (see ``extension``).
        endings: How each workflow type that publishes a terminal event ends
            when it closed without one (terminated, timed out, failed): the
            worker then schedules the ending sweep.
    """

    name: str
    event_types: Sequence[type[Event]]
    topics: Sequence[Topic]
    routes: Sequence[Route]
    schema_folder: Path
    workflows: Sequence[type] = ()
    activities: ActivityFactory = _no_activities
    external_workflows: Mapping[str, Collection[str]] = field(default_factory=dict)
    extensions: Sequence[object] = ()
    endings: Sequence[Ending] = ()

    def __post_init__(self) -> None:
        """Check the application (``problems``).

        Raises:
            ValueError: Listing every problem.
        """
        problems = self.problems()
        if problems:
            raise ValueError(f"application {self.name!r} is inconsistent:\n  "
                             + "\n  ".join(problems))

    @property
    def input_topics(self) -> tuple[str, ...]:
        """The topics the bridge consumes."""
        return tuple(t.name for t in self.topics if t.inbound)

    def route_table(self) -> RouteTable:
        """The validated routing table (its topics must be input topics)."""
        return RouteTable(self.routes, known_topics=self.input_topics,
                          reply_topics=self.reply_topics)

    @property
    def reply_topics(self) -> dict[str, tuple[str, ...]]:
        """Declared reply topics, each with the event types its replies may be."""
        return {t.name: t.events for t in self.topics if t.replies}

    def all_topics(self) -> tuple[Topic, ...]:
        """Every topic the application needs: its own, a DLQ per input, and parked keys."""
        return with_dead_letters(self.topics)

    def codec(self, registry: SchemaRegistry | None = None,
              subject_strategy: str = SubjectNameStrategy.RECORD) -> FormatCodec:
        """The codec of the application's event types, each in the format it declares.

        Args:
            registry: A schema registry client (Confluent framing), or None.
            subject_strategy: Where schemas are registered (``SubjectNameStrategy``).
        """
        # The framework's reply event too: the bridge writes it, tools and tests read it.
        models: dict[type[Event], None] = dict.fromkeys((*self.event_types, RequestFailed))
        topics: dict[str, str] = {}
        for topic in self.topics:
            for name in topic.events:
                topics.setdefault(name, topic.name)
        return FormatCodec(models, self.schema_folder, registry=registry,
                           subject_strategy=SubjectNameStrategy(subject_strategy), topics=topics)

    def extension(self, kind: Callable[..., _T]) -> _T | None:
        """The first of ``extensions`` that is a ``kind`` (a class or a runtime-checkable protocol).

        Args:
            kind: What the caller needs.

        Returns:
            That extension, or None when the application has none.
        """
        # Typed as a callable, not ``type[_T]``: mypy refuses a protocol where a
        # concrete class is expected (type-abstract), and protocols are the point here.
        wanted = cast("type", kind)
        return next((cast("_T", found) for found in self.extensions
                     if isinstance(found, wanted)), None)

    def workflow_signals(self) -> dict[str, frozenset[str]]:
        """Every workflow type a route may address, with the signals it handles."""
        found = {name: frozenset(signals) for name, signals in self.external_workflows.items()}
        for workflow_class in self.workflows:
            definition = _definition(workflow_class)
            found[definition.name] = frozenset(name for name in definition.signals if name)
        return found

    def workflow_updates(self) -> dict[str, frozenset[str]]:
        """Every workflow type a route may address, with the updates it handles.

        An external workflow's names (``external_workflows``) count as its
        updates too: relayflow cannot look inside another worker.
        """
        found = {name: frozenset(names) for name, names in self.external_workflows.items()}
        for workflow_class in self.workflows:
            definition = _definition(workflow_class)
            found[definition.name] = frozenset(name for name in definition.updates if name)
        return found

    def problems(self) -> list[str]:
        """What does not fit together (empty when the application is consistent).

        Besides the routes, each event model is compared with its ``.avsc`` file
        (``schemas.agreement.contract_disagreements``): one line per field that
        differs, naming the event and the field.
        """
        found: list[str] = []
        signals = self.workflow_signals()
        updates = self.workflow_updates()
        known_events = {model.avro_name for model in self.event_types}
        inputs = set(self.input_topics)
        for route in self.routes:
            what = f"route {route.event_type.__name__} on {route.topic}"
            if route.event_type.avro_name not in known_events:
                found.append(f"{what}: {route.event_type.__name__} is not an event type")
            if route.topic not in inputs:
                found.append(f"{what}: {route.topic!r} is not an input topic")
            if route.workflow not in signals:
                found.append(f"{what}: no workflow {route.workflow!r} is registered "
                             f"(known: {sorted(signals)})")
            elif route.action in {Action.SIGNAL, Action.SIGNAL_WITH_START} \
                    and route.signal not in signals[route.workflow]:
                found.append(f"{what}: workflow {route.workflow} has no signal {route.signal!r}")
            elif route.action in UPDATING and route.update not in updates[route.workflow]:
                found.append(f"{what}: workflow {route.workflow} has no update {route.update!r}")
        found += [f"reply topic {t.name!r} is an input topic" for t in self.topics
                  if t.replies and t.inbound]
        try:
            self.route_table()
        except ValueError as error:
            found.append(str(error))
        found += self._ending_problems()
        # JSON Schema and Protobuf models are checked by their codec when it is built.
        avro = [m for m in self.event_types if format_of(m) is SchemaFormat.AVRO]
        found += contract_disagreements(avro, load_schemas(self.schema_folder))
        return found

    def _ending_problems(self) -> list[str]:
        own = {_definition(workflow_class).name for workflow_class in self.workflows}
        outputs = {t.name for t in self.topics if not t.inbound}
        known_events = {model.avro_name for model in self.event_types}
        found: list[str] = []
        for ending in self.endings:
            what = f"ending of {ending.workflow}"
            if ending.workflow not in own:
                found.append(f"{what}: the application's worker registers no such workflow "
                             "(the sweep reads executions of its own task queue)")
            if ending.topic not in outputs:
                found.append(f"{what}: {ending.topic!r} is not an output topic")
            found += [f"{what}: {model.__name__} is not an event type"
                      for model in ending.outcomes if model.avro_name not in known_events]
        if len({ending.workflow for ending in self.endings}) < len(self.endings):
            found.append("more than one ending for a workflow type")
        return found


def load_application(spec: str) -> Application:
    """Import an application named ``module:attribute``.

    Raises:
        ValueError: ``spec`` is not ``module:attribute``.
        TypeError: It names something that is not an ``Application``.
        ImportError: The module cannot be imported.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"application {spec!r}: expected 'module:attribute'")
    # Like `uvicorn module:app`: a team's package in the working folder needs no install.
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    found = getattr(importlib.import_module(module_name), attribute, None)
    if not isinstance(found, Application):
        raise TypeError(f"{spec} is {type(found).__name__}, not a relayflow Application")
    return found
