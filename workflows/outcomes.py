"""Publishing a workflow's outcome events: the one way every workflow does it.

A workflow publishes through the ``publish_outcome`` activity (relayflow's
outcome publisher registers it on every worker), with a deterministic event
id (``outcome_event_id``), so a retried publish or a replayed workflow
produces the same ``event-id`` and subscribers can drop the duplicate.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.outcomes import OutcomePublisher, PublishOutcomeInput
    from schemas import Event

__all__ = [
    "OUTCOME_NAMESPACE",
    "PUBLISH_RETRY",
    "PUBLISH_TIMEOUT",
    "outcome_event_id",
    "publish_outcome",
    "publish_prepared_outcome",
]

OUTCOME_NAMESPACE = uuid.UUID("6f1c3c52-7b7e-4d59-9d0b-0d7f2a5f9a11")
"""uuid5 namespace of outcome event ids."""

PUBLISH_TIMEOUT = timedelta(seconds=15)
"""One acks=all produce, including the producer's own retries of a broker hiccup."""

PUBLISH_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["InvalidOutcome"],
)
"""Outcomes must get out: no attempt limit, except for an event that can never be valid."""


def outcome_event_id(workflow_id: str, outcome: str) -> uuid.UUID:
    """Deterministic id of an outcome event: the same on every replay and retry."""
    return uuid.uuid5(OUTCOME_NAMESPACE, f"{workflow_id}/{outcome}")


async def publish_outcome(topic: str, event: Event, traceparent: str, *,
                          attempt_timeout: timedelta = PUBLISH_TIMEOUT) -> None:
    """Publish a workflow's outcome event through the ``publish_outcome`` activity.

    Args:
        topic: The outcome topic.
        event: The event; its id must be deterministic (``outcome_event_id``). Usually
            an ``Outcome``; an input event of another application (a cart's
            ``OrderPlaced`` for the order saga) starts a flow of its own (its
            ``correlation-id`` is its event id).
        traceparent: Tracing context of the event that caused it.
        attempt_timeout: Start-to-close timeout of one attempt.
    """
    await publish_prepared_outcome(
        PublishOutcomeInput(topic=topic, event_type=event.avro_name,
                            event=event.model_dump(mode="json"), traceparent=traceparent),
        attempt_timeout=attempt_timeout)


async def publish_prepared_outcome(request: PublishOutcomeInput, *,
                                   attempt_timeout: timedelta = PUBLISH_TIMEOUT) -> None:
    """Publish an outcome already given as the ``publish_outcome`` activity's input.

    Args:
        request: The activity's input (topic, event type, the event as JSON).
        attempt_timeout: Start-to-close timeout of one attempt.
    """
    await workflow.execute_activity_method(
        OutcomePublisher.publish_outcome, request,
        start_to_close_timeout=attempt_timeout, retry_policy=PUBLISH_RETRY,
    )
