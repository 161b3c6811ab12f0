"""The Kafka contract's machinery: event bases, envelope, codec, framing, headers, topics.

Every application builds on it; none of it names an application's events or
topics. This package is a leaf: it imports nothing else of relayflow's.
"""

from schemas.envelope import EventMeta, Inbound
from schemas.models import Event, Key, Outcome, Record, UtcDatetime

__all__ = ["Event", "EventMeta", "Inbound", "Key", "Outcome", "Record", "UtcDatetime"]
