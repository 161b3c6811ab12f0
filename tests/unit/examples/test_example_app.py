"""The tickets example (``examples.tickets``): a valid Application, its contract, its workflow.

The workflow runs in Temporal's time-skipping server with the real
``assign_agent`` activity and a same-named fake of ``publish_outcome``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.outcomes import PublishOutcomeInput, PublishOutcomeResult
from bridge.routes import Action, Route
from examples.tickets.activities import AgentAssignment, AssignAgentInput, TicketDesk
from examples.tickets.app import APP, ROUTES
from examples.tickets.events import (
    EVENT_TYPES,
    TicketAnswered,
    TicketExpired,
    TicketOpened,
    TicketResolved,
)
from examples.tickets.topics import TICKETS_EVENTS, TICKETS_OUTCOMES
from examples.tickets.workflows import ANSWERED_SIGNAL, TicketResult, TicketWorkflow
from schemas import Event, EventMeta, Inbound
from schemas.replies import RequestFailed
from schemas.topics import PARKED_KEYS, dlq_topic
from workflows.outcomes import outcome_event_id

EventT = TypeVar("EventT", bound=Event)
NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def opened(ticket_id: str = "T-1", *, within: int = 3600) -> TicketOpened:
    return TicketOpened(event_id=uuid.uuid4(), occurred_at=NOW, ticket_id=ticket_id,
                        customer_id="c-7", subject="printer on fire", priority="URGENT",
                        answer_within_seconds=within)


def answered(ticket_id: str = "T-1") -> TicketAnswered:
    return TicketAnswered(event_id=uuid.uuid4(), occurred_at=NOW, ticket_id=ticket_id,
                          answered_by="grace", answer="unplug it")


def inbound(event: EventT) -> Inbound[EventT]:
    return Inbound[EventT](event=event, meta=EventMeta(
        event_type=event.avro_name, event_id=str(event.event_id), correlation_id="corr-1",
        topic=TICKETS_EVENTS))


def test_the_tickets_app_is_consistent() -> None:
    assert APP.problems() == []
    assert APP.input_topics == (TICKETS_EVENTS,)
    assert {t.name for t in APP.all_topics()} == {
        TICKETS_EVENTS, TICKETS_OUTCOMES, dlq_topic(TICKETS_EVENTS), PARKED_KEYS}
    table = APP.route_table()
    start = table.lookup(TICKETS_EVENTS, TicketOpened.avro_name)
    signal = table.lookup(TICKETS_EVENTS, TicketAnswered.avro_name)
    assert start is not None
    assert (start.action, start.id_for(opened("T-9"))) == (Action.START, "ticket-T-9")
    assert signal is not None
    assert (signal.action, signal.signal) == (Action.SIGNAL, ANSWERED_SIGNAL)
    assert APP.workflow_signals() == {"TicketWorkflow": frozenset({ANSWERED_SIGNAL})}


def test_a_route_to_an_unregistered_workflow_is_refused() -> None:
    stray = Route(TICKETS_EVENTS, TicketOpened, Action.START, "TicketTriage", "triage-{ticket_id}")
    with pytest.raises(ValueError, match="no workflow 'TicketTriage' is registered"):
        dataclasses.replace(APP, routes=(stray, ROUTES[1]))


def test_a_signal_the_workflow_does_not_handle_is_refused() -> None:
    wrong = Route(TICKETS_EVENTS, TicketAnswered, Action.SIGNAL, "TicketWorkflow",
                  "ticket-{ticket_id}", "replied")
    with pytest.raises(ValueError, match="TicketWorkflow has no signal 'replied'"):
        dataclasses.replace(APP, routes=(ROUTES[0], wrong))


def test_a_route_for_an_event_the_app_does_not_declare_is_refused() -> None:
    with pytest.raises(ValueError, match="TicketAnswered is not an event type"):
        dataclasses.replace(APP, event_types=(TicketOpened, TicketResolved, TicketExpired))


@pytest.mark.parametrize("event", [
    opened(), answered(),
    TicketResolved(event_id=uuid.uuid4(), occurred_at=NOW, correlation_id="c", causation_id="e",
                   ticket_id="T-1", assigned_agent="ada", answered_by="grace", waited_seconds=5),
    TicketExpired(event_id=uuid.uuid4(), occurred_at=NOW, correlation_id="c", causation_id="e",
                  ticket_id="T-1", assigned_agent="ada", waited_seconds=3600),
], ids=lambda e: type(e).__name__)
def test_every_tickets_event_round_trips_through_the_apps_codec(event: Event) -> None:
    codec = APP.codec()
    # The app's events, and relayflow's own reply (every codec can read a reply topic).
    assert set(codec.event_types) == {*(model.avro_name for model in EVENT_TYPES),
                                      RequestFailed.avro_name}
    assert codec.decode(codec.encode(event)) == event
    assert event.key == "T-1"


async def test_assign_agent_is_idempotent_and_urgent_goes_to_who_is_on_call() -> None:
    desk = TicketDesk(("ada", "grace"))
    first = await desk.assign_agent(AssignAgentInput(idempotency_key="k1", ticket_id="T-1"))
    again = await desk.assign_agent(AssignAgentInput(idempotency_key="k1", ticket_id="T-1"))
    second = await desk.assign_agent(AssignAgentInput(idempotency_key="k2", ticket_id="T-2"))
    urgent = await desk.assign_agent(AssignAgentInput(idempotency_key="k3", ticket_id="T-3",
                                                      priority="URGENT"))
    assert first == again == AgentAssignment(ticket_id="T-1", agent="ada")
    assert (second.agent, urgent.agent) == ("grace", "ada")


class FakePublisher:
    """``publish_outcome`` under its registered name, recording what was published."""

    def __init__(self) -> None:
        self.published: list[PublishOutcomeInput] = []

    def activities(self) -> Sequence[Callable[..., Any]]:
        @activity.defn(name="publish_outcome")
        async def publish_outcome(request: PublishOutcomeInput) -> PublishOutcomeResult:
            self.published.append(request)
            return PublishOutcomeResult(topic=request.topic, partition=0,
                                        offset=len(self.published),
                                        event_id=str(request.event["event_id"]))
        return [publish_outcome]


async def _run(env: WorkflowEnvironment, ticket: TicketOpened,
               answer: TicketAnswered | None) -> tuple[TicketResult, list[PublishOutcomeInput]]:
    publisher = FakePublisher()
    queue = f"tickets-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=queue, workflows=[TicketWorkflow],
                      activities=[TicketDesk().assign_agent, *publisher.activities()]):
        handle = await env.client.start_workflow(
            TicketWorkflow.run, inbound(ticket), id=f"ticket-{ticket.ticket_id}",
            task_queue=queue)
        if answer is not None:
            await handle.signal(ANSWERED_SIGNAL, inbound(answer))
            await handle.signal(ANSWERED_SIGNAL, inbound(answered()))  # a later answer: ignored
        return await handle.result(), publisher.published


async def test_an_answered_ticket_resolves_once(workflow_env: WorkflowEnvironment) -> None:
    ticket, answer = opened(f"T-{uuid.uuid4().hex[:6]}"), answered()
    result, published = await _run(workflow_env, ticket, answer)
    expected_id = outcome_event_id(f"ticket-{ticket.ticket_id}", "resolved")
    assert result == TicketResult(outcome="TicketResolved", assigned_agent="ada",
                                  outcome_event_id=str(expected_id))
    [outcome] = published
    event = TicketResolved.model_validate(outcome.event)
    assert (outcome.topic, event.event_id, event.answered_by) == (TICKETS_OUTCOMES, expected_id,
                                                                  "grace")
    assert (event.correlation_id, event.causation_id) == ("corr-1", str(answer.event_id))


async def test_an_unanswered_ticket_expires_on_its_timer(workflow_env: WorkflowEnvironment) -> None:
    ticket = opened(f"T-{uuid.uuid4().hex[:6]}", within=2 * 86_400)
    result, published = await _run(workflow_env, ticket, None)
    assert result.outcome == "TicketExpired"
    [outcome] = published
    event = TicketExpired.model_validate(outcome.event)
    assert event.event_id == outcome_event_id(f"ticket-{ticket.ticket_id}", "expired")
    assert event.waited_seconds >= 2 * 86_400
