"""The bridge's link to Temporal goes bad (through Toxiproxy): hung, then cut.

The worker talks to Temporal directly; only the bridge's connection is broken,
so what is tested is the bridge: it must wait (never commit past a record
Temporal did not acknowledge, never drop one), and resume by itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from devtools.toxiproxy import Proxy, Toxiproxy
from relayflow.reference.topics import ORDERS_EVENTS
from tests.faults.checks import assert_clean, orders
from tests.faults.rig import Rig, Service

pytestmark = [pytest.mark.timeout(480)]


@pytest.fixture
def temporal_link(rig: Rig) -> Iterator[Proxy]:
    with Toxiproxy(rig.settings, rig.logs / "toxiproxy.log") as server:
        yield server.proxy("temporal", rig.settings.temporal_address)


async def _bridge_via(rig: Rig, link: Proxy) -> Service:
    bridge = rig.bridge(env={"RELAYFLOW_TEMPORAL_ADDRESS": link.listen})
    await bridge.logged("bridge consuming")
    return bridge


async def test_a_hung_connection_to_temporal_is_waited_out(rig: Rig, temporal_link: Proxy,
                                                           ) -> None:
    rig.worker()
    bridge = await _bridge_via(rig, temporal_link)
    await rig.produce(ORDERS_EVENTS, orders(rig, 40))
    temporal_link.black_hole()  # requests vanish, nothing answers, nothing is refused
    await rig.produce(ORDERS_EVENTS, orders(rig, 80)[40:])
    await asyncio.sleep(15)  # longer than the bridge's per-call timeout (10 s)
    temporal_link.restore()
    assert_clean(await rig.settled(), 80)
    log = bridge.log.read_text()
    assert "Temporal unavailable" in log
    assert "Temporal available again" in log


async def test_a_cut_connection_to_temporal_is_reestablished(rig: Rig, temporal_link: Proxy,
                                                             ) -> None:
    rig.worker()
    bridge = await _bridge_via(rig, temporal_link)
    await rig.produce(ORDERS_EVENTS, orders(rig, 40))
    temporal_link.cut()
    await rig.produce(ORDERS_EVENTS, orders(rig, 80)[40:])
    await asyncio.sleep(5)
    temporal_link.restore()
    assert_clean(await rig.settled(), 80)
    assert "Temporal available again" in bridge.log.read_text()
