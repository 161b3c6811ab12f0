"""relayflow's pytest plugin without a stack: registration, a light import, topic choice, its app.

(The project's own ``tests/conftest.py`` makes ``relayflow_app`` the reference
application; the plugin's default is the configured one.)
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import pytest

from bridge.routes import Action, Route
from examples.tickets.app import APP as TICKETS
from examples.tickets.app import ROUTES as TICKET_ROUTES
from examples.tickets.events import TicketOpened, TicketResolved
from examples.tickets.topics import TICKETS_EVENTS, TOPICS
from relayflow.application import Application
from relayflow.reference.app import APP as REFERENCE
from relayflow.reference.events import OrderPlaced
from relayflow.reference.topics import ORDERS_EVENTS
from relayflow.testing import plugin
from relayflow.testing.kafka import input_topic_for
from schemas.topics import Topic


def test_the_plugin_is_registered_for_pytest() -> None:
    found = {e.name: e.value for e in importlib.metadata.entry_points(group="pytest11")}
    assert found.get("relayflow") == "relayflow.testing.plugin"


def test_pytest_loaded_it_and_its_app_is_relayflows_own(request: pytest.FixtureRequest) -> None:
    assert request.config.pluginmanager.get_plugin("relayflow") is plugin
    assert request.getfixturevalue("relayflow_app") is REFERENCE
    assert set(plugin.__all__) == {"relayflow_stack", "relayflow_app", "relayflow_system",
                                   "relayflow_kafka", "relayflow_tracer_provider",
                                   "relayflow_memory", "relayflow_time_skipping",
                                   "configured_application"}
    assert request.getfixturevalue("relayflow_tracer_provider") is None  # tracing as set


def test_importing_the_plugin_pulls_in_no_client_library() -> None:
    heavy = ["temporalio", "aiokafka", "faststream", "fastavro", "pydantic",
             "relayflow.config.settings"]
    code = ("import sys, json, relayflow.testing.plugin, relayflow.testing\n"
            f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert json.loads(result.stdout) == []


def test_the_topic_of_an_event_is_the_one_its_route_reads() -> None:
    assert input_topic_for(TICKETS, TicketOpened) == TICKETS_EVENTS
    assert input_topic_for(REFERENCE, OrderPlaced) == ORDERS_EVENTS


def test_an_event_no_input_topic_takes_needs_a_topic() -> None:
    with pytest.raises(ValueError, match="no route or input topic takes TicketResolved"):
        input_topic_for(TICKETS, TicketResolved)


def test_an_event_two_topics_take_needs_a_topic() -> None:
    mirror = Topic("tickets.mirror", 1, inbound=True, events=(TicketOpened.avro_name,))
    app = Application(
        name="twice", event_types=TICKETS.event_types, topics=(*TOPICS, mirror),
        routes=(*TICKET_ROUTES, Route(mirror.name, TicketOpened, Action.START,
                                      "TicketWorkflow", "ticket-{ticket_id}")),
        workflows=TICKETS.workflows, schema_folder=TICKETS.schema_folder)
    with pytest.raises(ValueError, match=r"2 topics \(tickets.events, tickets.mirror\) take"):
        input_topic_for(app, TicketOpened)


def test_the_default_app_is_the_configured_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYFLOW_APP", "examples.tickets.app:APP")
    assert plugin.configured_application() is TICKETS
    monkeypatch.setenv("RELAYFLOW_APP", "examples.tickets.app:ROUTES")
    with pytest.raises(TypeError, match="not a relayflow Application"):
        plugin.configured_application()
