"""The ending sweep's pure parts: its visibility query and its reading of a closed run's history."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import (
    ActivityTaskCompletedEventAttributes,
    HistoryEvent,
)

from activities.endings import (
    Ending,
    ending_workflow_id,
    sweep_query,
    terminal_publications,
)
from activities.outcomes import PublishOutcomeInput
from relayflow.reference.events import ApprovalRequested, OrderCompleted, OrderFailed

ENDING = Ending("OrderSaga", "orders.outcomes", (OrderCompleted, OrderFailed),
                event=lambda closed: OrderFailed.model_validate(closed.input))


def publication(event_type: str) -> PublishOutcomeInput:
    return PublishOutcomeInput(topic="orders.outcomes", event_type=event_type,
                               event={"step": event_type})


def completed(scheduled_event_id: int) -> HistoryEvent:
    return HistoryEvent(
        event_id=scheduled_event_id + 2,
        event_type=EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
        activity_task_completed_event_attributes=ActivityTaskCompletedEventAttributes(
            scheduled_event_id=scheduled_event_id))


def test_the_query_asks_for_abnormal_closes_of_the_endings_types_on_one_task_queue() -> None:
    query = sweep_query("it-'q", ["OrderSaga", "BatchWorkflow"],
                        datetime(2026, 12, 6, 4, 0, 1, 5000, tzinfo=UTC))
    assert query == (
        "ExecutionStatus IN ('Terminated', 'TimedOut', 'Failed') "
        "AND WorkflowType IN ('BatchWorkflow', 'OrderSaga') "
        "AND TaskQueue = 'it-\\'q' AND CloseTime > '2026-12-06T04:00:01.005000Z'")


def test_one_ending_workflow_per_closed_run() -> None:
    assert ending_workflow_id("order-1", "run-a") == "relayflow-ending/order-1/run-a"
    assert ending_workflow_id("order-1", "run-a") != ending_workflow_id("order-1", "run-b")


def test_a_completed_terminal_publication_means_the_run_ended_itself() -> None:
    publications = {5: publication(ApprovalRequested.avro_name),
                    9: publication(OrderFailed.avro_name)}
    assert terminal_publications([completed(5), completed(9)], publications, ENDING) == (
        True, None)


def test_a_terminal_publication_never_completed_is_sent_again_as_it_was() -> None:
    # The last one scheduled: what the workflow meant to say in the end.
    publications = {5: publication(ApprovalRequested.avro_name),
                    7: publication(OrderCompleted.avro_name),
                    9: publication(OrderFailed.avro_name)}
    assert terminal_publications([completed(5)], publications, ENDING) == (
        False, publications[9])


def test_other_publications_do_not_end_the_run() -> None:
    publications = {5: publication(ApprovalRequested.avro_name)}
    assert terminal_publications([completed(5)], publications, ENDING) == (False, None)
