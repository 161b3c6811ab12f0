"""Request/response through the real broker, bridge and worker: the counters test application.

Each request is a Workflow Update of ``CounterWorkflow`` (its validator refuses
amounts that are not positive); every reply is read back from the real reply
topic, and every dead letter from the real DLQ.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from temporalio.client import Client, WorkflowExecutionStatus

from relayflow.application import Application
from relayflow.config.settings import Settings
from relayflow.runtime.bootstrap import connect_temporal
from relayflow.testing import AppKafka
from schemas.headers import CAUSATION_ID, CORRELATION_ID
from schemas.replies import RequestFailed, reply_event_id
from tests.helpers.counters.app import APP, MOBILE_REPLIES, OUTCOMES, REPLIES, REQUESTS
from tests.helpers.counters.events import CounterAdded, CounterClosed, OpenAndAdd
from tests.helpers.counters.requester import (
    add,
    ask,
    new_counter,
    now,
    opened,
    replies_to,
    request,
)
from tests.helpers.counters.waiting_producer import listen_for_replies, request_and_wait
from tests.helpers.counters.workflows import UNLUCKY

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def relayflow_app() -> Application:
    return APP


async def no_dead_letter(kafka: AppKafka, key: str) -> None:
    with pytest.raises(AssertionError, match="no a dead letter"):
        await kafka.wait_for_dead_letter(REQUESTS, key=key, timeout=1.0)


async def test_an_accepted_request_is_answered_with_the_update_s_result(
        relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    counter = new_counter()
    await opened(relayflow_kafka, counter)
    sent = add(counter, 5)

    answer = await ask(relayflow_kafka, sent, CounterAdded, correlation_id="checkout-7")

    assert (answer.total, answer.applied, answer.amount) == (6, 2, 5)
    assert answer.event_id == reply_event_id(str(sent.event_id), CounterAdded.avro_name)
    [record] = replies_to(relayflow_kafka, sent.event_id)
    assert record.topic == REPLIES
    assert record.key == counter.encode()
    assert record.header(CORRELATION_ID) == "checkout-7"
    assert record.header(CAUSATION_ID) == str(sent.event_id)


async def test_a_validator_rejection_is_a_reply_not_a_dead_letter(
        relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    counter = new_counter()
    await opened(relayflow_kafka, counter)
    refused = add(counter, 0)

    answer = await ask(relayflow_kafka, refused, RequestFailed)

    assert (answer.reason, answer.error_type) == ("rejected", "NotPositive")
    assert (answer.request_key, answer.update, answer.workflow_id) == (
        counter, "add", f"counter-{counter}")
    assert answer.correlation_id == str(refused.event_id)  # none sent: the request's own id
    await no_dead_letter(relayflow_kafka, counter)
    assert (await ask(relayflow_kafka, add(counter, 2), CounterAdded)).total == 3


async def test_a_handler_that_fails_after_accepting_replies_failed(
        relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    counter = new_counter()
    await opened(relayflow_kafka, counter)

    answer = await ask(relayflow_kafka, add(counter, UNLUCKY), RequestFailed)

    assert (answer.reason, answer.error_type) == ("failed", "Unlucky")


async def test_a_malformed_request_is_dead_lettered_and_gets_no_reply(
        relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    counter = new_counter()
    await relayflow_kafka.send_bytes(REQUESTS, b"\xc3\x01 no avro", key=counter)

    dead = await relayflow_kafka.wait_for_dead_letter(REQUESTS, key=counter)

    assert dead.reason == "unknown-schema"
    assert not [r for r in relayflow_kafka.arrived
                if r.topic == REPLIES and r.key == counter.encode()]


async def test_a_redelivered_request_is_applied_once_and_answered_again_alike(
        relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    counter = new_counter()
    await opened(relayflow_kafka, counter)
    twice = add(counter, 5)

    first = await ask(relayflow_kafka, twice, CounterAdded)
    again = await ask(relayflow_kafka, twice, CounterAdded)

    assert again == first  # the same event, event id and all: subscribers drop it by id
    assert (first.total, first.applied) == (6, 2)
    assert (await ask(relayflow_kafka, add(counter, 1), CounterAdded)).total == 7


async def test_reply_to_names_a_declared_reply_topic_only(
        relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    counter = new_counter()
    await opened(relayflow_kafka, counter)
    mobile = add(counter, 2)
    await ask(relayflow_kafka, mobile, CounterAdded, reply_to=MOBILE_REPLIES)
    assert [r.topic for r in replies_to(relayflow_kafka, mobile.event_id)] == [MOBILE_REPLIES]

    elsewhere = add(counter, 100)
    await request(relayflow_kafka, elsewhere, reply_to=OUTCOMES)
    dead = await relayflow_kafka.wait_for_dead_letter(REQUESTS, key=counter)

    assert dead.reason == "reply-to-refused"
    assert OUTCOMES in dead.error
    # Refused before the update was sent: nothing applied, nothing written anywhere.
    client = await connect_temporal(relayflow_system)
    assert await client.get_workflow_handle(f"counter-{counter}").query("total") == 3
    assert replies_to(relayflow_kafka, elsewhere.event_id) == []


async def test_a_request_for_a_missing_or_closed_workflow_says_so(
        relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    missing = await ask(relayflow_kafka, add(new_counter(), 1), RequestFailed)
    assert missing.reason == "workflow-not-found"

    counter = new_counter()
    await opened(relayflow_kafka, counter)
    await relayflow_kafka.send(CounterClosed(event_id=uuid.uuid4(), occurred_at=now(),
                                             counter_id=counter))
    await closed(await connect_temporal(relayflow_system), f"counter-{counter}")

    gone = await ask(relayflow_kafka, add(counter, 1), RequestFailed)

    assert gone.reason == "workflow-closed"
    assert "COMPLETED" in gone.message


async def closed(client: Client, workflow_id: str) -> None:
    for _ in range(100):
        description = await client.get_workflow_handle(workflow_id).describe()
        if description.status is not WorkflowExecutionStatus.RUNNING:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow_id} still runs")


async def test_a_request_slower_than_its_bound_times_out_and_a_resend_learns_the_result(
        relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    counter = new_counter()
    await opened(relayflow_kafka, counter)
    slow = add(counter, 5, hold_seconds=6)  # the route's bound is 3 s

    late = await ask(relayflow_kafka, slow, RequestFailed)
    assert late.reason == "timed-out"
    assert "accepted but not completed within 3 s" in late.message

    # The update completes meanwhile (the bridge asked with the request's event id).
    update = (await connect_temporal(relayflow_system)).get_workflow_handle(
        f"counter-{counter}").get_update_handle(str(slow.event_id))
    await asyncio.wait_for(update.result(), 30)
    result = await ask(relayflow_kafka, slow, CounterAdded)
    assert (result.total, result.applied) == (6, 2)


async def test_update_with_start_starts_the_workflow_and_answers(
        relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    counter = new_counter()
    first = OpenAndAdd(event_id=uuid.uuid4(), occurred_at=now(), counter_id=counter, amount=4)

    answer = await ask(relayflow_kafka, first, CounterAdded)

    assert (answer.total, answer.applied) == (4, 1)
    client = await connect_temporal(relayflow_system)
    description = await client.get_workflow_handle(f"counter-{counter}").describe()
    assert description.status is WorkflowExecutionStatus.RUNNING
    more = OpenAndAdd(event_id=uuid.uuid4(), occurred_at=now(), counter_id=counter, amount=3)
    assert (await ask(relayflow_kafka, more, CounterAdded)).total == 7  # the same workflow


async def test_a_producer_waits_for_its_reply_with_plain_aiokafka(
        relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    counter = new_counter()
    await opened(relayflow_kafka, counter)
    servers = relayflow_system.kafka_bootstrap_servers
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    await producer.start()
    replies = await listen_for_replies(servers, MOBILE_REPLIES, producer)
    try:
        answer = await request_and_wait(producer, replies, APP.codec(), add(counter, 9),
                                        topic=REQUESTS, reply_to=MOBILE_REPLIES)
    finally:
        await producer.stop()
        await replies.stop()

    assert isinstance(answer, CounterAdded)
    assert answer.total == 10
