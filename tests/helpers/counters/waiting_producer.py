"""A producer that sends a request and waits for its reply: plain aiokafka and the contract.

The docs' request/response page includes this file; an integration test runs
it against the real broker and bridge.
"""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from relayflow import Event, FormatCodec
from schemas.framing import to_record

__all__ = ["listen_for_replies", "request_and_wait"]


async def listen_for_replies(bootstrap_servers: str, reply_topic: str,
                             producer: AIOKafkaProducer) -> AIOKafkaConsumer:
    """A started consumer at the end of every partition of the reply topic.

    Open it before sending: a reply that lands before the consumer knows its
    position would otherwise be skipped. No consumer group: each waiting
    process reads every reply and keeps its own.
    """
    partitions = [TopicPartition(reply_topic, partition)
                  for partition in await producer.partitions_for(reply_topic)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for partition in partitions:
        await consumer.position(partition)  # fixes "the end" now, before the request goes
    return consumer


async def request_and_wait(producer: AIOKafkaProducer, replies: AIOKafkaConsumer,
                           codec: FormatCodec, event: Event, *, topic: str, reply_to: str,
                           timeout: float = 30.0) -> Event:  # noqa: ASYNC109 - the caller's bound
    """Send ``event`` as a request answered on ``reply_to``; return the reply event.

    The reply carries the request's ``correlation-id`` (a fresh one here), so
    the wait matches on it; ``causation-id`` (the request's event id) would do
    too. A redelivered request is answered again with the same ``event-id``.
    """
    correlation_id = str(uuid.uuid4())
    record = to_record(event, codec, correlation_id=correlation_id)
    await producer.send_and_wait(topic, record.value, key=record.key,
                                 headers=[*record.headers, ("reply-to", reply_to.encode())])
    async with asyncio.timeout(timeout):
        async for reply in replies:
            if (("correlation-id", correlation_id.encode()) in reply.headers
                    and reply.value is not None):
                return codec.decode(reply.value)
    raise AssertionError("unreachable: the consumer never stops by itself")
