"""The parcels application: what ``relayflow run --app examples.parcels.app:APP`` runs."""

from __future__ import annotations

from pathlib import Path

from examples.parcels.events import EVENT_TYPES, ParcelClosed, ParcelDelivered, ParcelShipped
from examples.parcels.workflows import DELIVERED_SIGNAL, PARCELS_OUTCOMES, ParcelWorkflow
from relayflow import Action, Application, Route, Topic

__all__ = ["APP", "PARCELS_EVENTS", "ROUTES", "SCHEMA_FOLDER", "TOPICS"]

SCHEMA_FOLDER = Path(__file__).resolve().parent / "schemas"
"""``parcels.proto`` and ``ParcelDelivered.json``: the contract's source of truth."""

PARCELS_EVENTS = "parcels.events"
"""What carriers report: ``ParcelShipped`` (Protobuf), ``ParcelDelivered`` (JSON Schema)."""

TOPICS: tuple[Topic, ...] = (
    Topic(PARCELS_EVENTS, 3, inbound=True,
          events=(ParcelShipped.avro_name, ParcelDelivered.avro_name)),
    Topic(PARCELS_OUTCOMES, 3, inbound=False, events=(ParcelClosed.avro_name,)),
)
"""The application's own topics (each input gets a ``.dlq`` from relayflow)."""

ROUTES = (
    #     topic           event type       action         workflow          workflow id
    Route(PARCELS_EVENTS, ParcelShipped,   Action.START,  "ParcelWorkflow", "parcel-{parcel_id}"),
    Route(PARCELS_EVENTS, ParcelDelivered, Action.SIGNAL, "ParcelWorkflow", "parcel-{parcel_id}",
          DELIVERED_SIGNAL),
)
"""The routing table: a shipped parcel starts its workflow, its delivery signals it."""

APP = Application(
    name="parcels",
    event_types=EVENT_TYPES,
    topics=TOPICS,
    routes=ROUTES,
    schema_folder=SCHEMA_FOLDER,
    workflows=(ParcelWorkflow,),
)
"""The parcels application (``RELAYFLOW_APP=examples.parcels.app:APP``)."""
