"""The tallies contract: ``TallyAdded`` in, ``TallyIdled`` out (one ``.avsc`` file each)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import ClassVar

from relayflow import Event, EventMeta, Inbound, InboundBatch, Key, Outcome

__all__ = ["EVENT_TYPES", "TallyAdded", "TallyIdled", "added", "batch"]


class TallyAdded(Event):
    """An amount added to a tally.

    Attributes:
        tally_id: Business key.
        amount: What to add.
        seq: The producer's sequence number for the key.
    """

    avro_name: ClassVar[str] = "tallies.events.TallyAdded"
    key_field = "tally_id"

    tally_id: Key
    amount: int
    seq: int


class TallyIdled(Outcome):
    """A tally ended after its idle time.

    Attributes:
        tally_id: Business key.
        total: Sum of the amounts.
        count: Events applied.
    """

    avro_name: ClassVar[str] = "tallies.events.TallyIdled"
    key_field = "tally_id"

    tally_id: Key
    total: int
    count: int


EVENT_TYPES: tuple[type[Event], ...] = (TallyAdded, TallyIdled)
"""Every event of the tallies contract."""


def added(tally_id: str, seq: int, amount: int = 1) -> TallyAdded:
    """The ``seq``-th event of a tally (a fresh event id)."""
    return TallyAdded(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), tally_id=tally_id,
                      amount=amount, seq=seq)


def batch(*events: TallyAdded) -> InboundBatch[TallyAdded]:
    """What the bridge would signal for these consecutive records."""
    return InboundBatch[TallyAdded](events=[
        Inbound[TallyAdded](event=event, meta=EventMeta(
            event_type=TallyAdded.avro_name, event_id=str(event.event_id),
            correlation_id=str(event.event_id)))
        for event in events])
