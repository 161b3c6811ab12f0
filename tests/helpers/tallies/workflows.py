"""``TallyEntity``: an entity workflow (``relayflow.EntityWorkflow``) that adds up amounts."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from relayflow import (
        EntityCarry,
        EntityEnd,
        EntityOptions,
        EntityWorkflow,
        Event,
        EventMeta,
        publish_outcome,
    )
    from tests.helpers.tallies.events import TallyAdded, TallyIdled

__all__ = ["TALLIES_OUTCOMES", "HoldingTally", "Tally", "TallyEntity"]

TALLIES_OUTCOMES = "tallies.outcomes"
"""Where ``TallyIdled`` goes."""


class Tally(BaseModel):
    """A tally's state.

    Attributes:
        total: Sum of the amounts applied.
        count: Events applied.
        last_seq: Sequence number of the last event applied.
        out_of_order: Events whose ``seq`` was not ``last_seq + 1``.
    """

    total: int = 0
    count: int = 0
    last_seq: int = -1
    out_of_order: int = 0


@workflow.defn(name="TallyEntity")
class TallyEntity(EntityWorkflow[Tally]):
    """One tally per key; small history limits so a burst spans several runs."""

    event_types = (TallyAdded,)
    options = EntityOptions(idle=timedelta(minutes=5), max_history_events=500,
                            max_history_bytes=1024 * 1024, max_signals=100)

    def initial_state(self) -> Tally:
        return Tally()

    def load_state(self, data: dict[str, Any]) -> Tally:
        return Tally.model_validate(data)

    def apply(self, state: Tally, event: Event, meta: EventMeta) -> Tally:  # noqa: ARG002
        assert isinstance(event, TallyAdded)
        in_order = event.seq == state.last_seq + 1
        return Tally(total=state.total + event.amount, count=state.count + 1,
                     last_seq=event.seq, out_of_order=state.out_of_order + (not in_order))

    async def on_idle(self, state: Tally) -> None:
        meta, workflow_id = self.last_meta, workflow.info().workflow_id
        idled = TallyIdled(event_id=self.expiry_event_id(),
                           occurred_at=workflow.now().astimezone(UTC),
                           correlation_id=meta.correlation_id if meta else workflow_id,
                           causation_id=meta.event_id if meta else "",
                           tally_id=workflow_id.removeprefix("tally-"),
                           total=state.total, count=state.count)
        await publish_outcome(TALLIES_OUTCOMES, idled, meta.traceparent if meta else "")

    @workflow.run
    async def run(self, carried: EntityCarry | None = None) -> EntityEnd:
        return await self.live(carried)


@workflow.defn(name="HoldingTally")
class HoldingTally(TallyEntity):
    """A tally that continues as new every two signals, remembers three event ids, and
    whose ``hold`` update stays in flight until the ``release`` signal (so a test can
    see continue-as-new wait for it)."""

    options = EntityOptions(idle=timedelta(hours=1), max_signals=2, remember=3)

    def __init__(self) -> None:
        super().__init__()
        self._released = False

    @workflow.update(name="hold")
    async def hold(self) -> int:
        """Wait for ``release``; answer the count then."""
        await workflow.wait_condition(lambda: self._released)
        return self.state.count

    @workflow.signal(name="release")
    def release(self) -> None:
        """Let ``hold`` finish."""
        self._released = True

    @workflow.run
    async def run(self, carried: EntityCarry | None = None) -> EntityEnd:
        return await self.live(carried)
