"""Applications: routes checked against the workflows a worker registers, loading, topics."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from temporalio import workflow

from bridge.routes import Action, Route
from relayflow.application import Application, Ending, load_application
from relayflow.config.settings import Settings
from relayflow.reference.app import APP, ROUTES, WORKFLOWS
from relayflow.reference.endings import order_ended
from relayflow.reference.events import (
    ApprovalDecided,
    ApprovalDecisionRefused,
    BatchRequested,
    OrderFailed,
    OrderPlaced,
)
from relayflow.reference.topics import APPROVALS_DECISIONS, ORDERS_EVENTS, ORDERS_OUTCOMES, TOPICS
from relayflow.reference.workflows.approval import APPROVAL_SIGNAL
from schemas.topics import PARKED_KEYS, dlq_topic
from tests.helpers.support import order_placed


def test_the_reference_routes_address_registered_workflows_and_signals() -> None:
    assert APP.problems() == []
    signals = APP.workflow_signals()
    for route in ROUTES.routes.values():
        assert route.workflow in signals
        if route.signal:
            assert route.signal in signals[route.workflow]
    assert signals["OrderSaga"] == {APPROVAL_SIGNAL}


def test_settings_name_the_reference_application_by_default() -> None:
    assert load_application(Settings().app) is APP


def _with_routes(*routes: Route) -> Application:
    return dataclasses.replace(APP, routes=(*APP.routes, *routes))


@pytest.mark.parametrize(("route", "complaint"), [
    (Route(ORDERS_EVENTS, OrderPlaced, Action.START, "OrderSgaa", "o-{order_id}"),
     "no workflow 'OrderSgaa' is registered"),
    (Route(APPROVALS_DECISIONS, ApprovalDecided, Action.SIGNAL_WITH_START, "OrderSaga",
           "order-{order_id}", "approval_decidd"),
     "has no signal 'approval_decidd'"),
    (Route(ORDERS_OUTCOMES, OrderPlaced, Action.START, "OrderSaga", "order-{order_id}"),
     "is not an input topic"),
], ids=["unknown-workflow", "unknown-signal", "output-topic"])
def test_a_route_that_no_worker_serves_is_refused(route: Route, complaint: str) -> None:
    with pytest.raises(ValueError, match="is inconsistent") as raised:
        _with_routes(route)
    assert complaint in str(raised.value)


@pytest.mark.parametrize(("ending", "complaint"), [
    (Ending("OrderSgaa", ORDERS_OUTCOMES, (OrderFailed,), order_ended),
     "ending of OrderSgaa: the application's worker registers no such workflow"),
    (Ending("OrderSaga", ORDERS_EVENTS, (OrderFailed,), order_ended),
     "ending of OrderSaga: 'orders.events' is not an output topic"),
    (Ending("OrderSaga", ORDERS_OUTCOMES, (ApprovalDecisionRefused,), order_ended),
     "ending of OrderSaga: ApprovalDecisionRefused is not an event type"),
    (APP.endings[0], "more than one ending for a workflow type"),
], ids=["unknown-workflow", "input-topic", "unknown-event", "twice"])
def test_an_ending_the_worker_cannot_sweep_is_refused(ending: Ending, complaint: str) -> None:
    known = [model for model in APP.event_types if model is not ApprovalDecisionRefused]
    with pytest.raises(ValueError, match="is inconsistent") as raised:
        dataclasses.replace(APP, endings=(*APP.endings, ending), event_types=known)
    assert complaint in str(raised.value)


def test_a_routed_event_type_must_be_one_of_the_application_s() -> None:
    with pytest.raises(ValueError, match="BatchRequested is not an event type"):
        dataclasses.replace(APP, event_types=(OrderPlaced, ApprovalDecided),
                            routes=[r for r in APP.routes if r.event_type is BatchRequested])


def test_workflows_run_elsewhere_are_declared_with_their_signals() -> None:
    elsewhere = Route(ORDERS_EVENTS, OrderPlaced, Action.SIGNAL, "GoSaga", "go-{order_id}",
                      "poke")
    with pytest.raises(ValueError, match="no workflow 'GoSaga'"):
        _with_routes(elsewhere)
    app = dataclasses.replace(APP, routes=(elsewhere,), external_workflows={"GoSaga": {"poke"}})
    assert app.route_table().lookup(ORDERS_EVENTS, OrderPlaced.avro_name) == elsewhere


@workflow.defn(name="Quiet")
class Quiet:
    """A workflow with no signal at all."""

    @workflow.run
    async def run(self) -> None:
        """Nothing."""


def test_a_signal_the_workflow_class_does_not_define_is_caught() -> None:
    route = Route(ORDERS_EVENTS, OrderPlaced, Action.SIGNAL, "Quiet", "q-{order_id}", "wake")
    with pytest.raises(ValueError, match="workflow Quiet has no signal 'wake'"):
        dataclasses.replace(APP, routes=(route,), workflows=(*WORKFLOWS, Quiet))


def test_all_topics_adds_a_dlq_per_input_and_the_parked_keys() -> None:
    names = {topic.name: topic for topic in APP.all_topics()}
    assert set(names) == {topic.name for topic in TOPICS}
    for name in APP.input_topics:
        assert names[dlq_topic(name)].partitions == names[name].partitions
    assert names[PARKED_KEYS].compacted


def test_the_codec_knows_every_event_type() -> None:
    event = order_placed()
    assert APP.codec().decode(APP.codec().encode(event)) == event


@pytest.mark.parametrize(("spec", "error", "message"), [
    ("relayflow.reference", ValueError, "expected 'module:attribute'"),
    ("relayflow.reference:ROUTES", TypeError, "not a relayflow Application"),
    ("relayflow.reference:NOPE", TypeError, "NoneType"),
    ("no_such_module:APP", ImportError, "no_such_module"),
])
def test_loading_a_bad_spec_says_what_is_wrong(spec: str, error: type[Exception],
                                               message: str) -> None:
    with pytest.raises(error, match=message):
        load_application(spec)


def test_an_application_in_the_working_folder_needs_no_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "team_app_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text("from relayflow.reference.app import APP as REUSED\n")
    monkeypatch.chdir(tmp_path)
    # As under a console script: neither '' nor the working folder on sys.path.
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in {"", str(tmp_path)}])
    assert load_application("team_app_probe.app:REUSED") is APP
