"""The bridge's link to Temporal goes bad (through Toxiproxy): hung, then cut.

The worker talks to Temporal directly; only the bridge's connection is broken,
so what is tested is the bridge: it must wait (never commit past a record
Temporal did not acknowledge, never drop one), and resume by itself.
"""

from __future__ import annotations

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


QUICK_TO_NOTICE = {
    # A call into the hung link times out in 3 s instead of 10.
    "RELAYFLOW_BRIDGE_TEMPORAL_CALL_SECONDS": "3",
    # A connection whose pings go unanswered is dropped after about 2 + 3 s, not 30 + 15,
    # and the client connects anew (through the restored link).
    "RELAYFLOW_TEMPORAL_KEEPALIVE_INTERVAL_SECONDS": "2",
    "RELAYFLOW_TEMPORAL_KEEPALIVE_TIMEOUT_SECONDS": "3",
}
"""The bridge's settings that say how soon it notices a broken link (shorter than by default)."""


async def _bridge_via(rig: Rig, link: Proxy) -> Service:
    bridge = rig.bridge(env={"RELAYFLOW_TEMPORAL_ADDRESS": link.listen, **QUICK_TO_NOTICE})
    await bridge.logged("bridge consuming")
    return bridge


async def test_a_hung_connection_to_temporal_is_waited_out(rig: Rig, temporal_link: Proxy,
                                                           ) -> None:
    rig.worker()
    bridge = await _bridge_via(rig, temporal_link)
    await rig.produce(ORDERS_EVENTS, orders(rig, 20))
    healthy = bridge.mark()
    temporal_link.black_hole()  # requests vanish, nothing answers, nothing is refused
    await rig.produce(ORDERS_EVENTS, orders(rig, 40)[20:])
    # A call outlived the bridge's per-call timeout: it met the hang, and holds the records.
    await bridge.logged("Temporal unavailable", since=healthy)
    temporal_link.restore()
    assert_clean(await rig.settled(), 40)
    log = bridge.log.read_text()
    assert "Temporal unavailable" in log
    assert "Temporal available again" in log


async def test_a_cut_connection_to_temporal_is_reestablished(rig: Rig, temporal_link: Proxy,
                                                             ) -> None:
    rig.worker()
    bridge = await _bridge_via(rig, temporal_link)
    await rig.produce(ORDERS_EVENTS, orders(rig, 20))
    healthy = bridge.mark()
    temporal_link.cut()
    await rig.produce(ORDERS_EVENTS, orders(rig, 40)[20:])
    await bridge.logged("Temporal unavailable", since=healthy)  # refused: it met the cut
    temporal_link.restore()
    assert_clean(await rig.settled(), 40)
    assert "Temporal available again" in bridge.log.read_text()
