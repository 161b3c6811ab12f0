"""A workflow that reaches relayflow's public API the way an application's workflow does.

``relayflow`` is imported at module level *outside* the passthrough, so the
workflow sandbox imports its own copy of the package for every run (as it does
for workflows living under ``relayflow/``); the public names then come through
that copy inside ``workflow.unsafe.imports_passed_through()``.
"""

from __future__ import annotations

from temporalio import workflow

import relayflow

with workflow.unsafe.imports_passed_through():
    from examples.tickets.events import TicketExpired, TicketOpened
    from relayflow import Inbound, outcome_event_id, publish_outcome

__all__ = ["PublicApiWorkflow"]


@workflow.defn(name="PublicApiWorkflow")
class PublicApiWorkflow:
    """Publishes one ``TicketExpired`` for the ``TicketOpened`` it starts with."""

    @workflow.run
    async def run(self, inbound: Inbound[TicketOpened]) -> str:
        """Publish the outcome; return the package's version as the sandbox saw it."""
        await publish_outcome("tickets.outcomes", TicketExpired(
            event_id=outcome_event_id(workflow.info().workflow_id, "expired"),
            occurred_at=workflow.now(), correlation_id=inbound.meta.correlation_id,
            causation_id=inbound.meta.event_id, ticket_id=inbound.event.ticket_id,
            assigned_agent="nobody", waited_seconds=0), inbound.meta.traceparent)
        return relayflow.__version__
