"""The link to Kafka goes bad (through Toxiproxy): hung, then cut.

A broker of this module's own advertises the proxy's port, so every client of
it (bridge, worker, the test's producer, verify) goes through the proxy:
Kafka's clients connect to the advertised address, not to the one they were
given. A hung link is the harsh case: requests vanish and nothing is refused,
so only timeouts tell the clients. Nothing may be lost or applied twice, and
everything must resume by itself once the link is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiokafka.conn import create_conn
from aiokafka.protocol.admin import DescribeGroupsRequest

from devtools.toxiproxy import Proxy, Toxiproxy
from relayflow import devstack
from relayflow.config.settings import Settings
from relayflow.devstack import free_port
from relayflow.reference.topics import ORDERS_EVENTS
from tests.faults.checks import assert_clean, orders
from tests.faults.rig import KAFKA_UNREACHABLE, Members, Rig, Service, members_of, open_rig

pytestmark = [pytest.mark.timeout(480)]


@pytest.fixture(scope="module")
def kafka_behind_proxy(stack: Settings, tmp_path_factory: pytest.TempPathFactory,
                       ) -> Iterator[tuple[Settings, Proxy]]:
    """A private broker whose advertised port is a Toxiproxy proxy; the session's Temporal."""
    home = tmp_path_factory.mktemp("kafka-link")
    kafka, advertised = free_port(), free_port()
    settings = stack.model_copy(update={
        "data_dir": home, "kafka_port": kafka, "kafka_controller_port": free_port(),
        "kafka_advertised_port": advertised,
        "kafka_bootstrap_servers": f"127.0.0.1:{advertised}",
    })
    with Toxiproxy(settings, home / "toxiproxy.log") as server:
        link = server.proxy("kafka", f"127.0.0.1:{kafka}", listen=f"127.0.0.1:{advertised}")
        try:
            devstack.start_kafka(settings)
            devstack.ensure_topics(settings)
            yield settings, link
        finally:
            devstack.stop_kafka(settings, grace=0)  # a throwaway broker: no clean shutdown


@pytest.fixture
def link(kafka_behind_proxy: tuple[Settings, Proxy]) -> Iterator[Proxy]:
    proxy = kafka_behind_proxy[1]
    yield proxy
    proxy.restore()


@pytest.fixture
async def rig(kafka_behind_proxy: tuple[Settings, Proxy], tmp_path: Path) -> AsyncIterator[Rig]:
    async with open_rig(kafka_behind_proxy[0], tmp_path) as made:
        yield made


async def test_the_broker_is_only_reached_through_the_proxy(rig: Rig, link: Proxy) -> None:
    # Without this, the faults below could miss the clients entirely.
    link.cut()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(5):
            await rig.producer.send_and_wait(ORDERS_EVENTS, b"x", key=b"through-the-proxy")


async def _orders_across(rig: Rig, link: Proxy, fault: Callable[[], None],
                         broken: Callable[[Service, Service, str], Awaitable[None]]) -> str:
    """80 orders through a bridge and a worker, the link broken by ``fault`` after the 40th.

    The second 40 are sent into the broken link (delivered once, by the idempotent
    producer, after it is back); the link is restored once ``broken`` (given
    the worker, the bridge and its member id) saw the fault take effect. Ends
    with verify clean and the bridge still running.

    Returns:
        The bridge's member id in its consumer group before the fault.
    """
    worker = rig.worker()
    bridge = rig.bridge()
    await bridge.logged("bridge consuming")
    [(member, _)] = (await rig.members(
        lambda found: len(found) == 1 and all(found.values()))).items()
    batch = orders(rig, 80)
    await rig.produce(ORDERS_EVENTS, batch[:40])
    fault()
    late = asyncio.create_task(rig.produce(ORDERS_EVENTS, batch[40:]))
    await broken(worker, bridge, member)
    link.restore()
    await late
    assert_clean(await rig.settled(), 80)
    assert bridge.alive
    return member


async def _members_past_the_proxy(rig: Rig) -> Members:
    """The bridge's group as the broker sees it, asked on its own port (not the proxy's).

    An admin client would follow the advertised address, through the hung proxy;
    one connection to the broker's port, which coordinates every group, does not.
    """
    connection = await create_conn("127.0.0.1", rig.settings.kafka_port)
    try:
        return members_of(await connection.send(
            DescribeGroupsRequest([rig.settings.kafka_consumer_group])))
    finally:
        connection.close()


async def test_a_hung_kafka_link_is_waited_out(rig: Rig, link: Proxy) -> None:
    def hang() -> None:
        link.black_hole("upstream")
        link.black_hole("downstream")

    async def lapsed(worker: Service, bridge: Service, member: str) -> None:
        del worker, bridge
        # Nothing is refused, and the bridge's heartbeats vanish: past its session
        # timeout the broker drops it from the group (the bridge learns it when the
        # link is back).
        async with asyncio.timeout(60):
            while member in await _members_past_the_proxy(rig):  # noqa: ASYNC110 - remote
                await asyncio.sleep(0.2)

    member = await _orders_across(rig, link, hang, lapsed)
    # The coordinator agrees: the bridge is back in its group, as a new member.
    rejoined = await rig.members(lambda found: len(found) == 1 and member not in found)
    assert all(rejoined.values())


async def test_a_cut_kafka_link_is_reestablished(rig: Rig, link: Proxy) -> None:
    async def noticed(worker: Service, bridge: Service, member: str) -> None:
        del member
        for service in (worker, bridge):  # their connections closed, new ones refused
            await service.logged(KAFKA_UNREACHABLE)

    await _orders_across(rig, link, link.cut, noticed)
