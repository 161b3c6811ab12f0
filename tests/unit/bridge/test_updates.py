"""Requests without I/O: update routes, where a reply goes, and what it says."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from bridge.failures import PermanentFailure
from bridge.routes import Action, Route, RouteTable
from bridge.updates import failed_reply, reply_topic, result_reply
from relayflow.application import Application
from schemas import Event, EventMeta, Inbound
from schemas.dead_letters import DlqReason
from schemas.headers import REPLY_TO
from schemas.replies import Reply, ReplyReason, RequestFailed, reply_event_id
from tests.helpers.counters.app import APP, MOBILE_REPLIES, OUTCOMES, REPLIES, REQUESTS
from tests.helpers.counters.events import AddToCounter, CounterAdded, CounterOpened

ROUTES = APP.route_table()
ADD = ROUTES.routes[(REQUESTS, AddToCounter.avro_name)]
DECLARED = ROUTES.reply_topics.keys()
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def request(amount: int = 5, correlation_id: str = "cart-9") -> Inbound[Event]:
    event = AddToCounter(event_id=uuid.uuid4(), occurred_at=NOW, counter_id="C-1",
                         amount=amount)
    return cast("Inbound[Event]", Inbound[AddToCounter](event=event, meta=EventMeta(
        event_type=AddToCounter.avro_name, event_id=str(event.event_id),
        correlation_id=correlation_id, topic=REQUESTS, partition=0, offset=7)))


def added(inbound: Inbound[Event], **changes: object) -> dict[str, object]:
    event = CounterAdded(
        event_id=reply_event_id(inbound.meta.event_id, CounterAdded.avro_name), occurred_at=NOW,
        correlation_id="cart-9", causation_id=inbound.meta.event_id, counter_id="C-1",
        amount=5, total=5, applied=1)
    return {**event.model_dump(mode="json"), **changes}


# Where the reply goes.

def test_without_reply_to_the_reply_goes_to_the_route_s_topic() -> None:
    assert reply_topic(ADD, [("correlation-id", b"x")], DECLARED) == REPLIES


def test_reply_to_may_name_another_declared_reply_topic() -> None:
    assert reply_topic(ADD, [(REPLY_TO, MOBILE_REPLIES.encode())], DECLARED) == MOBILE_REPLIES


@pytest.mark.parametrize(("headers", "why"), [
    ([(REPLY_TO, OUTCOMES.encode())], "is not a declared reply topic"),  # an output topic
    ([(REPLY_TO, REQUESTS.encode())], "is not a declared reply topic"),  # an input: a loop
    ([(REPLY_TO, b"payments.commands")], "is not a declared reply topic"),
    ([(REPLY_TO, b"")], "is not a declared reply topic"),
    ([(REPLY_TO, None)], "is not a declared reply topic"),
    ([(REPLY_TO, REPLIES.encode()), (REPLY_TO, MOBILE_REPLIES.encode())], "2 reply-to headers"),
    ([(REPLY_TO, b"\xff\xfe")], "not UTF-8"),
])
def test_a_reply_to_the_application_does_not_declare_is_refused(
        headers: list[tuple[str, bytes | None]], why: str) -> None:
    with pytest.raises(PermanentFailure, match=why) as refused:
        reply_topic(ADD, headers, DECLARED)
    assert refused.value.reason is DlqReason.REPLY_TO_REFUSED


# What the reply says.

def test_a_failure_reply_names_the_request_and_has_a_deterministic_id() -> None:
    inbound = request()
    answer = failed_reply(ADD, inbound, ReplyReason.REJECTED, "no", "NotPositive", now=NOW)
    again = failed_reply(ADD, inbound, ReplyReason.REJECTED, "no", "NotPositive", now=NOW)

    assert answer == again
    assert answer.result == "rejected"
    event = answer.event
    assert isinstance(event, RequestFailed)
    assert event.event_id == reply_event_id(inbound.meta.event_id, "rejected")
    assert (event.correlation_id, event.causation_id) == ("cart-9", inbound.meta.event_id)
    assert (event.request_key, event.request_type, event.workflow_id, event.update) == (
        "C-1", AddToCounter.avro_name, "counter-C-1", "add")
    assert (event.reason, event.error_type, event.message) == ("rejected", "NotPositive", "no")
    assert event.key == "C-1"
    other = failed_reply(ADD, inbound, ReplyReason.TIMED_OUT, "slow", now=NOW).event
    assert other.event_id != event.event_id  # another answer to the same request


def test_a_long_error_message_is_cut() -> None:
    event = failed_reply(ADD, request(), ReplyReason.FAILED, "x" * 5000, now=NOW).event
    assert isinstance(event, RequestFailed)
    assert len(event.message) == 1000


def test_the_update_s_reply_becomes_its_event() -> None:
    inbound = request()
    result = Reply(event_type=CounterAdded.avro_name, event=added(inbound)).model_dump()

    answer = result_reply(ADD, inbound, result, APP.codec(), ROUTES.reply_topics[REPLIES])

    assert answer.result == "replied"
    assert answer.event == CounterAdded.model_validate(added(inbound))


@pytest.mark.parametrize(("result", "why"), [
    (None, "returned no Reply"),
    ({"total": 5}, "returned no Reply"),
    ({"event_type": CounterOpened.avro_name, "event": {}}, "not a reply its topic declares"),
    ({"event_type": RequestFailed.avro_name, "event": {}}, "not a reply its topic declares"),
    ({"event_type": "nobody.Knows", "event": {}}, "not a reply its topic declares"),
    ("invalid fields", "CounterAdded"),
])
def test_a_result_that_is_no_declared_valid_reply_is_answered_failed(result: object,
                                                                      why: str) -> None:
    inbound = request()
    if result == "invalid fields":
        result = {"event_type": CounterAdded.avro_name, "event": added(inbound, total="many")}

    answer = result_reply(ADD, inbound, result, APP.codec(), ROUTES.reply_topics[REPLIES])

    event = answer.event
    assert isinstance(event, RequestFailed)
    assert (event.reason, event.error_type) == ("failed", "InvalidReply")
    assert why in event.message


def test_the_application_s_codec_speaks_the_framework_reply() -> None:
    codec = APP.codec()
    event = failed_reply(ADD, request(), ReplyReason.WORKFLOW_CLOSED, "closed", now=NOW).event
    assert codec.decode(codec.encode(event)) == event


# Update routes in the routing table and the application.

@pytest.mark.parametrize(("changes", "complaint"), [
    ({"update": None}, "must name an update and a reply topic"),
    ({"reply_topic": None}, "must name an update and a reply topic"),
    ({"action": Action.START}, "must not name an update and a reply topic"),
    ({"reply_within": timedelta(0)}, "is not within"),
    ({"reply_within": timedelta(seconds=61)}, "is not within"),
    ({"reply_topic": OUTCOMES}, f"reply topic {OUTCOMES!r} is not a declared reply topic"),
])
def test_a_bad_update_route_is_refused(changes: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        RouteTable([dataclasses.replace(ADD, **changes)], reply_topics=ROUTES.reply_topics)  # type: ignore[arg-type]


def test_an_update_the_workflow_does_not_define_is_caught() -> None:
    wrong = dataclasses.replace(ADD, update="subtract")
    with pytest.raises(ValueError, match="has no update 'subtract'"):
        dataclasses.replace(APP, routes=(*APP.routes[:2], wrong))


def test_a_reply_topic_is_never_an_input() -> None:
    [requests, *others] = APP.topics
    with pytest.raises(ValueError, match=f"reply topic {REQUESTS!r} is an input topic"):
        dataclasses.replace(APP, topics=(dataclasses.replace(requests, replies=True), *others))


def test_update_routes_and_their_reply_topics_as_the_application_declares_them() -> None:
    assert isinstance(APP, Application)
    assert dict(ROUTES.reply_topics) == {REPLIES: {CounterAdded.avro_name},
                                         MOBILE_REPLIES: {CounterAdded.avro_name}}
    route = ROUTES.lookup(REQUESTS, AddToCounter.avro_name)
    assert route == Route(REQUESTS, AddToCounter, Action.UPDATE, "CounterWorkflow",
                          "counter-{counter_id}", update="add", reply_topic=REPLIES,
                          reply_within=timedelta(seconds=3))
