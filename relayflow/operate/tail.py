"""``relayflow tail``: the records of a topic, decoded, to its current end or as they arrive.

Reads with a consumer that belongs to no group: partitions are assigned by
hand and nothing is ever committed, so tailing never moves anyone's offsets.
Without ``--from-beginning`` it starts ``last`` records before the end of each
partition. Input and outcome topics show their events (a value that went by claim
check fetched from the store), dead-letter topics
their reason headers too, and the parked-keys topic its entries
(``relayflow.operate.records``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from relayflow.application import load_application
from relayflow.config.settings import Settings
from relayflow.kafka.reads import partitions_of, stream_records
from relayflow.operate.deadlines import NotFound, kafka_answers
from relayflow.operate.records import ShownRecord, shown
from relayflow.runtime.bootstrap import event_codec
from relayflow.runtime.clients import blob_store, kafka_clients

__all__ = ["tail"]


async def tail(settings: Settings, topic: str, *, seconds: float, key: str | None = None,
               from_beginning: bool = False, last: int = 10,
               follow: bool = False) -> AsyncIterator[ShownRecord]:
    """The records of ``topic``, decoded, in offset order within each partition.

    Args:
        settings: Where Kafka is; ``settings.app``'s codec decodes.
        topic: The topic.
        seconds: Bound of connecting and finding the topic's partitions and offsets.
        key: Only records with this key (UTF-8).
        from_beginning: Start at the beginning of each partition.
        last: Otherwise start this many records before the end of each partition.
        follow: Go on past the current end, until the iterator is closed.

    Yields:
        Each record with what it means.

    Raises:
        NotFound: No such topic.
        relayflow.operate.deadlines.Unanswered: Kafka did not answer.
    """
    codec = event_codec(settings, load_application(settings.app))
    blobs = blob_store(settings)
    wanted = None if key is None else key.encode()
    async with contextlib.AsyncExitStack() as stack:
        async with kafka_answers(settings, seconds):
            partitions = await partitions_of(kafka_clients(settings), [topic])
            if not partitions:
                raise NotFound(f"no topic {topic!r} on Kafka at {settings.kafka_bootstrap_servers}")
            # No group_id: nothing is committed, no group rebalances.
            consumer = await stack.enter_async_context(
                kafka_clients(settings).started_consumer(enable_auto_commit=False))
            consumer.assign(partitions)
            firsts = await consumer.beginning_offsets(partitions)
            ends = await consumer.end_offsets(partitions)
        starts = {tp: firsts[tp] if from_beginning else max(firsts[tp], ends[tp] - last)
                  for tp in partitions}
        async for record in stream_records(consumer, starts, until=None if follow else ends):
            if wanted is None or record.key == wanted:
                yield await shown(record, codec, blobs)
