"""The FastStream wiring with FastStream's in-memory TestKafkaBroker.

The broker is the one ``build_broker`` wires for production; only the
context's ``FetchConsumer`` is built from the fakes of our own interfaces.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from faststream.kafka import KafkaBroker, KafkaResponse, TestKafkaBroker

from bridge.app import BRIDGE, build_broker
from bridge.consumer import FetchConsumer
from relayflow.config.settings import Settings
from relayflow.kafka.clients import KafkaClients
from relayflow.reference.app import ROUTES
from relayflow.reference.topics import ORDERS_EVENTS
from relayflow.runtime.bootstrap import bridge_config
from schemas.framing import to_record
from tests.helpers.fakes import FakeCommands, FakeDeadLetters, FakeOffsets
from tests.helpers.support import CODEC, cancelled, order_placed, processor


@dataclass
class Wired:
    broker: KafkaBroker
    commands: FakeCommands
    dead_letters: FakeDeadLetters
    offsets: FakeOffsets


@pytest.fixture
async def wired() -> AsyncIterator[Wired]:
    broker = build_broker(bridge_config(Settings(bridge_batch_size=50)), ROUTES,
                          KafkaClients(Settings()))
    commands, dlq, offsets = FakeCommands(), FakeDeadLetters(), FakeOffsets()
    broker.context.set_global(BRIDGE, FetchConsumer(processor(commands, dlq), offsets, budget=30))
    async with TestKafkaBroker(broker):
        yield Wired(broker, commands, dlq, offsets)


def test_one_batch_subscriber_reads_every_input_topic() -> None:
    broker = build_broker(bridge_config(Settings()), ROUTES, KafkaClients(Settings()))
    [subscriber] = broker.subscribers  # one group member per process, one rebalance per start
    assert list(getattr(subscriber, "topic_names", [])) == ROUTES.topics


@pytest.mark.parametrize(("seconds", "heartbeat_ms", "rebalance_ms"),
                         [(10.0, 3000, 10_000), (6.0, 2000, 10_000), (45.0, 3000, 45_000)])
def test_the_session_timeout_reaches_the_consumer(seconds: float, heartbeat_ms: int,
                                                  rebalance_ms: int) -> None:
    settings = Settings(bridge_session_timeout_seconds=seconds)
    broker = build_broker(bridge_config(settings), ROUTES, KafkaClients(settings))
    [subscriber] = broker.subscribers
    options = getattr(subscriber, "_connection_args", {})
    # Heartbeats a third of the session apart (at most 3 s, aiokafka's default); a
    # live member is waited for at least 10 s (aiokafka's default) when the group rebalances.
    assert (options["session_timeout_ms"], options["heartbeat_interval_ms"],
            options["rebalance_timeout_ms"]) == (round(seconds * 1000), heartbeat_ms,
                                                 rebalance_ms)


async def test_a_published_event_becomes_a_command_and_a_commit(wired: Wired) -> None:
    event = order_placed("A-1")
    rec = to_record(event, CODEC, correlation_id="corr-7")
    await wired.broker.publish(rec.value, ORDERS_EVENTS, key=rec.key,
                               headers={k: v.decode() for k, v in rec.headers})
    assert wired.commands.calls == [("order-A-1", "OrderPlaced", 0)]
    assert wired.offsets.commits == [{TopicPartition(ORDERS_EVENTS, 0): 1}]
    assert wired.dead_letters.sent == []


async def test_a_batch_is_processed_as_one_unit(wired: Wired) -> None:
    first, second = to_record(order_placed("A-1"), CODEC), to_record(cancelled("A-1"), CODEC)
    other = to_record(order_placed("B-1"), CODEC)
    await wired.broker.publish_batch(
        *(KafkaResponse(r.value, key=r.key) for r in (first, other, second)), topic=ORDERS_EVENTS)
    assert [c[:2] for c in wired.commands.calls if c[0] == "order-A-1"] == [
        ("order-A-1", "OrderPlaced"), ("order-A-1", "OrderCancelled")]
    assert len(wired.commands.calls) == 3
    assert len(wired.offsets.commits) == 1  # one commit for the whole batch


async def test_bodies_reach_the_codec_undecoded(wired: Wired) -> None:
    # A JSON content-type would make FastStream parse the body; the bridge must not let it.
    await wired.broker.publish(b"{not avro}", ORDERS_EVENTS, key=b"A-1",
                               headers={"content-type": "application/json"})
    assert [(offset, reason) for offset, reason, _ in wired.dead_letters.sent] == [
        (0, "unknown-framing")]
    assert wired.offsets.commits == [{TopicPartition(ORDERS_EVENTS, 0): 1}]


async def test_binary_and_null_headers_reach_the_dlq_untouched(wired: Wired) -> None:
    # FastStream's own parser would fail the whole batch on these, before the handler.
    headers: list[tuple[str, bytes | None]] = [("x-bin", b"\xff\xfe"), ("x-null", None)]
    raw = ConsumerRecord(ORDERS_EVENTS, 2, 41, 0, 0, b"A-1", b"junk", None, 3, 4, headers)
    [subscriber] = wired.broker.subscribers
    await subscriber.process_message((raw,))
    assert [(offset, reason) for offset, reason, _ in wired.dead_letters.sent] == [
        (41, "unknown-framing")]
    assert wired.offsets.commits == [{TopicPartition(ORDERS_EVENTS, 2): 42}]
