"""``UpdateCommands`` against Temporal's test server: a reply that does not reach Kafka.

A request counts as done only once its reply is on Kafka: a producer error
makes the whole request transient (nothing committed), and the retry sends the
update again with the same id, which Temporal does not apply twice. A reply
Kafka refuses for its size becomes a small ``failed`` reply, so the partition
moves on.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bridge.decoding import Decoder
from bridge.failures import TransientFailure
from bridge.updates import UpdateCommands
from schemas.replies import RequestFailed
from tests.helpers.counters.app import APP, REPLIES, REQUESTS
from tests.helpers.counters.events import CounterAdded, CounterOpened, OpenAndAdd
from tests.helpers.counters.workflows import CounterWorkflow
from tests.helpers.fakes import Record

CODEC = APP.codec()
ROUTES = APP.route_table()


@dataclass
class Producer:
    """Keeps what it is sent; raises the errors it is given first, one per send."""

    errors: list[Exception] = field(default_factory=list)
    sent: list[tuple[str, bytes | None, list[tuple[str, bytes]]]] = field(default_factory=list)

    async def send_and_wait(self, topic: str, value: bytes | None = None,
                            key: bytes | None = None, partition: int | None = None,
                            timestamp_ms: int | None = None,
                            headers: list[tuple[str, bytes]] | None = None) -> Any:
        del key, partition, timestamp_ms
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((topic, value, list(headers or [])))


@dataclass
class Requests:
    env: WorkflowEnvironment
    producer: Producer
    commands: UpdateCommands

    async def execute(self, event: OpenAndAdd) -> str:
        rec = Record(REQUESTS, 0, 0, event.key.encode(), CODEC.encode(event), [])
        routed = await Decoder(CODEC, ROUTES, max_payload_bytes=4096).decode(rec)
        return await self.commands.execute(routed.route, routed.inbound, rec)

    def replies(self) -> list[Any]:
        return [CODEC.decode(value or b"") for _, value, _ in self.producer.sent]


@pytest.fixture
async def requests(workflow_env: WorkflowEnvironment) -> AsyncIterator[Requests]:
    producer = Producer()
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(workflow_env.client, task_queue=task_queue, workflows=[CounterWorkflow]):
        yield Requests(workflow_env, producer, UpdateCommands(
            workflow_env.client, task_queue, CODEC, producer, ROUTES.reply_topics))


def open_and_add(amount: int) -> OpenAndAdd:
    return OpenAndAdd(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                      counter_id=f"C-{uuid.uuid4().hex[:8]}", amount=amount)


async def test_a_reply_kafka_did_not_take_leaves_the_request_unfinished_and_is_sent_again(
        requests: Requests) -> None:
    requests.producer.errors.append(KafkaConnectionError("broker away"))
    first = open_and_add(5)

    with pytest.raises(TransientFailure, match="broker away"):
        await requests.execute(first)
    assert requests.producer.sent == []  # nothing replied: the offset must not move

    assert await requests.execute(first) == "replied"  # the retry, same update id
    [(topic, _, _)] = requests.producer.sent
    [reply] = requests.replies()
    assert topic == REPLIES
    assert isinstance(reply, CounterAdded)
    assert (reply.total, reply.applied) == (5, 1)  # applied once, though sent twice
    handle = requests.env.client.get_workflow_handle(f"counter-{first.counter_id}")
    assert await handle.query("total") == 5


async def test_a_reply_too_large_for_kafka_becomes_a_small_failed_reply(
        requests: Requests) -> None:
    requests.producer.errors.append(MessageSizeTooLargeError("too large"))

    assert await requests.execute(open_and_add(5)) == "replied"

    [reply] = requests.replies()
    assert isinstance(reply, RequestFailed)
    assert (reply.reason, reply.error_type) == ("failed", "ReplyRefused")
    assert CounterOpened.avro_name not in reply.message


async def test_a_bridge_stopping_mid_request_replies_nothing(requests: Requests) -> None:
    slow = open_and_add(5)
    slow = slow.model_copy(update={"hold_seconds": 30})
    with requests.env.auto_time_skipping_disabled():
        running = asyncio.create_task(requests.execute(slow))
        await asyncio.sleep(1)  # the update is accepted and holds
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    assert requests.producer.sent == []  # no timed-out reply: the request is redelivered
    # The session's test server skips time only while no task is due: a timer of a workflow
    # whose worker is gone would stop time for every later test.
    await requests.env.client.get_workflow_handle(f"counter-{slow.counter_id}").terminate()
