"""The tallies application (``RELAYFLOW_APP=tests.helpers.tallies.app:APP``)."""

from __future__ import annotations

from pathlib import Path

from relayflow import ENTITY_SIGNAL, Action, Application, IdReuse, Route, Topic
from tests.helpers.tallies.events import EVENT_TYPES, TallyAdded, TallyIdled
from tests.helpers.tallies.workflows import TALLIES_OUTCOMES, TallyEntity

__all__ = ["APP", "ROUTES", "TALLIES_EVENTS"]

TALLIES_EVENTS = "tallies.events"
"""``TallyAdded`` in."""

ROUTES = (
    # Entity route: signal-with-start, a closed tally may come back, up to 500 events a signal.
    Route(TALLIES_EVENTS, TallyAdded, Action.SIGNAL_WITH_START, "TallyEntity", "tally-{tally_id}",
          ENTITY_SIGNAL, id_reuse=IdReuse.AFTER_CLOSE, batch=500),
)

APP = Application(
    name="tallies",
    event_types=EVENT_TYPES,
    topics=(Topic(TALLIES_EVENTS, 3, inbound=True, events=(TallyAdded.avro_name,)),
            Topic(TALLIES_OUTCOMES, 3, inbound=False, events=(TallyIdled.avro_name,))),
    routes=ROUTES,
    schema_folder=Path(__file__).resolve().parent / "schemas",
    workflows=(TallyEntity,),
)
"""A tally entity per key."""
