"""``ParcelWorkflow``: wait for the delivery, or declare the parcel lost.

Deterministic code only: the deadline is a workflow timer, and the outcome
goes out through relayflow's ``publish_outcome`` (in the format its model
declares) with an id derived from the workflow id.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from examples.parcels.events import ParcelClosed, ParcelDelivered, ParcelShipped
    from relayflow import Inbound, outcome_event_id, publish_outcome

__all__ = ["DELIVERED_SIGNAL", "PARCELS_OUTCOMES", "ParcelWorkflow"]

DELIVERED_SIGNAL = "delivered"
"""Name of the signal that carries an ``Inbound[ParcelDelivered]``."""
PARCELS_OUTCOMES = "parcels.outcomes"
"""Where ``ParcelClosed`` goes."""


@workflow.defn(name="ParcelWorkflow")
class ParcelWorkflow:
    """One parcel; workflow id ``parcel-<parcel_id>``."""

    def __init__(self) -> None:
        self._delivery: Inbound[ParcelDelivered] | None = None

    @workflow.signal(name=DELIVERED_SIGNAL)
    def delivered(self, inbound: Inbound[ParcelDelivered]) -> None:
        """The delivery; the first one counts, a redelivered one is ignored."""
        if self._delivery is None:
            self._delivery = inbound

    @workflow.run
    async def run(self, inbound: Inbound[ParcelShipped]) -> str:
        """Follow one parcel from ``ParcelShipped`` to ``ParcelClosed``.

        Args:
            inbound: The event and its delivery metadata.

        Returns:
            ``DELIVERED`` or ``LOST``; the outcome was also published.
        """
        parcel = inbound.event
        try:
            await workflow.wait_condition(
                lambda: self._delivery is not None,
                timeout=timedelta(seconds=parcel.deliver_within_seconds))
        except TimeoutError:
            closed = ParcelClosed(
                event_id=outcome_event_id(workflow.info().workflow_id, "closed"),
                occurred_at=workflow.now(), correlation_id=inbound.meta.correlation_id,
                causation_id=inbound.meta.event_id, parcel_id=parcel.parcel_id, status="LOST")
            await publish_outcome(PARCELS_OUTCOMES, closed, inbound.meta.traceparent)
            return closed.status
        delivery = self._delivery
        assert delivery is not None  # the condition above
        closed = ParcelClosed(
            event_id=outcome_event_id(workflow.info().workflow_id, "closed"),
            occurred_at=workflow.now(), correlation_id=inbound.meta.correlation_id,
            causation_id=delivery.meta.event_id, parcel_id=parcel.parcel_id,
            status="DELIVERED", signed_by=delivery.event.signed_by)
        await publish_outcome(PARCELS_OUTCOMES, closed,
                              delivery.meta.traceparent or inbound.meta.traceparent)
        return closed.status
