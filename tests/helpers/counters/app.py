"""The counters test application: requests answered on reply topics."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from relayflow import Action, Application, Route, Topic
from tests.helpers.counters.events import (
    EVENT_TYPES,
    AddToCounter,
    CounterAdded,
    CounterClosed,
    CounterOpened,
    OpenAndAdd,
)
from tests.helpers.counters.workflows import CounterWorkflow

__all__ = ["APP", "MOBILE_REPLIES", "OUTCOMES", "REPLIES", "REPLY_WITHIN", "REQUESTS"]

REQUESTS = "counters.requests"
REPLIES = "counters.replies"
"""The routes' reply topic."""
MOBILE_REPLIES = "counters.replies.mobile"
"""Another declared reply topic: a ``reply-to`` header may name it."""
OUTCOMES = "counters.outcomes"
"""An output topic that is no reply topic: a ``reply-to`` naming it is refused."""
REPLY_WITHIN = timedelta(seconds=3)
"""The requests' bound: a request holding longer gets a ``timed-out`` reply."""

_WORKFLOW, _ID = "CounterWorkflow", "counter-{counter_id}"

APP = Application(
    name="counters",
    event_types=EVENT_TYPES,
    topics=(
        Topic(REQUESTS, 3, inbound=True, events=tuple(m.avro_name for m in (
            CounterOpened, CounterClosed, AddToCounter, OpenAndAdd))),
        Topic(REPLIES, 3, inbound=False, events=(CounterAdded.avro_name,), replies=True),
        Topic(MOBILE_REPLIES, 1, inbound=False, events=(CounterAdded.avro_name,), replies=True),
        Topic(OUTCOMES, 1, inbound=False, events=(CounterAdded.avro_name,)),
    ),
    routes=(
        Route(REQUESTS, CounterOpened, Action.START, _WORKFLOW, _ID),
        Route(REQUESTS, CounterClosed, Action.SIGNAL, _WORKFLOW, _ID, "close"),
        Route(REQUESTS, AddToCounter, Action.UPDATE, _WORKFLOW, _ID, update="add",
              reply_topic=REPLIES, reply_within=REPLY_WITHIN),
        Route(REQUESTS, OpenAndAdd, Action.UPDATE_WITH_START, _WORKFLOW, _ID,
              update="open_and_add", reply_topic=REPLIES, reply_within=REPLY_WITHIN),
    ),
    schema_folder=Path(__file__).resolve().parent / "schemas",
    workflows=(CounterWorkflow,),
)
"""Counters: each request adds to one counter's workflow and is answered on a reply topic."""
