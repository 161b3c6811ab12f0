"""The routing table: what it routes today, and the mistakes it refuses at build time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from bridge.routes import Action, Route, RouteTable
from relayflow.reference.app import ROUTES
from relayflow.reference.events import ApprovalDecided, OrderCancelled, OrderPlaced
from relayflow.reference.topics import (
    APPROVALS_DECISIONS,
    BATCHES_REQUESTS,
    INPUT_TOPICS,
    ORDERS_EVENTS,
)
from tests.helpers.support import order_placed


def test_order_placed_starts_the_saga_of_its_order() -> None:
    route = ROUTES.lookup(ORDERS_EVENTS, OrderPlaced.avro_name)
    assert route is not None
    assert (route.action, route.workflow, route.signal) == (Action.START, "OrderSaga", None)
    assert route.id_for(order_placed("A-9")) == "order-A-9"


def test_order_cancelled_cancels_the_saga_of_its_order() -> None:
    route = ROUTES.lookup(ORDERS_EVENTS, OrderCancelled.avro_name)
    assert route is not None
    assert (route.action, route.workflow) == (Action.CANCEL, "OrderSaga")
    cancelled = OrderCancelled(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), order_id="A-9")
    assert route.id_for(cancelled) == "order-A-9"


def test_lookup_is_per_topic() -> None:
    assert ROUTES.lookup(APPROVALS_DECISIONS, OrderPlaced.avro_name) is None
    assert ROUTES.lookup(ORDERS_EVENTS, ApprovalDecided.avro_name) is None
    assert ROUTES.topics == [ORDERS_EVENTS, APPROVALS_DECISIONS, BATCHES_REQUESTS]


def test_approval_decisions_signal_the_waiting_saga() -> None:
    route = ROUTES.lookup(APPROVALS_DECISIONS, ApprovalDecided.avro_name)
    assert route is not None
    assert (route.action, route.workflow, route.signal) == (
        Action.SIGNAL, "OrderSaga", "approval_decided")


def test_a_route_is_one_line() -> None:
    table = RouteTable([
        *(r for r in ROUTES.routes.values() if r.event_type is not ApprovalDecided),
        Route(APPROVALS_DECISIONS, ApprovalDecided, Action.SIGNAL_WITH_START, "OrderSaga",
              "order-{order_id}", signal="approval_decided"),
    ])
    route = table.lookup(APPROVALS_DECISIONS, ApprovalDecided.avro_name)
    assert route is not None
    assert route.action is Action.SIGNAL_WITH_START


def test_id_templates_may_combine_fields() -> None:
    route = Route(ORDERS_EVENTS, OrderPlaced, Action.START, "W", "{customer_id}/{order_id}")
    assert route.id_for(order_placed("A-1")) == "c-1/A-1"


@pytest.mark.parametrize(
    ("routes", "complaint"),
    [
        ([Route(ORDERS_EVENTS, OrderPlaced, Action.START, "W", "order-{nope}")],
         "unknown fields ['nope']"),
        ([Route(ORDERS_EVENTS, OrderPlaced, Action.START, "W", "order-{items[0]}")],
         "unknown fields"),
        ([Route(ORDERS_EVENTS, OrderPlaced, Action.START, "W", "the-one")], "names no field"),
        ([Route(ORDERS_EVENTS, OrderPlaced, Action.SIGNAL, "W", "o-{order_id}")],
         "must name a signal"),
        ([Route(ORDERS_EVENTS, OrderPlaced, Action.SIGNAL_WITH_START, "W", "o-{order_id}",
                signal="")], "must name a signal"),
        ([Route(ORDERS_EVENTS, OrderPlaced, Action.CANCEL, "W", "o-{order_id}", signal="s")],
         "must not name a signal"),
        ([Route(ORDERS_EVENTS, OrderPlaced, Action.START, "", "o-{order_id}")], "no workflow"),
        ([Route("orders.evnets", OrderPlaced, Action.START, "W", "o-{order_id}")],
         "unknown input topic"),
        ([Route(ORDERS_EVENTS, OrderPlaced, Action.START, "W", "o-{order_id}"),
          Route(ORDERS_EVENTS, OrderPlaced, Action.CANCEL, "W", "o-{order_id}")],
         "two routes for OrderPlaced"),
    ],
    ids=["unknown-field", "indexed-field", "constant-id", "signal-without-name",
         "signal-with-start-empty-name", "name-without-signal", "no-workflow", "typo-topic",
         "duplicate"],
)
def test_bad_tables_fail_at_build_time(routes: list[Route], complaint: str) -> None:
    with pytest.raises(ValueError, match=r"invalid routing table") as raised:
        RouteTable(routes, known_topics=INPUT_TOPICS)
    assert complaint in str(raised.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValueError, match=r"invalid routing table") as raised:
        RouteTable([Route("nowhere", OrderPlaced, Action.SIGNAL, "W", "{nope}")],
                   known_topics=INPUT_TOPICS)
    message = str(raised.value)
    assert "unknown fields" in message
    assert "must name a signal" in message
    assert "unknown input topic" in message


def test_same_event_on_two_topics_is_two_routes() -> None:
    table = RouteTable([
        Route(ORDERS_EVENTS, OrderPlaced, Action.START, "W", "o-{order_id}"),
        Route(APPROVALS_DECISIONS, OrderPlaced, Action.START, "W", "o-{order_id}"),
    ])
    assert len(table.routes) == 2


def test_a_table_without_known_topics_takes_any_topic() -> None:
    # A library user's own topics: the application, not the bridge, knows them.
    table = RouteTable([Route("tickets.events", OrderPlaced, Action.START, "W", "o-{order_id}")])
    assert table.topics == ["tickets.events"]
