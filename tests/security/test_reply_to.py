"""A producer of requests tries to make the bridge write where it wants, through a real bridge.

A request's ``reply-to`` header chooses among the reply topics the application
declares, nothing else. Each attack names another topic: an input topic (a
reply loop, and forged input), an outcome topic (forged outcomes for its
subscribers), a dead-letter topic (forged dead letters), a topic that does not
exist (created on first write where the broker auto-creates topics), and a
long name. Each request must be dead-lettered as ``reply-to-refused`` before
its update is sent: the counter's total is unchanged and no reply is written
anywhere.
"""

from __future__ import annotations

import pytest

from relayflow.application import Application
from relayflow.config.settings import Settings
from relayflow.runtime.bootstrap import connect_temporal
from relayflow.runtime.clients import kafka_clients
from relayflow.testing import AppKafka
from schemas.topics import dlq_topic
from tests.helpers.counters.app import APP, OUTCOMES, REQUESTS
from tests.helpers.counters.requester import add, new_counter, opened, replies_to, request

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

UNKNOWN = "payments.commands"

ATTACKS = [REQUESTS, OUTCOMES, dlq_topic(REQUESTS), UNKNOWN, "x" * 5000]
"""Every topic a request names in ``reply-to``; none is a declared reply topic."""


@pytest.fixture(scope="module")
def relayflow_app() -> Application:
    return APP


async def test_a_reply_to_naming_an_undeclared_topic_writes_nothing_there(
        relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    client = await connect_temporal(relayflow_system)
    for target in ATTACKS:
        counter = new_counter()
        await opened(relayflow_kafka, counter)  # its total is 1 now
        attack = add(counter, 1000)

        await request(relayflow_kafka, attack, reply_to=target)
        dead = await relayflow_kafka.wait_for_dead_letter(REQUESTS, key=counter)

        assert dead.reason == "reply-to-refused", target[:40]
        assert await client.get_workflow_handle(f"counter-{counter}").query("total") == 1
        assert replies_to(relayflow_kafka, attack.event_id) == []
    admin = kafka_clients(relayflow_system).admin()
    await admin.start()
    try:
        assert UNKNOWN not in await admin.list_topics()
    finally:
        await admin.close()
