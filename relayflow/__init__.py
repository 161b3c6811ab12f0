"""relayflow: Kafka domain events in, durable Temporal workflows in the middle, outcome events out.

This is the public API: what an application imports (``from relayflow import ...``).
Everything else is relayflow's own and may change between releases.

Declaring an application:

* ``Application``: an application's event types, topics, routes, schema
  folder, workflows, activities and extensions; ``relayflow run --app
  module:attribute`` runs it.
* ``load_application``: import an application named ``module:attribute``.
* ``Route``, ``Action``: one line of the routing table (which event on which
  topic starts, signals, signal-with-starts or cancels which workflow, with
  which workflow id); ``IdReuse``: whether a key's closed workflow may be
  started again (entities: ``AFTER_CLOSE``).
* ``Topic``: one of the application's topics (name, partitions, inbound or
  not, which events travel on it); ``dlq_topic`` names an input's dead-letter
  topic and ``DlqReason`` lists the ``dlq-reason`` values.
* ``Ending``: how a workflow type ends when it was terminated, timed out or
  failed without publishing its terminal event (``Application.endings``); its
  builder is given a ``ClosedExecution`` (see ``docs/concepts/terminal-events.md``).
* ``WorkerResources``: what the application's activity factory gets (settings,
  the outcome publisher, the worker's metrics); ``ActivityFactory`` is the
  factory's type; ``WorkerMetrics`` the worker's metrics.

The contract (each model mirrors an ``.avsc`` file of the schema folder):

* ``Record``: base of every Avro record (nested ones too); ``Event``: an
  event (``event_id``, ``occurred_at``, a Kafka ``key``: the field its
  ``key_field`` names, e.g. ``key_field = "order_id"``); ``Outcome``: an
  event a workflow publishes (adds ``correlation_id``, ``causation_id``).
* ``Key``: a business key's type; ``UtcDatetime``: a timestamp normalised to UTC.
* ``AvroCodec``: encodes and decodes Avro events; ``FormatCodec``: every
  format of an application behind one ``EventCodec`` (``Application.codec()``);
  ``SchemaFormat``: what an event declares in ``schema_format`` (Avro, JSON
  Schema, Protobuf).

In workflows (import these inside ``workflow.unsafe.imports_passed_through()``):

* ``Inbound``: what a workflow receives, the event plus ``EventMeta`` (event
  id, correlation id, trace context, where it came from).
* ``publish_outcome``: publish an outcome event through the activity every
  worker registers; ``outcome_event_id``: its deterministic event id;
  ``PUBLISH_RETRY`` and ``PUBLISH_TIMEOUT``: that activity's retry policy and
  attempt timeout, for workflows that call it themselves.
* ``reply``: what an update handler returns to answer a request on its reply
  topic; ``reply_id``: that reply's deterministic event id; ``Reply``: the
  type it builds; ``RequestFailed``, ``ReplyReason``: the framework's reply
  when there is no result (rejected, failed, timed out, workflow gone).
* ``EntityWorkflow``: base of an entity workflow (one long-lived workflow per
  key, state and dedup memory carried across continue-as-new, a state query,
  an idle expiry); ``EntityOptions`` its settings, ``EntityCarry`` its run
  argument, ``EntityEnd`` its result, ``EntityView`` its query's answer;
  ``ENTITY_SIGNAL`` and ``ENTITY_QUERY`` its signal and query names;
  ``InboundBatch`` what a batched signal carries.
* ``OutcomePublisher``, ``PublishOutcomeInput``, ``PublishOutcomeResult``:
  the publishing activity and its input and result, e.g. for a test that
  registers a fake ``publish_outcome`` under the same name.

Extending relayflow's tools (``Application.extensions``; each a protocol an
application's object satisfies by shape):

* ``VerifyChecks``: which outcomes end a workflow, and checks of the
  application's own, for ``relayflow verify``; it is given ``Flow`` objects
  and returns ``Violation`` objects.
* ``StatusQueries``: which workflow queries ``relayflow status`` asks.
* ``InputProducers``: which principal alone writes an input topic on the
  secured dev broker.
* ``BatchFailures``: where ``relayflow batch-failures`` finds a batch's failed items.
* ``Demo``: what ``relayflow demo`` runs.
* ``Settings``: relayflow's settings, which the protocols' methods are given.

Talking to Kafka from an application's own tools (a demo, a script):

* ``kafka_clients``: the ``KafkaClients`` the settings describe (security
  included); ``event_codec``: the application's codec with the configured
  schema registry; ``send_event``: send one event framed as relayflow frames
  it; ``read_key``: one key's records on some topics, as ``StoredRecord``
  objects (values sent by claim check resolved).

``__version__`` is the installed distribution's version.

Every name is imported on first use: importing ``relayflow`` itself costs
next to nothing, which matters because Temporal's workflow sandbox imports
the package of every workflow module (``relayflow`` among them) for each
workflow run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from activities.endings import ClosedExecution, Ending
    from activities.metrics import WorkerMetrics
    from activities.outcomes import OutcomePublisher, PublishOutcomeInput, PublishOutcomeResult
    from bridge.routes import Action, IdReuse, Route
    from relayflow.application import (
        ActivityFactory,
        Application,
        WorkerResources,
        load_application,
    )
    from relayflow.config import Settings
    from relayflow.devstack.demo import Demo
    from relayflow.devstack.secure import InputProducers
    from relayflow.kafka.clients import KafkaClients
    from relayflow.kafka.reads import StoredRecord, read_key
    from relayflow.kafka.sends import send_event
    from relayflow.operate.batches import BatchFailures
    from relayflow.operate.status import StatusQueries
    from relayflow.operate.verify import Flow, VerifyChecks, Violation
    from relayflow.runtime.bootstrap import event_codec
    from relayflow.runtime.clients import kafka_clients
    from schemas.codec import AvroCodec
    from schemas.dead_letters import DlqReason
    from schemas.envelope import EventMeta, Inbound, InboundBatch
    from schemas.formats import EventCodec, FormatCodec, SchemaFormat
    from schemas.models import Event, Key, Outcome, Record, UtcDatetime
    from schemas.replies import Reply, ReplyReason, RequestFailed
    from schemas.topics import Topic, dlq_topic
    from workflows.entities import (
        ENTITY_QUERY,
        ENTITY_SIGNAL,
        EntityCarry,
        EntityEnd,
        EntityOptions,
        EntityView,
        EntityWorkflow,
    )
    from workflows.outcomes import (
        PUBLISH_RETRY,
        PUBLISH_TIMEOUT,
        outcome_event_id,
        publish_outcome,
    )
    from workflows.replies import reply, reply_id

    __version__: str

__all__ = [
    "ENTITY_QUERY",
    "ENTITY_SIGNAL",
    "PUBLISH_RETRY",
    "PUBLISH_TIMEOUT",
    "Action",
    "ActivityFactory",
    "Application",
    "AvroCodec",
    "BatchFailures",
    "ClosedExecution",
    "Demo",
    "DlqReason",
    "Ending",
    "EntityCarry",
    "EntityEnd",
    "EntityOptions",
    "EntityView",
    "EntityWorkflow",
    "Event",
    "EventCodec",
    "EventMeta",
    "Flow",
    "FormatCodec",
    "IdReuse",
    "Inbound",
    "InboundBatch",
    "InputProducers",
    "KafkaClients",
    "Key",
    "Outcome",
    "OutcomePublisher",
    "PublishOutcomeInput",
    "PublishOutcomeResult",
    "Record",
    "Reply",
    "ReplyReason",
    "RequestFailed",
    "Route",
    "SchemaFormat",
    "Settings",
    "StatusQueries",
    "StoredRecord",
    "Topic",
    "UtcDatetime",
    "VerifyChecks",
    "Violation",
    "WorkerMetrics",
    "WorkerResources",
    "__version__",
    "dlq_topic",
    "event_codec",
    "kafka_clients",
    "load_application",
    "outcome_event_id",
    "publish_outcome",
    "read_key",
    "reply",
    "reply_id",
    "send_event",
]

_HOME = {
    **dict.fromkeys(("ClosedExecution", "Ending"), "activities.endings"),
    "WorkerMetrics": "activities.metrics",
    **dict.fromkeys(("OutcomePublisher", "PublishOutcomeInput", "PublishOutcomeResult"),
                    "activities.outcomes"),
    **dict.fromkeys(("Action", "IdReuse", "Route"), "bridge.routes"),
    **dict.fromkeys(("ActivityFactory", "Application", "WorkerResources", "load_application"),
                    "relayflow.application"),
    "Settings": "relayflow.config",
    "Demo": "relayflow.devstack.demo",
    "KafkaClients": "relayflow.kafka.clients",
    **dict.fromkeys(("StoredRecord", "read_key"), "relayflow.kafka.reads"),
    "send_event": "relayflow.kafka.sends",
    "event_codec": "relayflow.runtime.bootstrap",
    "kafka_clients": "relayflow.runtime.clients",
    "InputProducers": "relayflow.devstack.secure",
    "BatchFailures": "relayflow.operate.batches",
    "StatusQueries": "relayflow.operate.status",
    **dict.fromkeys(("Flow", "VerifyChecks", "Violation"), "relayflow.operate.verify"),
    "AvroCodec": "schemas.codec",
    **dict.fromkeys(("EventCodec", "FormatCodec", "SchemaFormat"), "schemas.formats"),
    "DlqReason": "schemas.dead_letters",
    **dict.fromkeys(("EventMeta", "Inbound", "InboundBatch"), "schemas.envelope"),
    **dict.fromkeys(("Event", "Key", "Outcome", "Record", "UtcDatetime"), "schemas.models"),
    **dict.fromkeys(("Topic", "dlq_topic"), "schemas.topics"),
    **dict.fromkeys(("ENTITY_QUERY", "ENTITY_SIGNAL", "EntityCarry", "EntityEnd",
                     "EntityOptions", "EntityView", "EntityWorkflow"), "workflows.entities"),
    **dict.fromkeys(("PUBLISH_RETRY", "PUBLISH_TIMEOUT", "outcome_event_id", "publish_outcome"),
                    "workflows.outcomes"),
    **dict.fromkeys(("Reply", "ReplyReason", "RequestFailed"), "schemas.replies"),
    **dict.fromkeys(("reply", "reply_id"), "workflows.replies"),
}
"""Public name → the module that defines it."""

_UNKNOWN_VERSION = "0+unknown"
"""``__version__`` when relayflow runs from a source tree that was never installed."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415 - on first use

    try:
        return version(__name__)
    except PackageNotFoundError:
        return _UNKNOWN_VERSION


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (and keep it here)."""
    if name == "__version__":
        found: Any = _version()
    elif name in _HOME:
        found = getattr(importlib.import_module(_HOME[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = found
    return found


def __dir__() -> list[str]:
    """The public names, with the module's own attributes."""
    return sorted({*globals(), *__all__})
